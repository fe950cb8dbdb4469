package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/groupcommit"
)

// fakeIpam proposes distinct addresses (after the ones in again, if any, for its next call),
// each call's once its gate (if any) opens.
type fakeIpam struct {
	ipamv1.IpamServiceClient // the methods these tests do not call

	mu    sync.Mutex
	next  int
	again []string
	calls []*ipamv1.ProposePrivateIpAddressesRequest
	gates []chan struct{} // call i waits for gates[i], when there is one
	opens []func()        // opens[i] opens gates[i], once
	asked chan int        // the number of each call, as it arrives
}

// gated makes a fakeIpam whose first n calls wait for their gate, which the test's cleanup
// opens if the test has not.
func gated(t *testing.T, n int) *fakeIpam {
	f := &fakeIpam{asked: make(chan int, 10)}
	for range n {
		gate := make(chan struct{})
		open := sync.OnceFunc(func() { close(gate) })
		f.gates, f.opens = append(f.gates, gate), append(f.opens, open)
		t.Cleanup(open)
	}
	return f
}

// open lets call i answer.
func (f *fakeIpam) open(i int) { f.opens[i]() }

// waitAsked waits for ipamd's next call to arrive and returns its number.
func (f *fakeIpam) waitAsked(t *testing.T) int {
	t.Helper()
	select {
	case i := <-f.asked:
		return i
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached ipamd")
		return -1
	}
}

func (f *fakeIpam) ProposePrivateIpAddresses(_ context.Context, req *ipamv1.ProposePrivateIpAddressesRequest, _ ...grpc.CallOption) (*ipamv1.ProposePrivateIpAddressesResponse, error) {
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, req)
	var gate chan struct{}
	if i < len(f.gates) {
		gate = f.gates[i]
	}
	f.mu.Unlock()
	if f.asked != nil {
		f.asked <- i
	}
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &ipamv1.ProposePrivateIpAddressesResponse{SubnetRevision: 7}
	resp.IpAddressSet, f.again = f.again, nil
	for len(resp.IpAddressSet) < len(req.GetOwners())+int(req.GetExtra()) {
		resp.IpAddressSet = append(resp.IpAddressSet, fmt.Sprintf("10.0.%d.%d", f.next/250, f.next%250+1))
		f.next++
	}
	return resp, nil
}

func (f *fakeIpam) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// clock is a settable time, with timers that run when the test fires them.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	timers []func()
}

// after keeps f, for fire.
func (c *clock) after(_ time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, f)
}

// fire runs the timers kept so far.
func (c *clock) fire() {
	c.mu.Lock()
	fs := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClient(f *fakeIpam, clk *clock) *Client {
	c := New(nil)
	c.ipam, c.now, c.after = f, clk.now, clk.after
	return c
}

// proposeAll proposes n addresses of subnet-1 at once and returns them, in no order.
func proposeAll(t *testing.T, c *Client, n int, owner string) []string {
	t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := c.Propose(context.Background(), "acct", "subnet-1", fmt.Sprintf("%s-%d", owner, i))
			if err != nil {
				t.Error(err)
				return
			}
			if p.Allocation.Record.Owner != fmt.Sprintf("%s-%d", owner, i) || p.SubnetRevision != 7 {
				t.Errorf("proposal %+v for %s-%d", p, owner, i)
			}
			out[i] = p.Allocation.Addr.String()
		})
	}
	wg.Wait()
	return out
}

// distinct fails the test when an address was proposed twice.
func distinct(t *testing.T, addrs []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s proposed twice in %v", a, addrs)
		}
		seen[a] = true
	}
}

// TestSparesServeLaterCreates: a batch asks extraProposals more than its callers; the next
// creates take those spares, oldest first, without asking ipamd, until they run out or are
// spareLife old.
func TestSparesServeLaterCreates(t *testing.T) {
	t.Parallel()
	f, clk := &fakeIpam{}, &clock{t: time.Unix(1000, 0)}
	c := newClient(f, clk)
	got := proposeAll(t, c, 1, "first")
	if f.callCount() != 1 || f.calls[0].GetExtra() != extraProposals {
		t.Fatalf("%d calls to ipamd (%v), want 1 asking %d extra", f.callCount(), f.calls, extraProposals)
	}
	for i := range extraProposals {
		got = append(got, proposeAll(t, c, 1, fmt.Sprint("spare", i))...)
	}
	if f.callCount() != 1 {
		t.Fatalf("%d calls to ipamd for %d proposals, want 1", f.callCount(), len(got))
	}
	if got[1] != "10.0.0.2" || got[extraProposals] != fmt.Sprintf("10.0.0.%d", extraProposals+1) {
		t.Errorf("spares taken in the order %v, want the oldest first", got)
	}
	got = append(got, proposeAll(t, c, 1, "after")...)
	if f.callCount() != 2 {
		t.Fatalf("%d calls to ipamd once the spares ran out, want 2", f.callCount())
	}
	distinct(t, got)

	// Spares spareLife old are not used: the next create asks ipamd.
	clk.add(spareLife)
	proposeAll(t, c, 1, "late")
	if f.callCount() != 3 {
		t.Fatalf("%d calls to ipamd after the spares aged, want 3", f.callCount())
	}
}

// TestSparesGrowWithDemand: a call to ipamd within spareLife of the subnet's last one (its
// spares ran out while fresh) asks twice the spares the last one did, up to what one call
// allows; a call after a pause asks extraProposals again, and the last call is forgotten once
// spareLife old.
func TestSparesGrowWithDemand(t *testing.T) {
	t.Parallel()
	f, clk := &fakeIpam{}, &clock{t: time.Unix(1000, 0)}
	c := newClient(f, clk)
	want := []int{extraProposals, 2 * extraProposals, 4 * extraProposals, maxProposeBatch - 1, maxProposeBatch - 1}
	var got []string
	for i := range want {
		// One caller, then as many as the spares it left: the next call finds none.
		got = append(got, proposeAll(t, c, 1, fmt.Sprint("first", i))...)
		got = append(got, proposeAll(t, c, int(f.calls[i].GetExtra()), fmt.Sprint("spare", i))...)
	}
	for i, w := range want {
		if e := int(f.calls[i].GetExtra()); e != w {
			t.Errorf("call %d asked %d spares, want %d", i, e, w)
		}
	}
	if n := f.callCount(); n != len(want) {
		t.Fatalf("%d calls to ipamd, want %d: each used its spares up", n, len(want))
	}
	distinct(t, got)

	clk.add(spareLife)
	proposeAll(t, c, 1, "late")
	if e := f.calls[len(want)].GetExtra(); e != extraProposals {
		t.Fatalf("a call after a pause asked %d spares, want %d", e, extraProposals)
	}
	// The calls' timers, spareLife on, forget the last call and drop the unused spares.
	clk.add(spareLife)
	clk.fire()
	c.mu.Lock()
	_, asked := c.asks["acct/subnet-1"]
	left := len(c.spares["acct/subnet-1"])
	c.mu.Unlock()
	if asked || left != 0 {
		t.Fatalf("spareLife after the last call: its record kept %v, %d spares kept; want neither", asked, left)
	}
}

// TestSparesGrowLessInSmallSubnets: in a subnet whose block holds under 8 × maxProposeBatch
// addresses, the spares a call asks for grow to an eighth of the block at most (never below
// extraProposals), so one replica does not hold most of it back.
func TestSparesGrowLessInSmallSubnets(t *testing.T) {
	t.Parallel()
	f := &fakeIpam{}
	c := newClient(f, &clock{t: time.Unix(1000, 0)})
	c.subnets["subnet-1"] = subnetEntry{account: "acct", subnet: Subnet{ID: "subnet-1", CIDR: netip.MustParsePrefix("10.0.0.0/24")}}
	want := []int{extraProposals, 32, 32}
	for i := range want {
		proposeAll(t, c, 1, fmt.Sprint("first", i))
		proposeAll(t, c, int(f.calls[i].GetExtra()), fmt.Sprint("spare", i))
	}
	for i, w := range want {
		if e := int(f.calls[i].GetExtra()); e != w {
			t.Errorf("call %d in a /24 asked %d spares, want %d", i, e, w)
		}
	}
	c.subnets["subnet-1"] = subnetEntry{account: "acct", subnet: Subnet{ID: "subnet-1", CIDR: netip.MustParsePrefix("10.0.0.0/28")}}
	proposeAll(t, c, 1, "tiny")
	if e := f.calls[len(want)].GetExtra(); e != extraProposals {
		t.Fatalf("a call in a /28 asked %d spares, want %d (never fewer than at first)", e, extraProposals)
	}
}

// TestSparesAreKeptAcrossBatches: calls that queued while a batch was in flight take its spares
// rather than asking ipamd again, and spares of batches in flight together add up: none is
// dropped unused (ipamd would still hold each one back).
func TestSparesAreKeptAcrossBatches(t *testing.T) {
	t.Parallel()
	f := gated(t, 2)
	c := newClient(f, &clock{t: time.Unix(1000, 0)})

	// First batch: one caller, held at ipamd. Then enough callers for a second batch in flight.
	var first, second, third []string
	var wg sync.WaitGroup
	wg.Go(func() { first = proposeAll(t, c, 1, "a") })
	f.waitAsked(t)
	wg.Go(func() { second = proposeAll(t, c, groupcommit.MinSecondBatch, "b") })
	f.waitAsked(t)
	// Three callers queue behind both batches.
	wg.Go(func() { third = proposeAll(t, c, 3, "c") })
	waitPending(t, c, 3)
	f.open(1) // the second batch answers its callers and leaves spares; then the first
	f.open(0)
	wg.Wait()
	if n := f.callCount(); n != 2 {
		t.Fatalf("%d calls to ipamd, want 2: the queued callers take spares", n)
	}
	// Both batches' spares came in, 3 went to the queued callers: the rest serve as many creates.
	// The second call, in flight with the first, asked twice the spares.
	if e0, e1 := f.calls[0].GetExtra(), f.calls[1].GetExtra(); e0 != extraProposals || e1 != 2*extraProposals {
		t.Fatalf("the batches asked %d and %d spares, want %d and %d", e0, e1, extraProposals, 2*extraProposals)
	}
	left := 3*extraProposals - 3
	rest := proposeAll(t, c, left, "d")
	if n := f.callCount(); n != 2 {
		t.Fatalf("%d calls to ipamd after %d more creates, want 2: no spare dropped", n, left)
	}
	all := append(append(append(first, second...), third...), rest...)
	distinct(t, all)
	if len(all) != f.next {
		t.Fatalf("%d proposals out of %d proposed", len(all), f.next)
	}
}

// TestCallersThatGaveUpGetNoProposal: a queued call whose caller has returned (its context
// ended) is dropped: neither a spare nor an address of ipamd's goes to it.
func TestCallersThatGaveUpGetNoProposal(t *testing.T) {
	t.Parallel()
	f := gated(t, 2)
	c := newClient(f, &clock{t: time.Unix(1000, 0)})
	var wg sync.WaitGroup
	wg.Go(func() { proposeAll(t, c, 1, "a") })
	f.waitAsked(t)
	// Two callers queue and give up; a third waits.
	ctx, cancel := context.WithCancel(context.Background())
	var gone sync.WaitGroup
	for i := range 2 {
		gone.Go(func() {
			if _, err := c.Propose(ctx, "acct", "subnet-1", fmt.Sprint("gone-", i)); !errors.Is(err, context.Canceled) {
				t.Errorf("a caller that gave up: %v, want %v", err, context.Canceled)
			}
		})
	}
	waitPending(t, c, 2)
	cancel()
	gone.Wait()
	var last []string
	wg.Go(func() { last = proposeAll(t, c, 1, "last") })
	waitPending(t, c, 3)
	f.open(0)
	wg.Wait()
	if n := f.callCount(); n != 1 {
		t.Fatalf("%d calls to ipamd, want 1: the waiting caller takes a spare", n)
	}
	// The first batch's spares, less the waiting caller's, are all left.
	c.mu.Lock()
	kept := len(c.spares["acct/subnet-1"])
	c.mu.Unlock()
	if kept != extraProposals-1 || len(last) != 1 {
		t.Fatalf("%d spares kept, want %d: the callers that gave up took some", kept, extraProposals-1)
	}
}

// TestSparesProposedAgainAreDropped: a spare kept that ipamd proposes again (past its bound of
// holds, or from another replica) is dropped, so one address does not go to two creates: the
// new proposal goes to its caller, or is the one spare of it.
func TestSparesProposedAgainAreDropped(t *testing.T) {
	t.Parallel()
	f := &fakeIpam{}
	c := newClient(f, &clock{t: time.Unix(1000, 0)})
	proposeAll(t, c, 1, "first") // 10.0.0.1; spares 10.0.0.2 … 10.0.0.17
	const key = "acct/subnet-1"
	c.mu.Lock()
	before := len(c.spares[key])
	toCaller, toSpare := c.spares[key][0].p.Allocation.Addr.String(), c.spares[key][5].p.Allocation.Addr.String()
	c.mu.Unlock()
	// ipamd's next answer, for one caller: the first spare goes to the caller, the sixth is a
	// spare again, with two new ones.
	again := []netip.Addr{netip.MustParseAddr(toCaller), netip.MustParseAddr("10.0.9.1"), netip.MustParseAddr(toSpare), netip.MustParseAddr("10.0.9.2")}
	c.addSpares("acct", "subnet-1", key, 7, again, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	count := map[string]int{}
	for _, s := range c.spares[key] {
		count[s.p.Allocation.Addr.String()]++
	}
	if count[toCaller] != 0 || count[toSpare] != 1 || count["10.0.9.1"] != 1 || len(c.spares[key]) != before-2+3 {
		t.Fatalf("spares after ipamd proposed %s and %s again: %v (%d), want %s gone and %s once", toCaller, toSpare, count, len(c.spares[key]), toCaller, toSpare)
	}
}

// waitPending waits until n calls wait in subnet-1's queue.
func waitPending(t *testing.T, c *Client, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		q := c.queues["acct/subnet-1"]
		waiting := 0
		if q != nil {
			waiting = len(q.Pending())
		}
		c.mu.Unlock()
		if waiting == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", waiting, n)
		}
	}
}
