package chaos_test

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/openhavip/havip/integration/chaos"
)

// runs are the rows of every run of TestFaults in this process (-count), summed up at the end.
var runs [][]chaos.Row

var (
	full      = flag.Bool("chaos.full", false, "run every fault and every combination (make chaos), not CI's bounded set")
	tableFile = flag.String("chaos.table", "", "append each run's table of faults (Markdown) to this file")
)

// TestFaults keeps a mixed load on the stack while it injects faults one at a time and then
// together; after each it checks the invariants on etcd, and at the end the histories
// (porcupine) and that nothing was left or made twice.
func TestFaults(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fault suite needs root (network namespaces)")
	}
	s := chaos.NewStack(t, binaries(t), chaos.Timings{ReservationTTL: 3 * time.Second, ElectionTTL: 2 * time.Second, HoldDown: 200 * time.Millisecond})
	l := chaos.NewLoad(t, s)
	l.Start(4)
	faults := []chaos.Fault{chaos.EtcdLeaderKill, chaos.Kill9("havipd-1"), chaos.BrokerLeaderKill, chaos.BrokerPartition, chaos.HavipdPause,
		chaos.Together(chaos.EtcdFollowerKill, chaos.BrokerLeaderKill)}
	if *full {
		faults = []chaos.Fault{chaos.EtcdFollowerKill, chaos.EtcdLeaderKill,
			chaos.Kill9("ipamd-1"), chaos.Kill9("havipd-1"), chaos.Kill9("eipd-1"), chaos.BrokerFollowerKill, chaos.BrokerLeaderKill,
			chaos.BrokerPartition, chaos.HavipdPause, chaos.PeerLatency, chaos.SlowDisk,
			chaos.Together(chaos.EtcdLeaderKill, chaos.BrokerLeaderKill),
			chaos.Together(chaos.Kill9("havipd-2"), chaos.EtcdFollowerKill, chaos.PeerLatency),
			chaos.Together(chaos.BrokerPartition, chaos.SlowDisk, chaos.Kill9("ipamd-2")),
		}
	}
	var rows []chaos.Row
	for _, f := range faults {
		row, err := l.Run(t, f)
		rows = append(rows, row)
		if err != nil {
			l.Stop()
			t.Fatalf("%v\n%s", err, chaos.Table(rows))
		}
		if row.Slow {
			t.Logf("%s: throughput still under 80%% of its level before the fault %v after the heal", row.Fault, row.Recovery)
		}
		t.Logf("%s: %d errors, throughput back %v after the heal, takeover %v, converged %v", row.Fault, row.Errors, row.Recovery, row.Takeover, row.Convergence)
	}
	l.Stop()
	runs = append(runs, rows)
	table := chaos.Table(rows)
	t.Logf("faults:\n%s", table)
	if *tableFile != "" {
		f, err := os.OpenFile(*tableFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(table + "\n")
			_ = f.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.CheckFinal(ctx); err != nil {
		t.Fatal(err)
	}
	dir := "artifacts"
	r, err := l.CheckHistory(dir)
	t.Logf("HAVIP history: %d calls (%d with an unknown outcome)", r.Ops, r.Unknown)
	if err != nil {
		t.Fatal(err)
	}
	r, err = l.CheckOwnership(dir)
	t.Logf("ownership: %d claims (%d accepted), %d sightings, %d reads, %d revisions", r.Claims, r.Accepted, r.Sightings, r.Reads, r.Revisions)
	if err != nil {
		t.Fatal(err)
	}
}
