package inventory

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"
)

// fakeIpam proposes distinct addresses, each call's once its gate (if any) opens.
type fakeIpam struct {
	ipamv1.IpamServiceClient // the methods these tests do not call

	mu    sync.Mutex
	next  int
	calls []*ipamv1.ProposePrivateIpAddressesRequest
	gates []chan struct{} // call i waits for gates[i], when there is one
	asked chan int        // the number of each call, as it arrives
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
	for range len(req.GetOwners()) + int(req.GetExtra()) {
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

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
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
	c.ipam, c.now = f, clk.now
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

// TestSparesAreKeptAcrossBatches: calls that queued while a batch was in flight take its spares
// rather than asking ipamd again, and spares of batches in flight together add up: none is
// dropped unused (ipamd would still hold each one back).
func TestSparesAreKeptAcrossBatches(t *testing.T) {
	t.Parallel()
	gate1, gate2 := make(chan struct{}), make(chan struct{})
	f := &fakeIpam{gates: []chan struct{}{gate1, gate2}, asked: make(chan int, 10)}
	c := newClient(f, &clock{t: time.Unix(1000, 0)})

	// First batch: one caller, held at ipamd. Then enough callers for a second batch in flight.
	var first []string
	var wg sync.WaitGroup
	wg.Go(func() { first = proposeAll(t, c, 1, "a") })
	<-f.asked
	var second []string
	wg.Go(func() { second = proposeAll(t, c, 16, "b") })
	<-f.asked
	// Three callers queue behind both batches.
	var third []string
	wg.Go(func() { third = proposeAll(t, c, 3, "c") })
	waitPending(t, c, 3)
	close(gate2) // the second batch answers its 16 and leaves 16 spares; then the first
	close(gate1)
	wg.Wait()
	if n := f.callCount(); n != 2 {
		t.Fatalf("%d calls to ipamd, want 2: the queued callers take spares", n)
	}
	// 32 spares came in, 3 went to the queued callers: 29 are left, and serve 29 creates.
	rest := proposeAll(t, c, 29, "d")
	if n := f.callCount(); n != 2 {
		t.Fatalf("%d calls to ipamd after 29 more creates, want 2: no spare dropped", n)
	}
	all := append(append(append(first, second...), third...), rest...)
	distinct(t, all)
	if len(all) != 1+16+3+29 || f.next != len(all) {
		t.Fatalf("%d proposals out of %d proposed", len(all), f.next)
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
