// Package inventory asks ipamd about subnets, instances and ENIs, and allocates HAVIP addresses from it.
package inventory

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/groupcommit"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/tracing"
)

// Subnet is what HAVIPs need to know of a subnet.
type Subnet struct {
	ID, VpcID string
	CIDR      netip.Prefix
}

// ENI is what HAVIPs need to know of a network interface.
type ENI struct {
	ID, VpcID, SubnetID, InstanceID string
	Primary                         bool
	IP                              netip.Addr
}

// Instance is what HAVIPs need to know of a CVM.
type Instance struct {
	ID, VpcID, PrimaryENI string
	PrimaryIP             netip.Addr
}

// Client calls ipamd for the caller's account.
type Client struct {
	ipam ipamv1.IpamServiceClient

	mu      sync.Mutex
	subnets map[string]subnetEntry // subnets never change their VPC or block: cache what was seen
	queues  map[string]*proposeQueue
	spares  map[string][]spare // by account and subnet, oldest first
	asks    map[string]ask     // by account and subnet: its last call to ipamd
	now     func() time.Time
	after   func(time.Duration, func()) // time.AfterFunc, but for tests
}

// spare is a proposal a batch got beyond its callers, for the next creates of its subnet: so
// that a stream of creates asks ipamd once per many rather than once per batch. Spares are
// kept until used or too old (or past maxSpares, which a subnet's batches in flight cannot
// reach): ipamd holds each one back from its other proposals for ipalloc.ProposalHold, and
// holds no more than a bound of them at once, past which it proposes without a hold, so spares
// dropped unused would soon make it propose addresses twice.
type spare struct {
	p     Proposal
	until time.Time // used before this, or dropped (well before ipamd's hold ends)
}

// ask is a subnet's last call to ipamd: how many spares it asked for, and when.
type ask struct {
	extra int
	at    time.Time
}

const (
	// extraProposals is how many more addresses than its callers a batch asks ipamd for, when
	// the subnet's last call is spareLife old or more; a call sooner than that (the spares ran
	// out while fresh, or another call is in flight) asks twice as many as the last, up to
	// what one call allows and an eighth of a small subnet's block (spareCapLocked). A lone
	// create holds few addresses back; a stream of them calls ipamd once per up to
	// maxProposeBatch.
	extraProposals = 16
	// spareLife is how long spare proposals are used: ipamd holds them for
	// ipalloc.ProposalHold, and a spare older than that is likelier to be taken.
	spareLife = 2 * time.Second
	// maxSpares bounds a subnet's spares: what its batches in flight at once can bring.
	maxSpares = groupcommit.MaxInflight * maxProposeBatch
)

type subnetEntry struct {
	account string
	subnet  Subnet
}

// New returns a client over a connection to ipamd.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{ipam: ipamv1.NewIpamServiceClient(conn), subnets: map[string]subnetEntry{}, queues: map[string]*proposeQueue{}, spares: map[string][]spare{}, asks: map[string]ask{}, now: time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// Subnet returns an account's subnet.
func (c *Client) Subnet(ctx context.Context, account, id string) (Subnet, error) {
	c.mu.Lock()
	e, ok := c.subnets[id]
	c.mu.Unlock()
	if ok && e.account == account {
		return e.subnet, nil
	}
	resp, err := c.ipam.DescribeSubnets(tenant.Outgoing(ctx, account), &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{id}})
	if err != nil {
		return Subnet{}, apierr.FromStatus(err)
	}
	pb := resp.GetSubnetSet()[0]
	sn := Subnet{ID: id, VpcID: pb.GetVpcId(), CIDR: netip.MustParsePrefix(pb.GetCidrBlock())}
	c.mu.Lock()
	c.subnets[id] = subnetEntry{account: account, subnet: sn}
	c.mu.Unlock()
	return sn, nil
}

// ENIs returns an account's ENIs by ID; a missing one is NotFound.
func (c *Client) ENIs(ctx context.Context, account string, ids []string) (map[string]ENI, error) {
	out := map[string]ENI{}
	if len(ids) == 0 {
		return out, nil
	}
	resp, err := c.ipam.DescribeNetworkInterfaces(tenant.Outgoing(ctx, account), &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: ids, Limit: 100})
	if err != nil {
		return nil, apierr.FromStatus(err)
	}
	for _, e := range resp.GetNetworkInterfaceSet() {
		out[e.GetNetworkInterfaceId()] = eni(e)
	}
	return out, nil
}

func eni(e *ipamv1.NetworkInterface) ENI {
	ip, _ := netip.ParseAddr(e.GetPrimaryIpAddress())
	return ENI{ID: e.GetNetworkInterfaceId(), VpcID: e.GetVpcId(), SubnetID: e.GetSubnetId(), InstanceID: e.GetInstanceId(), Primary: e.GetPrimary(), IP: ip}
}

// Instances returns an account's CVMs by ID; a missing one is NotFound.
func (c *Client) Instances(ctx context.Context, account string, ids []string) (map[string]Instance, error) {
	out := map[string]Instance{}
	if len(ids) == 0 {
		return out, nil
	}
	resp, err := c.ipam.DescribeInstances(tenant.Outgoing(ctx, account), &ipamv1.DescribeInstancesRequest{InstanceIds: ids, Limit: 100})
	if err != nil {
		return nil, apierr.FromStatus(err)
	}
	for _, i := range resp.GetInstanceSet() {
		ip, _ := netip.ParseAddr(i.GetPrivateIpAddress())
		out[i.GetInstanceId()] = Instance{ID: i.GetInstanceId(), VpcID: i.GetVpcId(), PrimaryENI: i.GetPrimaryNetworkInterfaceId(), PrimaryIP: ip}
	}
	return out, nil
}

// Reserve allocates vip (or any free address) in a subnet as a reservation for owner that
// expires after ttl unless committed.
func (c *Client) Reserve(ctx context.Context, account, subnetID string, vip netip.Addr, owner string, ttl time.Duration) (ipalloc.Allocation, error) {
	req := &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnetID, Owner: owner, ReservationTtlSeconds: uint32(ttl / time.Second)}
	if vip.IsValid() {
		req.IpAddress = vip.String()
	}
	resp, err := c.ipam.AllocatePrivateIpAddress(tenant.Outgoing(ctx, account), req)
	if err != nil {
		return ipalloc.Allocation{}, apierr.FromStatus(err)
	}
	return allocation(account, resp.GetAddress())
}

func allocation(account string, a *ipamv1.PrivateIpAddress) (ipalloc.Allocation, error) {
	addr, err := netip.ParseAddr(a.GetIpAddress())
	if err != nil {
		return ipalloc.Allocation{}, fmt.Errorf("ipamd returned address %q: %w", a.GetIpAddress(), err)
	}
	return ipalloc.Allocation{Pool: a.GetSubnetId(), Addr: addr, Record: ipalloc.Record{Owner: a.GetOwner(), Account: account, Reservation: a.GetReservationToken()}, Revision: a.GetRevision()}, nil
}

// Proposal is a free address ipamd proposed, not allocated: the caller creates its key (absent
// only) in its own transaction, guarded by the subnet's create revision.
type Proposal struct {
	// Allocation is the address as it will be recorded; its Revision is 0 (the key absent).
	Allocation     ipalloc.Allocation
	SubnetRevision int64
}

// proposeQueue gathers the proposals asked of one account's subnet.
type proposeQueue = groupcommit.Queue[*proposeCall]

type proposeCall struct {
	ctx   context.Context // the caller's: once it is done, nobody waits for the answer
	owner string
	span  trace.SpanContext // the caller's, which the batch's call to ipamd continues
	done  chan struct{}
	p     Proposal
	err   error
}

// maxProposeBatch is the most addresses asked of ipamd in one call.
const maxProposeBatch = 100

// Propose asks ipamd for a free address of a subnet for owner (ipamd writes nothing).
// Concurrent requests for one subnet go to ipamd together, in one call, which asks for spares
// too: a fresh spare of the subnet, when there is one, is the answer without a call. It fails
// with ResourceInsufficient when ipamd had no address to propose.
func (c *Client) Propose(ctx context.Context, account, subnetID, owner string) (Proposal, error) {
	key := account + "/" + subnetID
	call := &proposeCall{ctx: ctx, owner: owner, span: trace.SpanContextFromContext(ctx), done: make(chan struct{})}
	c.mu.Lock()
	if p, ok := c.spareLocked(key, owner); ok {
		c.mu.Unlock()
		return p, nil
	}
	q := c.queues[key]
	if q == nil {
		q = &proposeQueue{}
		c.queues[key] = q
	}
	if q.Add(call) {
		go q.Run(&c.mu, func(pending []*proposeCall) ([]*proposeCall, []*proposeCall) { return c.takeLocked(key, pending) },
			func(batch []*proposeCall) { c.propose(account, subnetID, key, batch) },
			func(running int) {
				if running == 0 {
					delete(c.queues, key)
				}
			})
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.p, call.err
	case <-ctx.Done():
		return Proposal{}, ctx.Err()
	}
}

// spareLocked takes the oldest fresh spare proposal of the subnet at key for owner, if there
// is one.
func (c *Client) spareLocked(key, owner string) (Proposal, bool) {
	c.pruneLocked(key)
	sp := c.spares[key]
	if len(sp) == 0 {
		return Proposal{}, false
	}
	p := sp[0].p
	c.setSparesLocked(key, sp[1:])
	p.Allocation.Record.Owner = owner
	return p, true
}

// setSparesLocked makes sp the spares of the subnet at key, dropping its entry when sp is empty.
func (c *Client) setSparesLocked(key string, sp []spare) {
	if len(sp) == 0 {
		delete(c.spares, key)
		return
	}
	c.spares[key] = sp
}

// pruneLocked drops the spares of the subnet at key that are too old, and its entry when none
// is left.
func (c *Client) pruneLocked(key string) {
	sp, now := c.spares[key], c.now()
	n := 0
	for n < len(sp) && !now.Before(sp[n].until) {
		n++
	}
	if n > 0 {
		c.setSparesLocked(key, sp[n:])
	}
}

// takeLocked takes up to maxProposeBatch of the subnet's queued calls for one call to ipamd.
// Calls whose caller gave up are dropped, and calls that queued while another batch was in
// flight are answered with its spares first.
func (c *Client) takeLocked(key string, pending []*proposeCall) (batch, rest []*proposeCall) {
	live := pending[:0]
	for _, call := range pending {
		if call.ctx.Err() != nil {
			continue // its caller has returned: a proposal for it would be wasted
		}
		if p, ok := c.spareLocked(key, call.owner); ok {
			call.p = p
			close(call.done)
			continue
		}
		live = append(live, call)
	}
	clear(pending[len(live):]) // no reference kept to calls answered or dropped
	n := min(len(live), maxProposeBatch)
	return live[:n:n], live[n:]
}

// propose asks ipamd for one batch of proposals, and spares (nextExtra), answers each call
// and adds the rest to the subnet's spares.
func (c *Client) propose(account, subnetID, key string, batch []*proposeCall) {
	owners := make([]string, len(batch))
	for i, call := range batch {
		owners[i] = call.owner
	}
	extra := c.nextExtra(key, subnetID, len(batch))
	ctx, span := batchSpan(tenant.Outgoing(context.Background(), account), subnetID, batch)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := c.ipam.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: subnetID, Owners: owners, Extra: uint32(extra)})
	cancel()
	span.End()
	texts := resp.GetIpAddressSet()
	addrs := make([]netip.Addr, len(texts)) // the zero Addr where ipamd's text does not parse
	for i, a := range texts {
		addrs[i], _ = netip.ParseAddr(a)
	}
	if err == nil {
		// Before the callers are answered: a caller that has its answer sees the spares.
		c.addSpares(account, subnetID, key, resp.GetSubnetRevision(), addrs, len(batch))
	}
	c.after(spareLife, func() { // unused spares go, and the call is forgotten
		c.mu.Lock()
		c.pruneLocked(key)
		if a, ok := c.asks[key]; ok && c.now().Sub(a.at) >= spareLife {
			delete(c.asks, key) // not on pruneLocked's path: every create prunes
		}
		c.mu.Unlock()
	})
	for i, call := range batch {
		switch {
		case err != nil:
			call.err = apierr.FromStatus(err)
		case i < len(addrs) && !addrs[i].IsValid():
			call.err = fmt.Errorf("ipamd proposed address %q: not an IP address", texts[i])
		case i < len(addrs):
			call.p = Proposal{
				Allocation:     ipalloc.Allocation{Pool: subnetID, Addr: addrs[i], Record: ipalloc.Record{Owner: call.owner, Account: account}},
				SubnetRevision: resp.GetSubnetRevision(),
			}
		default:
			call.err = apierr.New(apierr.ReasonResourceInsufficient, "no free address left in %s", subnetID)
		}
		close(call.done)
	}
}

// addSpares keeps the addresses ipamd proposed beyond a batch's callers (addrs[callers:], those
// that parsed) as the subnet's spares, after those it has. A spare ipamd has just proposed again (it proposes
// without a hold past its bound, another replica of it does not know the holds of this one) is
// dropped: the new proposal goes to its own caller or spare.
func (c *Client) addSpares(account, subnetID, key string, subnetRev int64, addrs []netip.Addr, callers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := c.spares[key]
	if len(sp) > 0 {
		again := make(map[netip.Addr]bool, len(addrs))
		for _, a := range addrs {
			again[a] = true
		}
		kept := sp[:0]
		for _, s := range sp {
			if !again[s.p.Allocation.Addr] {
				kept = append(kept, s)
			}
		}
		clear(sp[len(kept):])
		sp = kept
	}
	until := c.now().Add(spareLife) // under the lock: a subnet's spares are in the order they end
	for _, addr := range addrs[min(callers, len(addrs)):] {
		if addr.IsValid() && len(sp) < maxSpares {
			sp = append(sp, spare{p: Proposal{
				Allocation:     ipalloc.Allocation{Pool: subnetID, Addr: addr, Record: ipalloc.Record{Account: account}},
				SubnetRevision: subnetRev,
			}, until: until})
		}
	}
	c.setSparesLocked(key, sp)
}

// nextExtra is how many spares a call to ipamd for callers of the subnet at key (subnetID)
// asks for (see extraProposals), and records the call.
func (c *Client) nextExtra(key, subnetID string, callers int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, extra := c.now(), extraProposals
	if last, ok := c.asks[key]; ok && now.Sub(last.at) < spareLife {
		extra = max(extraProposals, min(2*last.extra, c.spareCapLocked(subnetID)))
	}
	c.asks[key] = ask{extra: extra, at: now}
	return min(extra, maxProposeBatch-callers)
}

// spareCapLocked is the most spares the calls for a subnet grow to: maxProposeBatch, or an
// eighth of a smaller subnet's block, so that one replica's spares do not hold most of a
// small subnet's free addresses back from the others.
func (c *Client) spareCapLocked(subnetID string) int {
	e, ok := c.subnets[subnetID]
	if !ok {
		return maxProposeBatch
	}
	host := e.subnet.CIDR.Addr().BitLen() - e.subnet.CIDR.Bits()
	if host >= 16 {
		return maxProposeBatch
	}
	return min(maxProposeBatch, (1<<host)/8)
}

var tracer = otel.Tracer("github.com/openhavip/havip/services/havip/inventory")

// batchSpan starts the span of a batch's call to ipamd in the trace of its first caller, linked
// to the others' (when tracing exports; otherwise ctx only carries the first caller's trace
// context on to ipamd).
func batchSpan(ctx context.Context, subnetID string, batch []*proposeCall) (context.Context, trace.Span) {
	if !batch[0].span.IsValid() {
		return tracer.Start(ctx, "inventory.ProposeBatch")
	}
	links := make([]trace.Link, 0, len(batch)-1)
	for _, c := range batch[1:] {
		if c.span.IsValid() {
			links = append(links, trace.Link{SpanContext: c.span})
		}
	}
	return tracer.Start(trace.ContextWithSpanContext(ctx, batch[0].span), "inventory.ProposeBatch", trace.WithLinks(links...),
		trace.WithAttributes(tracing.SubnetID.String(subnetID), attribute.Int("havip.batch_size", len(batch))))
}

// Release gives back an address (a reservation that will not be used).
func (c *Client) Release(ctx context.Context, account, subnetID string, addr netip.Addr) error {
	_, err := c.ipam.ReleasePrivateIpAddress(tenant.Outgoing(ctx, account), &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: subnetID, IpAddress: addr.String()})
	return apierr.FromStatus(err)
}
