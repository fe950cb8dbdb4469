// Package server implements eip.v1.EipService.
package server

import (
	"context"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/query"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/validate"
	"github.com/openhavip/havip/services/eip/store"
)

// Server serves eip.v1.EipService.
type Server struct {
	eipv1.UnimplementedEipServiceServer
	store       *store.Store
	unbindHaVip func(ctx context.Context, account, havipID string) error
}

// New returns a server over a started store; unbindHaVip unbinds a HAVIP's EIP (both sides).
func New(st *store.Store, unbindHaVip func(ctx context.Context, account, havipID string) error) *Server {
	return &Server{store: st, unbindHaVip: unbindHaVip}
}

func addressPB(v store.View) *eipv1.Address {
	pb := &eipv1.Address{
		AddressId: v.ID, AddressIp: v.IP, AddressName: v.Name, AddressStatus: "UNBIND", HavipId: v.HaVipID,
		NetworkInterfaceId: v.Backend.NetworkInterfaceID, InstanceId: v.Backend.InstanceID, HostId: v.Backend.HostID,
		PrivateAddressIp: v.Backend.PrivateIP, ReachesServer: v.Backend.Reaches, CreatedTime: timestamppb.New(v.Created),
	}
	if v.Bound() {
		pb.AddressStatus = "BIND"
	}
	return pb
}

// AllocateAddresses allocates EIPs.
func (s *Server) AllocateAddresses(ctx context.Context, req *eipv1.AllocateAddressesRequest) (*eipv1.AllocateAddressesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	n := int(req.GetAddressCount())
	if n == 0 {
		n = 1
	}
	if n > 10 {
		return nil, apierr.New(apierr.ReasonRange, "address_count must be 1 to 10")
	}
	if err := validate.OptionalName("address_name", req.GetAddressName()); err != nil {
		return nil, err
	}
	if len(req.GetClientToken()) > 64 {
		return nil, apierr.New(apierr.ReasonTooLong, "client_token is longer than 64 characters")
	}
	views, err := s.store.Allocate(ctx, acct, n, req.GetAddressName(), req.GetClientToken())
	if err != nil {
		return nil, err
	}
	out := &eipv1.AllocateAddressesResponse{}
	for _, v := range views {
		out.AddressSet = append(out.AddressSet, addressPB(v))
	}
	return out, nil
}

var fields = query.Fields[store.View]{
	"address-id":           func(v store.View) string { return v.ID },
	"address-ip":           func(v store.View) string { return v.IP },
	"address-name":         func(v store.View) string { return v.Name },
	"address-status":       func(v store.View) string { return map[bool]string{true: "BIND", false: "UNBIND"}[v.Bound()] },
	"instance-id":          func(v store.View) string { return v.Backend.InstanceID },
	"network-interface-id": func(v store.View) string { return v.Backend.NetworkInterfaceID },
	"havip-id":             func(v store.View) string { return v.HaVipID },
	"reaches-server":       func(v store.View) string { return strconv.FormatBool(v.Backend.Reaches) },
}

// DescribeAddresses lists EIPs.
func (s *Server) DescribeAddresses(ctx context.Context, req *eipv1.DescribeAddressesRequest) (*eipv1.DescribeAddressesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[store.View, *eipv1.Filter]{IDs: req.GetAddressIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	if err := spec.Check(fields); err != nil {
		return nil, err
	}
	if err := validate.IDs("address_ids", ids.Address, spec.IDs); err != nil {
		return nil, err
	}
	all, err := s.store.List(ctx, acct)
	if err != nil {
		return nil, err
	}
	sel, err := spec.Select(fields, func(v store.View) string { return v.ID }, all)
	if err != nil {
		return nil, err
	}
	page, total := spec.Page(sel)
	out := &eipv1.DescribeAddressesResponse{TotalCount: total}
	for _, v := range page {
		out.AddressSet = append(out.AddressSet, addressPB(v))
	}
	return out, nil
}

// ReleaseAddresses releases EIPs.
func (s *Server) ReleaseAddresses(ctx context.Context, req *eipv1.ReleaseAddressesRequest) (*eipv1.ReleaseAddressesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if len(req.GetAddressIds()) == 0 {
		return nil, apierr.New(apierr.ReasonEmpty, "address_ids is empty")
	}
	if err := validate.IDs("address_ids", ids.Address, req.GetAddressIds()); err != nil {
		return nil, err
	}
	if err := s.store.Release(ctx, acct, req.GetAddressIds()); err != nil {
		return nil, err
	}
	return &eipv1.ReleaseAddressesResponse{}, nil
}

// ModifyAddressAttribute renames an EIP.
func (s *Server) ModifyAddressAttribute(ctx context.Context, req *eipv1.ModifyAddressAttributeRequest) (*eipv1.ModifyAddressAttributeResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("address_id", ids.Address, req.GetAddressId()); err != nil {
		return nil, err
	}
	if err := validate.OptionalName("address_name", req.GetAddressName()); err != nil {
		return nil, err
	}
	v, err := s.store.Rename(ctx, acct, req.GetAddressId(), req.GetAddressName())
	if err != nil {
		return nil, err
	}
	return &eipv1.ModifyAddressAttributeResponse{Address: addressPB(v)}, nil
}

// AssociateAddress binds an EIP to an ENI.
func (s *Server) AssociateAddress(ctx context.Context, req *eipv1.AssociateAddressRequest) (*eipv1.AssociateAddressResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("address_id", ids.Address, req.GetAddressId()); err != nil {
		return nil, err
	}
	if err := validate.ID("network_interface_id", ids.NetworkInterface, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	ip, err := validate.OptionalIPv4("private_ip_address", req.GetPrivateIpAddress())
	if err != nil {
		return nil, err
	}
	ipStr := ""
	if ip.IsValid() {
		ipStr = ip.String()
	}
	v, err := s.store.AssociateENI(ctx, acct, req.GetAddressId(), req.GetNetworkInterfaceId(), ipStr)
	if err != nil {
		return nil, err
	}
	return &eipv1.AssociateAddressResponse{Address: addressPB(v)}, nil
}

// DisassociateAddress unbinds an EIP from its ENI or HAVIP.
func (s *Server) DisassociateAddress(ctx context.Context, req *eipv1.DisassociateAddressRequest) (*eipv1.DisassociateAddressResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("address_id", ids.Address, req.GetAddressId()); err != nil {
		return nil, err
	}
	cur, err := s.store.Get(ctx, acct, req.GetAddressId())
	if err != nil {
		return nil, err
	}
	if cur.HaVipID != "" {
		if err := s.unbindHaVip(ctx, acct, cur.HaVipID); err != nil {
			return nil, err
		}
		v, err := s.store.Get(ctx, acct, req.GetAddressId())
		if err != nil {
			return nil, err
		}
		return &eipv1.DisassociateAddressResponse{Address: addressPB(v)}, nil
	}
	v, err := s.store.DisassociateENI(ctx, acct, req.GetAddressId())
	if err != nil {
		return nil, err
	}
	return &eipv1.DisassociateAddressResponse{Address: addressPB(v)}, nil
}
