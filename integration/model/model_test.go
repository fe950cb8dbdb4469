package model_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"pgregory.net/rapid"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/invariant"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

var etcdEndpoint string

func TestMain(m *testing.M) {
	flag.Parse()
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["rapid.steps"] {
		_ = flag.Set("rapid.steps", "60") // the CI budget: 100 sequences of about 60 steps
	}
	os.Exit(etcdtest.Main(m, &etcdEndpoint))
}

// replica is one process's services: every service of the suite, as a replica of each.
type replica struct {
	ipam  ipamv1.IpamServiceClient
	havip havipv1.HaVipServiceClient
	eip   eipv1.EipServiceClient
	// agents are the broker as the agents of host-0 and host-1 call it, each with its own
	// certificate; probe as the agent of a host with no CVM.
	agents [2]arpbrokerv1.ArpBrokerServiceClient
	probe  arpbrokerv1.ArpBrokerServiceClient
	conn   *grpc.ClientConn
}

// env is what every sequence shares: two replicas of each service on one real etcd, a direct
// etcd client for the invariant checker, and a follower of the NAT rule stream.
type env struct {
	replicas [2]replica
	cli      *clientv3.Client
	nat      *invariant.NatFollower
	steps    atomic.Int64
	seqs     atomic.Int64
}

func newEnv(t *testing.T) *env {
	e := &env{cli: etcdtest.Client(t, etcdEndpoint)}
	for i := range e.replicas {
		conn, _ := etcdtest.Serve(t, etcdEndpoint,
			ipam.Module,
			service.Must(havip.NewModule(havip.Config{ReservationTTL: 2 * time.Second})),
			service.Must(arpbroker.NewModule(arpbroker.Config{HoldDown: 20 * time.Millisecond, ElectionTTL: 2 * time.Second})),
			service.Must(eip.NewModule(eip.Config{Pools: "198.51.100.0/26"})),
		)
		agent := func(host string) arpbrokerv1.ArpBrokerServiceClient {
			return arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(t, conn.Target(), mtlstest.Agent(host)))
		}
		e.replicas[i] = replica{ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn), eipv1.NewEipServiceClient(conn),
			[2]arpbrokerv1.ArpBrokerServiceClient{agent("host-0"), agent("host-1")}, agent("h"), conn}
	}
	e.nat = invariant.FollowNat(t, eipv1.NewNatRuleServiceClient(e.replicas[0].conn))
	return e
}

// outcomes counts each call's answers by code, to show in the log what a run exercised.
var outcomes sync.Map // "Call code" → *atomic.Int64

func tally(what string, err error) {
	v, _ := outcomes.LoadOrStore(what+" "+status.Code(err).String(), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func logOutcomes(t *testing.T) {
	var lines []string
	outcomes.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("%6d %s", v.(*atomic.Int64).Load(), k))
		return true
	})
	slices.Sort(lines)
	t.Logf("calls by answer:\n%s", strings.Join(lines, "\n"))
}

// TestModel drives random sequences of every public mutation of two accounts, some of them
// concurrent, against two replicas of every service on real etcd, and after every step checks
// the integrity invariants on etcd directly (not through the services). A failing sequence is
// shrunk by rapid and printed. The CI budget is set by -rapid.checks and -rapid.steps; `make
// soak` runs it for a duration.
func TestModel(t *testing.T) {
	e := newEnv(t)
	awaitBroker(t, e)
	start := time.Now()
	prop := func(rt *rapid.T) {
		w := newWorld(rt, e)
		e.seqs.Add(1)
		rt.Repeat(w.actions())
	}
	defer func() {
		t.Logf("model: %d sequences, %d steps in %v", e.seqs.Load(), e.steps.Load(), time.Since(start).Round(time.Second))
		logOutcomes(t)
	}()
	if *soak == 0 {
		rapid.Check(t, prop) // the CI budget: -rapid.checks sequences of about -rapid.steps steps
		return
	}
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak for %v from seed %d (rerun with -model.seed=%d)", *soak, seed, seed)
	for round := uint64(0); time.Since(start) < *soak; round++ {
		if err := flag.Set("rapid.seed", fmt.Sprint(seed+round<<32)); err != nil {
			t.Fatal(err)
		}
		rapid.Check(t, prop) // on a failure, rapid prints the -rapid.seed that replays it
	}
}

var (
	soak     = flag.Duration("model.soak", 0, "run TestModel for this long, in rounds of -rapid.checks sequences (0: one round)")
	soakSeed = flag.Uint64("model.seed", 0, "the first seed of a soak (0: from the clock); the log prints it")
)

// awaitBroker waits until a broker replica decides claims.
func awaitBroker(t *testing.T, e *env) {
	ctx := tenant.Outgoing(context.Background(), "acct-model-probe")
	for deadline := time.Now().Add(20 * time.Second); ; {
		s, err := e.replicas[0].probe.OpenSession(ctx, &arpbrokerv1.OpenSessionRequest{AgentId: "probe", HostId: "h", TtlSeconds: 5})
		if err == nil {
			_, err = e.replicas[1].probe.ReportArpAnnouncement(ctx, &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: "probe", SessionId: s.GetSessionId(),
				NetworkInterfaceId: "eni-00000000", EthernetSourceMac: "02:00:00:00:00:00", SenderMac: "02:00:00:00:00:00", SenderIp: "10.9.9.9", TargetIp: "10.9.9.9", Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST})
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker leader: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for the election
	}
}

// The handles of what a sequence created, so that steps pick real IDs more often than not.
type (
	vpcH struct {
		acct int
		id   string
	}
	subnetH struct {
		acct    int
		id, vpc string
		prefix  netip.Prefix
	}
	insH struct {
		acct                int
		id, subnet, primary string
	}
	eniH struct {
		acct                     int
		id, mac, ip, subnet, vpc string
	}
	havipH struct {
		acct            int
		id, vip, subnet string
	}
	eipH struct {
		acct   int
		id, ip string
	}
	resvH struct {
		acct              int
		subnet, ip, token string
	}
)

// world is one sequence: two fresh accounts and what they created.
type world struct {
	e     *env
	accts [2]string

	mu        sync.Mutex
	vpcs      []vpcH
	subnets   []subnetH
	instances []insH
	enis      []eniH
	havips    []havipH
	eips      []eipH
	resvs     []resvH
	sessions  [2]int64
}

const agentOf = "agent-"

func newWorld(t *rapid.T, e *env) *world {
	wipe(t, e.cli)
	w := &world{e: e}
	suffix := ids.New("")
	w.accts = [2]string{"acct-a" + suffix, "acct-b" + suffix}
	for i := range w.sessions {
		w.sessions[i] = w.openSession(t, i)
	}
	for acct := range w.accts {
		w.seed(t, acct)
	}
	return w
}

// seed gives an account what most steps act on, so that sequences reach deep states: a VPC, a
// subnet, two CVMs on two hosts, each with a secondary ENI, and two HAVIPs (a CVM range and an
// ENI range).
func (w *world) seed(t *rapid.T, acct int) {
	ctx, rep := w.ctx(acct), w.e.replicas[acct]
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("seed: %s: %v", what, err)
		}
	}
	v, err := rep.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})
	must("CreateVpc", err)
	vpc := v.GetVpc().GetVpcId()
	w.vpcs = append(w.vpcs, vpcH{acct, vpc})
	prefix := netip.MustParsePrefix("10.0.9.0/28")
	sn, err := rep.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: prefix.String()})
	must("CreateSubnet", err)
	subnet := sn.GetSubnet().GetSubnetId()
	w.subnets = append(w.subnets, subnetH{acct, subnet, vpc, prefix})
	var cvms, secondaries []*havipv1.HaVipAssociation
	for host := range 2 {
		i, err := rep.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: subnet, HostId: fmt.Sprint("host-", host)})
		must("CreateInstance", err)
		p := i.GetPrimaryNetworkInterface()
		w.instances = append(w.instances, insH{acct, i.GetInstance().GetInstanceId(), subnet, p.GetNetworkInterfaceId()})
		w.enis = append(w.enis, eniH{acct, p.GetNetworkInterfaceId(), p.GetMacAddress(), p.GetPrimaryIpAddress(), subnet, vpc})
		e, err := rep.ipam.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: subnet, NetworkInterfaceName: "e"})
		must("CreateNetworkInterface", err)
		n := e.GetNetworkInterface()
		w.enis = append(w.enis, eniH{acct, n.GetNetworkInterfaceId(), n.GetMacAddress(), n.GetPrimaryIpAddress(), subnet, vpc})
		_, err = rep.ipam.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: n.GetNetworkInterfaceId(), InstanceId: i.GetInstance().GetInstanceId()})
		must("AttachNetworkInterface", err)
		cvms = append(cvms, &havipv1.HaVipAssociation{InstanceId: i.GetInstance().GetInstanceId(), InstanceType: "CVM"})
		secondaries = append(secondaries, &havipv1.HaVipAssociation{InstanceId: n.GetNetworkInterfaceId(), InstanceType: "ENI"})
	}
	for _, r := range [][]*havipv1.HaVipAssociation{cvms, secondaries} {
		h, err := rep.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h", HavipAssociationSet: r})
		must("CreateHaVip", err)
		w.havips = append(w.havips, havipH{acct, h.GetHavip().GetHavipId(), h.GetHavip().GetVip(), subnet})
	}
}

// wipe deletes the previous sequence's state (all but the broker election and the EIP ID
// counter), so that each sequence starts empty and the checker reads only its own records, and
// compacts etcd's history, so that a long soak does not slow down on deleted keys.
func wipe(t *rapid.T, cli *clientv3.Client) {
	var rev int64
	for _, p := range []string{"/havip/ipam/", "/havip/havip/", "/havip/eip/ip/", "/havip/eip/token/", "/havip/eip/eni-binding/", "/havip/arp/owner/", "/havip/arp/rejection/", "/havip/arp/session/"} {
		resp, err := cli.Delete(context.Background(), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := cli.Compact(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
}

func (w *world) ctx(acct int) context.Context {
	return tenant.Outgoing(context.Background(), w.accts[acct])
}

func (w *world) openSession(t *rapid.T, agent int) int64 {
	r, err := w.e.replicas[agent].agents[agent].OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: fmt.Sprint(agentOf, agent), HostId: fmt.Sprint("host-", agent), TtlSeconds: 30})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	return r.GetSessionId()
}

// call runs a service call: a refusal is fine (the invariants judge the state), but an
// internal error is a defect.
func call(t *rapid.T, what string, err error) bool {
	tally(what, err)
	if err == nil {
		return true
	}
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		t.Fatalf("%s: %v", what, err)
	}
	return false
}

func pick[T any](t *rapid.T, name string, w *world, list *[]T) (T, bool) {
	w.mu.Lock()
	n := len(*list)
	w.mu.Unlock()
	if n == 0 {
		var zero T
		return zero, false
	}
	i := rapid.IntRange(0, n-1).Draw(t, name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if i >= len(*list) {
		var zero T
		return zero, false
	}
	return (*list)[i], true
}

func remove[T any](w *world, list *[]T, match func(T) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = slices.DeleteFunc(*list, match)
}

func add[T any](w *world, list *[]T, v T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = append(*list, v)
}

// step draws a step's arguments (with t, on the test's goroutine) and returns the call that
// runs it, so that several steps can run concurrently.
type step func(t *rapid.T) func(t *rapid.T)

func (w *world) actions() map[string]func(*rapid.T) {
	steps := w.steps()
	for name, n := range map[string]int{"claim": 6, "bindEip": 2, "associateHaVipInstance": 2, "disassociateHaVipInstance": 2, "detach": 2, "attach": 2, "createHaVip": 2} {
		for i := 2; i <= n; i++ { // rapid picks steps uniformly: the ones that move ownership weigh more
			steps[fmt.Sprint(name, " #", i)] = steps[name]
		}
	}
	out := map[string]func(*rapid.T){}
	names := make([]string, 0, len(steps))
	for name, s := range steps {
		names = append(names, name)
		out[name] = func(t *rapid.T) {
			run := s(t)
			if run == nil {
				t.Skip("nothing to act on")
			}
			run(t)
			w.e.steps.Add(1)
		}
	}
	slices.Sort(names)
	out["concurrently"] = func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "concurrent steps")
		var runs []func(*rapid.T)
		for i := range n {
			name := rapid.SampledFrom(names).Draw(t, fmt.Sprint("concurrent step ", i))
			if run := steps[name](t); run != nil {
				runs = append(runs, run)
			}
		}
		var (
			wg     sync.WaitGroup
			failed = make(chan any, len(runs))
		)
		for _, run := range runs {
			wg.Go(func() {
				defer func() { // a failure (rapid panics) is raised again on the test's goroutine
					if r := recover(); r != nil {
						failed <- r
					}
				}()
				run(t)
			})
		}
		wg.Wait()
		close(failed)
		if r, ok := <-failed; ok {
			panic(r)
		}
		w.e.steps.Add(int64(len(runs)))
	}
	out[""] = w.check
	return out
}

func (w *world) steps() map[string]step {
	r := func(t *rapid.T) replica { return w.e.replicas[rapid.IntRange(0, 1).Draw(t, "replica")] }
	caller := func(t *rapid.T, owner int) int { // mostly the owner, sometimes the other account
		if rapid.IntRange(0, 9).Draw(t, "cross-account") == 0 {
			return 1 - owner
		}
		return owner
	}
	return map[string]step{
		"createVpc": func(t *rapid.T) func(*rapid.T) {
			acct := rapid.IntRange(0, 1).Draw(t, "account")
			cidr := rapid.SampledFrom([]string{"10.0.0.0/16", "10.1.0.0/16"}).Draw(t, "cidr")
			rep := r(t)
			return func(t *rapid.T) {
				if v, err := rep.ipam.CreateVpc(w.ctx(acct), &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: cidr}); call(t, "CreateVpc", err) {
					add(w, &w.vpcs, vpcH{acct, v.GetVpc().GetVpcId()})
				}
			}
		},
		"deleteVpc": func(t *rapid.T) func(*rapid.T) {
			v, ok := pick(t, "vpc", w, &w.vpcs)
			if !ok {
				return nil
			}
			acct, rep := caller(t, v.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.ipam.DeleteVpc(w.ctx(acct), &ipamv1.DeleteVpcRequest{VpcId: v.id}); call(t, "DeleteVpc", err) {
					remove(w, &w.vpcs, func(x vpcH) bool { return x.id == v.id })
				}
			}
		},
		"createSubnet": func(t *rapid.T) func(*rapid.T) {
			v, ok := pick(t, "vpc", w, &w.vpcs)
			if !ok {
				return nil
			}
			third := rapid.IntRange(0, 2).Draw(t, "subnet")
			rep := r(t)
			return func(t *rapid.T) {
				resp, err := rep.ipam.DescribeVpcs(w.ctx(v.acct), &ipamv1.DescribeVpcsRequest{VpcIds: []string{v.id}})
				if !call(t, "DescribeVpcs", err) || len(resp.GetVpcSet()) == 0 {
					return
				}
				vp := netip.MustParsePrefix(resp.GetVpcSet()[0].GetCidrBlock()).Addr().As4()
				cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{vp[0], vp[1], byte(third), 0}), 28)
				if s, err := rep.ipam.CreateSubnet(w.ctx(v.acct), &ipamv1.CreateSubnetRequest{VpcId: v.id, SubnetName: "s", CidrBlock: cidr.String()}); call(t, "CreateSubnet", err) {
					add(w, &w.subnets, subnetH{v.acct, s.GetSubnet().GetSubnetId(), v.id, cidr})
				}
			}
		},
		"deleteSubnet": func(t *rapid.T) func(*rapid.T) {
			s, ok := pick(t, "subnet", w, &w.subnets)
			if !ok {
				return nil
			}
			acct, rep := caller(t, s.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.ipam.DeleteSubnet(w.ctx(acct), &ipamv1.DeleteSubnetRequest{SubnetId: s.id}); call(t, "DeleteSubnet", err) {
					remove(w, &w.subnets, func(x subnetH) bool { return x.id == s.id })
				}
			}
		},
		"createInstance": func(t *rapid.T) func(*rapid.T) {
			s, ok := pick(t, "subnet", w, &w.subnets)
			if !ok {
				return nil
			}
			host := rapid.SampledFrom([]string{"host-0", "host-1"}).Draw(t, "host")
			rep := r(t)
			return func(t *rapid.T) {
				if i, err := rep.ipam.CreateInstance(w.ctx(s.acct), &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: s.id, HostId: host}); call(t, "CreateInstance", err) {
					p := i.GetPrimaryNetworkInterface()
					add(w, &w.instances, insH{s.acct, i.GetInstance().GetInstanceId(), s.id, p.GetNetworkInterfaceId()})
					add(w, &w.enis, eniH{s.acct, p.GetNetworkInterfaceId(), p.GetMacAddress(), p.GetPrimaryIpAddress(), s.id, s.vpc})
				}
			}
		},
		"createNetworkInterface": func(t *rapid.T) func(*rapid.T) {
			s, ok := pick(t, "subnet", w, &w.subnets)
			if !ok {
				return nil
			}
			rep := r(t)
			return func(t *rapid.T) {
				if e, err := rep.ipam.CreateNetworkInterface(w.ctx(s.acct), &ipamv1.CreateNetworkInterfaceRequest{SubnetId: s.id, NetworkInterfaceName: "e"}); call(t, "CreateNetworkInterface", err) {
					n := e.GetNetworkInterface()
					add(w, &w.enis, eniH{s.acct, n.GetNetworkInterfaceId(), n.GetMacAddress(), n.GetPrimaryIpAddress(), s.id, s.vpc})
				}
			}
		},
		"deleteInstance": func(t *rapid.T) func(*rapid.T) {
			i, ok := pick(t, "instance", w, &w.instances)
			if !ok {
				return nil
			}
			acct, rep := caller(t, i.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.ipam.DeleteInstance(w.ctx(acct), &ipamv1.DeleteInstanceRequest{InstanceId: i.id}); call(t, "DeleteInstance", err) {
					remove(w, &w.instances, func(x insH) bool { return x.id == i.id })
					remove(w, &w.enis, func(x eniH) bool { return x.id == i.primary })
				}
			}
		},
		"deleteNetworkInterface": func(t *rapid.T) func(*rapid.T) {
			e, ok := pick(t, "eni", w, &w.enis)
			if !ok {
				return nil
			}
			acct, rep := caller(t, e.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.ipam.DeleteNetworkInterface(w.ctx(acct), &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: e.id}); call(t, "DeleteNetworkInterface", err) {
					remove(w, &w.enis, func(x eniH) bool { return x.id == e.id })
				}
			}
		},
		"attach": func(t *rapid.T) func(*rapid.T) {
			e, ok1 := pick(t, "eni", w, &w.enis)
			i, ok2 := pick(t, "instance", w, &w.instances)
			if !ok1 || !ok2 {
				return nil
			}
			acct, rep := caller(t, e.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.ipam.AttachNetworkInterface(w.ctx(acct), &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: e.id, InstanceId: i.id})
				call(t, "AttachNetworkInterface", err)
			}
		},
		"detach": func(t *rapid.T) func(*rapid.T) {
			e, ok := pick(t, "eni", w, &w.enis)
			if !ok {
				return nil
			}
			acct, rep := caller(t, e.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.ipam.DetachNetworkInterface(w.ctx(acct), &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: e.id})
				call(t, "DetachNetworkInterface", err)
			}
		},
		"allocatePrivateIp": func(t *rapid.T) func(*rapid.T) {
			s, ok := pick(t, "subnet", w, &w.subnets)
			if !ok {
				return nil
			}
			acct, rep := caller(t, s.acct), r(t)
			owners := []string{"", "label", "eni-aaaaaaaa", "havip-aaaaaaaa"}
			w.mu.Lock()
			for _, e := range w.enis {
				owners = append(owners, e.id)
			}
			for _, h := range w.havips {
				owners = append(owners, h.id)
			}
			w.mu.Unlock()
			owner := rapid.SampledFrom(owners).Draw(t, "owner")
			ttl := rapid.SampledFrom([]uint32{0, 0, 2}).Draw(t, "ttl")
			ip := ""
			if rapid.Bool().Draw(t, "manual") {
				ip = w.addrIn(t, s)
			}
			return func(t *rapid.T) {
				a, err := rep.ipam.AllocatePrivateIpAddress(w.ctx(acct), &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: s.id, IpAddress: ip, Owner: owner, ReservationTtlSeconds: ttl})
				ok := call(t, "AllocatePrivateIpAddress", err)
				if ok {
					add(w, &w.resvs, resvH{acct, s.id, a.GetAddress().GetIpAddress(), a.GetAddress().GetReservationToken()})
				}
			}
		},
		"commitPrivateIp": func(t *rapid.T) func(*rapid.T) {
			a, ok := pick(t, "allocation", w, &w.resvs)
			if !ok {
				return nil
			}
			acct, rep := caller(t, a.acct), r(t)
			owner := rapid.SampledFrom([]string{"label", "eni-aaaaaaaa"}).Draw(t, "owner")
			return func(t *rapid.T) {
				_, err := rep.ipam.CommitPrivateIpAddress(w.ctx(acct), &ipamv1.CommitPrivateIpAddressRequest{SubnetId: a.subnet, IpAddress: a.ip, ReservationToken: a.token, Owner: owner})
				call(t, "CommitPrivateIpAddress", err)
			}
		},
		"releasePrivateIp": func(t *rapid.T) func(*rapid.T) {
			// Any address: an allocation, an ENI's primary IP, a HAVIP's VIP.
			type target struct {
				acct       int
				subnet, ip string
			}
			var ts []target
			w.mu.Lock()
			for _, a := range w.resvs {
				ts = append(ts, target{a.acct, a.subnet, a.ip})
			}
			for _, e := range w.enis {
				ts = append(ts, target{e.acct, e.subnet, e.ip})
			}
			for _, h := range w.havips {
				ts = append(ts, target{h.acct, h.subnet, h.vip})
			}
			w.mu.Unlock()
			if len(ts) == 0 {
				return nil
			}
			tg := rapid.SampledFrom(ts).Draw(t, "address")
			acct, rep := caller(t, tg.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.ipam.ReleasePrivateIpAddress(w.ctx(acct), &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: tg.subnet, IpAddress: tg.ip})
				call(t, "ReleasePrivateIpAddress", err)
			}
		},
		"createHaVip": func(t *rapid.T) func(*rapid.T) {
			s, ok := pick(t, "subnet", w, &w.subnets)
			if !ok {
				return nil
			}
			acct, rep := caller(t, s.acct), r(t)
			vip := ""
			if rapid.IntRange(0, 3).Draw(t, "manual vip") == 0 {
				vip = w.addrIn(t, s)
			}
			req := &havipv1.CreateHaVipRequest{VpcId: s.vpc, SubnetId: s.id, HavipName: "h", Vip: vip, HavipAssociationSet: w.rangeEntries(t)}
			if rapid.IntRange(0, 3).Draw(t, "check off") == 0 {
				off := false
				req.CheckAssociate = &off
			}
			return func(t *rapid.T) {
				if h, err := rep.havip.CreateHaVip(w.ctx(acct), req); call(t, "CreateHaVip", err) {
					add(w, &w.havips, havipH{acct, h.GetHavip().GetHavipId(), h.GetHavip().GetVip(), s.id})
				}
			}
		},
		"modifyHaVip": func(t *rapid.T) func(*rapid.T) {
			h, ok := pick(t, "havip", w, &w.havips)
			if !ok {
				return nil
			}
			acct, rep := caller(t, h.acct), r(t)
			check := rapid.Bool().Draw(t, "check_associate")
			return func(t *rapid.T) {
				_, err := rep.havip.ModifyHaVipAttribute(w.ctx(acct), &havipv1.ModifyHaVipAttributeRequest{HavipId: h.id, CheckAssociate: &check})
				call(t, "ModifyHaVipAttribute", err)
			}
		},
		"deleteHaVip": func(t *rapid.T) func(*rapid.T) {
			h, ok := pick(t, "havip", w, &w.havips)
			if !ok {
				return nil
			}
			acct, rep := caller(t, h.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.havip.DeleteHaVip(w.ctx(acct), &havipv1.DeleteHaVipRequest{HavipId: h.id}); call(t, "DeleteHaVip", err) {
					remove(w, &w.havips, func(x havipH) bool { return x.id == h.id })
				}
			}
		},
		"associateHaVipInstance": func(t *rapid.T) func(*rapid.T) {
			h, ok := pick(t, "havip", w, &w.havips)
			if !ok {
				return nil
			}
			acct, rep, entries := caller(t, h.acct), r(t), w.rangeEntries(t)
			return func(t *rapid.T) {
				_, err := rep.havip.AssociateHaVipInstance(w.ctx(acct), &havipv1.AssociateHaVipInstanceRequest{HavipId: h.id, HavipAssociationSet: entries})
				call(t, "AssociateHaVipInstance", err)
			}
		},
		"disassociateHaVipInstance": func(t *rapid.T) func(*rapid.T) {
			h, ok := pick(t, "havip", w, &w.havips)
			if !ok {
				return nil
			}
			acct, rep, entries := caller(t, h.acct), r(t), w.rangeEntries(t)
			return func(t *rapid.T) {
				_, err := rep.havip.DisassociateHaVipInstance(w.ctx(acct), &havipv1.DisassociateHaVipInstanceRequest{HavipId: h.id, HavipAssociationSet: entries})
				call(t, "DisassociateHaVipInstance", err)
			}
		},
		"allocateAddresses": func(t *rapid.T) func(*rapid.T) {
			acct := rapid.IntRange(0, 1).Draw(t, "account")
			n := rapid.IntRange(1, 2).Draw(t, "count")
			token := rapid.SampledFrom([]string{"", "", "tok"}).Draw(t, "client token")
			rep := r(t)
			return func(t *rapid.T) {
				if a, err := rep.eip.AllocateAddresses(w.ctx(acct), &eipv1.AllocateAddressesRequest{AddressCount: uint32(n), ClientToken: token}); call(t, "AllocateAddresses", err) {
					for _, x := range a.GetAddressSet() {
						add(w, &w.eips, eipH{acct, x.GetAddressId(), x.GetAddressIp()})
					}
				}
			}
		},
		"releaseAddresses": func(t *rapid.T) func(*rapid.T) {
			x, ok := pick(t, "eip", w, &w.eips)
			if !ok {
				return nil
			}
			acct, rep := caller(t, x.acct), r(t)
			return func(t *rapid.T) {
				if _, err := rep.eip.ReleaseAddresses(w.ctx(acct), &eipv1.ReleaseAddressesRequest{AddressIds: []string{x.id}}); call(t, "ReleaseAddresses", err) {
					remove(w, &w.eips, func(y eipH) bool { return y.id == x.id })
				}
			}
		},
		"associateAddress": func(t *rapid.T) func(*rapid.T) {
			x, ok1 := pick(t, "eip", w, &w.eips)
			e, ok2 := pick(t, "eni", w, &w.enis)
			if !ok1 || !ok2 {
				return nil
			}
			acct, rep := caller(t, x.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.eip.AssociateAddress(w.ctx(acct), &eipv1.AssociateAddressRequest{AddressId: x.id, NetworkInterfaceId: e.id, PrivateIpAddress: e.ip})
				call(t, "AssociateAddress", err)
			}
		},
		"disassociateAddress": func(t *rapid.T) func(*rapid.T) {
			x, ok := pick(t, "eip", w, &w.eips)
			if !ok {
				return nil
			}
			acct, rep := caller(t, x.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.eip.DisassociateAddress(w.ctx(acct), &eipv1.DisassociateAddressRequest{AddressId: x.id})
				call(t, "DisassociateAddress", err)
			}
		},
		"bindEip": func(t *rapid.T) func(*rapid.T) {
			x, ok1 := pick(t, "eip", w, &w.eips)
			h, ok2 := pick(t, "havip", w, &w.havips)
			if !ok1 || !ok2 {
				return nil
			}
			acct, rep := caller(t, h.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.havip.HaVipAssociateAddressIp(w.ctx(acct), &havipv1.HaVipAssociateAddressIpRequest{HavipId: h.id, AddressIp: x.ip})
				call(t, "HaVipAssociateAddressIp", err)
			}
		},
		"unbindEip": func(t *rapid.T) func(*rapid.T) {
			h, ok := pick(t, "havip", w, &w.havips)
			if !ok {
				return nil
			}
			acct, rep := caller(t, h.acct), r(t)
			return func(t *rapid.T) {
				_, err := rep.havip.HaVipDisassociateAddressIp(w.ctx(acct), &havipv1.HaVipDisassociateAddressIpRequest{HavipId: h.id})
				call(t, "HaVipDisassociateAddressIp", err)
			}
		},
		"claim": func(t *rapid.T) func(*rapid.T) {
			e, ok1 := pick(t, "eni", w, &w.enis)
			h, ok2 := pick(t, "havip", w, &w.havips)
			if !ok1 || !ok2 {
				return nil
			}
			if h.acct != e.acct && rapid.IntRange(0, 3).Draw(t, "keep cross-account claim") != 0 {
				return nil
			}
			kind := rapid.SampledFrom([]string{"valid", "valid", "valid", "valid", "another host's agent", "spoofed mac", "no session", "unknown session", "other agent's session", "stolen session", "not gratuitous"}).Draw(t, "claim kind")
			agent := w.hostOf(t, e.id) // the agent of the host the ENI is on
			if agent < 0 || kind == "another host's agent" {
				agent = rapid.IntRange(0, 1).Draw(t, "agent")
			}
			rep := r(t)
			w.mu.Lock()
			sess := w.sessions[agent]
			w.mu.Unlock()
			req := &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: fmt.Sprint(agentOf, agent), SessionId: sess, NetworkInterfaceId: e.id,
				EthernetSourceMac: e.mac, SenderMac: e.mac, SenderIp: h.vip, TargetIp: h.vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST}
			caller := agent // whose certificate the call is made with
			switch kind {
			case "spoofed mac":
				req.SenderMac, req.EthernetSourceMac = "02:00:00:00:00:99", "02:00:00:00:00:99"
			case "no session":
				req.SessionId = 0
			case "unknown session":
				req.SessionId = 0x7fff00000001
			case "other agent's session":
				req.AgentId, caller = fmt.Sprint(agentOf, 1-agent), 1-agent
			case "stolen session": // another host's agent reports under this one's session, in its name
				caller = 1 - agent
			case "not gratuitous":
				req.TargetIp = e.ip
			}
			return func(t *rapid.T) {
				_, err := rep.agents[caller].ReportArpAnnouncement(context.Background(), req)
				call(t, "ReportArpAnnouncement", err)
			}
		},
		"sessionLapse": func(t *rapid.T) func(*rapid.T) {
			agent := rapid.IntRange(0, 1).Draw(t, "agent")
			return func(t *rapid.T) {
				w.mu.Lock()
				sess := w.sessions[agent]
				w.mu.Unlock()
				// The agent dies: its session's lease ends, with every ownership it held.
				if _, err := w.e.cli.Revoke(context.Background(), clientv3.LeaseID(sess)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
					t.Fatalf("revoke session: %v", err)
				}
				s := w.openSession(t, agent) // and comes back
				w.mu.Lock()
				w.sessions[agent] = s
				w.mu.Unlock()
			}
		},
	}
}

// hostOf returns the number of the host an ENI's CVM is on now (agent i serves host-i), or -1.
func (w *world) hostOf(t *rapid.T, eniID string) int {
	e, err := get[records.NetworkInterface](w.e.cli, records.NetworkInterfaceKey(eniID))
	if err != nil || e.InstanceID == "" {
		return -1
	}
	i, err := get[records.Instance](w.e.cli, records.InstanceKey(e.InstanceID))
	if err != nil {
		return -1
	}
	for n := range w.sessions {
		if i.HostID == fmt.Sprint("host-", n) {
			return n
		}
	}
	return -1
}

func get[T any](cli *clientv3.Client, key string) (T, error) {
	var zero T
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return zero, fmt.Errorf("%s: not found", key)
	}
	return kvcache.DecodeJSON[T](key, resp.Kvs[0].Value)
}

// addrIn draws an address of s: mostly one in use or usable, sometimes a reserved one.
func (w *world) addrIn(t *rapid.T, s subnetH) string {
	off := rapid.IntRange(0, 15).Draw(t, "address offset")
	a := s.prefix.Addr().As4()
	a[3] += byte(off)
	return netip.AddrFrom4(a).String()
}

// rangeEntries draws 1 to 3 switch-range entries: instances or ENIs, mixed now and then.
func (w *world) rangeEntries(t *rapid.T) []*havipv1.HaVipAssociation {
	var cands []*havipv1.HaVipAssociation
	w.mu.Lock()
	for _, i := range w.instances {
		cands = append(cands, &havipv1.HaVipAssociation{InstanceId: i.id, InstanceType: "CVM"})
	}
	for _, e := range w.enis {
		cands = append(cands, &havipv1.HaVipAssociation{InstanceId: e.id, InstanceType: "ENI"})
	}
	w.mu.Unlock()
	if len(cands) == 0 {
		return nil
	}
	n := rapid.IntRange(0, min(3, len(cands))).Draw(t, "range entries")
	mixed := rapid.IntRange(0, 9).Draw(t, "mixed types") == 0 // refused, but tried
	var out []*havipv1.HaVipAssociation
	for i := range n {
		e := rapid.SampledFrom(cands).Draw(t, fmt.Sprint("range entry ", i))
		if mixed || len(out) == 0 || e.GetInstanceType() == out[0].GetInstanceType() {
			out = append(out, e)
		}
	}
	return out
}

// check verifies the invariants on etcd after a step. What the broker does after a change
// (revoking an owner that lost its right) and what the NAT stream shows follow within a
// second, so a violation must last that long to count.
func (w *world) check(t *rapid.T) {
	s, err := invariant.Read(context.Background(), w.e.cli)
	if err != nil {
		t.Fatal(err)
	}
	// What one transaction keeps holds at every revision: checked at once.
	if err := s.Strict(); err != nil {
		t.Fatalf("invariant broken: %v", err)
	}
	// What follows a change — the broker revoking an owner, the NAT stream, a count that a lapsing
	// reservation changes between two reads — must hold within a second and a half.
	var last error
	for deadline := time.Now().Add(1500 * time.Millisecond); ; {
		if last = w.eventually(s); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invariant broken: %v", last)
		}
		time.Sleep(20 * time.Millisecond) // awaiting the broker, the NAT stream or a lease
		if s, err = invariant.Read(context.Background(), w.e.cli); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually returns the first of the invariants that follow a change that s breaks: owners,
// and the services' own answers (counts, NAT rules) against s.
func (w *world) eventually(s *invariant.State) error {
	if err := s.Owners(); err != nil {
		return err
	}
	// (c) each subnet's available count = usable − held, as the service answers it.
	for i := range w.accts {
		resp, err := w.e.replicas[i].ipam.DescribeSubnets(w.ctx(i), &ipamv1.DescribeSubnetsRequest{Limit: 100})
		if err != nil {
			return fmt.Errorf("DescribeSubnets: %w", err)
		}
		for _, sn := range resp.GetSubnetSet() {
			held := uint64(s.HeldIn(sn.GetSubnetId()))
			if sn.GetAvailableIpAddressCount() != sn.GetTotalIpAddressCount()-held {
				return fmt.Errorf("(c) subnet %s: available %d, but %d usable and %d held in etcd", sn.GetSubnetId(), sn.GetAvailableIpAddressCount(), sn.GetTotalIpAddressCount(), held)
			}
		}
	}
	// (f) the NAT rule stream equals what the state implies.
	return w.e.nat.Check(s)
}
