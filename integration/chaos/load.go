package chaos

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/invariant"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/tenant"
)

// Account is the tenant the load acts for.
const Account = "acct-chaos"

// callTimeout bounds each call of the load.
const callTimeout = 5 * time.Second

// maxLive bounds the HAVIPs the load keeps: past it, creates wait for deletes, so they go on
// for the whole run (about one call in twenty: a create for each delete) rather than stop once
// the subnet (a /22, 1,014 addresses for them) is full and refuses every one, halfway through.
const maxLive = 64

// Load is a mixed load on a stack and the history it records: HAVIP calls (creates with and
// without a client token, describes, renames, range edits, EIP binds and unbinds, deletes),
// and ARP claims from three hosts on the tracked HAVIPs, whose ownership three watchers (one
// per broker replica) follow.
type Load struct {
	s     *Stack
	start time.Time
	ipam  ipamv1.IpamServiceClient
	havip havipv1.HaVipServiceClient
	eip   eipv1.EipServiceClient

	vpc, subnet string
	extra       string   // the CVM range edits add and remove
	eips        []string // the public IPs binds pick from
	tracked     []*tracked
	hosts       []*host
	watchers    []arpbrokerv1.ArpBrokerServiceClient // one per broker replica
	nat         *invariant.NatFollower               // the NAT rules, as a data plane follows them from eipd

	mu      sync.Mutex
	hist    []porcupine.Operation // HAVIP calls
	claims  []claim
	reads   []porcupine.Operation // ownership reads (Describe)
	seen    []sighting
	latest  [3]map[string]sighting // per watcher, each HAVIP's newest ownership
	live    []string               // HAVIPs created and not known deleted
	tokens  map[string]string      // client token → the HAVIP it created
	created map[string]bool
	deleted map[string]bool // definitely deleted
	unknown int             // creates without an ID whose effect is unknown
	second  []counts        // per second since start: calls that succeeded and failed
	stop    chan struct{}
	wg      sync.WaitGroup
}

// counts are one second's calls.
type counts struct{ ok, failed int }

// tracked is a HAVIP whose ownership the claims move: its range is the CVMs of host-a and
// host-b; host-c's CVM is outside it.
type tracked struct {
	id, vip string
	master  atomic.Int32 // the host whose ENI announces now (0: a, 1: b)
	flap    atomic.Bool  // whether the master changes every few seconds
}

// host is a host agent: its CVM's ENI and MAC, and its session with the brokers.
type host struct {
	name, eni, mac string
	broker         arpbrokerv1.ArpBrokerServiceClient
	session        atomic.Int64
}

// claim is one ARP report and the broker's answer.
type claim struct {
	havip, eni string
	call, ret  int64
	result     arpbrokerv1.ClaimResult
	rev        int64
	err        error
}

// sighting is an ownership seen through a broker replica's WatchOwnership.
type sighting struct {
	watcher  int
	havip    string
	eni      string
	rev      int64
	at       int64
	snapshot bool
}

// NewLoad makes the load's fixtures through the API: a VPC, a subnet, a CVM on each of three
// hosts and a fourth for range edits, four EIPs and three tracked HAVIPs.
func NewLoad(t testing.TB, s *Stack) *Load {
	t.Helper()
	conn := s.Dial(t, mtlstest.Operator, s.Addrs("ipamd"))
	l := &Load{s: s, start: time.Now(), ipam: ipamv1.NewIpamServiceClient(conn),
		havip:  havipv1.NewHaVipServiceClient(s.Dial(t, mtlstest.Operator, s.Addrs("havipd"))),
		eip:    eipv1.NewEipServiceClient(s.Dial(t, mtlstest.Operator, s.Addrs("eipd"))),
		tokens: map[string]string{}, created: map[string]bool{}, deleted: map[string]bool{}, stop: make(chan struct{})}
	for i := range l.latest {
		l.latest[i] = map[string]sighting{}
	}
	ctx := l.ctx(t.Context())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vpc, err := l.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "chaos", CidrBlock: "10.0.0.0/16"})
	must(err)
	l.vpc = vpc.GetVpc().GetVpcId()
	sn, err := l.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: l.vpc, SubnetName: "chaos", CidrBlock: "10.0.0.0/22", Zone: "z1"})
	must(err)
	l.subnet = sn.GetSubnet().GetSubnetId()
	var cvms []string
	for _, h := range []string{"host-a", "host-b", "host-c", "host-x"} {
		ins, err := l.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "vm-" + h, SubnetId: l.subnet, HostId: h})
		must(err)
		cvms = append(cvms, ins.GetInstance().GetInstanceId())
		if h == "host-x" {
			l.extra = ins.GetInstance().GetInstanceId()
			continue
		}
		eni := ins.GetPrimaryNetworkInterface()
		hc := &host{name: h, eni: eni.GetNetworkInterfaceId(), mac: eni.GetMacAddress()}
		hc.broker = arpbrokerv1.NewArpBrokerServiceClient(s.Dial(t, mtlstest.Agent(h), s.Addrs("arpbrokerd")))
		l.hosts = append(l.hosts, hc)
	}
	eips, err := l.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 4, AddressName: "chaos"})
	must(err)
	for _, a := range eips.GetAddressSet() {
		l.eips = append(l.eips, a.GetAddressIp())
	}
	for i := range 3 {
		h, err := l.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: l.vpc, SubnetId: l.subnet, HavipName: fmt.Sprintf("tracked-%d", i),
			HavipAssociationSet: []*havipv1.HaVipAssociation{{InstanceId: cvms[0], InstanceType: "CVM"}, {InstanceId: cvms[1], InstanceType: "CVM"}}})
		must(err)
		tr := &tracked{id: h.GetHavip().GetHavipId(), vip: h.GetHavip().GetVip()}
		tr.master.Store(int32(i % 2))
		tr.flap.Store(true)
		l.tracked = append(l.tracked, tr)
	}
	for i := range 3 {
		conn := s.Dial(t, mtlstest.Agent("host-a"), s.Addr(fmt.Sprintf("arpbrokerd-%d", i+1)))
		l.watchers = append(l.watchers, arpbrokerv1.NewArpBrokerServiceClient(conn))
	}
	l.nat = invariant.FollowNat(t, eipv1.NewNatRuleServiceClient(s.Dial(t, mtlstest.DataPlane, s.Addrs("eipd"))))
	for _, h := range l.hosts {
		r, err := h.broker.OpenSession(t.Context(), &arpbrokerv1.OpenSessionRequest{AgentId: "agent-" + h.name, HostId: h.name, TtlSeconds: 10})
		must(err)
		h.session.Store(r.GetSessionId())
	}
	return l
}

func (l *Load) ctx(ctx context.Context) context.Context { return tenant.Outgoing(ctx, Account) }

// now is the time since the load started, the histories' clock.
func (l *Load) now() int64 { return int64(time.Since(l.start)) }

func (l *Load) count(ok bool) {
	sec := int(time.Since(l.start) / time.Second)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.second) <= sec {
		l.second = append(l.second, counts{})
	}
	if ok {
		l.second[sec].ok++
	} else {
		l.second[sec].failed++
	}
}

// Start runs workers HAVIP workers, the claim storm, the sessions and the watchers until Stop.
func (l *Load) Start(workers int) {
	for w := range workers {
		l.run(func(r *rand.Rand) { l.step(r, w) }, uint64(w))
	}
	for i, h := range l.hosts {
		l.run(func(r *rand.Rand) { l.claimStep(r, h) }, uint64(100+i))
		l.run(func(*rand.Rand) { l.keepAlive(h) }, 0)
	}
	for i := range 3 {
		l.run(func(*rand.Rand) { l.watch(i) }, 0)
	}
	l.run(func(r *rand.Rand) { l.flapStep(r) }, 200)
}

func (l *Load) run(f func(*rand.Rand), seed uint64) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		r := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			f(r)
		}
	}()
}

// Stop ends the load and waits for its calls to return.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// pause waits d, or less when the load stops.
func (l *Load) pause(d time.Duration) {
	select {
	case <-l.stop:
	case <-time.After(d):
	}
}

// step is one HAVIP call.
func (l *Load) step(r *rand.Rand, w int) {
	l.mu.Lock()
	live := slices.Clone(l.live)
	l.mu.Unlock()
	if len(live) < 6 || len(live) < maxLive && r.IntN(100) < 12 {
		l.create(r, w, r.IntN(3) > 0)
		return
	}
	id := live[r.IntN(len(live))]
	in := HaVipInput{ID: id}
	var out HaVipOutput
	call := l.now()
	ctx, cancel := context.WithTimeout(l.ctx(context.Background()), callTimeout)
	defer cancel()
	var err error
	switch n := r.IntN(100); {
	case n < 40:
		in.Op = OpDescribe
		var resp *havipv1.DescribeHaVipsResponse
		resp, err = l.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{id}})
		if err == nil {
			if len(resp.GetHavipSet()) == 0 {
				err = status.Error(codes.NotFound, "empty")
			} else {
				h := resp.GetHavipSet()[0]
				out = HaVipOutput{Name: h.GetHavipName(), EIP: h.GetAddressIp()}
				for _, a := range h.GetHavipAssociationSet() {
					out.Range = a.GetInstanceId()
				}
			}
		}
	case n < 60:
		in.Op, in.Arg = OpRename, fmt.Sprintf("n%d-%d", w, call)
		_, err = l.havip.ModifyHaVipAttribute(ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: id, HavipName: &in.Arg})
	case n < 72:
		in.Op = OpRange
		if r.IntN(2) == 0 {
			in.Arg = l.extra
			_, err = l.havip.AssociateHaVipInstance(ctx, &havipv1.AssociateHaVipInstanceRequest{HavipId: id, HavipAssociationSet: []*havipv1.HaVipAssociation{{InstanceId: l.extra, InstanceType: "CVM"}}})
		} else {
			_, err = l.havip.DisassociateHaVipInstance(ctx, &havipv1.DisassociateHaVipInstanceRequest{HavipId: id, HavipAssociationSet: []*havipv1.HaVipAssociation{{InstanceId: l.extra, InstanceType: "CVM"}}})
		}
	case n < 84:
		in.Op, in.Arg = OpBind, l.eips[r.IntN(len(l.eips))]
		_, err = l.havip.HaVipAssociateAddressIp(ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: id, AddressIp: in.Arg})
	case n < 94:
		in.Op = OpUnbind
		_, err = l.havip.HaVipDisassociateAddressIp(ctx, &havipv1.HaVipDisassociateAddressIpRequest{HavipId: id})
	default:
		in.Op = OpDelete
		_, err = l.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: id})
	}
	out.Outcome = OutcomeOf(err)
	l.count(out.Outcome != Unknown)
	if in.Op == OpDescribe && out.Outcome == Unknown {
		return // a read that failed says nothing
	}
	l.record(w, call, in, out)
	if in.Op == OpDelete && out.Outcome == OK || out.Outcome == NotFound {
		// Gone for good (an ID is never made again): deleted, or by a delete whose answer was lost.
		l.mu.Lock()
		if in.Op == OpDelete && out.Outcome == OK {
			l.deleted[id] = true
		}
		l.live = slices.DeleteFunc(l.live, func(x string) bool { return x == id })
		l.mu.Unlock()
	}
}

// record adds a HAVIP call to the history; one whose effect is unknown may take effect at
// any time after its call, so its return is the end of time.
func (l *Load) record(w int, call int64, in HaVipInput, out HaVipOutput) {
	ret := l.now()
	if out.Outcome == Unknown {
		ret = math.MaxInt64
	}
	l.mu.Lock()
	l.hist = append(l.hist, porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: ret})
	l.mu.Unlock()
}

// create makes a HAVIP; with a token, a call whose effect is unknown is repeated with the same
// token until it answers (as a client that wants exactly one HAVIP does).
func (l *Load) create(r *rand.Rand, w int, withToken bool) {
	req := &havipv1.CreateHaVipRequest{VpcId: l.vpc, SubnetId: l.subnet, HavipName: fmt.Sprintf("c%d-%d", w, r.Uint32())}
	if withToken {
		req.ClientToken = fmt.Sprintf("tok-%d-%d", w, r.Uint64())
	}
	call := l.now()
	var resp *havipv1.CreateHaVipResponse
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(l.ctx(context.Background()), callTimeout)
		resp, err = l.havip.CreateHaVip(ctx, req)
		cancel()
		l.count(OutcomeOf(err) != Unknown)
		if !withToken || OutcomeOf(err) != Unknown || time.Now().After(deadline) {
			break
		}
		l.pause(200 * time.Millisecond)
		select {
		case <-l.stop:
			deadline = time.Time{} // one last try
		default:
		}
	}
	switch OutcomeOf(err) {
	case OK:
	case Unknown:
		l.mu.Lock()
		l.unknown++
		l.mu.Unlock()
		return
	default:
		return // refused: nothing made, no ID
	}
	id := resp.GetHavip().GetHavipId()
	l.record(w, call, HaVipInput{ID: id, Op: OpCreate, Arg: req.GetHavipName()}, HaVipOutput{Outcome: OK})
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.ClientToken != "" {
		l.tokens[req.ClientToken] = id
	}
	l.created[id] = true
	l.live = append(l.live, id)
}

// claimStep is one ARP report of h: mostly the master's announcement of a tracked HAVIP, at
// times a backup's, and host-c's (outside the range) now and then.
func (l *Load) claimStep(r *rand.Rand, h *host) {
	l.pause(time.Duration(50+r.IntN(100)) * time.Millisecond)
	tr := l.tracked[r.IntN(len(l.tracked))]
	hi := slices.Index(l.hosts, h)
	if hi < 2 && int(tr.master.Load()) != hi && r.IntN(10) > 0 {
		return // a backup stays quiet, mostly
	}
	if hi == 2 && r.IntN(4) > 0 {
		return
	}
	call := l.now()
	// As an agent does: a report that takes more than a second is sent again (round-robin: to
	// the next broker replica), rather than holding up the host's next announcements.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := h.broker.ReportArpAnnouncement(ctx, &arpbrokerv1.ReportArpAnnouncementRequest{
		AgentId: "agent-" + h.name, SessionId: h.session.Load(), NetworkInterfaceId: h.eni,
		EthernetSourceMac: h.mac, SenderMac: h.mac, SenderIp: tr.vip, TargetIp: tr.vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST})
	c := claim{havip: tr.id, eni: h.eni, call: call, ret: l.now(), err: err, result: resp.GetResult(), rev: resp.GetRevision()}
	l.count(OutcomeOf(err) != Unknown)
	l.mu.Lock()
	l.claims = append(l.claims, c)
	l.mu.Unlock()
	if status.Code(err) == codes.NotFound {
		l.reopen(h) // the session lapsed (etcd was away longer than its TTL): a new one, as the agent does
	}
}

// keepAlive renews h's session every 3 s (a third of its TTL), trying again at once (on the
// next broker replica) when a renewal fails, and reopening it when it is gone.
func (l *Load) keepAlive(h *host) {
	l.pause(3 * time.Second)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := h.broker.KeepAliveSession(ctx, &arpbrokerv1.KeepAliveSessionRequest{SessionId: h.session.Load(), AgentId: "agent-" + h.name})
		cancel()
		if err == nil {
			return
		}
		if status.Code(err) == codes.NotFound {
			l.reopen(h)
			return
		}
	}
}

func (l *Load) reopen(h *host) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if r, err := h.broker.OpenSession(ctx, &arpbrokerv1.OpenSessionRequest{AgentId: "agent-" + h.name, HostId: h.name, TtlSeconds: 10}); err == nil {
		h.session.Store(r.GetSessionId())
	}
}

// flapStep moves a flapping tracked HAVIP's master to the other host every 2 s or so, and
// reads the ownership of each through havipd.
func (l *Load) flapStep(r *rand.Rand) {
	l.pause(time.Duration(100+r.IntN(100)) * time.Millisecond)
	for _, tr := range l.tracked {
		if tr.flap.Load() && r.IntN(20) == 0 {
			tr.master.Store(1 - tr.master.Load())
		}
		call := l.now()
		ctx, cancel := context.WithTimeout(l.ctx(context.Background()), callTimeout)
		resp, err := l.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{tr.id}})
		cancel()
		if err != nil || len(resp.GetHavipSet()) != 1 {
			continue
		}
		h := resp.GetHavipSet()[0]
		l.mu.Lock()
		l.reads = append(l.reads, porcupine.Operation{ClientId: 1000, Input: OwnInput{ID: tr.id}, Call: call,
			Output: OwnState{h.GetNetworkInterfaceId(), h.GetOwnerRevision()}, Return: l.now()})
		l.mu.Unlock()
	}
}

// watch follows broker replica i's WatchOwnership, as an agent does, reconnecting when cut off.
func (l *Load) watch(i int) {
	client := l.watchers[i]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with this stream: one per reconnection would pile up until Stop
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	stream, err := client.WatchOwnership(ctx, &arpbrokerv1.WatchOwnershipRequest{})
	if err != nil {
		l.pause(200 * time.Millisecond)
		return
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			l.pause(200 * time.Millisecond)
			return
		}
		at := l.now()
		l.mu.Lock()
		if m.GetSnapshot() {
			l.latest[i] = map[string]sighting{} // a snapshot holds every owner: what it lacks has none
		}
		for _, o := range m.GetOwnerships() {
			sg := sighting{watcher: i, havip: o.GetHavipId(), eni: o.GetNetworkInterfaceId(), rev: o.GetRevision(), at: at, snapshot: m.GetSnapshot()}
			l.seen = append(l.seen, sg)
			if sg.rev >= l.latest[i][sg.havip].rev {
				l.latest[i][sg.havip] = sg
			}
		}
		l.mu.Unlock()
	}
}
