// Package invariant reads the control plane's records from etcd at one revision and checks the
// integrity invariants on them, for the tests that drive the services (the model test, the fault suite).
package invariant

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/arpbroker/broker"
	ipamstore "github.com/openhavip/havip/services/ipam/store"
)

// address is one allocated private address as etcd holds it.
type address struct {
	subnet string
	ip     netip.Addr
	rec    ipalloc.Record
	lease  int64
}

// State is every record of the control plane, read from etcd at one revision.
type State struct {
	subnets   map[string]ipamstore.Subnet
	vpcs      map[string]ipamstore.Vpc
	instances map[string]records.Instance
	enis      map[string]records.NetworkInterface
	havips    map[string]records.HaVip
	ownersOf  map[string]records.Owner
	ownerKeys map[string]int64 // HAVIP ID → the owner key's lease
	bindings  map[string]records.AddressBinding
	eips      map[string]records.Eip   // by public IP, committed only
	eniBinds  map[string]string        // <eni>/<ip> → EIP ID
	sessions  map[int64]broker.Session // by lease ID
	addresses []address
	heldIn    map[string]int // subnet → allocated addresses
}

// Read reads every record of the control plane from etcd at one revision.
func Read(ctx context.Context, cli *clientv3.Client) (*State, error) {
	prefixes := []string{ipamstore.Root + "vpc/", records.Subnets, records.Instances, records.NetworkInterfaces, records.Addresses,
		records.HaVips, records.HaVipAddresses, records.Owners, records.EipIPs, records.EipENIBindings, records.Sessions}
	ops := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		ops[i] = clientv3.OpGet(p, clientv3.WithPrefix())
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit() // one revision for all
	if err != nil {
		return nil, err
	}
	s := &State{subnets: map[string]ipamstore.Subnet{}, vpcs: map[string]ipamstore.Vpc{}, instances: map[string]records.Instance{}, enis: map[string]records.NetworkInterface{},
		havips: map[string]records.HaVip{}, ownersOf: map[string]records.Owner{}, ownerKeys: map[string]int64{}, bindings: map[string]records.AddressBinding{},
		eips: map[string]records.Eip{}, eniBinds: map[string]string{}, sessions: map[int64]broker.Session{}, heldIn: map[string]int{}}
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().GetKvs() {
			key, rest := string(kv.Key), strings.TrimPrefix(string(kv.Key), prefixes[i])
			var err error
			switch prefixes[i] {
			case ipamstore.Root + "vpc/":
				err = into(s.vpcs, rest, key, kv.Value)
			case records.Subnets:
				err = into(s.subnets, rest, key, kv.Value)
			case records.Instances:
				err = into(s.instances, rest, key, kv.Value)
			case records.NetworkInterfaces:
				err = into(s.enis, rest, key, kv.Value)
			case records.Addresses:
				subnet, ip, _ := strings.Cut(rest, "/")
				a := address{subnet: subnet, ip: netip.MustParseAddr(ip), lease: kv.Lease}
				a.rec, err = kvcache.DecodeJSON[ipalloc.Record](key, kv.Value)
				s.addresses = append(s.addresses, a)
				s.heldIn[subnet]++
			case records.HaVips:
				s.havips[rest], err = records.DecodeHaVip(kv.Value)
			case records.HaVipAddresses:
				err = into(s.bindings, rest, key, kv.Value)
			case records.Owners:
				var v records.Owner
				v, err = kvcache.DecodeJSON[records.Owner](key, kv.Value)
				s.ownersOf[rest], s.ownerKeys[rest] = v, kv.Lease
			case records.EipIPs:
				var v records.Eip
				v, err = kvcache.DecodeJSON[records.Eip](key, kv.Value)
				if v.Reservation == "" {
					s.eips[v.IP] = v
				}
			case records.EipENIBindings:
				s.eniBinds[rest] = string(kv.Value)
			case records.Sessions:
				var v broker.Session
				v, err = kvcache.DecodeJSON[broker.Session](key, kv.Value)
				s.sessions[kv.Lease] = v // keyed by the lease: an owner names its session by it
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return s, nil
}

// into decodes a record stored at key into m[k].
func into[T any](m map[string]T, k, key string, val []byte) error {
	v, err := kvcache.DecodeJSON[T](key, val)
	m[k] = v
	return err
}

// Strict checks (a) no address held twice, (b) every held address has a live holder and every
// resource holds its address, (e) EIP bindings agree on both sides and (g) no record refers to
// another account's resource: what the transactions of one call keep, so it holds at every
// revision.
func (s *State) Strict() error {
	// (a) no address is held by two resources.
	holders := map[string]string{}
	hold := func(subnet string, ip netip.Addr, who string) error {
		k := subnet + "/" + ip.String()
		if prev, ok := holders[k]; ok {
			return fmt.Errorf("(a) %s is held by %s and %s", k, prev, who)
		}
		holders[k] = who
		return nil
	}
	for id, e := range s.enis {
		if err := hold(e.SubnetID, e.IP, id); err != nil {
			return err
		}
	}
	for id, h := range s.havips {
		if err := hold(h.SubnetID, h.VIP, id); err != nil {
			return err
		}
	}
	// (b) every held address has a live holder, and every resource's address is held by it.
	recs := map[string]address{}
	for _, a := range s.addresses {
		recs[a.subnet+"/"+a.ip.String()] = a
		if _, ok := s.subnets[a.subnet]; !ok {
			return fmt.Errorf("(b) address %s/%s in a subnet that does not exist", a.subnet, a.ip)
		}
		if a.rec.Reservation != "" {
			if a.lease == 0 {
				return fmt.Errorf("(b) reservation %s/%s holds no lease: it would never lapse", a.subnet, a.ip)
			}
			continue
		}
		if !ipamstore.NamesResource(a.rec.Owner) {
			continue // the account's own allocation, with a label
		}
		if holders[a.subnet+"/"+a.ip.String()] != a.rec.Owner {
			return fmt.Errorf("(b) %s/%s names %s as its holder, which does not hold it", a.subnet, a.ip, a.rec.Owner)
		}
		if a.rec.Account != s.subnets[a.subnet].Account {
			return fmt.Errorf("(g) %s/%s belongs to %s in %s's subnet", a.subnet, a.ip, a.rec.Account, s.subnets[a.subnet].Account)
		}
	}
	for k, who := range holders {
		a, ok := recs[k]
		if !ok || a.rec.Owner != who || a.rec.Reservation != "" {
			return fmt.Errorf("(b) %s's address %s is not held by it (record %+v)", who, k, a.rec)
		}
	}
	// (g) no record refers to another account's resource.
	for id, e := range s.enis {
		if sn, ok := s.subnets[e.SubnetID]; !ok || sn.Account != e.Account || sn.VpcID != e.VpcID {
			return fmt.Errorf("(g) ENI %s of %s in subnet %s (%+v)", id, e.Account, e.SubnetID, sn)
		}
		if e.InstanceID != "" {
			ins, ok := s.instances[e.InstanceID]
			if !ok || ins.Account != e.Account || ins.VpcID != e.VpcID {
				return fmt.Errorf("(g) ENI %s attached to %s, which is missing or another's (%+v)", id, e.InstanceID, ins)
			}
		}
	}
	for id, h := range s.havips {
		if sn, ok := s.subnets[h.SubnetID]; !ok || sn.Account != h.Account || sn.VpcID != h.VpcID {
			return fmt.Errorf("(g) HAVIP %s of %s in subnet %s (%+v)", id, h.Account, h.SubnetID, sn)
		}
		for _, a := range h.Associations {
			if ins, ok := s.instances[a.InstanceID]; ok && ins.Account != h.Account {
				return fmt.Errorf("(g) HAVIP %s's range names %s of another account", id, a.InstanceID)
			}
			if e, ok := s.enis[a.InstanceID]; ok && e.Account != h.Account {
				return fmt.Errorf("(g) HAVIP %s's range names %s of another account", id, a.InstanceID)
			}
		}
	}
	// (e) every EIP binding names a live HAVIP or ENI of its account, both sides agreeing.
	for ip, x := range s.eips {
		switch {
		case x.HaVipID != "" && x.NetworkInterfaceID != "":
			return fmt.Errorf("(e) EIP %s bound to both %s and %s", ip, x.HaVipID, x.NetworkInterfaceID)
		case x.HaVipID != "":
			h, ok := s.havips[x.HaVipID]
			b := s.bindings[x.HaVipID]
			if !ok || h.Account != x.Account || b.AddressID != x.ID || b.AddressIP != x.IP || x.PrivateIP != h.VIP.String() {
				return fmt.Errorf("(e) EIP %s bound to HAVIP %s: %+v, binding %+v", ip, x.HaVipID, h, b)
			}
		case x.NetworkInterfaceID != "":
			e, ok := s.enis[x.NetworkInterfaceID]
			if !ok || e.Account != x.Account || s.eniBinds[x.NetworkInterfaceID+"/"+x.PrivateIP] != x.ID {
				return fmt.Errorf("(e) EIP %s bound to ENI %s: %+v, binding %q", ip, x.NetworkInterfaceID, e, s.eniBinds[x.NetworkInterfaceID+"/"+x.PrivateIP])
			}
		}
	}
	for id, b := range s.bindings {
		if x, ok := s.eips[b.AddressIP]; !ok || x.ID != b.AddressID || x.HaVipID != id {
			return fmt.Errorf("(e) HAVIP %s's binding %+v names an EIP not bound to it (%+v)", id, b, x)
		}
	}
	for k, eipID := range s.eniBinds {
		eni, ip, _ := strings.Cut(k, "/")
		if x, ok := s.eips[ip]; ok && x.ID == eipID {
			continue
		}
		found := false
		for _, x := range s.eips {
			found = found || x.ID == eipID && x.NetworkInterfaceID == eni && x.PrivateIP == ip
		}
		if !found {
			return fmt.Errorf("(e) ENI binding %s names EIP %s, which is not bound there", k, eipID)
		}
	}
	return nil
}

// Owners checks (d): every BIND owner is an attached ENI of the HAVIP's subnet and
// account, in its range when check_associate is on, as it was when it announced (same CVM),
// held by a live session of the agent that reported it, on that CVM's host. The broker revokes
// an owner whose right ended shortly after the change, so this holds within a moment.
func (s *State) Owners() error {
	for id, o := range s.ownersOf {
		h, ok := s.havips[id]
		if !ok {
			return fmt.Errorf("(d) owner of HAVIP %s, which does not exist", id)
		}
		e, ok := s.enis[o.NetworkInterfaceID]
		sess := s.sessions[s.ownerKeys[id]]
		switch {
		case !ok:
			return fmt.Errorf("(d) HAVIP %s owned by %s, which does not exist", id, o.NetworkInterfaceID)
		case e.InstanceID == "":
			return fmt.Errorf("(d) HAVIP %s owned by %s, which is detached", id, e.ID)
		case e.InstanceID != o.InstanceID:
			return fmt.Errorf("(d) HAVIP %s owned by %s on %s, which is now on %s", id, e.ID, o.InstanceID, e.InstanceID)
		case e.SubnetID != h.SubnetID || e.Account != h.Account:
			return fmt.Errorf("(d) HAVIP %s (%s, %s) owned by %s (%s, %s)", id, h.SubnetID, h.Account, e.ID, e.SubnetID, e.Account)
		case h.CheckAssociate && !slices.ContainsFunc(h.Associations, func(a records.Association) bool {
			return a.Type == records.TypeENI && a.InstanceID == e.ID || a.Type == records.TypeCVM && a.InstanceID == e.InstanceID
		}):
			return fmt.Errorf("(d) HAVIP %s owned by %s (of %s), outside its range %v", id, e.ID, e.InstanceID, h.Associations)
		case s.ownerKeys[id] == 0 || s.ownerKeys[id] != o.Session:
			return fmt.Errorf("(d) HAVIP %s owned on lease %x, not on its session %x", id, s.ownerKeys[id], o.Session)
		case sess.AgentID != o.AgentID:
			return fmt.Errorf("(d) HAVIP %s owned by agent %q on session %x, which is %+v", id, o.AgentID, o.Session, sess)
		case sess.HostID != s.instances[e.InstanceID].HostID || o.HostID != sess.HostID:
			return fmt.Errorf("(d) HAVIP %s owned through the agent of %q for an ENI on %q (owner says %q)", id, sess.HostID, s.instances[e.InstanceID].HostID, o.HostID)
		case o.VIP != h.VIP:
			return fmt.Errorf("(d) HAVIP %s's owner record names VIP %s, the HAVIP has %s", id, o.VIP, h.VIP)
		}
	}
	return nil
}

// NatRules is the NAT rule of every bound EIP that the state implies: its private IP, and
// the ENI behind it now with its CVM and host (a HAVIP's owner, or none; a bound ENI where it
// is attached now, or nowhere).
func (s *State) NatRules() map[string]Rule {
	out := map[string]Rule{}
	for ip, x := range s.eips {
		switch {
		case x.HaVipID != "":
			r := Rule{Private: x.PrivateIP, HaVip: x.HaVipID}
			if o, ok := s.ownersOf[x.HaVipID]; ok {
				r.ENI, r.Instance, r.Host = o.NetworkInterfaceID, o.InstanceID, o.HostID
			}
			out[ip] = r
		case x.NetworkInterfaceID != "":
			r := Rule{Private: x.PrivateIP, ENI: x.NetworkInterfaceID, Instance: s.enis[x.NetworkInterfaceID].InstanceID}
			if r.Instance != "" {
				r.Host = s.instances[r.Instance].HostID
			}
			out[ip] = r
		}
	}
	return out
}

// Rule is the part of a NAT rule the state decides.
type Rule struct{ Private, HaVip, ENI, Instance, Host string }

// HeldIn is how many addresses of subnet are allocated (held or reserved).
func (s *State) HeldIn(subnet string) int { return s.heldIn[subnet] }

// HaVips are the HAVIPs, by ID.
func (s *State) HaVips() map[string]records.HaVip { return s.havips }

// Reservations are the addresses reserved (for a create under way) rather than held, as
// "subnet/ip".
func (s *State) Reservations() []string {
	var out []string
	for _, a := range s.addresses {
		if a.rec.Reservation != "" {
			out = append(out, a.subnet+"/"+a.ip.String())
		}
	}
	return out
}
