package invariant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
)

// NatFollower keeps the newest NAT rule of every public IP from WatchNatRules, as a data plane
// does (fenced by binding and owner revision); it subscribes again when cut off.
type NatFollower struct {
	mu  sync.Mutex
	cur map[string]*eipv1.NatRule
}

// FollowNat follows c's NAT rules until the test ends; it returns once the first snapshot is in.
func FollowNat(t testing.TB, c eipv1.NatRuleServiceClient) *NatFollower {
	f := &NatFollower{cur: map[string]*eipv1.NatRule{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	ready := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for ctx.Err() == nil {
			stream, err := c.WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{})
			if err != nil {
				time.Sleep(50 * time.Millisecond) // reconnecting
				continue
			}
			for {
				m, err := stream.Recv()
				if err != nil {
					if !errors.Is(err, io.EOF) && status.Code(err) != codes.Canceled && status.Code(err) != codes.Unavailable {
						t.Logf("NAT stream: %v", err)
					}
					break
				}
				f.mu.Lock()
				if m.GetSnapshot() {
					f.cur = map[string]*eipv1.NatRule{}
				}
				for _, r := range m.GetRules() {
					old, ok := f.cur[r.GetPublicIp()]
					if !ok || newer(r, old) {
						f.cur[r.GetPublicIp()] = r
					}
				}
				f.mu.Unlock()
				if first {
					first = false
					close(ready)
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("no NAT rule snapshot within 30 s")
	}
	return f
}

func newer(r, old *eipv1.NatRule) bool {
	if r.GetBindingRevision() != old.GetBindingRevision() {
		return r.GetBindingRevision() > old.GetBindingRevision()
	}
	return r.GetOwnerRevision() >= old.GetOwnerRevision()
}

// Rules are the rules followed now, by public IP.
func (f *NatFollower) Rules() map[string]Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Rule{}
	for ip, r := range f.cur {
		if !r.GetRemoved() {
			out[ip] = Rule{Private: r.GetPrivateIp(), HaVip: r.GetHavipId(), ENI: r.GetNetworkInterfaceId(), Instance: r.GetInstanceId(), Host: r.GetHostId()}
		}
	}
	return out
}

// Check checks (f): the rules followed are those s implies.
func (f *NatFollower) Check(s *State) error {
	want, got := s.NatRules(), f.Rules()
	for ip, r := range want {
		if got[ip] != r {
			return fmt.Errorf("(f) NAT rule of %s: stream %+v, state %+v", ip, got[ip], r)
		}
	}
	for ip, r := range got {
		if _, ok := want[ip]; !ok {
			return fmt.Errorf("(f) NAT rule of unbound %s still streamed: %+v", ip, r)
		}
	}
	return nil
}
