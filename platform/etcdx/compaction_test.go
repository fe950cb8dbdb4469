package etcdx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdx"
)

// start runs an embedded etcd with opts (Dir set) until the test ends, with a client.
func start(t *testing.T, opts etcdx.EmbeddedOptions) (*etcdx.Embedded, *clientv3.Client) {
	t.Helper()
	opts.Dir = t.TempDir()
	opts.UnsafeNoFsync = true
	e, err := etcdx.StartEmbedded(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := etcdx.Connect(context.Background(), []string{e.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return e, cli
}

// status is etcd's view of its database: its size (the file's high-water mark) and the part
// of it in use (the rest is free pages, reused before the file grows).
func status(t *testing.T, e *etcdx.Embedded, cli *clientv3.Client) *clientv3.StatusResponse {
	t.Helper()
	st, err := cli.Status(context.Background(), e.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// churn creates n keys of size bytes under prefix and deletes them again; it returns the
// revision of the delete.
func churn(t *testing.T, cli *clientv3.Client, prefix string, n, size int) int64 {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("x", size)
	for i := range n {
		if _, err := cli.Put(ctx, fmt.Sprintf("%s%05d", prefix, i), val); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Delete(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// awaitCompacted waits until etcd has compacted every revision before rev.
func awaitCompacted(t *testing.T, cli *clientv3.Client, rev int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cli.Get(context.Background(), "probe", clientv3.WithRev(rev-1))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d not compacted after 30s", rev-1)
		}
		time.Sleep(50 * time.Millisecond) // nothing tells of an automatic compaction
	}
}

// TestCompactionBoundsTheDatabase: under churn (the same keys created and deleted round after
// round), the database of an etcd without auto-compaction grows with every round, as history
// piles up; with auto-compaction it stops growing once the first rounds' space is freed and
// reused, and a defragmentation shrinks its file to what is in use.
func TestCompactionBoundsTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("churns two etcds for several seconds")
	}
	const rounds, keys, size = 10, 500, 4096
	var without, with []int64
	{
		e, cli := start(t, etcdx.EmbeddedOptions{CompactionRetention: -1})
		for r := range rounds {
			churn(t, cli, fmt.Sprintf("/churn/%d/", r), keys, size)
			without = append(without, status(t, e, cli).DbSize)
		}
	}
	e, cli := start(t, etcdx.EmbeddedOptions{CompactionRetention: 200 * time.Millisecond})
	for r := range rounds {
		rev := churn(t, cli, fmt.Sprintf("/churn/%d/", r), keys, size)
		awaitCompacted(t, cli, rev)
		with = append(with, status(t, e, cli).DbSize)
	}
	before := status(t, e, cli)
	if _, err := cli.Defragment(context.Background(), e.Endpoint); err != nil {
		t.Fatal(err)
	}
	after := status(t, e, cli)
	t.Logf("%d rounds of %d keys of %d bytes created and deleted", rounds, keys, size)
	t.Logf("database size by round without compaction: %v", mib(without))
	t.Logf("database size by round with compaction:    %v", mib(with))
	t.Logf("with compaction, before a defragmentation: %s (%s in use); after: %s (%s in use)",
		mib1(before.DbSize), mib1(before.DbSizeInUse), mib1(after.DbSize), mib1(after.DbSizeInUse))

	// Without compaction each round adds its history: the last size is several times the second.
	if without[rounds-1] < 3*without[1] {
		t.Errorf("without compaction the database did not grow with the churn: %v", mib(without))
	}
	// With compaction the later rounds reuse the space the earlier ones freed: the database
	// stays within two rounds' worth of data, whatever the number of rounds.
	if with[rounds-1] > 4*keys*size || with[rounds-1] > without[rounds-1]/3 {
		t.Errorf("with compaction the database still grows: %v (without: %v)", mib(with), mib(without))
	}
	// A defragmentation gives the free pages back: the file is about what is in use.
	if after.DbSize > before.DbSize/2 || after.DbSize > after.DbSizeInUse+(1<<20) {
		t.Errorf("defragmentation left %d bytes (%d in use), from %d", after.DbSize, after.DbSizeInUse, before.DbSize)
	}
}

// TestQuotaAndRecovery: past its space quota etcd refuses writes (alarm NOSPACE); the
// operator's way back, as the README says (compact, defragment, disarm the alarm), makes it
// writable again.
func TestQuotaAndRecovery(t *testing.T) {
	e, cli := start(t, etcdx.EmbeddedOptions{CompactionRetention: -1, QuotaBytes: 4 << 20})
	ctx := context.Background()
	val := strings.Repeat("x", 64<<10)
	var rev int64
	for i := 0; ; i++ {
		resp, err := cli.Put(ctx, "/big", val) // one key: all but its latest value is history
		if errors.Is(err, rpctypes.ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
		if i > 1000 {
			t.Fatal("no NOSPACE alarm past the quota")
		}
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != etcdserverpb.AlarmType_NOSPACE {
		t.Fatalf("alarms: %v", alarms.Alarms)
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, e.Endpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: alarms.Alarms[0].MemberID, Alarm: etcdserverpb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/big", "small"); err != nil {
		t.Fatalf("after compaction, defragmentation and disarming: %v", err)
	}
}

func mib(sizes []int64) []string {
	out := make([]string, len(sizes))
	for i, s := range sizes {
		out[i] = mib1(s)
	}
	return out
}

func mib1(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
