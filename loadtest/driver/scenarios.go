package driver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/loadtest/fixture"
	"github.com/openhavip/havip/loadtest/ghz"
	"github.com/openhavip/havip/platform/retry"
)

// run is one run: its settings, clients, fixtures and ghz.
type run struct {
	cfg    Config
	set    *fixture.Set
	cl     fixture.Clients
	broker arpbrokerv1.ArpBrokerServiceClient
	ghz    ghz.Runner
	id     string // in the name of everything the run makes
	host   string // the agent's host, where the CVMs of the ARP burst run

	vpc          string
	createSubnet string // the subnet CreateHaVip fills (sized for it)
	subnet       string // the subnet of the other fixtures
	describe     []*havipv1.HaVip
	pairs        []pair
	arp          []announcer
}

// pair is a HAVIP and the EIP the associate/disassociate rounds bind to it.
type pair struct{ havip, addressIP string }

// announcer is a HAVIP of the ARP burst and the ENI (of a CVM in its switch range) that
// announces it.
type announcer struct{ havip, vip, eni, mac string }

// measured is what ghz measured for one row of the table.
type measured struct {
	name string
	ghz.Result
}

// scenario runs one or more rows of the table.
type scenario struct {
	name string
	run  func(r *run, ctx context.Context) ([]measured, error)
}

// The scenarios, in the order of the table.
var scenarios = []scenario{
	{"CreateHaVip", (*run).createHaVip},
	{"DescribeHaVips by ID", (*run).describeByID},
	{"DescribeHaVips by filter", (*run).describeByFilter},
	{"AllocateAddresses", (*run).allocateAddresses},
	{"HaVipAssociateAddressIp/HaVipDisassociateAddressIp", (*run).associatePairs},
	{"ReportArpAnnouncement", (*run).arpBurst},
}

// Rows are the table's rows, in order, as Run names them.
var Rows = []string{
	"CreateHaVip (automatic IP)",
	"DescribeHaVips by ID",
	"DescribeHaVips by filter",
	"AllocateAddresses",
	"HaVipAssociateAddressIp",
	"HaVipDisassociateAddressIp",
	"ReportArpAnnouncement (burst)",
}

// fixtures makes what the scenarios read or change: a VPC with two subnets (one that
// CreateHaVip fills, sized for the run, and one for the rest), the HAVIPs the Describe
// scenarios read, the HAVIP and EIP pairs, and the CVMs and HAVIPs of the ARP burst.
func (r *run) fixtures(ctx context.Context) error {
	name := "load-" + r.id
	vpc, err := r.set.Vpc(ctx, name, "10.0.0.0/12")
	if err != nil {
		return err
	}
	r.vpc = vpc.GetVpcId()
	cs, err := r.set.Subnet(ctx, r.vpc, name+"-create", fmt.Sprintf("10.0.0.0/%d", createSubnetBits(r.cfg.Requests)))
	if err != nil {
		return err
	}
	r.createSubnet = cs.GetSubnetId()
	sn, err := r.set.Subnet(ctx, r.vpc, name, "10.1.0.0/20")
	if err != nil {
		return err
	}
	r.subnet = sn.GetSubnetId()
	// Removed one by one too; this catches those allocated by calls cut short (and runs first:
	// a HAVIP is not deleted while its EIP is bound).
	r.set.ReleaseLater(name + "-pair")

	r.describe = make([]*havipv1.HaVip, r.cfg.DescribeSet)
	err = fixture.Parallel(ctx, len(r.describe), func(ctx context.Context, i int) error {
		h, err := r.set.HaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: r.vpc, SubnetId: r.subnet, HavipName: fmt.Sprintf("%s-d-%d", name, i)})
		r.describe[i] = h
		return err
	})
	if err != nil {
		return err
	}

	r.pairs = make([]pair, r.cfg.Pairs)
	err = fixture.Parallel(ctx, len(r.pairs), func(ctx context.Context, i int) error {
		h, err := r.set.HaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: r.vpc, SubnetId: r.subnet, HavipName: fmt.Sprintf("%s-p-%d", name, i)})
		if err != nil {
			return err
		}
		a, err := r.set.Address(ctx, name+"-pair")
		if err != nil {
			return err
		}
		r.set.UnbindLater(h.GetHavipId()) // after both: it runs before their undos
		r.pairs[i] = pair{havip: h.GetHavipId(), addressIP: a.GetAddressIp()}
		return nil
	})
	if err != nil {
		return err
	}

	r.arp = make([]announcer, r.cfg.ArpHaVips)
	return fixture.Parallel(ctx, len(r.arp), func(ctx context.Context, i int) error {
		cvm, err := r.set.Instance(ctx, r.subnet, fmt.Sprintf("%s-arp-%d", name, i), r.host)
		if err != nil {
			return err
		}
		h, err := r.set.HaVip(ctx, &havipv1.CreateHaVipRequest{
			VpcId: r.vpc, SubnetId: r.subnet, HavipName: fmt.Sprintf("%s-arp-%d", name, i),
			HavipAssociationSet: []*havipv1.HaVipAssociation{{InstanceId: cvm.GetInstance().GetInstanceId(), InstanceType: "CVM"}},
		})
		if err != nil {
			return err
		}
		eni := cvm.GetPrimaryNetworkInterface()
		r.arp[i] = announcer{havip: h.GetHavipId(), vip: h.GetVip(), eni: eni.GetNetworkInterfaceId(), mac: eni.GetMacAddress()}
		return nil
	})
}

// tenantCall is a ghz run of a tenant method with the API key, Total requests of data.
func (r *run) tenantCall(method, target string, total int, data []any) ghz.Call {
	return ghz.Call{
		Method: method, Target: target, TLS: r.cfg.Tenant,
		Metadata: map[string]string{"authorization": "Bearer " + r.cfg.APIKey},
		Data:     data, Total: total, Concurrency: r.cfg.Concurrency,
	}
}

// createHaVip creates Requests HAVIPs with automatic addresses in the subnet sized for them,
// checks that the subnet holds one for each successful call, and deletes them.
func (r *run) createHaVip(ctx context.Context) ([]measured, error) {
	inSubnet := &havipv1.Filter{Name: "subnet-id", Values: []string{r.createSubnet}} // swept at cleanup too (fixture.Set.Subnet)
	data := []any{map[string]any{
		"vpc_id": r.vpc, "subnet_id": r.createSubnet, "havip_name": "load-" + r.id + "-c-{{.RequestNumber}}",
	}}
	res, err := r.ghz.Run(ctx, r.tenantCall("havip.v1.HaVipService/CreateHaVip", r.cfg.Targets.HaVip, r.cfg.Requests, data))
	if err != nil {
		return nil, err
	}
	n, err := r.set.DeleteHaVips(ctx, inSubnet)
	if err != nil {
		return nil, err
	}
	// A call that failed (a timeout, say) may still have created its HAVIP: exact when none did.
	if ok := res.Count - res.ErrorCount(); n < ok || res.ErrorCount() == 0 && n != ok {
		return nil, fmt.Errorf("ghz counted %d creates that succeeded, the subnet held %d HAVIPs", ok, n)
	}
	return []measured{{Rows[0], res}}, nil
}

// describeByID reads the HAVIPs of the describe set one by one, by ID.
func (r *run) describeByID(ctx context.Context) ([]measured, error) {
	data := make([]any, len(r.describe))
	for i, h := range r.describe {
		data[i] = map[string]any{"havip_ids": []string{h.GetHavipId()}}
	}
	res, err := r.ghz.Run(ctx, r.tenantCall("havip.v1.HaVipService/DescribeHaVips", r.cfg.Targets.HaVip, r.cfg.Requests, data))
	return []measured{{Rows[1], res}}, err
}

// describeByFilter finds the HAVIPs of the describe set one by one, by VPC and name.
func (r *run) describeByFilter(ctx context.Context) ([]measured, error) {
	data := make([]any, len(r.describe))
	for i, h := range r.describe {
		data[i] = map[string]any{"filters": []map[string]any{
			{"name": "vpc-id", "values": []string{r.vpc}},
			{"name": "havip-name", "values": []string{h.GetHavipName()}},
		}}
	}
	res, err := r.ghz.Run(ctx, r.tenantCall("havip.v1.HaVipService/DescribeHaVips", r.cfg.Targets.HaVip, r.cfg.Requests, data))
	return []measured{{Rows[2], res}}, err
}

// allocateAddresses allocates Requests EIPs, one a call, in rounds of AllocRound: after each
// round it releases them (checking it finds one for each successful call), so that the run
// needs no more of the public pool than a round.
func (r *run) allocateAddresses(ctx context.Context) ([]measured, error) {
	name := "load-" + r.id + "-alloc"
	r.set.ReleaseLater(name)
	data := []any{map[string]any{"address_count": 1, "address_name": name}}
	var all ghz.Result
	for left := r.cfg.Requests; left > 0; {
		k := min(left, r.cfg.AllocRound)
		res, err := r.ghz.Run(ctx, r.tenantCall("eip.v1.EipService/AllocateAddresses", r.cfg.Targets.Eip, k, data))
		if err != nil {
			return nil, err
		}
		all.Merge(res)
		left -= k
		n, err := r.set.ReleaseAddressesNamed(ctx, name)
		if err != nil {
			return nil, err
		}
		if ok := res.Count - res.ErrorCount(); n < ok || res.ErrorCount() == 0 && n != ok {
			return nil, fmt.Errorf("ghz counted %d allocations that succeeded, %d EIPs were there to release", ok, n)
		}
	}
	return []measured{{Rows[3], all}}, nil
}

// associatePairs binds and unbinds the EIP of each pair, Requests times each, in rounds: a
// round binds each of (up to) Pairs pairs once, then unbinds each once, so no two calls ever
// race for one HAVIP or one EIP and none is refused. At the end no pair is bound.
func (r *run) associatePairs(ctx context.Context) ([]measured, error) {
	var bind, unbind ghz.Result
	for left := r.cfg.Requests; left > 0; {
		k := min(left, len(r.pairs))
		assoc, dis := make([]any, k), make([]any, k)
		for i, p := range r.pairs[:k] {
			assoc[i] = map[string]any{"havip_id": p.havip, "address_ip": p.addressIP}
			dis[i] = map[string]any{"havip_id": p.havip}
		}
		res, err := r.ghz.Run(ctx, r.tenantCall("havip.v1.HaVipService/HaVipAssociateAddressIp", r.cfg.Targets.HaVip, k, assoc))
		if err != nil {
			return nil, err
		}
		bind.Merge(res)
		res, err = r.ghz.Run(ctx, r.tenantCall("havip.v1.HaVipService/HaVipDisassociateAddressIp", r.cfg.Targets.HaVip, k, dis))
		if err != nil {
			return nil, err
		}
		unbind.Merge(res)
		left -= k
	}
	ids := make([]string, len(r.pairs))
	for i, p := range r.pairs {
		ids[i] = p.havip
	}
	hs, err := r.havips(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if h.GetAddressIp() != "" {
			return nil, fmt.Errorf("HAVIP %s still has EIP %s bound after the last round", h.GetHavipId(), h.GetAddressIp())
		}
	}
	return []measured{{Rows[4], bind}, {Rows[5], unbind}}, nil
}

// arpBurst opens a session as the host agent and, while keeping it alive, reports Requests
// gratuitous ARPs, each HAVIP of the burst announced in turn by the ENI of its CVM: the first
// report of each takes the HAVIP, the others refresh it. It then checks that every HAVIP is
// bound to its ENI and that the broker rejected none of the reports.
func (r *run) arpBurst(ctx context.Context) ([]measured, error) {
	agentID := "load-" + r.id
	sess, err := r.broker.OpenSession(ctx, &arpbrokerv1.OpenSessionRequest{AgentId: agentID, HostId: r.host, TtlSeconds: 10})
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", err)
	}
	stop := r.keepAlive(ctx, sess.GetSessionId(), agentID, time.Duration(sess.GetTtlSeconds())*time.Second/3)
	data := make([]any, len(r.arp))
	for i, a := range r.arp {
		data[i] = map[string]any{
			"agent_id": agentID, "session_id": strconv.FormatInt(sess.GetSessionId(), 10),
			"network_interface_id": a.eni, "ethernet_source_mac": a.mac, "sender_mac": a.mac,
			"sender_ip": a.vip, "target_ip": a.vip, "operation": "ARP_OPERATION_REQUEST",
		}
	}
	res, err := r.ghz.Run(ctx, ghz.Call{
		Method: "arpbroker.v1.ArpBrokerService/ReportArpAnnouncement", Target: r.cfg.Targets.ArpBroker, TLS: r.cfg.Agent,
		Data: data, Total: r.cfg.Requests, Concurrency: r.cfg.Concurrency,
	})
	if err == nil {
		err = r.checkOwners(ctx)
	}
	if kerr := stop(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	if err != nil {
		return nil, err
	}
	return []measured{{Rows[6], res}}, nil
}

// keepAlive renews the session every interval until the returned stop is called; stop returns
// the renewal's error, if one failed.
func (r *run) keepAlive(ctx context.Context, session int64, agentID string, interval time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		retry.Every(ctx, interval, func() {
			if _, kerr := r.broker.KeepAliveSession(ctx, &arpbrokerv1.KeepAliveSessionRequest{SessionId: session, AgentId: agentID}); kerr != nil && ctx.Err() == nil {
				err = fmt.Errorf("keep the session alive: %w", kerr)
				cancel() // the first failed renewal ends the renewals
			}
		})
	})
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

// checkOwners checks that each HAVIP of the burst is bound to its announcer and has no
// rejection recorded.
func (r *run) checkOwners(ctx context.Context) error {
	ids := make([]string, len(r.arp))
	eni := map[string]string{}
	for i, a := range r.arp {
		ids[i] = a.havip
		eni[a.havip] = a.eni
	}
	hs, err := r.havips(ctx, ids)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.GetState() != "BIND" || h.GetNetworkInterfaceId() != eni[h.GetHavipId()] {
			return fmt.Errorf("HAVIP %s is %s on %q after the burst, want BIND on %s", h.GetHavipId(), h.GetState(), h.GetNetworkInterfaceId(), eni[h.GetHavipId()])
		}
	}
	return fixture.Parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		resp, err := r.broker.ListArpRejections(ctx, &arpbrokerv1.ListArpRejectionsRequest{HavipId: ids[i]})
		if err != nil {
			return fmt.Errorf("list the rejections of %s: %w", ids[i], err)
		}
		if n := len(resp.GetRejectionSet()); n > 0 {
			return fmt.Errorf("the broker rejected %d reports for %s, the first: %s", n, ids[i], resp.GetRejectionSet()[0].GetMessage())
		}
		return nil
	})
}

// havips describes HAVIPs by ID, 100 a call, and fails unless it finds each.
func (r *run) havips(ctx context.Context, ids []string) ([]*havipv1.HaVip, error) {
	var out []*havipv1.HaVip
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		resp, err := r.cl.HaVip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: chunk, Limit: 100})
		if err != nil {
			return nil, fmt.Errorf("describe HAVIPs: %w", err)
		}
		if len(resp.GetHavipSet()) != len(chunk) {
			return nil, fmt.Errorf("describe %d HAVIPs: got %d", len(chunk), len(resp.GetHavipSet()))
		}
		out = append(out, resp.GetHavipSet()...)
	}
	return out, nil
}
