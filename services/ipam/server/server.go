// Package server implements ipam.v1.IpamService: it checks requests and turns them into store calls.
package server

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/query"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/validate"
	"github.com/openhavip/havip/services/ipam/store"
)

// maxReservationTTL bounds how long an uncommitted reservation may live.
const maxReservationTTL = time.Hour

// Server serves ipam.v1.IpamService from a store.
type Server struct {
	ipamv1.UnimplementedIpamServiceServer
	store *store.Store
}

// New returns a server on st, which must be started.
func New(st *store.Store) *Server { return &Server{store: st} }

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func vpcPB(v store.Vpc) *ipamv1.Vpc {
	return &ipamv1.Vpc{VpcId: v.ID, VpcName: v.Name, CidrBlock: v.CIDR.String(), CreatedTime: ts(v.Created)}
}

func subnetPB(u store.SubnetUsage) *ipamv1.Subnet {
	gw, _ := ipalloc.CIDRHosts(u.CIDR, 0)
	return &ipamv1.Subnet{
		SubnetId: u.ID, VpcId: u.VpcID, SubnetName: u.Name, CidrBlock: u.CIDR.String(), Zone: u.Zone,
		TotalIpAddressCount: u.Total, AvailableIpAddressCount: u.Available, CreatedTime: ts(u.Created),
		GatewayIpAddress: gw.First.String(),
	}
}

func instancePB(i records.Instance) *ipamv1.Instance {
	return &ipamv1.Instance{
		InstanceId: i.ID, InstanceName: i.Name, VpcId: i.VpcID, SubnetId: i.SubnetID, HostId: i.HostID,
		PrimaryNetworkInterfaceId: i.PrimaryEni, PrivateIpAddress: i.PrivateIP.String(), CreatedTime: ts(i.Created),
	}
}

func eniPB(e records.NetworkInterface) *ipamv1.NetworkInterface {
	return &ipamv1.NetworkInterface{
		NetworkInterfaceId: e.ID, NetworkInterfaceName: e.Name, VpcId: e.VpcID, SubnetId: e.SubnetID,
		MacAddress: e.MAC, PrimaryIpAddress: e.IP.String(), Primary: e.Primary, InstanceId: e.InstanceID,
		CreatedTime: ts(e.Created),
	}
}

func addressPB(a ipalloc.Allocation) *ipamv1.PrivateIpAddress {
	return &ipamv1.PrivateIpAddress{
		SubnetId: a.Pool, IpAddress: a.Addr.String(), Owner: a.Record.Owner,
		Reserved: a.Record.Reservation != "", ReservationToken: a.Record.Reservation, Revision: a.Revision,
	}
}

// mapSlice converts every element of in.
func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// describe runs the shared part of every Describe: check, select, page.
func describe[T any](spec query.Spec[T, *ipamv1.Filter], idPrefix string, fields query.Fields[T], id func(T) string, load func() ([]T, error)) ([]T, uint32, error) {
	if err := spec.Check(fields); err != nil {
		return nil, 0, err
	}
	if err := validate.IDs("ids", idPrefix, spec.IDs); err != nil {
		return nil, 0, err
	}
	items, err := load()
	if err != nil {
		return nil, 0, err
	}
	sel, err := spec.Select(fields, id, items)
	if err != nil {
		return nil, 0, err
	}
	page, total := spec.Page(sel)
	return page, total, nil
}

// CreateVpc creates a VPC.
func (s *Server) CreateVpc(ctx context.Context, req *ipamv1.CreateVpcRequest) (*ipamv1.CreateVpcResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.Name("vpc_name", req.GetVpcName()); err != nil {
		return nil, err
	}
	cidr, err := validate.CIDR("cidr_block", req.GetCidrBlock(), 12, 28)
	if err != nil {
		return nil, err
	}
	if err := validate.Private("cidr_block", cidr); err != nil {
		return nil, err
	}
	v, err := s.store.CreateVpc(ctx, acct, req.GetVpcName(), cidr)
	if err != nil {
		return nil, err
	}
	return &ipamv1.CreateVpcResponse{Vpc: vpcPB(v)}, nil
}

var vpcFields = query.Fields[store.Vpc]{
	"vpc-id":     func(v store.Vpc) string { return v.ID },
	"vpc-name":   func(v store.Vpc) string { return v.Name },
	"cidr-block": func(v store.Vpc) string { return v.CIDR.String() },
}

// DescribeVpcs lists VPCs.
func (s *Server) DescribeVpcs(ctx context.Context, req *ipamv1.DescribeVpcsRequest) (*ipamv1.DescribeVpcsResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[store.Vpc, *ipamv1.Filter]{IDs: req.GetVpcIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	page, total, err := describe(spec, ids.Vpc, vpcFields, func(v store.Vpc) string { return v.ID }, func() ([]store.Vpc, error) { return s.store.Vpcs(ctx, acct) })
	if err != nil {
		return nil, err
	}
	return &ipamv1.DescribeVpcsResponse{VpcSet: mapSlice(page, vpcPB), TotalCount: total}, nil
}

// DeleteVpc deletes a VPC without subnets.
func (s *Server) DeleteVpc(ctx context.Context, req *ipamv1.DeleteVpcRequest) (*ipamv1.DeleteVpcResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("vpc_id", ids.Vpc, req.GetVpcId()); err != nil {
		return nil, err
	}
	if err := s.store.DeleteVpc(ctx, acct, req.GetVpcId()); err != nil {
		return nil, err
	}
	return &ipamv1.DeleteVpcResponse{}, nil
}

// CreateSubnet creates a subnet.
func (s *Server) CreateSubnet(ctx context.Context, req *ipamv1.CreateSubnetRequest) (*ipamv1.CreateSubnetResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("vpc_id", ids.Vpc, req.GetVpcId()); err != nil {
		return nil, err
	}
	if err := validate.Name("subnet_name", req.GetSubnetName()); err != nil {
		return nil, err
	}
	cidr, err := validate.CIDR("cidr_block", req.GetCidrBlock(), 16, 29)
	if err != nil {
		return nil, err
	}
	zone := req.GetZone()
	if zone == "" {
		zone = "default"
	}
	if err := validate.OptionalName("zone", zone); err != nil {
		return nil, err
	}
	sn, err := s.store.CreateSubnet(ctx, acct, req.GetVpcId(), req.GetSubnetName(), cidr, zone)
	if err != nil {
		return nil, err
	}
	return &ipamv1.CreateSubnetResponse{Subnet: subnetPB(store.SubnetUsage{Subnet: sn, Total: sn.Usable(), Available: sn.Usable()})}, nil
}

var subnetFields = query.Fields[store.SubnetUsage]{
	"subnet-id":   func(v store.SubnetUsage) string { return v.ID },
	"subnet-name": func(v store.SubnetUsage) string { return v.Name },
	"vpc-id":      func(v store.SubnetUsage) string { return v.VpcID },
	"cidr-block":  func(v store.SubnetUsage) string { return v.CIDR.String() },
	"zone":        func(v store.SubnetUsage) string { return v.Zone },
}

// DescribeSubnets lists subnets with their address counts.
func (s *Server) DescribeSubnets(ctx context.Context, req *ipamv1.DescribeSubnetsRequest) (*ipamv1.DescribeSubnetsResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[store.SubnetUsage, *ipamv1.Filter]{IDs: req.GetSubnetIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	page, total, err := describe(spec, ids.Subnet, subnetFields, func(v store.SubnetUsage) string { return v.ID }, func() ([]store.SubnetUsage, error) { return s.store.Subnets(ctx, acct) })
	if err != nil {
		return nil, err
	}
	return &ipamv1.DescribeSubnetsResponse{SubnetSet: mapSlice(page, subnetPB), TotalCount: total}, nil
}

// DeleteSubnet deletes a subnet with no allocated address.
func (s *Server) DeleteSubnet(ctx context.Context, req *ipamv1.DeleteSubnetRequest) (*ipamv1.DeleteSubnetResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("subnet_id", ids.Subnet, req.GetSubnetId()); err != nil {
		return nil, err
	}
	if err := s.store.DeleteSubnet(ctx, acct, req.GetSubnetId()); err != nil {
		return nil, err
	}
	return &ipamv1.DeleteSubnetResponse{}, nil
}

// CreateInstance creates a CVM with its primary ENI.
func (s *Server) CreateInstance(ctx context.Context, req *ipamv1.CreateInstanceRequest) (*ipamv1.CreateInstanceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.Name("instance_name", req.GetInstanceName()); err != nil {
		return nil, err
	}
	if err := validate.ID("subnet_id", ids.Subnet, req.GetSubnetId()); err != nil {
		return nil, err
	}
	if err := validate.Name("host_id", req.GetHostId()); err != nil {
		return nil, err
	}
	addr, err := validate.OptionalIPv4("private_ip_address", req.GetPrivateIpAddress())
	if err != nil {
		return nil, err
	}
	ins, eni, err := s.store.CreateInstance(ctx, acct, req.GetInstanceName(), req.GetSubnetId(), req.GetHostId(), addr)
	if err != nil {
		return nil, err
	}
	return &ipamv1.CreateInstanceResponse{Instance: instancePB(ins), PrimaryNetworkInterface: eniPB(eni)}, nil
}

var instanceFields = query.Fields[records.Instance]{
	"instance-id":   func(v records.Instance) string { return v.ID },
	"instance-name": func(v records.Instance) string { return v.Name },
	"vpc-id":        func(v records.Instance) string { return v.VpcID },
	"subnet-id":     func(v records.Instance) string { return v.SubnetID },
	"host-id":       func(v records.Instance) string { return v.HostID },
}

// DescribeInstances lists CVMs.
func (s *Server) DescribeInstances(ctx context.Context, req *ipamv1.DescribeInstancesRequest) (*ipamv1.DescribeInstancesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[records.Instance, *ipamv1.Filter]{IDs: req.GetInstanceIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	page, total, err := describe(spec, ids.Instance, instanceFields, func(v records.Instance) string { return v.ID }, func() ([]records.Instance, error) { return s.store.Instances(ctx, acct) })
	if err != nil {
		return nil, err
	}
	return &ipamv1.DescribeInstancesResponse{InstanceSet: mapSlice(page, instancePB), TotalCount: total}, nil
}

// DeleteInstance deletes a CVM with its primary ENI.
func (s *Server) DeleteInstance(ctx context.Context, req *ipamv1.DeleteInstanceRequest) (*ipamv1.DeleteInstanceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("instance_id", ids.Instance, req.GetInstanceId()); err != nil {
		return nil, err
	}
	if err := s.store.DeleteInstance(ctx, acct, req.GetInstanceId()); err != nil {
		return nil, err
	}
	return &ipamv1.DeleteInstanceResponse{}, nil
}

// CreateNetworkInterface creates a detached ENI.
func (s *Server) CreateNetworkInterface(ctx context.Context, req *ipamv1.CreateNetworkInterfaceRequest) (*ipamv1.CreateNetworkInterfaceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("subnet_id", ids.Subnet, req.GetSubnetId()); err != nil {
		return nil, err
	}
	if err := validate.Name("network_interface_name", req.GetNetworkInterfaceName()); err != nil {
		return nil, err
	}
	addr, err := validate.OptionalIPv4("private_ip_address", req.GetPrivateIpAddress())
	if err != nil {
		return nil, err
	}
	eni, err := s.store.CreateNetworkInterface(ctx, acct, req.GetSubnetId(), req.GetNetworkInterfaceName(), addr)
	if err != nil {
		return nil, err
	}
	return &ipamv1.CreateNetworkInterfaceResponse{NetworkInterface: eniPB(eni)}, nil
}

// AttachNetworkInterface attaches an ENI to a CVM.
func (s *Server) AttachNetworkInterface(ctx context.Context, req *ipamv1.AttachNetworkInterfaceRequest) (*ipamv1.AttachNetworkInterfaceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("network_interface_id", ids.NetworkInterface, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	if err := validate.ID("instance_id", ids.Instance, req.GetInstanceId()); err != nil {
		return nil, err
	}
	eni, err := s.store.AttachNetworkInterface(ctx, acct, req.GetNetworkInterfaceId(), req.GetInstanceId())
	if err != nil {
		return nil, err
	}
	return &ipamv1.AttachNetworkInterfaceResponse{NetworkInterface: eniPB(eni)}, nil
}

// DetachNetworkInterface detaches an ENI from its CVM.
func (s *Server) DetachNetworkInterface(ctx context.Context, req *ipamv1.DetachNetworkInterfaceRequest) (*ipamv1.DetachNetworkInterfaceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("network_interface_id", ids.NetworkInterface, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	eni, err := s.store.DetachNetworkInterface(ctx, acct, req.GetNetworkInterfaceId())
	if err != nil {
		return nil, err
	}
	return &ipamv1.DetachNetworkInterfaceResponse{NetworkInterface: eniPB(eni)}, nil
}

var eniFields = query.Fields[records.NetworkInterface]{
	"network-interface-id":   func(v records.NetworkInterface) string { return v.ID },
	"network-interface-name": func(v records.NetworkInterface) string { return v.Name },
	"vpc-id":                 func(v records.NetworkInterface) string { return v.VpcID },
	"subnet-id":              func(v records.NetworkInterface) string { return v.SubnetID },
	"instance-id":            func(v records.NetworkInterface) string { return v.InstanceID },
	"mac-address":            func(v records.NetworkInterface) string { return v.MAC },
	"primary-ip-address":     func(v records.NetworkInterface) string { return v.IP.String() },
}

// DescribeNetworkInterfaces lists ENIs.
func (s *Server) DescribeNetworkInterfaces(ctx context.Context, req *ipamv1.DescribeNetworkInterfacesRequest) (*ipamv1.DescribeNetworkInterfacesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	spec := query.Spec[records.NetworkInterface, *ipamv1.Filter]{IDs: req.GetNetworkInterfaceIds(), Filters: req.GetFilters(), Offset: req.GetOffset(), Limit: req.GetLimit()}
	page, total, err := describe(spec, ids.NetworkInterface, eniFields, func(v records.NetworkInterface) string { return v.ID }, func() ([]records.NetworkInterface, error) { return s.store.NetworkInterfaces(ctx, acct) })
	if err != nil {
		return nil, err
	}
	return &ipamv1.DescribeNetworkInterfacesResponse{NetworkInterfaceSet: mapSlice(page, eniPB), TotalCount: total}, nil
}

// DeleteNetworkInterface deletes a detached, non-primary ENI.
func (s *Server) DeleteNetworkInterface(ctx context.Context, req *ipamv1.DeleteNetworkInterfaceRequest) (*ipamv1.DeleteNetworkInterfaceResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validate.ID("network_interface_id", ids.NetworkInterface, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	if err := s.store.DeleteNetworkInterface(ctx, acct, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	return &ipamv1.DeleteNetworkInterfaceResponse{}, nil
}

// subnetAddr checks the subnet ID and the address of an address call.
func subnetAddr(subnetID, ip string, required bool) (netip.Addr, error) {
	if err := validate.ID("subnet_id", ids.Subnet, subnetID); err != nil {
		return netip.Addr{}, err
	}
	if required {
		return validate.IPv4("ip_address", ip)
	}
	return validate.OptionalIPv4("ip_address", ip)
}

// AllocatePrivateIpAddress allocates an address, for good or as a reservation.
func (s *Server) AllocatePrivateIpAddress(ctx context.Context, req *ipamv1.AllocatePrivateIpAddressRequest) (*ipamv1.AllocatePrivateIpAddressResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := subnetAddr(req.GetSubnetId(), req.GetIpAddress(), false)
	if err != nil {
		return nil, err
	}
	if err := validate.OptionalName("owner", req.GetOwner()); err != nil {
		return nil, err
	}
	ttl := time.Duration(req.GetReservationTtlSeconds()) * time.Second
	if ttl > maxReservationTTL {
		return nil, apierr.New(apierr.ReasonRange, "reservation_ttl_seconds must be at most %d", int(maxReservationTTL.Seconds()))
	}
	if ttl == 0 && store.NamesResource(req.GetOwner()) {
		// A lasting holder must be the resource itself, made by its own create; a reservation
		// (which expires unless that create commits it) may name the resource to be.
		return nil, apierr.New(apierr.ReasonAddressInUse, "owner %s names a resource: only its own create holds an address for it", req.GetOwner())
	}
	al, err := s.store.Allocate(ctx, acct, req.GetSubnetId(), addr, req.GetOwner(), ttl)
	if err != nil {
		return nil, err
	}
	return &ipamv1.AllocatePrivateIpAddressResponse{Address: addressPB(al)}, nil
}

// batchRequest checks what AllocatePrivateIpAddresses and ProposePrivateIpAddresses share (a
// subnet, 1 to 100 addresses with extra ones, owners that are names) and returns the caller's
// account.
func batchRequest(ctx context.Context, subnetID string, owners []string, extra uint32) (string, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return "", err
	}
	if _, err := subnetAddr(subnetID, "", false); err != nil {
		return "", err
	}
	if len(owners) == 0 || uint64(len(owners))+uint64(extra) > query.MaxLimit {
		return "", apierr.New(apierr.ReasonRange, "owners must hold 1 to %d entries (extra addresses included)", query.MaxLimit)
	}
	for _, o := range owners {
		if err := validate.OptionalName("owners", o); err != nil {
			return "", err
		}
	}
	return acct, nil
}

// AllocatePrivateIpAddresses allocates several automatic addresses at once.
func (s *Server) AllocatePrivateIpAddresses(ctx context.Context, req *ipamv1.AllocatePrivateIpAddressesRequest) (*ipamv1.AllocatePrivateIpAddressesResponse, error) {
	acct, err := batchRequest(ctx, req.GetSubnetId(), req.GetOwners(), 0)
	if err != nil {
		return nil, err
	}
	owners := req.GetOwners()
	ttl := time.Duration(req.GetReservationTtlSeconds()) * time.Second
	for _, o := range owners {
		if ttl == 0 && store.NamesResource(o) {
			return nil, apierr.New(apierr.ReasonAddressInUse, "owner %s names a resource: only its own create holds an address for it", o)
		}
	}
	if ttl > maxReservationTTL {
		return nil, apierr.New(apierr.ReasonRange, "reservation_ttl_seconds must be at most %d", int(maxReservationTTL.Seconds()))
	}
	// The allocations of one subnet are committed together by the allocator anyway; asking
	// for them concurrently lets them share its transactions.
	results := make([]ipalloc.Allocation, len(owners))
	errs := make([]error, len(owners))
	var wg sync.WaitGroup
	for i, o := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.store.Allocate(ctx, acct, req.GetSubnetId(), netip.Addr{}, o, ttl)
		}()
	}
	wg.Wait()
	// Whatever was allocated is returned (never dropped: that would leak it); with nothing
	// allocated, the first reason why.
	out := &ipamv1.AllocatePrivateIpAddressesResponse{}
	var first error
	for i, err := range errs {
		if err == nil {
			out.AddressSet = append(out.AddressSet, addressPB(results[i]))
		} else if first == nil {
			first = err
		}
	}
	if len(out.AddressSet) == 0 {
		return nil, first
	}
	return out, nil
}

// ProposePrivateIpAddresses proposes free addresses of a subnet without allocating them.
func (s *Server) ProposePrivateIpAddresses(ctx context.Context, req *ipamv1.ProposePrivateIpAddressesRequest) (*ipamv1.ProposePrivateIpAddressesResponse, error) {
	acct, err := batchRequest(ctx, req.GetSubnetId(), req.GetOwners(), req.GetExtra())
	if err != nil {
		return nil, err
	}
	addrs, rev, err := s.store.Propose(ctx, acct, req.GetSubnetId(), len(req.GetOwners())+int(req.GetExtra()))
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, apierr.New(apierr.ReasonResourceInsufficient, "no free address left in %s", req.GetSubnetId())
	}
	out := &ipamv1.ProposePrivateIpAddressesResponse{SubnetRevision: rev}
	for _, a := range addrs {
		out.IpAddressSet = append(out.IpAddressSet, a.String())
	}
	return out, nil
}

// CommitPrivateIpAddress commits a reservation.
func (s *Server) CommitPrivateIpAddress(ctx context.Context, req *ipamv1.CommitPrivateIpAddressRequest) (*ipamv1.CommitPrivateIpAddressResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := subnetAddr(req.GetSubnetId(), req.GetIpAddress(), true)
	if err != nil {
		return nil, err
	}
	if req.GetReservationToken() == "" {
		return nil, apierr.New(apierr.ReasonEmpty, "reservation_token is required")
	}
	if err := validate.OptionalName("owner", req.GetOwner()); err != nil {
		return nil, err
	}
	al, err := s.store.Commit(ctx, acct, req.GetSubnetId(), addr, req.GetReservationToken(), req.GetOwner())
	if err != nil {
		return nil, err
	}
	return &ipamv1.CommitPrivateIpAddressResponse{Address: addressPB(al)}, nil
}

// ReleasePrivateIpAddress frees an address.
func (s *Server) ReleasePrivateIpAddress(ctx context.Context, req *ipamv1.ReleasePrivateIpAddressRequest) (*ipamv1.ReleasePrivateIpAddressResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := subnetAddr(req.GetSubnetId(), req.GetIpAddress(), true)
	if err != nil {
		return nil, err
	}
	if err := s.store.Release(ctx, acct, req.GetSubnetId(), addr); err != nil {
		return nil, err
	}
	return &ipamv1.ReleasePrivateIpAddressResponse{}, nil
}

// DescribePrivateIpAddresses lists a subnet's allocations.
func (s *Server) DescribePrivateIpAddresses(ctx context.Context, req *ipamv1.DescribePrivateIpAddressesRequest) (*ipamv1.DescribePrivateIpAddressesResponse, error) {
	acct, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := subnetAddr(req.GetSubnetId(), "", false); err != nil {
		return nil, err
	}
	spec := query.Spec[ipalloc.Allocation, *ipamv1.Filter]{Offset: req.GetOffset(), Limit: req.GetLimit()}
	if err := spec.Check(nil); err != nil {
		return nil, err
	}
	all, err := s.store.Addresses(ctx, acct, req.GetSubnetId())
	if err != nil {
		return nil, err
	}
	page, total := spec.Page(all)
	return &ipamv1.DescribePrivateIpAddressesResponse{AddressSet: mapSlice(page, addressPB), TotalCount: total}, nil
}
