package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/platform/validate"
)

// reservationTTL bounds how long an address reserved for an ENI being created can outlive a
// crash between the reservation and the ENI's transaction.
const reservationTTL = 30 * time.Second

// Store is the IPAM state: etcd is the truth, watched caches serve reads and checks.
type Store struct {
	cli       *clientv3.Client
	log       *slog.Logger
	group     *kvcache.Group
	vpcs      *kvcache.Cache[Vpc]
	subnets   *kvcache.Cache[Subnet]
	instances *kvcache.Cache[records.Instance]
	enis      *kvcache.Cache[records.NetworkInterface]
	alloc     *ipalloc.Allocator

	// Each account's VPCs, subnets, CVMs and ENIs, each VPC's subnets and each CVM's ENIs, in
	// creation order (kept by the caches' hooks): a list or a check reads its own group only.
	vpcsOf      *kvcache.Index[Vpc]
	subnetsOf   *kvcache.Index[Subnet]
	subnetsIn   *kvcache.Index[Subnet]
	instancesOf *kvcache.Index[records.Instance]
	enisOf      *kvcache.Index[records.NetworkInterface]
	enisOn      *kvcache.Index[records.NetworkInterface]
}

// New returns a store on cli. Call Start before use.
func New(cli *clientv3.Client, log *slog.Logger) *Store {
	g := kvcache.NewGroup(cli)
	rev := g.Revisions()
	s := &Store{
		cli:         cli,
		log:         log,
		group:       g,
		alloc:       ipalloc.New(cli, rev, AddressPrefix, log), // pools are subnets
		vpcsOf:      kvcache.NewIndex(func(v Vpc) string { return v.Account }),
		subnetsOf:   kvcache.NewIndex(func(v Subnet) string { return v.Account }),
		subnetsIn:   kvcache.NewIndex(func(v Subnet) string { return v.VpcID }),
		instancesOf: kvcache.NewIndex(func(v records.Instance) string { return v.Account }),
		enisOf:      kvcache.NewIndex(func(v records.NetworkInterface) string { return v.Account }),
		enisOn:      kvcache.NewIndex(func(v records.NetworkInterface) string { return v.InstanceID }),
	}
	s.vpcs = kvcache.New(cli, rev, vpcPrefix, kvcache.DecodeJSON[Vpc], log, s.vpcsOf.Hook).Split(ids.Splits(vpcPrefix, ids.Vpc)...)
	s.subnets = kvcache.New(cli, rev, subnetPrefix, kvcache.DecodeJSON[Subnet], log, s.subnetsOf.Hook, s.subnetsIn.Hook).Split(ids.Splits(subnetPrefix, ids.Subnet)...)
	s.instances = kvcache.New(cli, rev, instancePrefix, kvcache.DecodeJSON[records.Instance], log, s.instancesOf.Hook).Split(ids.Splits(instancePrefix, ids.Instance)...)
	s.enis = kvcache.New(cli, rev, eniPrefix, kvcache.DecodeJSON[records.NetworkInterface], log, s.enisOf.Hook, s.enisOn.Hook).Split(ids.Splits(eniPrefix, ids.NetworkInterface)...)
	g.Add(s.vpcs, s.subnets, s.instances, s.enis, s.alloc)
	return s
}

// Start loads the state and follows it until ctx ends.
func (s *Store) Start(ctx context.Context) error {
	if err := s.group.Start(ctx); err != nil {
		return err
	}
	return s.observeSubnets(ctx)
}

// Sync waits until every read reflects every write committed before the call.
func (s *Store) Sync(ctx context.Context) error { return s.group.Sync(ctx) }

// owned returns the cached item at key if it belongs to account; otherwise NotFound, the same
// whether it does not exist or is another account's.
func owned[T any](c *kvcache.Cache[T], key, account, what, id string, accountOf func(T) string) (kvcache.Item[T], error) {
	it, ok := c.Get(key)
	if !ok || accountOf(it.Value) != account {
		return kvcache.Item[T]{}, apierr.NotFound("%s %s does not exist", what, id)
	}
	return it, nil
}

func (s *Store) vpc(account, id string) (kvcache.Item[Vpc], error) {
	return owned(s.vpcs, VpcKey(id), account, "VPC", id, func(v Vpc) string { return v.Account })
}

func (s *Store) subnet(account, id string) (kvcache.Item[Subnet], error) {
	return owned(s.subnets, records.SubnetKey(id), account, "subnet", id, func(v Subnet) string { return v.Account })
}

func (s *Store) instance(account, id string) (kvcache.Item[records.Instance], error) {
	return owned(s.instances, records.InstanceKey(id), account, "instance", id, func(v records.Instance) string { return v.Account })
}

func (s *Store) eni(account, id string) (kvcache.Item[records.NetworkInterface], error) {
	return owned(s.enis, records.NetworkInterfaceKey(id), account, "network interface", id, func(v records.NetworkInterface) string { return v.Account })
}

// attempt runs fn until it reports done, syncing the caches before each try; fn reports not
// done when its transaction lost to a concurrent change.
func (s *Store) attempt(ctx context.Context, fn func() (bool, error)) error {
	return retry.OnConflict(ctx, "the resource", func(ctx context.Context) (bool, error) {
		if err := s.Sync(ctx); err != nil {
			return false, err
		}
		return fn()
	})
}

// errGone is a create whose reservation or subnet went away under it.
var errGone = errors.New("the reservation or the subnet is gone")

func txnErr(err error) error { return fmt.Errorf("etcd transaction: %w", err) }

// CreateVpc creates a VPC.
func (s *Store) CreateVpc(ctx context.Context, account, name string, cidr netip.Prefix) (Vpc, error) {
	v := Vpc{ID: ids.New(ids.Vpc), Account: account, Name: name, CIDR: cidr, Created: time.Now().UTC()}
	key := VpcKey(v.ID)
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).Then(clientv3.OpPut(key, kvcache.EncodeJSON(v))).Commit()
	if err != nil {
		return Vpc{}, txnErr(err)
	}
	if !resp.Succeeded {
		return Vpc{}, errors.New("VPC ID collision") // 36^8 IDs: practically never
	}
	return v, nil
}

// Vpcs returns an account's VPCs, oldest first, as of now.
func (s *Store) Vpcs(ctx context.Context, account string) ([]Vpc, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s.vpcsOf.List(account, nil), nil
}

// DeleteVpc deletes a VPC that has no subnets.
func (s *Store) DeleteVpc(ctx context.Context, account, id string) error {
	return s.attempt(ctx, func() (bool, error) {
		it, err := s.vpc(account, id)
		if err != nil {
			return false, err
		}
		children := vpcSubnetsPrefix + id + "/"
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(VpcKey(id)), "=", it.CreateRevision),
			clientv3.Compare(clientv3.Version(children), "=", 0).WithPrefix(),
		).Then(clientv3.OpDelete(VpcKey(id))).Else(clientv3.OpGet(children, clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if n := resp.Responses[0].GetResponseRange().Count; n > 0 {
			return false, apierr.New(apierr.ReasonResourceInUse, "VPC %s still has %d subnets", id, n)
		}
		return false, nil
	})
}

// CreateSubnet creates a subnet inside a VPC, overlapping none of its siblings.
func (s *Store) CreateSubnet(ctx context.Context, account, vpcID, name string, cidr netip.Prefix, zone string) (Subnet, error) {
	sn := Subnet{ID: ids.New(ids.Subnet), Account: account, VpcID: vpcID, Name: name, CIDR: cidr, Zone: zone, Created: time.Now().UTC()}
	err := s.attempt(ctx, func() (bool, error) {
		v, err := s.vpc(account, vpcID)
		if err != nil {
			return false, err
		}
		if !validate.Contains(v.Value.CIDR, cidr) {
			return false, apierr.New(apierr.ReasonSubnetRange, "%s is not inside VPC %s (%s)", cidr, vpcID, v.Value.CIDR)
		}
		seen := s.subnets.Revision()
		var conflict *Subnet
		if o := s.subnetsIn.List(vpcID, func(o Subnet) bool { return o.CIDR.Overlaps(cidr) }); len(o) > 0 {
			conflict = &o[0]
		}
		if conflict != nil {
			return false, apierr.New(apierr.ReasonSubnetConflict, "%s overlaps subnet %s (%s)", cidr, conflict.ID, conflict.CIDR)
		}
		key := records.SubnetKey(sn.ID)
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(VpcKey(vpcID)), "=", v.CreateRevision),
			// No sibling appeared since the overlap check.
			clientv3.Compare(clientv3.CreateRevision(vpcSubnetsPrefix+vpcID+"/"), "<", seen+1).WithPrefix(),
			clientv3.Compare(clientv3.Version(key), "=", 0),
		).Then(clientv3.OpPut(key, kvcache.EncodeJSON(sn)), clientv3.OpPut(vpcSubnetKey(vpcID, sn.ID), "")).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		return resp.Succeeded, nil
	})
	return sn, err
}

// SubnetUsage is a subnet with its address counts.
type SubnetUsage struct {
	Subnet
	Total, Available uint64
}

// usages returns subnets with their address counts.
func (s *Store) usages(ctx context.Context, sns []Subnet) ([]SubnetUsage, error) {
	poolIDs := make([]string, len(sns))
	for i, sn := range sns {
		poolIDs[i] = sn.ID
	}
	used, err := s.alloc.Counts(ctx, poolIDs)
	if err != nil {
		return nil, err
	}
	out := make([]SubnetUsage, len(sns))
	for i, sn := range sns {
		total := sn.Usable()
		out[i] = SubnetUsage{Subnet: sn, Total: total, Available: total - min(uint64(used[i]), total)}
	}
	return out, nil
}

// Subnets returns an account's subnets with their address counts, oldest first, as of now.
func (s *Store) Subnets(ctx context.Context, account string) ([]SubnetUsage, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s.usages(ctx, s.subnetsOf.List(account, nil))
}

// DeleteSubnet deletes a subnet in which no address is allocated.
func (s *Store) DeleteSubnet(ctx context.Context, account, id string) error {
	return s.attempt(ctx, func() (bool, error) {
		it, err := s.subnet(account, id)
		if err != nil {
			return false, err
		}
		addrs := s.alloc.PoolPrefix(id)
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(records.SubnetKey(id)), "=", it.CreateRevision),
			clientv3.Compare(clientv3.Version(addrs), "=", 0).WithPrefix(),
		).Then(
			clientv3.OpDelete(records.SubnetKey(id)), clientv3.OpDelete(vpcSubnetKey(it.Value.VpcID, id)),
		).Else(clientv3.OpGet(addrs, clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if n := resp.Responses[0].GetResponseRange().Count; n > 0 {
			return false, apierr.New(apierr.ReasonResourceInUse, "subnet %s still has %d allocated addresses", id, n)
		}
		return false, nil
	})
}

// subnetForAlloc finds a subnet for an allocation: from the cache when it is there (the
// allocation's guard catches a subnet deleted since), after a sync when it is not.
func (s *Store) subnetForAlloc(ctx context.Context, account, id string) (kvcache.Item[Subnet], error) {
	if it, err := s.subnet(account, id); err == nil {
		return it, nil
	}
	if err := s.Sync(ctx); err != nil {
		return kvcache.Item[Subnet]{}, err
	}
	return s.subnet(account, id)
}

func (s *Store) pool(it kvcache.Item[Subnet]) ipalloc.Pool {
	r, _ := ipalloc.CIDRHosts(it.Value.CIDR, 1) // the first host is the gateway
	return ipalloc.Pool{
		ID:       it.Value.ID,
		Ranges:   []ipalloc.Range{r},
		Guard:    []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(records.SubnetKey(it.Value.ID)), "=", it.CreateRevision)},
		GuardErr: apierr.NotFound("subnet %s does not exist", it.Value.ID),
	}
}

// CheckAddress tells why addr cannot be allocated in a subnet: outside it, or reserved.
func CheckAddress(sn Subnet, addr netip.Addr) error {
	if !sn.CIDR.Contains(addr) {
		return apierr.New(apierr.ReasonRange, "%s is not inside subnet %s (%s)", addr, sn.ID, sn.CIDR)
	}
	usable, _ := ipalloc.CIDRHosts(sn.CIDR, 1)
	if addr.Less(usable.First) || usable.Last.Less(addr) {
		return apierr.New(apierr.ReasonReserved, "%s is reserved in subnet %s (network, gateway or broadcast); usable: %s-%s", addr, sn.ID, usable.First, usable.Last)
	}
	return nil
}

// Allocate allocates addr (or any free address when addr is the zero Addr) in a subnet for
// owner; with ttl > 0 it is a reservation that expires unless committed.
func (s *Store) Allocate(ctx context.Context, account, subnetID string, addr netip.Addr, owner string, ttl time.Duration) (ipalloc.Allocation, error) {
	it, err := s.subnetForAlloc(ctx, account, subnetID)
	if err != nil {
		return ipalloc.Allocation{}, err
	}
	if addr.IsValid() {
		if err := CheckAddress(it.Value, addr); err != nil {
			return ipalloc.Allocation{}, err
		}
	}
	return s.alloc.Allocate(ctx, s.pool(it), ipalloc.Request{Addr: addr, Owner: owner, Account: account, TTL: ttl})
}

// Propose proposes up to n free addresses of an account's subnet without allocating them
// (ipalloc.Allocator.Propose), with the subnet's create revision, the guard of the caller's
// transaction.
func (s *Store) Propose(ctx context.Context, account, subnetID string, n int) ([]netip.Addr, int64, error) {
	it, err := s.subnetForAlloc(ctx, account, subnetID)
	if err != nil {
		return nil, 0, err
	}
	addrs, err := s.alloc.Propose(ctx, s.pool(it), n)
	return addrs, it.CreateRevision, err
}

// allocation reads an allocation of account's subnet straight from etcd.
func (s *Store) allocation(ctx context.Context, account, subnetID string, addr netip.Addr) (ipalloc.Allocation, error) {
	it, err := s.subnetForAlloc(ctx, account, subnetID)
	if err != nil {
		return ipalloc.Allocation{}, err
	}
	if err := CheckAddress(it.Value, addr); err != nil {
		return ipalloc.Allocation{}, err
	}
	al, ok, err := s.alloc.Lookup(ctx, subnetID, addr)
	if err != nil {
		return ipalloc.Allocation{}, err
	}
	if !ok || al.Record.Account != account {
		return ipalloc.Allocation{}, apierr.NotFound("%s is not allocated in subnet %s", addr, subnetID)
	}
	return al, nil
}

// Commit turns a reservation into a lasting allocation owned by owner. A subnet that does not
// exist or is another account's is NotFound, like everywhere else; only a missing reservation
// (or another account's) in the account's own subnet is ReservationExpired.
func (s *Store) Commit(ctx context.Context, account, subnetID string, addr netip.Addr, token, owner string) (ipalloc.Allocation, error) {
	if NamesResource(owner) {
		return ipalloc.Allocation{}, apierr.New(apierr.ReasonAddressInUse, "owner %s names a resource: only its own lifecycle holds an address for it", owner)
	}
	if _, err := s.subnetForAlloc(ctx, account, subnetID); err != nil {
		return ipalloc.Allocation{}, err
	}
	if _, err := s.allocation(ctx, account, subnetID, addr); err != nil {
		if errors.Is(err, apierr.ErrNotFound) {
			return ipalloc.Allocation{}, apierr.New(apierr.ReasonReservationExpired, "no reservation of %s in %s", addr, subnetID)
		}
		return ipalloc.Allocation{}, err
	}
	return s.alloc.Commit(ctx, subnetID, addr, token, owner)
}

// NamesResource reports whether an address holder names a resource (an ENI, a HAVIP, an EIP,
// ...): only that resource's own lifecycle may hold or free such an address.
func NamesResource(owner string) bool {
	for _, p := range []string{ids.Vpc, ids.Subnet, ids.Instance, ids.NetworkInterface, ids.HaVip, ids.Address} {
		if ids.Valid(p, owner) {
			return true
		}
	}
	return false
}

// Release frees an allocated address, or a reservation, unless a resource holds it (an ENI's
// primary IP, a HAVIP's VIP): those are freed only by their resource's own delete.
func (s *Store) Release(ctx context.Context, account, subnetID string, addr netip.Addr) error {
	al, err := s.allocation(ctx, account, subnetID, addr)
	if err != nil {
		return err
	}
	if al.Record.Reservation == "" && NamesResource(al.Record.Owner) {
		return apierr.New(apierr.ReasonAddressInUse, "%s is held by %s; it is freed only when %s is deleted", addr, al.Record.Owner, al.Record.Owner)
	}
	cmp, del := s.alloc.ReleaseOps(subnetID, addr, al.Revision)
	resp, err := s.cli.Txn(ctx).If(cmp).Then(del).Commit()
	if err != nil {
		return txnErr(err)
	}
	if !resp.Succeeded {
		return apierr.Conflict("%s changed while being released; try again", addr)
	}
	return nil
}

// Addresses lists a subnet's allocations in address order, as of now.
func (s *Store) Addresses(ctx context.Context, account, subnetID string) ([]ipalloc.Allocation, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	if _, err := s.subnet(account, subnetID); err != nil {
		return nil, err
	}
	return s.alloc.List(ctx, subnetID)
}

// newMAC returns a random locally administered unicast MAC.
func newMAC() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	b[0] = 0x02
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

// createEni reserves an address, then records the ENI (and the instance, if given) and commits
// the address in one transaction, so a crash in between leaves only a reservation that expires.
func (s *Store) createEni(ctx context.Context, account, subnetID, name string, addr netip.Addr, ins *records.Instance) (records.NetworkInterface, error) {
	sn, err := s.subnetForAlloc(ctx, account, subnetID)
	if err != nil {
		return records.NetworkInterface{}, err
	}
	eni := records.NetworkInterface{ID: ids.New(ids.NetworkInterface), Account: account, VpcID: sn.Value.VpcID, SubnetID: subnetID, Name: name, Created: time.Now().UTC()}
	al, err := s.Allocate(ctx, account, subnetID, addr, eni.ID, reservationTTL)
	if err != nil {
		return records.NetworkInterface{}, err
	}
	eni.IP = al.Addr
	if ins != nil {
		eni.Primary, eni.InstanceID = true, ins.ID
		ins.PrimaryEni, ins.PrivateIP, ins.VpcID = eni.ID, al.Addr, sn.Value.VpcID
	}
	commitCmp, commitPut := s.alloc.CommitOps(al, eni.ID)
	err = retry.OnConflict(ctx, "subnet "+subnetID, func(ctx context.Context) (bool, error) {
		eni.MAC = newMAC()
		cmps := []clientv3.Cmp{
			commitCmp,
			clientv3.Compare(clientv3.CreateRevision(records.SubnetKey(subnetID)), "=", sn.CreateRevision),
			clientv3.Compare(clientv3.Version(records.NetworkInterfaceKey(eni.ID)), "=", 0),
			clientv3.Compare(clientv3.Version(macPrefix+eni.MAC), "=", 0),
		}
		ops := []clientv3.Op{commitPut, clientv3.OpPut(records.NetworkInterfaceKey(eni.ID), kvcache.EncodeJSON(eni)), clientv3.OpPut(macPrefix+eni.MAC, eni.ID)}
		if ins != nil {
			cmps = append(cmps, clientv3.Compare(clientv3.Version(records.InstanceKey(ins.ID)), "=", 0))
			ops = append(ops, clientv3.OpPut(records.InstanceKey(ins.ID), kvcache.EncodeJSON(*ins)))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(macPrefix+eni.MAC, clientv3.WithCountOnly())).Commit()
		switch {
		case err != nil:
			return false, txnErr(err)
		case resp.Succeeded:
			return true, nil
		case resp.Responses[0].GetResponseRange().Count == 0:
			return false, errGone // not a MAC collision: the reservation or the subnet is gone
		}
		return false, nil // a MAC collision: draw another
	})
	if err == nil {
		return eni, nil
	}
	if !errors.Is(err, errGone) && !errors.Is(err, apierr.ErrConflict) {
		return records.NetworkInterface{}, err
	}
	// Give the reservation back now rather than when it expires.
	cmp, del := s.alloc.ReleaseOps(subnetID, al.Addr, al.Revision)
	_, _ = s.cli.Txn(ctx).If(cmp).Then(del).Commit()
	return records.NetworkInterface{}, apierr.Conflict("subnet %s changed while the network interface was created; try again", subnetID)
}

// CreateNetworkInterface creates a detached ENI with a primary IP in a subnet.
func (s *Store) CreateNetworkInterface(ctx context.Context, account, subnetID, name string, addr netip.Addr) (records.NetworkInterface, error) {
	return s.createEni(ctx, account, subnetID, name, addr, nil)
}

// CreateInstance creates a CVM and its primary ENI.
func (s *Store) CreateInstance(ctx context.Context, account, name, subnetID, hostID string, addr netip.Addr) (records.Instance, records.NetworkInterface, error) {
	ins := records.Instance{ID: ids.New(ids.Instance), Account: account, SubnetID: subnetID, Name: name, HostID: hostID, Created: time.Now().UTC()}
	eni, err := s.createEni(ctx, account, subnetID, name, addr, &ins)
	return ins, eni, err
}

// Instances returns an account's CVMs, oldest first, as of now.
func (s *Store) Instances(ctx context.Context, account string) ([]records.Instance, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s.instancesOf.List(account, nil), nil
}

// NetworkInterfaces returns an account's ENIs, oldest first, as of now.
func (s *Store) NetworkInterfaces(ctx context.Context, account string) ([]records.NetworkInterface, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s.enisOf.List(account, nil), nil
}

// AttachNetworkInterface attaches a detached ENI to a CVM of its VPC.
func (s *Store) AttachNetworkInterface(ctx context.Context, account, eniID, instanceID string) (records.NetworkInterface, error) {
	var out records.NetworkInterface
	err := s.attempt(ctx, func() (bool, error) {
		e, err := s.eni(account, eniID)
		if err != nil {
			return false, err
		}
		ins, err := s.instance(account, instanceID)
		if err != nil {
			return false, err
		}
		if e.Value.InstanceID != "" {
			return false, apierr.New(apierr.ReasonAttached, "%s is already attached to %s", eniID, e.Value.InstanceID)
		}
		if e.Value.VpcID != ins.Value.VpcID {
			return false, apierr.New(apierr.ReasonVpcMismatch, "%s is in %s but %s is in %s", eniID, e.Value.VpcID, instanceID, ins.Value.VpcID)
		}
		out = e.Value
		out.InstanceID = instanceID
		// The instance is written back unchanged: its new ModRevision tells a concurrent
		// DeleteInstance (which compares it) that an ENI was attached meanwhile, so an attach
		// and a delete of the same instance cannot both succeed.
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(records.NetworkInterfaceKey(eniID)), "=", e.ModRevision),
			clientv3.Compare(clientv3.ModRevision(records.InstanceKey(instanceID)), "=", ins.ModRevision),
		).Then(
			clientv3.OpPut(records.NetworkInterfaceKey(eniID), kvcache.EncodeJSON(out)),
			clientv3.OpPut(records.InstanceKey(instanceID), kvcache.EncodeJSON(ins.Value)),
		).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		return resp.Succeeded, nil
	})
	return out, err
}

// DetachNetworkInterface detaches a non-primary ENI from its CVM.
func (s *Store) DetachNetworkInterface(ctx context.Context, account, eniID string) (records.NetworkInterface, error) {
	var out records.NetworkInterface
	err := s.attempt(ctx, func() (bool, error) {
		e, err := s.eni(account, eniID)
		if err != nil {
			return false, err
		}
		if e.Value.Primary {
			return false, apierr.New(apierr.ReasonPrimaryEni, "%s is the primary network interface of %s and cannot be detached", eniID, e.Value.InstanceID)
		}
		if e.Value.InstanceID == "" {
			return false, apierr.New(apierr.ReasonNotAttached, "%s is not attached", eniID)
		}
		out = e.Value
		out.InstanceID = ""
		resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(records.NetworkInterfaceKey(eniID)), "=", e.ModRevision)).
			Then(clientv3.OpPut(records.NetworkInterfaceKey(eniID), kvcache.EncodeJSON(out))).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		return resp.Succeeded, nil
	})
	return out, err
}

// eniBindings is the prefix of the EIP bindings of an ENI's private IPs (written by eipd).
func eniBindings(eniID string) string { return records.EipENIBindings + eniID + "/" }

// deleteEniOps returns what deleting ENI e takes in a transaction: the comparisons that it is
// unchanged since it was read at revision rev and has no EIP bound, and the deletes of its
// record, its MAC and its primary IP's address record. The address record is read here and
// deleted only while it is still e's (its ModRevision is compared, so the decision holds).
func (s *Store) deleteEniOps(ctx context.Context, e records.NetworkInterface, rev int64) ([]clientv3.Cmp, []clientv3.Op, error) {
	akey := records.AddressKey(e.SubnetID, e.IP)
	acmp, aops, holder, err := ipalloc.ReleaseHeldOps(ctx, s.cli, akey, e.ID)
	if err != nil {
		return nil, nil, err
	}
	if holder != "" && holder != e.ID {
		s.log.WarnContext(ctx, "the address of a deleted network interface is held by another", "eni", e.ID, "address", akey, "holder", holder)
	}
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(records.NetworkInterfaceKey(e.ID)), "=", rev),
		// No key under the prefix: no EIP is bound to any of the ENI's addresses.
		clientv3.Compare(clientv3.CreateRevision(eniBindings(e.ID)), "=", 0).WithPrefix(),
		acmp,
	}
	ops := append([]clientv3.Op{clientv3.OpDelete(records.NetworkInterfaceKey(e.ID)), clientv3.OpDelete(macPrefix + e.MAC)}, aops...)
	return cmps, ops, nil
}

// boundEip reads the first EIP binding of an ENI (the ID of the EIP, and the bound private IP),
// after a delete lost its "no binding" comparison; ok is false when there is none.
func boundEip(resp *clientv3.TxnResponse, eniID string) (eip, ip string, ok bool) {
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().GetKvs() {
			return string(kv.Value), strings.TrimPrefix(string(kv.Key), eniBindings(eniID)), true
		}
	}
	return "", "", false
}

// DeleteNetworkInterface deletes a detached, non-primary ENI with no EIP bound, and frees its
// address, in one transaction.
func (s *Store) DeleteNetworkInterface(ctx context.Context, account, eniID string) error {
	return s.attempt(ctx, func() (bool, error) {
		e, err := s.eni(account, eniID)
		if err != nil {
			return false, err
		}
		if e.Value.Primary {
			return false, apierr.New(apierr.ReasonPrimaryEni, "%s is the primary network interface of %s: it is deleted with its instance", eniID, e.Value.InstanceID)
		}
		if e.Value.InstanceID != "" {
			return false, apierr.New(apierr.ReasonAttached, "%s is attached to %s; detach it first", eniID, e.Value.InstanceID)
		}
		cmps, ops, err := s.deleteEniOps(ctx, e.Value, e.ModRevision)
		if err != nil {
			return false, err
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).
			Else(clientv3.OpGet(eniBindings(eniID), clientv3.WithPrefix(), clientv3.WithLimit(1))).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if eip, ip, ok := boundEip(resp, eniID); ok {
			return false, apierr.New(apierr.ReasonAddressBound, "EIP %s is bound to %s of %s; unbind it first", eip, ip, eniID)
		}
		return false, nil
	})
}

// DeleteInstance deletes a CVM with its primary ENI, and frees that ENI's address, in one
// transaction; it is refused while a secondary ENI is attached or an EIP is bound to the
// primary ENI. The transaction compares the instance's ModRevision, which every attach
// rewrites, so no ENI can be attached to the instance between the check and the delete.
func (s *Store) DeleteInstance(ctx context.Context, account, instanceID string) error {
	return s.attempt(ctx, func() (bool, error) {
		ins, err := s.instance(account, instanceID)
		if err != nil {
			return false, err
		}
		// The ENI cache is followed apart from the instance cache: let it reach the
		// instance's revision, so that it shows every attach that revision includes.
		if err := s.enis.WaitRevision(ctx, ins.ModRevision); err != nil {
			return false, err
		}
		var attached []string
		for _, e := range s.enisOn.List(instanceID, func(e records.NetworkInterface) bool { return !e.Primary }) {
			attached = append(attached, e.ID)
		}
		if len(attached) > 0 {
			sort.Strings(attached)
			return false, apierr.New(apierr.ReasonAttached, "%s has network interfaces attached (%s); detach them first", instanceID, strings.Join(attached, ", "))
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(records.InstanceKey(instanceID)), "=", ins.ModRevision)}
		ops := []clientv3.Op{clientv3.OpDelete(records.InstanceKey(instanceID))}
		pe, ok := s.enis.Get(records.NetworkInterfaceKey(ins.Value.PrimaryEni))
		if ok {
			ecmps, eops, err := s.deleteEniOps(ctx, pe.Value, pe.ModRevision)
			if err != nil {
				return false, err
			}
			cmps, ops = append(cmps, ecmps...), append(ops, eops...)
		} else {
			// Never so (an instance and its primary ENI are created and deleted together);
			// the instance alone is deleted, as long as no such ENI appears.
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(records.NetworkInterfaceKey(ins.Value.PrimaryEni)), "=", 0))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).
			Else(clientv3.OpGet(eniBindings(ins.Value.PrimaryEni), clientv3.WithPrefix(), clientv3.WithLimit(1))).Commit()
		if err != nil {
			return false, txnErr(err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if eip, ip, ok := boundEip(resp, ins.Value.PrimaryEni); ok {
			return false, apierr.New(apierr.ReasonAddressBound, "EIP %s is bound to %s of %s, the primary network interface of %s; unbind it first", eip, ip, ins.Value.PrimaryEni, instanceID)
		}
		return false, nil
	})
}
