package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Row is what one fault did to the load.
type Row struct {
	Fault string
	// Errors are the calls (HAVIP calls and claims) that failed with an unknown outcome from
	// the fault's start until throughput was back.
	Errors int
	// Recovery is the time from the end of the heal (a killed process restarted and serving
	// again, a partition lifted) until a second with full throughput (at least 80% of the 3 s
	// before the fault); Takeover (broker faults) from the fault's start until another
	// replica holds the election key; Convergence from the end of the heal until every
	// watcher shows every tracked HAVIP owned by its MASTER.
	Recovery, Takeover, Convergence time.Duration
	// Slow says throughput was still under 80% recoveryBound after the heal (Recovery is then
	// that bound): on a machine shared with other work, not a verdict on the stack's integrity,
	// which the run goes on to check.
	Slow bool
}

// recoveryBound is how long after a heal throughput is awaited.
const recoveryBound = time.Minute

// baseline is how long the load runs before each fault to measure its normal throughput.
const baseline = 3 * time.Second

// Run applies f under the load, heals it, measures the row and checks the invariants on etcd.
func (l *Load) Run(t testing.TB, f Fault) (Row, error) {
	t.Helper()
	row := Row{Fault: f.Name}
	l.pause(baseline)
	var took chan time.Duration
	if f.Broker {
		took = l.awaitTakeover()
	}
	injected := time.Now()
	base := l.rate(injected.Add(-baseline), injected)
	heal := f.Inject(t, l.s)
	time.Sleep(f.hold(l.s)) // the fault's own duration
	for _, tr := range l.tracked {
		tr.flap.Store(false) // every HAVIP's MASTER stays put from now on
	}
	heal()
	healed := time.Now() // the fault is over: everything it stopped runs again
	var err error
	if row.Convergence, err = l.converge(healed); err != nil {
		return row, err
	}
	row.Recovery, row.Slow = l.recover(healed, base)
	for _, tr := range l.tracked {
		tr.flap.Store(true)
	}
	row.Errors = l.failed(injected, healed.Add(row.Recovery+time.Second))
	if f.Broker {
		row.Takeover = <-took
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.CheckInvariants(ctx, 3*time.Second); err != nil {
		return row, fmt.Errorf("after %s: invariant broken: %w", f.Name, err)
	}
	return row, nil
}

// rate is the calls per second that succeeded in the whole seconds of [from, to).
func (l *Load) rate(from, to time.Time) float64 {
	a, b := l.sec(from), l.sec(to)
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := 0
	for i := a; i < b && i < len(l.second); i++ {
		ok += l.second[i].ok
	}
	if b <= a {
		return 0
	}
	return float64(ok) / float64(b-a)
}

func (l *Load) sec(at time.Time) int { return int(at.Sub(l.start) / time.Second) }

// failed counts the failed calls in the seconds of [from, to].
func (l *Load) failed(from, to time.Time) int {
	a, b := l.sec(from), l.sec(to)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := a; i <= b && i < len(l.second); i++ {
		n += l.second[i].failed
	}
	return n
}

// recover waits for the first whole second after healed with 80% of base's throughput, and
// returns how long after healed it began; slow when none came within recoveryBound.
func (l *Load) recover(healed time.Time, base float64) (d time.Duration, slow bool) {
	for s := l.sec(healed); ; s++ {
		end := l.start.Add(time.Duration(s+1) * time.Second)
		for time.Now().Before(end) {
			l.pause(time.Until(end)) // the second must be over to be counted
		}
		l.mu.Lock()
		ok := 0
		if s < len(l.second) {
			ok = l.second[s].ok
		}
		l.mu.Unlock()
		if float64(ok) >= 0.8*base {
			return max(0, l.start.Add(time.Duration(s)*time.Second).Sub(healed)), false
		}
		if time.Since(healed) > recoveryBound {
			return recoveryBound, true
		}
	}
}

// converge waits until every watcher shows each tracked HAVIP owned by its MASTER's ENI.
func (l *Load) converge(healed time.Time) (time.Duration, error) {
	for {
		var missing []string
		l.mu.Lock()
		for _, tr := range l.tracked {
			want := l.hosts[tr.master.Load()].eni
			for i := range l.latest {
				if got := l.latest[i][tr.id]; got.eni != want {
					missing = append(missing, fmt.Sprintf("watcher %d: %s owned by %q, MASTER %s", i, tr.id, got.eni, want))
				}
			}
		}
		l.mu.Unlock()
		if len(missing) == 0 {
			return time.Since(healed), nil
		}
		if time.Since(healed) > 60*time.Second {
			return 0, fmt.Errorf("ownership not converged a minute after the heal: %s", strings.Join(missing, "; "))
		}
		time.Sleep(20 * time.Millisecond) // awaiting the watchers
	}
}

// awaitTakeover notes the broker's leader now, and delivers how long after its return another
// replica leads (0: none within 60 s).
func (l *Load) awaitTakeover() chan time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	old := l.s.BrokerLeader(ctx)
	cancel()
	start := time.Now()
	out := make(chan time.Duration, 1)
	go func() {
		for time.Since(start) < 60*time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			now := l.s.BrokerLeader(ctx)
			cancel()
			if now != "" && now != old {
				out <- time.Since(start)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling the election key
		}
		out <- 0
	}()
	return out
}

// Table is rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| fault | client errors | full throughput after heal | broker takeover | ownership converged after heal |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		take := "—"
		if r.Takeover > 0 {
			take = r.Takeover.Round(10 * time.Millisecond).String()
		}
		recovery := r.Recovery.Round(10 * time.Millisecond).String()
		if r.Slow {
			recovery = "> " + recovery
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %v |\n", r.Fault, r.Errors, recovery, take, r.Convergence.Round(10*time.Millisecond))
	}
	return b.String()
}

// Summary is the rows of several runs as one Markdown table: per fault, the median and the
// largest figure of each column over the runs.
func Summary(runs [][]Row) string {
	var order []string
	by := map[string][]Row{}
	for _, rows := range runs {
		for _, r := range rows {
			if _, ok := by[r.Fault]; !ok {
				order = append(order, r.Fault)
			}
			by[r.Fault] = append(by[r.Fault], r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| fault (%d runs: median / max) | client errors | full throughput after heal | broker takeover | ownership converged after heal |\n|---|---|---|---|---|\n", len(runs))
	for _, f := range order {
		rs := by[f]
		col := func(v func(Row) time.Duration, measured bool) string {
			ds := make([]time.Duration, len(rs))
			for i, r := range rs {
				ds[i] = v(r)
			}
			slices.Sort(ds)
			if !measured {
				return "—" // not a broker fault: no takeover
			}
			return fmt.Sprintf("%v / %v", ds[len(ds)/2].Round(10*time.Millisecond), ds[len(ds)-1].Round(10*time.Millisecond))
		}
		errs := make([]int, len(rs))
		for i, r := range rs {
			errs[i] = r.Errors
		}
		slices.Sort(errs)
		fmt.Fprintf(&b, "| %s | %d / %d | %s | %s | %s |\n", f, errs[len(errs)/2], errs[len(errs)-1],
			col(func(r Row) time.Duration { return r.Recovery }, true), col(func(r Row) time.Duration { return r.Takeover }, slices.ContainsFunc(rs, func(r Row) bool { return r.Takeover > 0 })),
			col(func(r Row) time.Duration { return r.Convergence }, true))
	}
	return b.String()
}
