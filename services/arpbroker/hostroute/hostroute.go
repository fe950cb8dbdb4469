// Package hostroute programs a host's VIP routes from the broker's ownerships: a VIP's /32 to the owner ENI's port on the owner's host, via the owner's host everywhere else.
package hostroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/retry"
)

// DefaultProtocol is the rtnetlink protocol number that marks the routes hostroute programs, so
// that a restarted router finds its own routes and leaves every other route alone. It is not
// one of those iproute2 names in rt_protos.
const DefaultProtocol netlink.RouteProtocol = 118

// Config describes the host.
type Config struct {
	// HostID is this host, as ownerships name it.
	HostID string
	// VPC is the VPC whose fabric the host's routes serve: a VIP is unique only within its VPC,
	// so the ownerships of other VPCs' HAVIPs are ignored (another tenant's HAVIP with the same
	// VIP must never take this VPC's route).
	VPC string
	// Ports maps each VM-facing interface of the host to the ENI behind it.
	Ports map[string]string
	// Hosts maps every other host to its underlay address, where VIPs owned there are routed.
	Hosts map[string]netip.Addr
	// Protocol marks the router's routes; 0 means DefaultProtocol.
	Protocol netlink.RouteProtocol
	// Table is the routing table of the routes; 0 means the main table.
	Table int
}

// Router follows ownerships and keeps the host's VIP routes where the owners are.
type Router struct {
	cfg    Config
	h      *netlink.Handle
	log    *slog.Logger
	portOf map[string]string // ENI → port

	mu    sync.Mutex
	vips  map[string]entry                  // HAVIP → the newest ownership applied (fencing), and its VIP
	holds map[netip.Addr]string             // VIP → the HAVIP whose route it is
	retry map[string]*arpbrokerv1.Ownership // HAVIP → its newest ownership, not programmed yet (an error)
}

// entry is what the router knows of one HAVIP.
type entry struct {
	rev int64
	vip netip.Addr // invalid when the HAVIP never had an owner here
}

// New returns a router that programs routes through h (a handle in the host's network namespace).
func New(cfg Config, h *netlink.Handle, log *slog.Logger) *Router {
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultProtocol
	}
	if cfg.Table == 0 {
		cfg.Table = unix.RT_TABLE_MAIN
	}
	portOf := make(map[string]string, len(cfg.Ports))
	for port, eni := range cfg.Ports {
		portOf[eni] = port
	}
	return &Router{cfg: cfg, h: h, log: log, portOf: portOf, vips: map[string]entry{}, holds: map[netip.Addr]string{}, retry: map[string]*arpbrokerv1.Ownership{}}
}

// Run follows the broker's ownerships until ctx ends, watching again (and reconciling from the
// new snapshot) whenever the stream breaks.
func (r *Router) Run(ctx context.Context, broker arpbrokerv1.ArpBrokerServiceClient) error {
	go retry.Every(ctx, RetryInterval, func() {
		if err := r.Retry(); err != nil {
			r.log.Debug("routes, again", "err", err)
		}
	})
	retry.Follow(ctx, r.log, "ownership watch", func(ctx context.Context) (retry.Stream[*arpbrokerv1.WatchOwnershipResponse], error) {
		return broker.WatchOwnership(ctx, &arpbrokerv1.WatchOwnershipRequest{})
	}, func(m *arpbrokerv1.WatchOwnershipResponse) error {
		if m.GetSnapshot() {
			return r.Sync(m.GetOwnerships())
		}
		return r.Apply(m.GetOwnerships())
	})
	return nil
}

// want is the route an ownership asks of this host, nil for none.
func (r *Router) want(o *arpbrokerv1.Ownership, vip netip.Addr) (*netlink.Route, error) {
	if o.GetNetworkInterfaceId() == "" {
		return nil, nil
	}
	rt := &netlink.Route{Dst: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Protocol: r.cfg.Protocol, Table: r.cfg.Table}
	if o.GetHostId() == r.cfg.HostID {
		port, ok := r.portOf[o.GetNetworkInterfaceId()]
		if !ok {
			return nil, fmt.Errorf("HAVIP %s: the owner %s has no port on this host", o.GetHavipId(), o.GetNetworkInterfaceId())
		}
		link, err := r.h.LinkByName(port)
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", port, err)
		}
		rt.LinkIndex, rt.Scope = link.Attrs().Index, netlink.SCOPE_LINK
		return rt, nil
	}
	gw, ok := r.cfg.Hosts[o.GetHostId()]
	if !ok {
		return nil, fmt.Errorf("HAVIP %s: the owner's host %q has no underlay address", o.GetHavipId(), o.GetHostId())
	}
	rt.Gw = gw.AsSlice()
	return rt, nil
}

// Apply programs ownership changes, ignoring any older than what the router has for its HAVIP.
func (r *Router) Apply(os []*arpbrokerv1.Ownership) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, o := range os {
		if !r.oursLocked(o) {
			continue
		}
		cur, ok := r.vips[o.GetHavipId()]
		if ok && cur.rev >= o.GetRevision() {
			continue // stale: fencing
		}
		vip := cur.vip
		if a, err := netip.ParseAddr(o.GetVip()); err == nil && a.Is4() {
			vip = a // a lapse names no VIP: the route to remove is the one the router has
		}
		r.vips[o.GetHavipId()] = entry{rev: o.GetRevision(), vip: vip}
		delete(r.retry, o.GetHavipId())
		if cur.vip.IsValid() && cur.vip != vip {
			errs = append(errs, r.remove(o.GetHavipId(), cur.vip))
		}
		if !vip.IsValid() {
			continue
		}
		if err := r.program(o, vip); err != nil {
			r.retry[o.GetHavipId()] = o
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// oursLocked reports whether o concerns the router's VPC: an owner in it, or a lapse (which
// names no VPC) of a HAVIP the router has.
func (r *Router) oursLocked(o *arpbrokerv1.Ownership) bool {
	if o.GetNetworkInterfaceId() == "" {
		_, ok := r.vips[o.GetHavipId()]
		return ok
	}
	return o.GetVpcId() == r.cfg.VPC
}

// program routes vip as the ownership o asks, or removes its route when o asks none of this
// host (a lapse) or cannot be routed (then with the error).
func (r *Router) program(o *arpbrokerv1.Ownership, vip netip.Addr) error {
	rt, err := r.want(o, vip)
	if rt == nil {
		return errors.Join(err, r.remove(o.GetHavipId(), vip))
	}
	return errors.Join(err, r.replace(o.GetHavipId(), vip, rt))
}

// RetryInterval is how often Run programs again the ownerships whose routes failed (a link
// down, a port not there yet, an owner's host with no underlay address).
const RetryInterval = time.Second

// Retry programs again the newest ownership of each HAVIP whose route failed, until it
// succeeds or a newer ownership replaces it; it returns the errors of those that fail again.
func (r *Router) Retry() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for havip, o := range r.retry {
		cur, ok := r.vips[havip]
		if !ok || cur.rev != o.GetRevision() || !cur.vip.IsValid() {
			delete(r.retry, havip) // superseded (fencing), or forgotten by a snapshot
			continue
		}
		if err := r.program(o, cur.vip); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(r.retry, havip)
		r.log.Info("route programmed after an error", "havip", havip, "vip", cur.vip)
	}
	return errors.Join(errs...)
}

func (r *Router) replace(havipID string, vip netip.Addr, rt *netlink.Route) error {
	if err := r.h.RouteReplace(rt); err != nil {
		return fmt.Errorf("route %s of HAVIP %s: %w", vip, havipID, err)
	}
	r.holds[vip] = havipID
	return nil
}

// remove deletes the route of vip if havipID holds it.
func (r *Router) remove(havipID string, vip netip.Addr) error {
	if r.holds[vip] != havipID {
		return nil
	}
	delete(r.holds, vip)
	// Scope "nowhere" matches the route whatever its scope, as `ip route del` does.
	err := r.h.RouteDel(&netlink.Route{Dst: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Protocol: r.cfg.Protocol, Table: r.cfg.Table, Scope: netlink.SCOPE_NOWHERE})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove route %s of HAVIP %s: %w", vip, havipID, err)
	}
	return nil
}

// Sync makes the host's routes those of a snapshot of every owner: it replaces only the routes
// that differ (so traffic to an unchanged VIP never stops), adds the missing and deletes those
// of HAVIPs the snapshot no longer has an owner for. A snapshot entry older than what the router
// has applied is ignored, as in Apply.
func (r *Router) Sync(os []*arpbrokerv1.Ownership) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	wanted := map[netip.Addr]*netlink.Route{}
	holds := map[netip.Addr]string{}
	vips := make(map[string]entry, len(os))
	retry := map[string]*arpbrokerv1.Ownership{}
	of := map[netip.Addr]*arpbrokerv1.Ownership{} // the ownership of each wanted route
	for _, o := range os {
		if o.GetVpcId() != r.cfg.VPC {
			continue // another VPC's HAVIP: as if it had no owner here
		}
		vip, err := netip.ParseAddr(o.GetVip())
		if err != nil || !vip.Is4() {
			errs = append(errs, fmt.Errorf("HAVIP %s: VIP %q", o.GetHavipId(), o.GetVip()))
			continue
		}
		if cur, ok := r.vips[o.GetHavipId()]; ok && cur.rev > o.GetRevision() {
			vips[o.GetHavipId()] = cur // fencing: a change newer than the snapshot stays
			if h, ok := r.holds[cur.vip]; ok && h == o.GetHavipId() {
				holds[cur.vip] = h
			}
			if f, ok := r.retry[o.GetHavipId()]; ok {
				retry[o.GetHavipId()] = f
			}
			continue
		}
		vips[o.GetHavipId()] = entry{rev: o.GetRevision(), vip: vip}
		rt, err := r.want(o, vip)
		if err != nil {
			errs = append(errs, err)
			retry[o.GetHavipId()] = o
		}
		if rt != nil {
			wanted[vip], holds[vip], of[vip] = rt, o.GetHavipId(), o
		}
	}
	have, err := r.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: r.cfg.Protocol, Table: r.cfg.Table}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range have {
		vip, ok := dst32(rt)
		if ok {
			if w := wanted[vip]; w != nil && same(rt, w) {
				delete(wanted, vip) // unchanged: left as it is
				continue
			}
			if _, kept := holds[vip]; kept && wanted[vip] == nil {
				continue // a newer change's route
			}
			if wanted[vip] != nil {
				continue // replaced below
			}
		}
		if err := r.h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", rt.Dst, err))
		}
	}
	for vip, rt := range wanted {
		if err := r.h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", vip, err))
			delete(holds, vip)
			retry[of[vip].GetHavipId()] = of[vip]
		}
	}
	r.vips, r.holds, r.retry = vips, holds, retry
	return errors.Join(errs...)
}

// dst32 is the address of a /32 route.
func dst32(rt netlink.Route) (netip.Addr, bool) {
	if rt.Dst == nil {
		return netip.Addr{}, false
	}
	if ones, bits := rt.Dst.Mask.Size(); ones != 32 || bits != 32 {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(rt.Dst.IP.To4())
	return a, ok
}

// same reports whether the kernel's route have goes where want does.
func same(have netlink.Route, want *netlink.Route) bool {
	if want.Gw != nil {
		return have.Gw.Equal(want.Gw)
	}
	return have.Gw == nil && have.LinkIndex == want.LinkIndex
}
