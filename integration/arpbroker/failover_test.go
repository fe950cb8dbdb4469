package arpbroker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/proctest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker/broker"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// TestNeverTwoOwners: two arpbrokerd processes; claims for one VIP from four ENIs go to both
// while the leader is SIGKILLed. The owner record's history (from etcd itself) is one chain:
// every change has a higher revision than the last and was written over exactly the change
// before it, so no decision was ever taken on a stale owner. The survivor takes over within the
// election TTL plus one second.
func TestNeverTwoOwners(t *testing.T) {
	c := serve(t, ipam.Module, service.Must(havip.NewModule(havip.Config{}))) // the inventory; the brokers are the two processes
	w := build(t, c)
	bin := proctest.Build(t, "../../services/arpbroker/cmd/arpbrokerd")
	env := []string{"HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS=" + etcdEndpoint, "HAVIP_INSECURE_ETCD=true", "HAVIP_ARP_HOLD_DOWN=50ms", "HAVIP_ARP_ELECTION_TTL=2s"}
	cli := etcdtest.Client(t, etcdEndpoint)
	env = append(env, mtlstest.Env(t, identity.ID{Kind: identity.Service, Name: "arpbrokerd"})...) // a follower forwards with it
	procs := []*proctest.Proc{proctest.Start(t, bin, env...), proctest.Start(t, bin, env...)}
	var brokers []*brokerAs
	for _, p := range procs {
		brokers = append(brokers, newBrokerAs(t, etcdtest.DialAs(t, p.Addr, mtlstest.Operator)))
	}
	c.broker = brokers[0]
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	id, vip := w.open.GetHavipId(), w.open.GetVip() // check_associate off: all four ENIs may own it
	key := records.OwnerKey(id)
	start, err := cli.Get(context.Background(), "probe-revision")
	if err != nil {
		t.Fatal(err)
	}
	history := cli.Watch(context.Background(), key, clientv3.WithRev(start.Header.Revision+1), clientv3.WithPrevKV())

	var stop atomic.Bool
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for i, n := range []nic{w.s1, w.s2, w.p1, w.p4} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				r, err := brokers[(i+k)%2].ReportArpAnnouncement(context.Background(), garp(sess, n, vip))
				if err == nil && r.GetResult() == arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
					accepted.Add(1)
				}
				time.Sleep(20 * time.Millisecond) // announcers pace themselves, as keepalived does
			}
		}()
	}
	fabric.Await(t, 20*time.Second, "10 owner changes", func() bool { return accepted.Load() >= 10 })
	leader := leaderOf(t, cli, procs)
	before := accepted.Load()
	killed := time.Now()
	if err := leader.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for accepted.Load() == before {
		if time.Since(killed) > 2*time.Second+time.Second {
			t.Fatalf("no owner change %v after the leader was killed (election TTL 2s)", time.Since(killed))
		}
		time.Sleep(10 * time.Millisecond) // waiting for the survivor to take over
	}
	t.Logf("a claim was accepted again %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	fabric.Await(t, 20*time.Second, "10 more owner changes", func() bool { return accepted.Load() >= before+10 })
	stop.Store(true)
	wg.Wait()
	end, err := cli.Get(context.Background(), "probe-revision")
	if err != nil {
		t.Fatal(err)
	}

	var last int64
	changes := 0
	for last < end.Header.Revision {
		resp := <-history
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > end.Header.Revision {
				last = ev.Kv.ModRevision
				break
			}
			if ev.Kv.ModRevision <= last {
				t.Fatalf("revision %d after %d", ev.Kv.ModRevision, last)
			}
			if last != 0 && ev.Type == mvccpb.PUT && ev.PrevKv != nil && ev.PrevKv.ModRevision != last {
				t.Fatalf("change at %d was written over %d, not over the change before it (%d)", ev.Kv.ModRevision, ev.PrevKv.ModRevision, last)
			}
			last = ev.Kv.ModRevision
			changes++
		}
		if len(resp.Events) == 0 {
			last = resp.Header.Revision
		}
	}
	if changes < 20 {
		t.Fatalf("only %d owner changes recorded", changes)
	}
	t.Logf("%d owner changes, one chain of rising revisions", changes)
}

// leaderOf is the broker process that leads, as the election key in etcd says.
func leaderOf(t testing.TB, cli *clientv3.Client, procs []*proctest.Proc) *proctest.Proc {
	t.Helper()
	addr, err := broker.New(cli, havipcache.New(cli, etcdtest.Quiet), ownercache.New(cli, etcdtest.Quiet), etcdtest.Quiet, broker.Config{}).Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Addr == addr {
			return p
		}
	}
	t.Fatalf("the leader %s is neither process", addr)
	return nil
}
