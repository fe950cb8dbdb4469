package chaos

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/invariant"
	"github.com/openhavip/havip/platform/records"
)

// Report counts what the checks of a run read: HAVIP calls (Ops; Unknown of them with an
// unknown outcome), claims (Accepted of them), ownerships the watchers saw (Sightings),
// ownership reads through Describe (Reads), and the fencing revisions they span (Revisions).
type Report struct {
	Ops, Unknown, Claims, Accepted, Sightings, Reads, Revisions int
}

// checkTimeout bounds porcupine's search.
const checkTimeout = 2 * time.Minute

// CheckHistory checks the HAVIP calls against HaVipModel with porcupine; on a violation it
// writes porcupine's visualization into dir.
func (l *Load) CheckHistory(dir string) (Report, error) {
	l.mu.Lock()
	hist := slices.Clone(l.hist)
	l.mu.Unlock()
	var r Report
	r.Ops = len(hist)
	for _, op := range hist {
		if op.Output.(HaVipOutput).Outcome == Unknown {
			r.Unknown++
		}
	}
	res, info := porcupine.CheckOperationsVerbose(HaVipModel, hist, checkTimeout)
	return r, verdict("HAVIP", res, HaVipModel, info, dir)
}

func verdict(what string, res porcupine.CheckResult, m porcupine.Model, info porcupine.LinearizationInfo, dir string) error {
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("%s history: porcupine timed out after %v", what, checkTimeout)
	}
	path := filepath.Join(dir, what+"-violation.html")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = porcupine.VisualizePath(m, info, path)
	}
	return fmt.Errorf("%s history is not linearizable (porcupine's view: %s)", what, path)
}

// key is a HAVIP's ownership at one fencing revision.
type key struct {
	havip string
	rev   int64
}

// CheckOwnership checks the ownership the claims, the watchers and the reads saw: one owner at
// each revision whoever saw it; each watcher's revisions rising within a stream; every owner
// announced by a claim before it was seen; no claim from outside the range accepted; and the
// whole explained by one order of owner changes (OwnModel, porcupine).
func (l *Load) CheckOwnership(dir string) (Report, error) {
	l.mu.Lock()
	claims, seen, reads := slices.Clone(l.claims), slices.Clone(l.seen), slices.Clone(l.reads)
	l.mu.Unlock()
	r := Report{Claims: len(claims), Sightings: len(seen), Reads: len(reads)}
	eniAt, first := map[key]string{}, map[key]int64{}
	note := func(k key, eni string, at int64, who string) error {
		if prev, ok := eniAt[k]; ok && prev != eni {
			return fmt.Errorf("two owners of %s at revision %d: %q and %q (%s)", k.havip, k.rev, prev, eni, who)
		}
		eniAt[k] = eni
		if f, ok := first[k]; !ok || at < f {
			first[k] = at
		}
		return nil
	}
	outside := l.hosts[2].eni
	accepted := map[key]claim{}
	for _, c := range claims {
		switch c.result {
		case arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED:
			r.Accepted++
			if c.eni == outside {
				return r, fmt.Errorf("a claim from outside the switch range was accepted: %+v", c)
			}
			accepted[key{c.havip, c.rev}] = c
			if err := note(key{c.havip, c.rev}, c.eni, c.ret, "an accepted claim"); err != nil {
				return r, err
			}
		case arpbrokerv1.ClaimResult_CLAIM_RESULT_REFRESHED:
			if err := note(key{c.havip, c.rev}, c.eni, c.ret, "a refresh"); err != nil {
				return r, err
			}
		}
	}
	last := map[[2]any]int64{} // watcher, HAVIP → the last revision of its stream
	for _, s := range seen {
		k := [2]any{s.watcher, s.havip}
		if prev, ok := last[k]; ok && !s.snapshot && s.rev <= prev {
			return r, fmt.Errorf("watcher %d saw %s go back from revision %d to %d", s.watcher, s.havip, prev, s.rev)
		}
		last[k] = s.rev
		if err := note(key{s.havip, s.rev}, s.eni, s.at, fmt.Sprintf("watcher %d", s.watcher)); err != nil {
			return r, err
		}
	}
	for _, op := range reads {
		o := op.Output.(OwnState)
		if o.Rev > 0 {
			if err := note(key{op.Input.(OwnInput).ID, o.Rev}, o.ENI, op.Return, "a Describe"); err != nil {
				return r, err
			}
		}
	}
	r.Revisions = len(eniAt)
	// Owner changes in revision order, each a write from a lower bound of when it was committed
	// (the accepted claim's call, else the previous change's) to when it was first seen.
	keys := make([]key, 0, len(eniAt))
	for k := range eniAt {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.havip != b.havip {
			return cmp.Compare(a.havip, b.havip)
		}
		return cmp.Compare(a.rev, b.rev)
	})
	hist := slices.Clone(reads)
	var prevCall int64
	for i, k := range keys {
		if i == 0 || keys[i-1].havip != k.havip {
			prevCall = 0
		}
		eni, call := eniAt[k], prevCall
		if c, ok := accepted[k]; ok {
			call = c.call
		}
		if eni != "" && !slices.ContainsFunc(claims, func(c claim) bool { return c.havip == k.havip && c.eni == eni && c.call <= first[k] }) {
			return r, fmt.Errorf("%s owned by %s at revision %d, which no claim announced before", k.havip, eni, k.rev)
		}
		hist = append(hist, porcupine.Operation{ClientId: 2000, Input: OwnInput{ID: k.havip, Write: true, ENI: eni, Rev: k.rev}, Call: call, Return: first[k]})
		prevCall = call
	}
	res, info := porcupine.CheckOperationsVerbose(OwnModel, hist, checkTimeout)
	return r, verdict("ownership", res, OwnModel, info, dir)
}

// CheckInvariants reads etcd directly and checks the integrity invariants: what one transaction
// keeps at once, what follows a change (owners, subnet counts, the NAT rules eipd streams)
// within settle.
func (l *Load) CheckInvariants(ctx context.Context, settle time.Duration) error {
	st, err := invariant.Read(ctx, l.s.Cli)
	if err != nil {
		return err
	}
	if err := st.Strict(); err != nil {
		return err
	}
	deadline := time.Now().Add(settle)
	for {
		err := st.Owners()
		if err == nil {
			err = l.counts(ctx, st)
		}
		if err == nil {
			err = l.nat.Check(st)
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // awaiting the broker's revocation or a lease
		if st, err = invariant.Read(ctx, l.s.Cli); err != nil {
			return err
		}
	}
}

// counts checks the subnet's available count against etcd.
func (l *Load) counts(ctx context.Context, st *invariant.State) error {
	cctx, cancel := context.WithTimeout(l.ctx(ctx), callTimeout)
	defer cancel()
	resp, err := l.ipam.DescribeSubnets(cctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{l.subnet}})
	if err != nil {
		return fmt.Errorf("DescribeSubnets: %w", err)
	}
	for _, sn := range resp.GetSubnetSet() {
		if held := uint64(st.HeldIn(sn.GetSubnetId())); sn.GetAvailableIpAddressCount() != sn.GetTotalIpAddressCount()-held {
			return fmt.Errorf("(c) subnet %s: available %d, but %d usable and %d held in etcd", sn.GetSubnetId(), sn.GetAvailableIpAddressCount(), sn.GetTotalIpAddressCount(), held)
		}
	}
	return nil
}

// CheckFinal runs once the load has stopped: within the reservation TTL and a margin no
// reservation is left, no HAVIP exists that no create could have made, none definitely
// deleted is back, and every client token made one HAVIP (checkTokens).
func (l *Load) CheckFinal(ctx context.Context) error {
	deadline := time.Now().Add(l.s.Timings.ReservationTTL + 5*time.Second)
	for {
		st, err := invariant.Read(ctx, l.s.Cli)
		if err != nil {
			return err
		}
		left := st.Reservations()
		if len(left) == 0 {
			return l.checkMade(st)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reservations left after their TTL (%v): %v", l.s.Timings.ReservationTTL, left)
		}
		time.Sleep(200 * time.Millisecond) // awaiting the leases
	}
}

func (l *Load) checkMade(st *invariant.State) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	extra := 0
	for id, h := range st.HaVips() {
		if h.Account != Account || slices.ContainsFunc(l.tracked, func(t *tracked) bool { return t.id == id }) {
			continue
		}
		if l.deleted[id] {
			return fmt.Errorf("HAVIP %s was deleted and is back", id)
		}
		if !l.created[id] {
			extra++
		}
	}
	if extra > l.unknown {
		return fmt.Errorf("%d HAVIPs no answered create made, and only %d creates had an unknown outcome", extra, l.unknown)
	}
	ids := map[string]string{}
	for tok, id := range l.tokens {
		if prev, ok := ids[id]; ok {
			return fmt.Errorf("tokens %s and %s made the same HAVIP %s", prev, tok, id)
		}
		ids[id] = tok
	}
	return checkTokens(st.HaVips(), l.tokens)
}

// checkTokens checks the client tokens the HAVIPs in etcd carry: none on two HAVIPs, and an
// answered create's token on the HAVIP its answer named, if on any (it may have been deleted
// since). A count of HAVIPs no answer named cannot tell a second HAVIP of one token from a
// create without a token whose answer was lost; the tokens can.
func checkTokens(havips map[string]records.HaVip, answered map[string]string) error {
	byToken := map[string]string{}
	for id, h := range havips {
		if h.ClientToken == "" {
			continue
		}
		k := h.Account + "/" + h.ClientToken
		if prev, ok := byToken[k]; ok {
			return fmt.Errorf("client token %s made two HAVIPs: %s and %s", h.ClientToken, min(prev, id), max(prev, id))
		}
		byToken[k] = id
	}
	for tok, id := range answered {
		if got, ok := byToken[Account+"/"+tok]; ok && got != id {
			return fmt.Errorf("client token %s was answered with HAVIP %s, but made %s", tok, id, got)
		}
	}
	return nil
}
