// Package server implements havip.v1.HaVipService: it checks requests against the HAVIP rules and the inventory.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/query"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/validate"
	"github.com/openhavip/havip/services/havip/inventory"
	"github.com/openhavip/havip/services/havip/keepalived"
	"github.com/openhavip/havip/services/havip/store"
)

// MaxAssociations is the largest switch range.
const MaxAssociations = 10

// DeleteNotice reminds the tenant what a released HAVIP means for its HA software.
const DeleteNotice = "The HAVIP is released. Remove its address from your HA software's configuration (keepalived virtual_ipaddress), or announcements of it will be rejected."

// Server serves havip.v1.HaVipService.
type Server struct {
	havipv1.UnimplementedHaVipServiceServer
	store *store.Store
	inv   *inventory.Client
	// ReservationTTL bounds how long a VIP reserved by a create that crashed stays taken.
	reservationTTL time.Duration
}

// New returns a server over a started store and an inventory client.
func New(st *store.Store, inv *inventory.Client, reservationTTL time.Duration) *Server {
	return &Server{store: st, inv: inv, reservationTTL: reservationTTL}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func havipPB(v store.View) *havipv1.HaVip {
	pb := &havipv1.HaVip{
		HavipId: v.ID, HavipName: v.Name, VpcId: v.VpcID, SubnetId: v.SubnetID, Vip: v.VIP.String(),
		State: "UNBIND", CheckAssociate: v.CheckAssociate, CreatedTime: ts(v.Created),
	}
	for _, a := range v.Associations {
		pb.HavipAssociationSet = append(pb.HavipAssociationSet, &havipv1.HaVipAssociation{InstanceId: a.InstanceID, InstanceType: a.Type})
	}
	if v.Owner != nil {
		pb.State = "BIND"
		pb.NetworkInterfaceId, pb.InstanceId, pb.HostId = v.Owner.NetworkInterfaceID, v.Owner.InstanceID, v.Owner.HostID
		pb.FlushedTime, pb.OwnerRevision = ts(v.Owner.Changed), v.OwnerRevision
	}
	if v.Address != nil {
		pb.AddressIp = v.Address.AddressIP
	}
	return pb
}

// checkAssociations checks the shape of switch-range entries and returns them.
func checkAssociations(in []*havipv1.HaVipAssociation) ([]records.Association, error) {
	out := make([]records.Association, 0, len(in))
	for _, a := range in {
		var prefix string
		switch a.GetInstanceType() {
		case records.TypeCVM:
			prefix = ids.Instance
		case records.TypeENI:
			prefix = ids.NetworkInterface
		default:
			return nil, apierr.New(apierr.ReasonInstanceType, "instance_type %q must be CVM or ENI", a.GetInstanceType())
		}
		if err := validate.ID("instance_id", prefix, a.GetInstanceId()); err != nil {
			return nil, err
		}
		out = append(out, records.Association{InstanceID: a.GetInstanceId(), Type: a.GetInstanceType()})
	}
	return out, nil
}

// checkRange checks a whole switch range (existing entries plus added) against the rules, and
// the added entries against the inventory.
func (s *Server) checkRange(ctx context.Context, account, vpcID string, existing, added []records.Association) error {
	all := append(slices.Clone(existing), added...)
	if len(all) > MaxAssociations {
		return apierr.New(apierr.ReasonLimitExceeded, "a switch range holds at most %d instances; this would make %d", MaxAssociations, len(all))
	}
	seen := map[string]bool{}
	for _, a := range all {
		if a.Type != all[0].Type {
			return apierr.New(apierr.ReasonMixedInstanceType, "a switch range holds CVMs or ENIs, not both")
		}
		if seen[a.InstanceID] {
			return apierr.New(apierr.ReasonDuplicate, "%s is in the switch range twice", a.InstanceID)
		}
		seen[a.InstanceID] = true
	}
	var enis, cvms []string
	for _, a := range added {
		if a.Type == records.TypeENI {
			enis = append(enis, a.InstanceID)
		} else {
			cvms = append(cvms, a.InstanceID)
		}
	}
	foundENIs, err := s.inv.ENIs(ctx, account, enis)
	if err != nil {
		return err
	}
	for _, id := range enis {
		e := foundENIs[id]
		switch {
		case e.InstanceID == "":
			return apierr.New(apierr.ReasonNotAttached, "%s is not attached to a CVM", id)
		case e.Primary:
			return apierr.New(apierr.ReasonPrimaryEni, "%s is the primary ENI of %s; put the CVM in the range instead", id, e.InstanceID)
		case e.VpcID != vpcID:
			return apierr.New(apierr.ReasonVpcMismatch, "%s is in %s, not in the HAVIP's %s", id, e.VpcID, vpcID)
		}
	}
	foundCVMs, err := s.inv.Instances(ctx, account, cvms)
	if err != nil {
		return err
	}
	for _, id := range cvms {
		if i := foundCVMs[id]; i.VpcID != vpcID {
			return apierr.New(apierr.ReasonVpcMismatch, "%s is in %s, not in the HAVIP's %s", id, i.VpcID, vpcID)
		}
	}
	return nil
}

// requestHash identifies a create request for its client token.
func requestHash(req *havipv1.CreateHaVipRequest) string {
	r := proto.Clone(req).(*havipv1.CreateHaVipRequest)
	r.ClientToken = ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// byToken answers a create whose client token was used before.
func (s *Server) byToken(ctx context.Context, account, token, hash string) (*havipv1.CreateHaVipResponse, bool, error) {
	id, h, ok, err := s.store.Token(ctx, account, token)
	if err != nil || !ok {
		return nil, false, err
	}
	if h != hash {
		return nil, true, apierr.New(apierr.ReasonIdempotentParameterChange, "client_token %q was used with a different request", token)
	}
	if err := s.store.Sync(ctx); err != nil {
		return nil, true, err
	}
	v, err := s.store.Get(account, id)
	if err != nil {
		return nil, true, err
	}
	return &havipv1.CreateHaVipResponse{Havip: havipPB(v)}, true, nil
}

// CreateHaVip creates a HAVIP.
func (s *Server) CreateHaVip(ctx context.Context, req *havipv1.CreateHaVipRequest) (*havipv1.CreateHaVipResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("vpc_id", ids.Vpc, req.GetVpcId()); err != nil {
		return nil, err
	}
	if err := validate.ID("subnet_id", ids.Subnet, req.GetSubnetId()); err != nil {
		return nil, err
	}
	if err := validate.Name("havip_name", req.GetHavipName()); err != nil {
		return nil, err
	}
	vip, err := validate.OptionalIPv4("vip", req.GetVip())
	if err != nil {
		return nil, err
	}
	if len(req.GetClientToken()) > 64 {
		return nil, apierr.New(apierr.ReasonTooLong, "client_token is longer than 64 characters")
	}
	assoc, err := checkAssociations(req.GetHavipAssociationSet())
	if err != nil {
		return nil, err
	}
	var hash string
	if req.GetClientToken() != "" {
		hash = requestHash(req)
		if resp, done, err := s.byToken(ctx, acct, req.GetClientToken(), hash); done || err != nil {
			return resp, err
		}
	}
	sn, err := s.inv.Subnet(ctx, acct, req.GetSubnetId())
	if err != nil {
		return nil, err
	}
	if sn.VpcID != req.GetVpcId() {
		return nil, apierr.New(apierr.ReasonVpcMismatch, "subnet %s is in %s, not in %s", sn.ID, sn.VpcID, req.GetVpcId())
	}
	if err := s.checkRange(ctx, acct, sn.VpcID, nil, assoc); err != nil {
		return nil, err
	}
	h := records.HaVip{
		ID: ids.New(ids.HaVip), Account: acct, Name: req.GetHavipName(), VpcID: sn.VpcID, SubnetID: sn.ID,
		CheckAssociate: req.CheckAssociate == nil || req.GetCheckAssociate(), Associations: assoc,
		ClientToken: req.GetClientToken(), Created: time.Now().UTC(),
	}
	switch err := s.create(ctx, &h, vip, hash); {
	case errors.Is(err, store.ErrTokenTaken):
		// A concurrent create with this token won: answer as it did.
		resp, _, err := s.byToken(ctx, acct, req.GetClientToken(), hash)
		return resp, err
	case err != nil:
		return nil, err
	}
	return &havipv1.CreateHaVipResponse{Havip: havipPB(store.View{HaVip: h})}, nil
}

// proposalTries is how many of ipamd's proposals a create tries before it asks ipamd to
// reserve an address instead.
const proposalTries = 3

// create records h with its VIP, and sets h.VIP. An automatic address is one of ipamd's
// proposals, created with the HAVIP in one etcd transaction (one write per create); a given
// address, or an automatic one when the proposals keep being taken by others (a subnet almost
// full), ipamd has none left to propose or does not propose (a version before proposals, during
// an upgrade), is a reservation of ipamd's, committed with the HAVIP
// (two writes), released again when a concurrent create with the same client token won.
func (s *Server) create(ctx context.Context, h *records.HaVip, vip netip.Addr, hash string) error {
	if !vip.IsValid() {
		for range proposalTries {
			p, err := s.inv.Propose(ctx, h.Account, h.SubnetID, h.ID)
			if apierr.Reason(err) == apierr.ReasonResourceInsufficient || status.Code(err) == codes.Unimplemented {
				break // nothing to propose, or an ipamd older than proposals: reserve
			}
			if err != nil {
				return err
			}
			h.VIP = p.Allocation.Addr
			if err := s.store.Create(ctx, *h, p.Allocation, p.SubnetRevision, hash); !errors.Is(err, store.ErrReservationLost) {
				return err
			}
		}
	}
	al, err := s.inv.Reserve(ctx, h.Account, h.SubnetID, vip, h.ID, s.reservationTTL)
	if err != nil {
		return err
	}
	h.VIP = al.Addr
	err = s.store.Create(ctx, *h, al, 0, hash)
	if errors.Is(err, store.ErrTokenTaken) {
		_ = s.inv.Release(context.WithoutCancel(ctx), h.Account, h.SubnetID, al.Addr)
	}
	return err
}

// filterKeys are every filter key DescribeHaVips accepts (for the check of unknown keys); the
// store selects by them (store.FilterKeys).
var filterKeys = query.Fields[*records.HaVip]{}

func init() {
	for _, k := range store.FilterKeys {
		filterKeys[k] = nil
	}
}

// DescribeHaVips lists HAVIPs.
func (s *Server) DescribeHaVips(ctx context.Context, req *havipv1.DescribeHaVipsRequest) (*havipv1.DescribeHaVipsResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[*records.HaVip, *havipv1.Filter]{IDs: req.GetHavipIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	if err := spec.Check(filterKeys); err != nil {
		return nil, err
	}
	if err := validate.IDs("havip_ids", ids.HaVip, spec.IDs); err != nil {
		return nil, err
	}
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = query.DefaultLimit
	}
	var page []store.View
	var total int
	if len(spec.IDs) > 0 {
		var sel []store.View
		for _, id := range slices.Compact(slices.Sorted(slices.Values(spec.IDs))) {
			v, err := s.store.Get(acct, id)
			if err != nil {
				return nil, err
			}
			sel = append(sel, v)
		}
		slices.SortFunc(sel, func(a, b store.View) int { return a.Created.Compare(b.Created) })
		total = len(sel)
		page = sel[min(int(req.GetOffset()), total):min(int(req.GetOffset())+limit, total)]
	} else {
		filters := make([]store.Filter, len(req.GetFilters()))
		for i, f := range req.GetFilters() {
			filters[i] = store.Filter{Key: f.GetName(), Values: f.GetValues()}
		}
		page, total = s.store.Select(acct, filters, int(req.GetOffset()), limit)
	}
	out := &havipv1.DescribeHaVipsResponse{TotalCount: uint32(total)}
	for _, v := range page {
		out.HavipSet = append(out.HavipSet, havipPB(v))
	}
	return out, nil
}

// ModifyHaVipAttribute renames a HAVIP or switches its range check.
func (s *Server) ModifyHaVipAttribute(ctx context.Context, req *havipv1.ModifyHaVipAttributeRequest) (*havipv1.ModifyHaVipAttributeResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	if req.HavipName == nil && req.CheckAssociate == nil {
		return nil, apierr.New(apierr.ReasonEmpty, "nothing to modify: give havip_name or check_associate")
	}
	if req.HavipName != nil {
		if err := validate.Name("havip_name", req.GetHavipName()); err != nil {
			return nil, err
		}
	}
	v, err := s.store.Update(ctx, acct, req.GetHavipId(), func(h *records.HaVip) error {
		if req.HavipName != nil {
			h.Name = req.GetHavipName()
		}
		if req.CheckAssociate != nil {
			h.CheckAssociate = req.GetCheckAssociate()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &havipv1.ModifyHaVipAttributeResponse{Havip: havipPB(v)}, nil
}

// DeleteHaVip releases a HAVIP.
func (s *Server) DeleteHaVip(ctx context.Context, req *havipv1.DeleteHaVipRequest) (*havipv1.DeleteHaVipResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, acct, req.GetHavipId()); err != nil {
		return nil, err
	}
	return &havipv1.DeleteHaVipResponse{Notice: DeleteNotice}, nil
}

// AssociateHaVipInstance adds instances to the switch range.
func (s *Server) AssociateHaVipInstance(ctx context.Context, req *havipv1.AssociateHaVipInstanceRequest) (*havipv1.AssociateHaVipInstanceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	added, err := checkAssociations(req.GetHavipAssociationSet())
	if err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return nil, apierr.New(apierr.ReasonEmpty, "havip_association_set is empty")
	}
	v, err := s.store.Update(ctx, acct, req.GetHavipId(), func(h *records.HaVip) error {
		if err := s.checkRange(ctx, acct, h.VpcID, h.Associations, added); err != nil {
			return err
		}
		h.Associations = append(h.Associations, added...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &havipv1.AssociateHaVipInstanceResponse{Havip: havipPB(v)}, nil
}

// DisassociateHaVipInstance removes instances from the switch range.
func (s *Server) DisassociateHaVipInstance(ctx context.Context, req *havipv1.DisassociateHaVipInstanceRequest) (*havipv1.DisassociateHaVipInstanceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	removed, err := checkAssociations(req.GetHavipAssociationSet())
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		return nil, apierr.New(apierr.ReasonEmpty, "havip_association_set is empty")
	}
	v, err := s.store.Update(ctx, acct, req.GetHavipId(), func(h *records.HaVip) error {
		for _, r := range removed {
			i := slices.Index(h.Associations, r)
			if i < 0 {
				return apierr.New(apierr.ReasonNotAssociated, "%s (%s) is not in the switch range of %s", r.InstanceID, r.Type, h.ID)
			}
			h.Associations = slices.Delete(h.Associations, i, i+1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &havipv1.DisassociateHaVipInstanceResponse{Havip: havipPB(v)}, nil
}

// HaVipAssociateAddressIp binds an EIP to a HAVIP.
func (s *Server) HaVipAssociateAddressIp(ctx context.Context, req *havipv1.HaVipAssociateAddressIpRequest) (*havipv1.HaVipAssociateAddressIpResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	ip, err := validate.IPv4("address_ip", req.GetAddressIp())
	if err != nil {
		return nil, err
	}
	v, err := s.store.BindAddress(ctx, acct, req.GetHavipId(), ip.String())
	if err != nil {
		return nil, err
	}
	return &havipv1.HaVipAssociateAddressIpResponse{Havip: havipPB(v)}, nil
}

// HaVipDisassociateAddressIp unbinds a HAVIP's EIP.
func (s *Server) HaVipDisassociateAddressIp(ctx context.Context, req *havipv1.HaVipDisassociateAddressIpRequest) (*havipv1.HaVipDisassociateAddressIpResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	v, err := s.store.UnbindAddress(ctx, acct, req.GetHavipId())
	if err != nil {
		return nil, err
	}
	return &havipv1.HaVipDisassociateAddressIpResponse{Havip: havipPB(v)}, nil
}

// current reads a HAVIP as it is now.
func (s *Server) current(ctx context.Context, account, id string) (*havipv1.HaVip, error) {
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	v, err := s.store.Get(account, id)
	if err != nil {
		return nil, err
	}
	return havipPB(v), nil
}

// DescribeHaVipKeepalivedConfig renders the keepalived configuration of each server of the range.
func (s *Server) DescribeHaVipKeepalivedConfig(ctx context.Context, req *havipv1.DescribeHaVipKeepalivedConfigRequest) (*havipv1.DescribeHaVipKeepalivedConfigResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	if iface := req.GetInterface(); iface != "" {
		if err := keepalived.CheckInterface(iface); err != nil {
			return nil, apierr.New(apierr.ReasonMalformed, "interface %q: %v", iface, err)
		}
	}
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	v, err := s.store.Get(acct, req.GetHavipId())
	if err != nil {
		return nil, err
	}
	if len(v.Associations) < 2 {
		return nil, apierr.New(apierr.ReasonNotAssociated, "HAVIP %s needs at least two instances in its switch range to float between them", v.ID)
	}
	members, err := s.members(ctx, acct, v.Associations)
	if err != nil {
		return nil, err
	}
	configs, err := keepalived.Render(v.ID, v.VIP, req.GetInterface(), members)
	if err != nil {
		return nil, fmt.Errorf("keepalived configuration of %s: %w", v.ID, err)
	}
	out := &havipv1.DescribeHaVipKeepalivedConfigResponse{}
	for _, c := range configs {
		out.ConfigSet = append(out.ConfigSet, &havipv1.KeepalivedConfig{
			InstanceId: c.InstanceID, NetworkInterfaceId: c.NetworkInterfaceID, UnicastSrcIp: c.IP.String(), Priority: c.Priority, Config: c.Text,
		})
	}
	return out, nil
}

// MaxRejections is how many rejections DescribeHaVipArpRejections returns at most.
const MaxRejections = 50

// DescribeHaVipArpRejections lists the ARP broker's recent rejections of claims on a HAVIP of
// the caller. The broker files a claim under a HAVIP only when the announcing ENI is in the
// HAVIP's VPC, so every ENI listed is the caller's; the reporting agent's identity, a platform
// detail, is left out.
func (s *Server) DescribeHaVipArpRejections(ctx context.Context, req *havipv1.DescribeHaVipArpRejectionsRequest) (*havipv1.DescribeHaVipArpRejectionsResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("havip_id", ids.HaVip, req.GetHavipId()); err != nil {
		return nil, err
	}
	if _, err := s.current(ctx, acct, req.GetHavipId()); err != nil {
		return nil, err
	}
	rs, err := s.store.Rejections(ctx, req.GetHavipId(), MaxRejections)
	if err != nil {
		return nil, err
	}
	out := &havipv1.DescribeHaVipArpRejectionsResponse{}
	for _, r := range rs {
		out.RejectionSet = append(out.RejectionSet, &havipv1.HaVipArpRejection{
			Time: ts(r.Time), NetworkInterfaceId: r.NetworkInterfaceID, Vip: r.VIP, Reason: r.Reason, Message: tenantMessage(r),
		})
	}
	return out, nil
}

// tenantMessage is a rejection's sentence for the HAVIP's tenant. The broker's sentences for a
// report refused for its agent's sake (no live session, or an agent of another host) name the
// agent's session or host, platform details: the tenant reads what it means for its ENI instead.
func tenantMessage(r records.Rejection) string {
	switch r.Reason {
	case "NoSession":
		return "the host that saw this announcement had no live session with the ARP broker: it was not judged"
	case "WrongHost":
		return r.NetworkInterfaceID + " is not on the host that reported this announcement: it was not judged"
	}
	return r.Message
}

// members resolves switch-range entries to the ENI and address that speak VRRP: a CVM's primary
// ENI, or the ENI itself.
func (s *Server) members(ctx context.Context, account string, assoc []records.Association) ([]keepalived.Member, error) {
	var idList []string
	for _, a := range assoc {
		idList = append(idList, a.InstanceID)
	}
	out := make([]keepalived.Member, len(assoc))
	if assoc[0].Type == records.TypeCVM {
		cvms, err := s.inv.Instances(ctx, account, idList)
		if err != nil {
			return nil, err
		}
		for i, a := range assoc {
			c := cvms[a.InstanceID]
			out[i] = keepalived.Member{InstanceID: a.InstanceID, NetworkInterfaceID: c.PrimaryENI, IP: c.PrimaryIP}
		}
		return out, nil
	}
	enis, err := s.inv.ENIs(ctx, account, idList)
	if err != nil {
		return nil, err
	}
	for i, a := range assoc {
		e := enis[a.InstanceID]
		out[i] = keepalived.Member{InstanceID: a.InstanceID, NetworkInterfaceID: e.ID, IP: e.IP}
	}
	return out, nil
}
