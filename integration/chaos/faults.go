package chaos

import (
	"context"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/records"
)

// Fault is one fault: Inject applies it to a stack and returns what ends it.
type Fault struct {
	Name string
	// Hold is how long the fault lasts before it is healed.
	Hold time.Duration
	// Broker says the fault takes the broker's leader away (its takeover time is measured).
	Broker bool
	Inject func(t testing.TB, s *Stack) (heal func())
}

// BrokerLeader is the broker replica that leads ("" when none does).
func (s *Stack) BrokerLeader(ctx context.Context) string {
	resp, err := s.Cli.Get(ctx, records.BrokerElection+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	for _, name := range Services {
		if ServiceOf(name) == "arpbrokerd" && s.Addr(name) == string(resp.Kvs[0].Value) {
			return name
		}
	}
	return ""
}

// killAndRestart kills p with SIGKILL; the heal starts it again and waits until it serves.
func killAndRestart(t testing.TB, s *Stack, p *Proc) func() {
	p.Kill()
	return func() {
		p.Restart()
		if ServiceOf(p.Name) != "etcd" {
			s.AwaitServing(t, p.Name)
		}
	}
}

func etcdMember(t testing.TB, s *Stack, leader bool) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := s.EtcdLeader(ctx)
	if l < 0 {
		t.Fatal("etcd has no leader")
	}
	if leader {
		return s.Etcd[l]
	}
	return s.Etcd[(l+1)%3]
}

func brokerReplica(t testing.TB, s *Stack, leader bool) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := s.BrokerLeader(ctx)
	if l == "" {
		t.Fatal("the brokers have no leader")
	}
	if leader {
		return s.Procs[l]
	}
	for _, name := range []string{"arpbrokerd-1", "arpbrokerd-2", "arpbrokerd-3"} {
		if name != l {
			return s.Procs[name]
		}
	}
	panic("unreachable")
}

// Kill9 kills a replica of a service (by name) with SIGKILL and restarts it.
func Kill9(replica string) Fault {
	return Fault{Name: "kill -9 " + replica, Hold: 3 * time.Second, Inject: func(t testing.TB, s *Stack) func() {
		return killAndRestart(t, s, s.Procs[replica])
	}}
}

// The faults of the suite, one at a time.
var (
	EtcdFollowerKill = Fault{Name: "kill -9 etcd follower", Hold: 5 * time.Second, Inject: func(t testing.TB, s *Stack) func() {
		return killAndRestart(t, s, etcdMember(t, s, false))
	}}
	EtcdLeaderKill = Fault{Name: "kill -9 etcd leader", Hold: 5 * time.Second, Inject: func(t testing.TB, s *Stack) func() {
		return killAndRestart(t, s, etcdMember(t, s, true))
	}}
	BrokerLeaderKill = Fault{Name: "kill -9 broker leader (claim storm)", Hold: 3 * time.Second, Broker: true, Inject: func(t testing.TB, s *Stack) func() {
		return killAndRestart(t, s, brokerReplica(t, s, true))
	}}
	BrokerFollowerKill = Fault{Name: "kill -9 broker follower", Hold: 3 * time.Second, Inject: func(t testing.TB, s *Stack) func() {
		return killAndRestart(t, s, brokerReplica(t, s, false))
	}}
	// BrokerPartition cuts the leading broker replica off etcd (nftables in its namespace).
	BrokerPartition = Fault{Name: "broker leader cut off etcd 10 s", Hold: 10 * time.Second, Broker: true, Inject: func(t testing.TB, s *Stack) func() {
		p := brokerReplica(t, s, true)
		s.Lab.Partition(p.Node, s.IPs("etcd-1", "etcd-2", "etcd-3")...)
		return func() { s.Lab.Heal(p.Node) }
	}}
	// HavipdPause stops a havipd replica (SIGSTOP) for twice the reservation TTL and a second
	// (havipd holds no other lease; its etcd client's keepalive, 10 s + 5 s, does not lapse),
	// then lets it go on with whatever it held in flight.
	HavipdPause = Fault{Name: "SIGSTOP havipd-1 past the TTLs", Inject: func(t testing.TB, s *Stack) func() {
		p := s.Procs["havipd-1"]
		p.Signal(syscall.SIGSTOP)
		return func() { p.Signal(syscall.SIGCONT) }
	}}
	// PeerLatency delays etcd's peer traffic by 150 ms each way (a proxy on every member's
	// peer link: this kernel has no netem).
	PeerLatency = Fault{Name: "etcd peer latency +150 ms each way", Hold: 8 * time.Second, Inject: func(_ testing.TB, s *Stack) func() {
		for _, p := range s.Peers {
			p.SetDelay(150 * time.Millisecond)
		}
		return func() {
			for _, p := range s.Peers {
				p.SetDelay(0)
			}
		}
	}}
	// SlowDisk makes the etcd leader's fsyncs take 100 ms more (strace's syscall fault injection;
	// strace attached to a running process stops it at every system call, not only those it
	// injects into, so the member is somewhat slower at everything as well).
	SlowDisk = Fault{Name: "etcd leader's disk slow (fdatasync +100 ms)", Hold: 8 * time.Second, Inject: func(t testing.TB, s *Stack) func() {
		return slowDisk(t, etcdMember(t, s, true), 100*time.Millisecond)
	}}
)

// slowDisk delays every fsync and fdatasync of p by d until the heal.
func slowDisk(t testing.TB, p *Proc, d time.Duration) func() {
	t.Helper()
	us := strconv.FormatInt(d.Microseconds(), 10)
	cmd := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync",
		"-e", "inject=fsync,fdatasync:delay_enter="+us, "-p", strconv.Itoa(p.Pid()))
	if err := cmd.Start(); err != nil {
		t.Fatalf("strace: %v", err)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // strace detaches, the process runs on
		_ = cmd.Wait()
	}
}

// Together is the faults at once, healed together after the longest hold.
func Together(fs ...Fault) Fault {
	c := Fault{}
	for i, f := range fs {
		if i > 0 {
			c.Name += " + "
		}
		c.Name += f.Name
		c.Hold = max(c.Hold, f.Hold)
		c.Broker = c.Broker || f.Broker
	}
	c.Inject = func(t testing.TB, s *Stack) func() {
		var heals []func()
		for _, f := range fs {
			heals = append(heals, f.Inject(t, s))
		}
		return func() {
			for i := len(heals) - 1; i >= 0; i-- { // the last injected is lifted first
				heals[i]()
			}
		}
	}
	return c
}

// hold is a fault's hold time (HavipdPause's follows the stack's TTLs).
func (f Fault) hold(s *Stack) time.Duration {
	if f.Hold > 0 {
		return f.Hold
	}
	return 2*s.Timings.ReservationTTL + time.Second
}
