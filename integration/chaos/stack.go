package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/pki"
)

// Binaries are the programs a stack runs, by name: etcd, ipamd, havipd, eipd, arpbrokerd.
type Binaries map[string]string

// Timings are the stack's short TTLs, so that faults outlast them within a test.
type Timings struct {
	ReservationTTL time.Duration // havipd's VIP reservations
	ElectionTTL    time.Duration // the broker leader's session
	HoldDown       time.Duration // the broker's least time between two owner changes
}

// Stack is a 3-member etcd cluster and 2 replicas of ipamd, havipd and eipd and 3 of
// arpbrokerd, each a process in a namespace of its own.
type Stack struct {
	Lab     *Lab
	Etcd    []*Proc
	Peers   []*Proxy // each member's peer traffic goes through one (latency faults)
	Procs   map[string]*Proc
	Timings Timings
	// Etcd's client endpoints, and a client from the root namespace for the checks.
	Endpoints []string
	Cli       *clientv3.Client
	certs     string
}

// Services are the replicas a stack runs, in start order.
var Services = []string{"ipamd-1", "ipamd-2", "havipd-1", "havipd-2", "eipd-1", "eipd-2", "arpbrokerd-1", "arpbrokerd-2", "arpbrokerd-3"}

// ServiceOf is the service a replica name belongs to ("havipd" of "havipd-2").
func ServiceOf(replica string) string { s, _, _ := strings.Cut(replica, "-"); return s }

// NewStack starts the stack and waits until every process serves.
func NewStack(t testing.TB, bins Binaries, tm Timings) *Stack {
	t.Helper()
	s := &Stack{Lab: NewLab(t), Procs: map[string]*Proc{}, Timings: tm, certs: t.TempDir()}
	if err := pki.WriteFile(filepath.Join(s.certs, pki.CACert), mtlstest.CA(t).PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	var initial []string
	for i := range 3 {
		n := s.Lab.Node(fmt.Sprintf("etcd-%d", i+1))
		nodes = append(nodes, n)
		p := NewProxy(t, net.JoinHostPort(s.Lab.Root.String(), "0"), net.JoinHostPort(n.IP.String(), "2380"))
		s.Peers = append(s.Peers, p)
		initial = append(initial, fmt.Sprintf("%s=http://%s", n.Name, p.Addr()))
		s.Endpoints = append(s.Endpoints, "http://"+net.JoinHostPort(n.IP.String(), "2379"))
	}
	for i, n := range nodes {
		dir := filepath.Join(t.TempDir(), "data")
		args := []string{"--name", n.Name, "--data-dir", dir,
			"--listen-client-urls", s.Endpoints[i], "--advertise-client-urls", s.Endpoints[i],
			"--listen-peer-urls", "http://" + net.JoinHostPort(n.IP.String(), "2380"),
			"--initial-advertise-peer-urls", "http://" + s.Peers[i].Addr(),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "chaos-" + s.Lab.id,
			"--heartbeat-interval", "100", "--election-timeout", "1000",
			"--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1m",
			"--log-level", "warn"}
		s.Etcd = append(s.Etcd, n.Start(t, n.Name, bins["etcd"], args, nil))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	s.Cli = cli
	s.await(t, "etcd", func(ctx context.Context) error { _, err := cli.Put(ctx, "/chaos/ready", "1"); return err })

	ips := map[string][]string{} // service → its replicas' addresses, which its certificate is valid for
	for _, name := range Services {
		n := s.Lab.Node(name)
		ips[ServiceOf(name)] = append(ips[ServiceOf(name)], n.IP.String())
	}
	for _, name := range Services {
		n := s.Lab.nodes[s.nodeIndex(name)]
		svc := ServiceOf(name)
		// A list of addresses dials each replica under the first one's name (grpcclient.NewClient),
		// as a DNS name of every replica would: the certificate of a service names all of them.
		f := s.issue(t, identity.ID{Kind: identity.Service, Name: svc}, name, ips[svc]...)
		env := []string{"HAVIP_GRPC_ADDR=" + s.addr(n), "HAVIP_ETCD_ENDPOINTS=" + strings.Join(s.Endpoints, ","), "HAVIP_INSECURE_ETCD=true",
			"HAVIP_METRICS_ADDR=off", "HAVIP_TLS_CA=" + f.CA, "HAVIP_TLS_CERT=" + f.Cert, "HAVIP_TLS_KEY=" + f.Key}
		switch svc {
		case "havipd":
			env = append(env, "HAVIP_IPAM_ADDR="+s.Addrs("ipamd"), fmt.Sprintf("HAVIP_RESERVATION_TTL=%s", tm.ReservationTTL))
		case "arpbrokerd":
			env = append(env, "HAVIP_ADVERTISE_ADDR="+s.addr(n), fmt.Sprintf("HAVIP_ARP_HOLD_DOWN=%s", tm.HoldDown), fmt.Sprintf("HAVIP_ARP_ELECTION_TTL=%s", tm.ElectionTTL))
		case "eipd":
			env = append(env, "HAVIP_EIP_POOLS=198.51.100.0/24")
		}
		s.Procs[name] = n.Start(t, name, bins[svc], nil, env)
	}
	for _, name := range Services {
		s.AwaitServing(t, name)
	}
	return s
}

func (s *Stack) addr(n *Node) string { return net.JoinHostPort(n.IP.String(), "50051") }

// Addr is where replica serves gRPC.
func (s *Stack) Addr(replica string) string { return s.addr(s.Procs[replica].Node) }

// Addrs lists where every replica of service serves, comma-separated (grpcclient.NewClient's list).
func (s *Stack) Addrs(service string) string {
	var out []string
	for _, name := range Services {
		if ServiceOf(name) == service {
			out = append(out, net.JoinHostPort(s.Lab.nodes[s.nodeIndex(name)].IP.String(), "50051"))
		}
	}
	return strings.Join(out, ",")
}

func (s *Stack) nodeIndex(name string) int {
	for i, n := range s.Lab.nodes {
		if n.Name == name {
			return i
		}
	}
	panic("no node " + name)
}

// issue writes a certificate for id, valid for hosts, under the stack's certificates directory.
func (s *Stack) issue(t testing.TB, id identity.ID, file string, hosts ...string) mtls.Files {
	t.Helper()
	leaf, err := mtlstest.CA(t).Issue(id, append(hosts, "127.0.0.1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := leaf.Write(s.certs, file); err != nil {
		t.Fatal(err)
	}
	return mtls.InDir(s.certs, file)
}

// Dial connects as id to target (an address, or a comma-separated list: round-robin).
func (s *Stack) Dial(t testing.TB, id identity.ID, target string) *grpc.ClientConn {
	t.Helper()
	src, err := mtls.Load(s.issue(t, id, strings.NewReplacer("/", "_", ":", "_").Replace(id.String())), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.NewClient(target, grpcclient.Options(src)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// AwaitServing waits until replica answers gRPC health SERVING.
func (s *Stack) AwaitServing(t testing.TB, replica string) {
	t.Helper()
	conn := s.Dial(t, mtlstest.Operator, s.Addr(replica))
	s.await(t, replica, func(ctx context.Context) error {
		if s.Procs[replica].Exited() {
			t.Fatalf("%s exited\n%s", replica, s.Procs[replica].Tail(30))
		}
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %v", r.GetStatus())
		}
		return err
	})
}

// await retries f (each try with a 2 s deadline) until it succeeds, for at most 60 s.
func (s *Stack) await(t testing.TB, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			var tails []string
			for _, p := range s.Etcd {
				tails = append(tails, p.Tail(10))
			}
			t.Fatalf("%s not ready after 60 s: %v\n%s", what, err, strings.Join(tails, "\n"))
		}
		time.Sleep(100 * time.Millisecond) // polling a process that is starting
	}
}

// EtcdLeader is the index of the member that leads (-1: none answers).
func (s *Stack) EtcdLeader(ctx context.Context) int {
	for i, ep := range s.Endpoints {
		st, err := s.Cli.Status(ctx, strings.TrimPrefix(ep, "http://"))
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// IPs are the addresses of the named nodes.
func (s *Stack) IPs(names ...string) []netip.Addr {
	var out []netip.Addr
	for _, n := range names {
		out = append(out, s.Lab.nodes[s.nodeIndex(n)].IP)
	}
	return out
}
