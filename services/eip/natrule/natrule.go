// Package natrule derives the NAT rules (public IP → private IP → current backend) from EIP and ownership records and fans their changes out.
package natrule

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// Rule maps an EIP's public IP to a private IP and to the ENI and host behind it now.
type Rule struct {
	AddressID, PublicIP, PrivateIP, HaVipID string
	NetworkInterfaceID, InstanceID, HostID  string
	// VpcID is the backend ENI's VPC (empty without a backend).
	VpcID string
	// BindingRevision is the etcd revision at which the EIP's binding last changed.
	BindingRevision int64
	// OwnerRevision is, for a HAVIP-bound EIP, the fencing revision of the ownership the
	// backend reflects (the owner record's revision, or its removal's); 0 when none was seen.
	OwnerRevision int64
	// Removed means the EIP is no longer bound: drop the rule.
	Removed bool
	// Changed is when this replica's table applied the change a published rule carries (the
	// watch delivering its revision); zero in a snapshot. A stream's lag is measured from it.
	Changed time.Time
}

// Reaches reports whether the rule has a backend: an ENI attached to a CVM.
func (r Rule) Reaches() bool { return !r.Removed && r.NetworkInterfaceID != "" && r.InstanceID != "" }

// Newer reports whether r supersedes old, a rule for the same EIP: a later binding, or the same
// binding with a later ownership.
func (r Rule) Newer(old Rule) bool {
	if r.BindingRevision != old.BindingRevision {
		return r.BindingRevision > old.BindingRevision
	}
	return r.OwnerRevision > old.OwnerRevision
}

type owner struct {
	records.Owner
	present bool
	rev     int64
}

// attachment is where an ENI is now: its CVM (none when detached) as of a revision of its record.
type attachment struct {
	instanceID, vpcID string
	rev               int64
}

// Table holds the rule of every bound EIP, fed by the hooks of the EIP, owner and ENI caches.
type Table struct {
	hostOf func(instanceID string) string

	mu      sync.Mutex
	rules   map[string]Rule                // by EIP ID, bound EIPs only
	byHaVip map[string]map[string]struct{} // HAVIP ID → bound EIP IDs
	owners  map[string]owner               // by HAVIP ID
	byENI   map[string]map[string]struct{} // ENI ID → EIP IDs bound to it
	enis    map[string]attachment          // by ENI ID
	subs    map[chan []Rule]struct{}
}

// subscriberBuffer is how many change batches a watcher may fall behind before it is dropped.
const subscriberBuffer = 1024

// New returns an empty table; hostOf gives the host of a CVM (for EIPs bound to an ENI).
func New(hostOf func(instanceID string) string) *Table {
	return &Table{
		hostOf: hostOf, rules: map[string]Rule{}, byHaVip: map[string]map[string]struct{}{}, owners: map[string]owner{},
		byENI: map[string]map[string]struct{}{}, enis: map[string]attachment{}, subs: map[chan []Rule]struct{}{},
	}
}

// EipHook follows the EIP records. The backend of an ENI-bound EIP is where the ENI is now (from
// ENIHook) and its CVM's host (through hostOf), so the ENI and instance caches must be loaded
// before the EIP cache.
func (t *Table) EipHook(prev, cur *kvcache.Item[records.Eip], rev int64) {
	var id string
	var r Rule
	switch {
	case cur != nil:
		id = cur.Value.ID
		e := cur.Value
		r = Rule{AddressID: e.ID, PublicIP: e.IP, PrivateIP: e.PrivateIP, HaVipID: e.HaVipID, BindingRevision: cur.ModRevision, Removed: !e.Bound()}
		r.NetworkInterfaceID = e.NetworkInterfaceID
	case prev != nil:
		id = prev.Value.ID
		r = Rule{AddressID: id, PublicIP: prev.Value.IP, BindingRevision: rev, Removed: true}
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, had := t.rules[id]
	if had && old.HaVipID != "" {
		unindex(t.byHaVip, old.HaVipID, id)
	}
	if had && old.HaVipID == "" && old.NetworkInterfaceID != "" {
		unindex(t.byENI, old.NetworkInterfaceID, id)
	}
	if r.Removed {
		if !had {
			return // unbound before and after (a new EIP, a rename, a release)
		}
		delete(t.rules, id)
		t.publishLocked(r)
		return
	}
	if had && sameBinding(old, r) {
		// A rename or another change that leaves the rule as it is: keep its revisions.
		r = old
	} else if r.HaVipID != "" {
		r = t.withOwnerLocked(r)
	} else {
		r = t.withENILocked(r)
	}
	if r.HaVipID != "" {
		index(t.byHaVip, r.HaVipID, id)
	} else {
		index(t.byENI, r.NetworkInterfaceID, id)
	}
	t.rules[id] = r
	if !had || r != old {
		t.publishLocked(r)
	}
}

// sameBinding reports whether two rules of an EIP come from the same binding (for a HAVIP, the
// backend is the owner's, not the binding's).
func sameBinding(a, b Rule) bool {
	if a.PublicIP != b.PublicIP || a.PrivateIP != b.PrivateIP || a.HaVipID != b.HaVipID {
		return false
	}
	return a.NetworkInterfaceID == b.NetworkInterfaceID || a.HaVipID != ""
}

func index(m map[string]map[string]struct{}, k, id string) {
	if m[k] == nil {
		m[k] = map[string]struct{}{}
	}
	m[k][id] = struct{}{}
}

func unindex(m map[string]map[string]struct{}, k, id string) {
	delete(m[k], id)
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

// withENILocked gives an ENI-bound rule its backend: the ENI's CVM now and that CVM's host,
// fenced by the revision of the ENI record it reflects (the OwnerRevision of such a rule).
func (t *Table) withENILocked(r Rule) Rule {
	a := t.enis[r.NetworkInterfaceID]
	r.InstanceID, r.HostID, r.VpcID, r.OwnerRevision = a.instanceID, "", "", a.rev
	if a.instanceID != "" {
		r.HostID, r.VpcID = t.hostOf(a.instanceID), a.vpcID
	}
	return r
}

// ENIHook follows the ENI records: an EIP bound to an ENI follows it to the CVM it is attached
// to now, and has no backend while it is detached.
func (t *Table) ENIHook(prev, cur *kvcache.Item[records.NetworkInterface], rev int64) {
	a := attachment{rev: rev}
	var id string
	if cur != nil {
		id, a.instanceID, a.vpcID = cur.Value.ID, cur.Value.InstanceID, cur.Value.VpcID
	} else if prev != nil {
		id = prev.Value.ID
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur == nil && t.byENI[id] == nil {
		delete(t.enis, id)
		return
	}
	if old, ok := t.enis[id]; ok && old.instanceID == a.instanceID && cur != nil {
		return // renamed, or rewritten as it was: where it is did not change
	}
	t.enis[id] = a
	for eip := range t.byENI[id] {
		r := t.withENILocked(t.rules[eip])
		t.rules[eip] = r
		t.publishLocked(r)
	}
}

func (t *Table) withOwnerLocked(r Rule) Rule {
	o := t.owners[r.HaVipID]
	r.NetworkInterfaceID, r.InstanceID, r.HostID, r.VpcID, r.OwnerRevision = "", "", "", "", o.rev
	if o.present {
		r.NetworkInterfaceID, r.InstanceID, r.HostID, r.VpcID = o.NetworkInterfaceID, o.InstanceID, o.HostID, o.VpcID
	}
	return r
}

// OwnerHook returns the hook of the broker's ownership records; havipOf turns an owner key into
// its HAVIP ID.
func (t *Table) OwnerHook(havipOf func(key string) string) kvcache.Hook[records.Owner] {
	return func(prev, cur *kvcache.Item[records.Owner], rev int64) {
		o := owner{rev: rev}
		key := ""
		if cur != nil {
			key, o.Owner, o.present = cur.Key, cur.Value, true
		} else if prev != nil {
			key = prev.Key
		}
		havipID := havipOf(key)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.owners[havipID] = o
		if cur == nil {
			// Keep the removal's revision only while an EIP needs it as a fence.
			if _, bound := t.byHaVip[havipID]; !bound {
				delete(t.owners, havipID)
			}
		}
		for id := range t.byHaVip[havipID] {
			r := t.withOwnerLocked(t.rules[id])
			t.rules[id] = r
			t.publishLocked(r)
		}
	}
}

func (t *Table) publishLocked(r Rule) {
	r.Changed = time.Now()
	batch := []Rule{r}
	for ch := range t.subs {
		select {
		case ch <- batch:
		default:
			delete(t.subs, ch) // fell behind: its stream ends and it watches again
			close(ch)
		}
	}
}

// Get returns the rule of a bound EIP.
func (t *Table) Get(eipID string) (Rule, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rules[eipID]
	return r, ok
}

// Subscribe returns every current rule (in binding order) and a channel of later changes,
// closed when ctx ends or the subscriber falls behind. The caller syncs the caches first if
// the snapshot must include its own last write.
func (t *Table) Subscribe(ctx context.Context) ([]Rule, <-chan []Rule) {
	ch := make(chan []Rule, subscriberBuffer)
	t.mu.Lock()
	snap := make([]Rule, 0, len(t.rules))
	for _, r := range t.rules {
		snap = append(snap, r)
	}
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	sort.Slice(snap, func(i, j int) bool { return snap[i].BindingRevision < snap[j].BindingRevision })
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.subs[ch]; ok {
			delete(t.subs, ch)
			close(ch)
		}
	})
	return snap, ch
}
