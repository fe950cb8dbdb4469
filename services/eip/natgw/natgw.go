// Package natgw programs an EIP gateway from the NAT rules: DNAT of each public IP to its private IP (replies translated back by conntrack), a route to the owner's host, and a drop when there is no backend.
package natgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/retry"
)

// DefaultTable is the nftables table (family ip) the gateway owns.
const DefaultTable = "havip_nat"

// DefaultProtocol is the rtnetlink protocol number that marks the gateway's routes to private
// IPs, so that a restart finds them and leaves every other route alone.
const DefaultProtocol netlink.RouteProtocol = 119

// Config describes the gateway.
type Config struct {
	// VPC is the VPC whose fabric the gateway forwards to: a private IP is unique only within
	// its VPC, so an EIP whose backend is in another VPC is dropped here, never routed into
	// this fabric to whatever holds the same private IP.
	VPC string
	// Hosts maps every host to its underlay address, where a private IP owned there is routed.
	Hosts map[string]netip.Addr
	// Table is the nftables table; empty means DefaultTable.
	Table string
	// Protocol marks the gateway's routes; 0 means DefaultProtocol.
	Protocol netlink.RouteProtocol
}

// Gateway follows the NAT rules and keeps the packet filter and routes of the host it runs on.
type Gateway struct {
	cfg Config
	nft *nftables.Conn
	h   *netlink.Handle
	log *slog.Logger

	mu    sync.Mutex
	rules map[netip.Addr]*eipv1.NatRule // by public IP: the newest rule (removed ones too, for fencing)
	prog  map[netip.Addr]target         // by public IP: what the kernel has
	dirty bool                          // the kernel refused a change: Retry rebuilds from rules

	table      *nftables.Table
	dark, dnat *nftables.Set
}

// target is where a public IP's packets go: DNAT to private via gw, or (dark) dropped.
type target struct {
	private, gw netip.Addr
	dark        bool
}

// New returns a gateway that programs through nft and h, both in the gateway's network namespace.
func New(cfg Config, nft *nftables.Conn, h *netlink.Handle, log *slog.Logger) *Gateway {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultProtocol
	}
	t := &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyIPv4}
	return &Gateway{
		cfg: cfg, nft: nft, h: h, log: log, rules: map[netip.Addr]*eipv1.NatRule{}, prog: map[netip.Addr]target{},
		table: t,
		dark:  &nftables.Set{Table: t, Name: "dark", KeyType: nftables.TypeIPAddr},
		dnat:  &nftables.Set{Table: t, Name: "dnat", IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeIPAddr},
	}
}

// Run follows the NAT rules until ctx ends, watching again (and rebuilding from the new
// snapshot) whenever the stream breaks.
func (g *Gateway) Run(ctx context.Context, rules eipv1.NatRuleServiceClient) error {
	go retry.Every(ctx, RetryInterval, func() {
		if err := g.Retry(); err != nil {
			g.log.Debug("NAT, again", "err", err)
		}
	})
	retry.Follow(ctx, g.log, "NAT rule watch", func(ctx context.Context) (retry.Stream[*eipv1.WatchNatRulesResponse], error) {
		return rules.WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{})
	}, func(m *eipv1.WatchNatRulesResponse) error {
		if m.GetSnapshot() {
			return g.Sync(m.GetRules())
		}
		return g.Apply(m.GetRules())
	})
	return nil
}

// RetryInterval is how often Run rebuilds the gateway's state after the kernel refused a change
// (a route via an underlay link that was down, say), until the kernel takes it.
const RetryInterval = time.Second

// Retry rebuilds the whole state from the newest rules if the kernel refused a change since
// the last rebuild; it returns the rebuild's errors.
func (g *Gateway) Retry() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.dirty {
		return nil
	}
	if err := g.rebuildLocked(); err != nil {
		return err
	}
	g.log.Info("NAT programmed after an error")
	return nil
}

// kernel marks the state dirty when the kernel refused a change (err not nil), and returns err.
func (g *Gateway) kernel(err error) error {
	if err != nil {
		g.dirty = true
	}
	return err
}

// newer reports whether a supersedes b, rules for the same public IP.
func newer(a, b *eipv1.NatRule) bool {
	if a.GetBindingRevision() != b.GetBindingRevision() {
		return a.GetBindingRevision() > b.GetBindingRevision()
	}
	return a.GetOwnerRevision() > b.GetOwnerRevision()
}

// targetOf is what a rule asks: nothing for a removed rule (ok false), else DNAT to its private
// IP via the owner's host, or dark when it has no backend.
func (g *Gateway) targetOf(r *eipv1.NatRule) (target, bool, error) {
	if r.GetRemoved() {
		return target{}, false, nil
	}
	if r.GetNetworkInterfaceId() == "" || r.GetInstanceId() == "" || r.GetHostId() == "" || r.GetVpcId() != g.cfg.VPC {
		return target{dark: true}, true, nil
	}
	private, err := netip.ParseAddr(r.GetPrivateIp())
	if err != nil || !private.Is4() {
		return target{dark: true}, true, fmt.Errorf("EIP %s: private IP %q", r.GetAddressId(), r.GetPrivateIp())
	}
	gw, ok := g.cfg.Hosts[r.GetHostId()]
	if !ok {
		return target{dark: true}, true, fmt.Errorf("EIP %s: the host %q has no underlay address", r.GetAddressId(), r.GetHostId())
	}
	return target{private: private, gw: gw}, true, nil
}

// Apply programs rule changes, ignoring any older than the rule the gateway has for its public IP.
func (g *Gateway) Apply(rules []*eipv1.NatRule) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	changed := map[netip.Addr]bool{}
	for _, r := range rules {
		pub, err := netip.ParseAddr(r.GetPublicIp())
		if err != nil || !pub.Is4() {
			errs = append(errs, fmt.Errorf("EIP %s: public IP %q", r.GetAddressId(), r.GetPublicIp()))
			continue
		}
		if cur := g.rules[pub]; cur != nil && !newer(r, cur) {
			continue // stale: fencing
		}
		g.rules[pub], changed[pub] = r, true
	}
	var del, add, delDark, addDark []nftables.SetElement
	routes := map[netip.Addr]target{} // by public IP: the new target, to route
	for pub := range changed {
		want, ok, err := g.targetOf(g.rules[pub])
		errs = append(errs, err)
		had, hadOK := g.prog[pub]
		if hadOK && ok && had == want {
			continue
		}
		if hadOK {
			if had.dark {
				delDark = append(delDark, nftables.SetElement{Key: pub.AsSlice()})
			} else {
				del = append(del, nftables.SetElement{Key: pub.AsSlice()})
			}
		}
		if ok {
			if want.dark {
				addDark = append(addDark, nftables.SetElement{Key: pub.AsSlice()})
			} else {
				add = append(add, nftables.SetElement{Key: pub.AsSlice(), Val: want.private.AsSlice()})
			}
		}
		routes[pub] = want
	}
	if len(routes) == 0 {
		return errors.Join(errs...)
	}
	// Routes first for a new backend (its packets must find the host once translated), the
	// filter in one transaction, then the routes of backends that went away.
	for _, t := range routes {
		if !t.dark && t.private.IsValid() {
			errs = append(errs, g.route(t))
		}
	}
	for _, batch := range []struct {
		f    func(*nftables.Set, []nftables.SetElement) error
		set  *nftables.Set
		elem []nftables.SetElement
	}{{g.nft.SetDeleteElements, g.dnat, del}, {g.nft.SetDeleteElements, g.dark, delDark}, {g.nft.SetAddElements, g.dnat, add}, {g.nft.SetAddElements, g.dark, addDark}} {
		if len(batch.elem) > 0 {
			if err := batch.f(batch.set, batch.elem); err != nil {
				return errors.Join(append(errs, g.kernel(err))...)
			}
		}
	}
	if err := g.nft.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("nftables: %w; rebuilding", err))
		return errors.Join(append(errs, g.rebuildLocked())...)
	}
	for pub, t := range routes {
		old, had := g.prog[pub]
		if _, ok, _ := g.targetOf(g.rules[pub]); ok {
			g.prog[pub] = t
		} else {
			delete(g.prog, pub)
		}
		if had && !old.dark && old.private != t.private && !g.routedLocked(old.private) {
			errs = append(errs, g.unroute(old.private))
		}
	}
	return errors.Join(errs...)
}

// routedLocked reports whether some programmed public IP still goes to private.
func (g *Gateway) routedLocked(private netip.Addr) bool {
	for _, t := range g.prog {
		if !t.dark && t.private == private {
			return true
		}
	}
	return false
}

func host32(a netip.Addr) *net.IPNet { return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)} }

func (g *Gateway) route(t target) error {
	if err := g.h.RouteReplace(&netlink.Route{Dst: host32(t.private), Gw: t.gw.AsSlice(), Protocol: g.cfg.Protocol, Table: unix.RT_TABLE_MAIN}); err != nil {
		return g.kernel(fmt.Errorf("route %s via %s: %w", t.private, t.gw, err))
	}
	return nil
}

func (g *Gateway) unroute(private netip.Addr) error {
	err := g.h.RouteDel(&netlink.Route{Dst: host32(private), Protocol: g.cfg.Protocol, Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_NOWHERE})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return g.kernel(fmt.Errorf("remove route %s: %w", private, err))
	}
	return nil
}

// Sync makes the gateway's state that of a snapshot of every rule (a rule newer than the
// snapshot's for its public IP stays): the whole table is replaced in one nftables transaction,
// so packets see the old table or the new, never none; routes are replaced only where they differ.
func (g *Gateway) Sync(rules []*eipv1.NatRule) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	next := make(map[netip.Addr]*eipv1.NatRule, len(rules))
	for _, r := range rules {
		pub, err := netip.ParseAddr(r.GetPublicIp())
		if err != nil || !pub.Is4() {
			errs = append(errs, fmt.Errorf("EIP %s: public IP %q", r.GetAddressId(), r.GetPublicIp()))
			continue
		}
		if cur := g.rules[pub]; cur != nil && newer(cur, r) {
			r = cur
		}
		if old := next[pub]; old == nil || newer(r, old) {
			next[pub] = r
		}
	}
	g.rules = next
	return errors.Join(append(errs, g.rebuildLocked())...)
}

// rebuildLocked programs the whole state from g.rules: the table in one transaction, then the routes.
func (g *Gateway) rebuildLocked() error {
	g.dirty = false
	var errs []error
	prog := map[netip.Addr]target{}
	var dnat, dark []nftables.SetElement
	wanted := map[netip.Addr]netip.Addr{} // private → gw
	for pub, r := range g.rules {
		t, ok, err := g.targetOf(r)
		errs = append(errs, err)
		if !ok {
			continue
		}
		prog[pub] = t
		if t.dark {
			dark = append(dark, nftables.SetElement{Key: pub.AsSlice()})
			continue
		}
		dnat = append(dnat, nftables.SetElement{Key: pub.AsSlice(), Val: t.private.AsSlice()})
		wanted[t.private] = t.gw
	}
	// Routes first: a new DNAT must find its host.
	have, err := g.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: g.cfg.Protocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return errors.Join(append(errs, g.kernel(fmt.Errorf("list routes: %w", err)))...)
	}
	for private, gw := range wanted {
		if !routeIn(have, private, gw) {
			errs = append(errs, g.route(target{private: private, gw: gw}))
		}
	}
	g.nft.AddTable(g.table) // so that deleting it cannot fail
	g.nft.DelTable(g.table)
	g.nft.AddTable(g.table)
	if err := g.nft.AddSet(g.dark, dark); err != nil {
		return errors.Join(append(errs, g.kernel(err))...)
	}
	if err := g.nft.AddSet(g.dnat, dnat); err != nil {
		return errors.Join(append(errs, g.kernel(err))...)
	}
	daddr := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	// Before conntrack (raw): a flow DNATed before the backend went away is dropped too.
	raw := g.nft.AddChain(&nftables.Chain{Name: "raw", Table: g.table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	g.nft.AddRule(&nftables.Rule{Table: g.table, Chain: raw, Exprs: []expr.Any{daddr, &expr.Lookup{SourceRegister: 1, SetName: g.dark.Name, SetID: g.dark.ID}, &expr.Verdict{Kind: expr.VerdictDrop}}})
	pre := g.nft.AddChain(&nftables.Chain{Name: "dnat", Table: g.table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	g.nft.AddRule(&nftables.Rule{Table: g.table, Chain: pre, Exprs: []expr.Any{
		daddr,
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: g.dnat.Name, SetID: g.dnat.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	if err := g.nft.Flush(); err != nil {
		return errors.Join(append(errs, g.kernel(fmt.Errorf("nftables table %s: %w", g.cfg.Table, err)))...)
	}
	g.prog = prog
	for _, rt := range have {
		if rt.Dst == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(rt.Dst.IP.To4())
		if _, want := wanted[a]; ok && want {
			continue
		}
		if err := g.h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, g.kernel(fmt.Errorf("remove route %s: %w", rt.Dst, err)))
		}
	}
	return errors.Join(errs...)
}

// routeIn reports whether routes hold private/32 via gw.
func routeIn(routes []netlink.Route, private, gw netip.Addr) bool {
	for _, rt := range routes {
		if rt.Dst == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(rt.Dst.IP.To4())
		if ones, _ := rt.Dst.Mask.Size(); ok && ones == 32 && a == private && rt.Gw.Equal(gw.AsSlice()) {
			return true
		}
	}
	return false
}
