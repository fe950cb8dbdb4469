package apierr

import (
	"context"
	"errors"
	"sort"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Entry is one row of the error table: the gRPC code a reason carries and what it means.
type Entry struct {
	Reason  string
	Code    codes.Code
	Meaning string
	// Calls names the calls that return it (docs/errors.md shows them).
	Calls string
}

// table is the one place a reason gets its gRPC code.
var table = map[string]Entry{}

func init() {
	for _, e := range []Entry{
		{ReasonInvalidParameter, codes.InvalidArgument, "a parameter is missing, unknown or of the wrong form", "REST: unknown query parameters, bad JSON (the gateway)"},
		{ReasonInvalidParameterValue, codes.InvalidArgument, "a parameter's value is not allowed", "Describe* (a filter value of the wrong form)"},
		{ReasonMalformed, codes.InvalidArgument, "a value is not of its expected form (an ID, a MAC, a name, an interface)", "every call with a malformed ID, MAC, name or interface; REST bodies the gateway cannot parse"},
		{ReasonNotIPv4, codes.InvalidArgument, "an address or CIDR is not IPv4", "CreateVpc, CreateSubnet, CreateHaVip, AllocatePrivateIpAddress, HaVipAssociateAddressIp"},
		{ReasonTooLong, codes.InvalidArgument, "a name or list is longer than allowed", "Create*/Modify* (names), Describe* (too many IDs or values), REST bodies over 1 MiB"},
		{ReasonEmpty, codes.InvalidArgument, "a required value is empty", "every call missing a required field"},
		{ReasonRange, codes.InvalidArgument, "a value is outside its range (an address outside its subnet, a limit over 100)", "CreateHaVip (manual VIP), AllocatePrivateIpAddress, ProposePrivateIpAddresses (owners and extra), CreateInstance, CreateNetworkInterface, Describe* (offset/limit), AllocateAddresses (count), ReportArpAnnouncement"},
		{ReasonReserved, codes.InvalidArgument, "the address is the network, gateway or broadcast address of its subnet", "CreateHaVip, AllocatePrivateIpAddress, CreateInstance, CreateNetworkInterface (a manual address)"},
		{ReasonDuplicate, codes.InvalidArgument, "the request names one value twice, or one already in the list it adds to", "AssociateHaVipInstance, CreateHaVip (switch range)"},
		{ReasonOccupied, codes.AlreadyExists, "the address (or MAC) is already held by another resource", "CreateHaVip, AllocatePrivateIpAddress, CreateInstance, CreateNetworkInterface (a manual address)"},
		{ReasonSubnetConflict, codes.InvalidArgument, "the subnet overlaps a sibling subnet", "CreateSubnet"},
		{ReasonSubnetRange, codes.InvalidArgument, "the subnet is outside its VPC or not /16 to /29", "CreateSubnet"},
		{ReasonCidrNotPrivate, codes.InvalidArgument, "the VPC's CIDR is not private (RFC 1918)", "CreateVpc"},
		{ReasonLimitExceeded, codes.InvalidArgument, "the switch range would hold more than 10 entries", "AssociateHaVipInstance, CreateHaVip; Describe* (limit over 100)"},
		{ReasonVpcMismatch, codes.InvalidArgument, "the resources named are not in one VPC (or subnet)", "CreateSubnet, CreateHaVip, CreateNetworkInterface, AttachNetworkInterface, AssociateHaVipInstance"},
		{ReasonInstanceType, codes.InvalidArgument, "the switch-range instance type is neither CVM nor ENI", "AssociateHaVipInstance, CreateHaVip, DisassociateHaVipInstance"},
		{ReasonMixedInstanceType, codes.InvalidArgument, "a switch range would mix CVMs and ENIs", "AssociateHaVipInstance, CreateHaVip"},
		{ReasonFilterInvalidKey, codes.InvalidArgument, "a Describe filter key is unknown", "Describe*"},
		{ReasonCoexist, codes.InvalidArgument, "IDs and filters were given together", "Describe*"},
		{ReasonIdempotentParameterChange, codes.InvalidArgument, "a client token was reused with other parameters", "CreateHaVip, AllocateAddresses (client token)"},
		{ReasonNotAssociated, codes.FailedPrecondition, "the instance is not in the HAVIP's switch range", "DisassociateHaVipInstance"},
		{ReasonBindEIP, codes.FailedPrecondition, "the HAVIP has an EIP bound: unbind it first", "DeleteHaVip"},
		{ReasonAddressBound, codes.FailedPrecondition, "the EIP is bound (or an EIP is bound to the ENI to delete): unbind it first", "ReleaseAddresses, AssociateAddress, HaVipAssociateAddressIp, DeleteNetworkInterface, DeleteInstance"},
		{ReasonAddressNotBound, codes.FailedPrecondition, "the EIP (or HAVIP) has no binding to remove", "DisassociateAddress, HaVipDisassociateAddressIp"},
		{ReasonHaVipBound, codes.FailedPrecondition, "the HAVIP already has an EIP", "HaVipAssociateAddressIp"},
		{ReasonUnsupportedOperation, codes.FailedPrecondition, "the operation is not allowed in the resource's state", "calls refused by the gateway for a state the services did not name"},
		{ReasonMethodNotAllowed, codes.Unimplemented, "the method is not served (REST: not allowed on the path)", "REST: a method a route does not allow; calls a process does not serve"},
		{ReasonPrimaryEni, codes.FailedPrecondition, "a primary ENI cannot be detached, deleted (but with its instance) or put in a switch range", "DetachNetworkInterface, DeleteNetworkInterface, AssociateHaVipInstance, CreateHaVip"},
		{ReasonAttached, codes.FailedPrecondition, "the ENI is attached (or the instance to delete has a secondary ENI attached): detach it first", "AttachNetworkInterface, DeleteNetworkInterface, DeleteInstance"},
		{ReasonNotAttached, codes.FailedPrecondition, "the ENI is not attached to an instance", "DetachNetworkInterface, AssociateHaVipInstance, CreateHaVip"},
		{ReasonReservationExpired, codes.FailedPrecondition, "no live reservation matches the commit (it expired or was never made)", "CommitPrivateIpAddress"},
		{ReasonResourceInUse, codes.FailedPrecondition, "the resource still holds others (subnets, addresses): remove them first", "DeleteVpc, DeleteSubnet"},
		{ReasonAddressInUse, codes.FailedPrecondition, "the address is held by a resource (an ENI, a HAVIP, an EIP): only that resource's own lifecycle frees it, and no caller may name a resource as an address's holder", "ReleasePrivateIpAddress, AllocatePrivateIpAddress, CommitPrivateIpAddress"},
		{ReasonResourceNotFound, codes.NotFound, "no such resource in the caller's account", "every call naming an ID the account does not have"},
		{ReasonResourceInsufficient, codes.ResourceExhausted, "the subnet or public pool has no free address left", "CreateHaVip, AllocatePrivateIpAddress, ProposePrivateIpAddresses, CreateInstance, CreateNetworkInterface, AllocateAddresses"},
		{ReasonConflict, codes.Aborted, "concurrent changes won every attempt: retry the call", "every write, after losing to concurrent changes on every attempt"},
		{ReasonReservationLost, codes.Aborted, "a reservation expired before the create was recorded: retry the call", "CreateHaVip, AllocateAddresses"},
		{ReasonUnavailable, codes.Unavailable, "the service cannot answer now (a watcher fell behind, no leader): retry", "WatchOwnership, WatchNatRules, ReportArpAnnouncement (no leader)"},
		{ReasonStoreUnavailable, codes.Unavailable, "the store (etcd) cannot answer now: it has no quorum or no leader, or did not answer in time; a write may or may not have been applied: retry (with the same client token), or read back (REST: after Retry-After)", "every call that reads or writes etcd, while etcd has no quorum"},
		{ReasonTimeout, codes.DeadlineExceeded, "the call did not finish within its deadline", "any call"},
		{ReasonCanceled, codes.Canceled, "the caller canceled the call", "any call"},
		{ReasonUnknownRoute, codes.NotFound, "no REST route takes the method and path", "REST: an unknown path (the gateway)"},
		{ReasonAuthFailure, codes.Unauthenticated, "no valid credentials or account", "every call without a valid API key, client certificate or account"},
		{ReasonUnauthorizedOperation, codes.PermissionDenied, "the caller's identity may not make this call: the method is not for its kind, it may not act for that account, or an agent reports for another host", "every call refused by the authorization policy (docs/security.md); OpenSession, ReportArpAnnouncement (another host)"},
		{ReasonInternal, codes.Internal, "an unexpected failure; the message and the request ID are in the logs", "any call, on an unexpected failure"},
	} {
		table[e.Reason] = e
	}
}

// Table returns every row of the error table, ordered by reason.
func Table() []Entry {
	out := make([]Entry, 0, len(table))
	for _, e := range table {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reason < out[j].Reason })
	return out
}

// Code returns the gRPC code of a reason (Internal for a reason not in the table).
func Code(reason string) codes.Code {
	if e, ok := table[reason]; ok {
		return e.Code
	}
	return codes.Internal
}

// ToStatus converts any error a handler returns into the gRPC status a client sees.
// Domain errors get their reason's code and an ErrorInfo with the reason; context errors map
// to Canceled / DeadlineExceeded; etcd's failures to answer (StoreUnavailable) are Unavailable;
// statuses pass through; anything else is Internal.
func ToStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	var de *Error
	switch {
	case errors.As(err, &de):
		return withInfo(status.New(Code(de.Reason), de.Message), de.Reason, de.Metadata)
	case StoreUnavailable(err):
		return withInfo(status.New(codes.Unavailable, "the store cannot answer now: "+err.Error()), ReasonStoreUnavailable, nil)
	case errors.Is(err, context.Canceled):
		return withInfo(status.New(codes.Canceled, err.Error()), ReasonCanceled, nil)
	case errors.Is(err, context.DeadlineExceeded):
		return withInfo(status.New(codes.DeadlineExceeded, err.Error()), ReasonTimeout, nil)
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return withInfo(status.New(codes.Internal, err.Error()), ReasonInternal, nil)
}

func withInfo(st *status.Status, reason string, md map[string]string) *status.Status {
	if s, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: md}); err == nil {
		return s
	}
	return st
}

// FromStatus turns a status received from another service back into a domain error, so a
// service that calls another passes its reasons through unchanged. Statuses whose reason is not
// in the table (or that have none) are returned as they are.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return err
	}
	if e, ok := table[Reason(err)]; ok && e.Code == st.Code() {
		return &Error{Reason: e.Reason, Message: st.Message()}
	}
	return err
}

// Reason returns the ErrorInfo reason of a gRPC status error, or of a domain error, or "".
func Reason(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Reason
	}
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
