package driver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/loadtest/creds"
	"github.com/openhavip/havip/loadtest/driver"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/suite"
)

// ghzBin is the pinned ghz that `make ghz` (and so `make test`) installs into the repository's
// bin directory.
func ghzBin(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "bin", "ghz"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("ghz is not installed at %s: run `make ghz` (make test does): %v", p, err)
	}
	return p
}

// startSuite runs the one-process suite on free ports until the test ends and returns the
// load driver's settings for it: every target on its address, its API key, and a client and
// an agent certificate issued from its CA. A reservation of a create cut short lasts a second.
func startSuite(t *testing.T) driver.Config {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := suite.Config{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", EtcdAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", UnsafeNoFsync: true}
	cfg.HaVip.ReservationTTL = time.Second
	ready := make(chan suite.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- suite.Run(ctx, cfg, etcdtest.Quiet, nopWriter{}, func(r suite.Ready) { ready <- r }) }()
	var r suite.Ready
	select {
	case r = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the suite did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the suite stopped with %v", err)
		}
	})
	tenant, agent, err := creds.Resolve(r.CertsDir, t.TempDir(), "load-test-host")
	if err != nil {
		t.Fatal(err)
	}
	a := r.GRPCAddr
	return driver.Config{
		Targets: driver.Targets{Ipam: a, HaVip: a, Eip: a, ArpBroker: a},
		APIKey:  r.APIKey, Tenant: tenant, Agent: agent,
	}
}

// nopWriter drops the suite's banner.
type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// key sends the API key over TLS.
type key string

func (k key) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}
func (key) RequireTransportSecurity() bool { return true }

var _ credentials.PerRPCCredentials = key("")

// tenantConn connects to the suite as the tenant of cfg.
func tenantConn(t *testing.T, cfg driver.Config) *grpc.ClientConn {
	t.Helper()
	src, err := mtls.Load(cfg.Tenant, etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(cfg.Targets.Ipam, mtls.DialOption(src), grpc.WithPerRPCCredentials(key(cfg.APIKey)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// assertNothingLeft checks that the account of cfg's key holds no VPC, subnet, CVM, HAVIP or EIP.
func assertNothingLeft(t *testing.T, cfg driver.Config) {
	t.Helper()
	conn := tenantConn(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	counts := map[string]func() (uint32, error){
		"subnets": func() (uint32, error) {
			r, err := ipamv1.NewIpamServiceClient(conn).DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{})
			return r.GetTotalCount(), err
		},
		"VPCs": func() (uint32, error) {
			r, err := ipamv1.NewIpamServiceClient(conn).DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{})
			return r.GetTotalCount(), err
		},
		"CVMs": func() (uint32, error) {
			r, err := ipamv1.NewIpamServiceClient(conn).DescribeInstances(ctx, &ipamv1.DescribeInstancesRequest{})
			return r.GetTotalCount(), err
		},
		"HAVIPs": func() (uint32, error) {
			r, err := havipv1.NewHaVipServiceClient(conn).DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{})
			return r.GetTotalCount(), err
		},
		"EIPs": func() (uint32, error) {
			r, err := eipv1.NewEipServiceClient(conn).DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{})
			return r.GetTotalCount(), err
		},
	}
	for what, count := range counts {
		n, err := count()
		if err != nil {
			t.Fatalf("count %s: %v", what, err)
		}
		if n != 0 {
			t.Errorf("%d %s left behind", n, what)
		}
	}
}

// TestEveryScenarioWithoutErrors runs every scenario, at a small size, against a suite on free
// ports through ghz: each row of the table is there, in order, with every request made and
// none failed; and the run removes all it made.
func TestEveryScenarioWithoutErrors(t *testing.T) {
	cfg := startSuite(t)
	cfg.Ghz = ghzBin(t)
	cfg.Requests, cfg.Concurrency = 200, 10
	cfg.Pairs, cfg.AllocRound, cfg.ArpHaVips, cfg.DescribeSet = 20, 60, 20, 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows, err := driver.Run(ctx, cfg, etcdtest.Quiet)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := []string{
		"CreateHaVip (automatic IP)",
		"DescribeHaVips by ID",
		"DescribeHaVips by filter",
		"AllocateAddresses",
		"HaVipAssociateAddressIp",
		"HaVipDisassociateAddressIp",
		"ReportArpAnnouncement (burst)",
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Scenario)
		if r.Requests != cfg.Requests || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors; want %d, 0", r.Scenario, r.Requests, r.Errors, cfg.Requests)
		}
		if r.RPS <= 0 || r.P50 <= 0 || r.P50 > r.P95 || r.P95 > r.P99 {
			t.Errorf("%s: rps %.0f, p50 %v, p95 %v, p99 %v: want a positive rate and ordered percentiles", r.Scenario, r.RPS, r.P50, r.P95, r.P99)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	assertNothingLeft(t, cfg)
}

// TestCleanupWhenAScenarioFails: when ghz cannot run, the run fails at the first scenario and
// still removes every fixture it had made.
func TestCleanupWhenAScenarioFails(t *testing.T) {
	cfg := startSuite(t)
	cfg.Ghz = filepath.Join(t.TempDir(), "ghz")
	if err := os.WriteFile(cfg.Ghz, []byte("#!/bin/sh\necho 'ghz: broken on purpose' >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Requests, cfg.Concurrency = 50, 5
	cfg.Pairs, cfg.ArpHaVips, cfg.DescribeSet = 5, 5, 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := driver.Run(ctx, cfg, etcdtest.Quiet)
	if err == nil {
		t.Fatalf("run with a failing ghz: no error (rows %v)", rows)
	}
	if len(rows) != 0 {
		t.Errorf("rows %v, want none", rows)
	}
	assertNothingLeft(t, cfg)
}

// TestCleanupWhenInterrupted: a run cancelled right after the first round of
// HaVipAssociateAddressIp (every pair's EIP bound) stops there and still removes everything:
// it unbinds the EIPs before it releases them and deletes their HAVIPs.
func TestCleanupWhenInterrupted(t *testing.T) {
	cfg := startSuite(t)
	dir := t.TempDir()
	// ghz's 5th run is the first associate round (the 4 before: CreateHaVip, the two
	// Describes, one AllocateAddresses round): the wrapper lets it finish, says so, and then
	// hangs as a run that has not reported yet.
	script := fmt.Sprintf(`#!/bin/sh
n=$(($(cat %[1]s/count 2>/dev/null || echo 0) + 1)); echo $n > %[1]s/count
[ $n -ne 5 ] && exec %[2]s "$@"
%[2]s "$@" > %[1]s/out || exit 1
touch %[1]s/interrupt
exec sleep 120
`, dir, ghzBin(t))
	cfg.Ghz = filepath.Join(dir, "ghz")
	if err := os.WriteFile(cfg.Ghz, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Requests, cfg.Concurrency = 50, 5
	cfg.Pairs, cfg.AllocRound, cfg.ArpHaVips, cfg.DescribeSet = 10, 60, 5, 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "interrupt")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	rows, err := driver.Run(ctx, cfg, etcdtest.Quiet)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: error %v, want one wrapping context.Canceled", err)
	}
	if len(rows) != 4 {
		t.Errorf("%d rows before the interruption, want 4 (up to AllocateAddresses)", len(rows))
	}
	assertNothingLeft(t, cfg)
}

// TestCleanupWhenInterruptedMidCreate: a run cancelled while ghz is creating HAVIPs (the
// calls in flight cut, their addresses held by reservations until these lapse) still removes
// everything: the HAVIPs made, then the subnet once the reservations have lapsed.
func TestCleanupWhenInterruptedMidCreate(t *testing.T) {
	cfg := startSuite(t)
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\ntouch %s/started\nexec %s \"$@\"\n", dir, ghzBin(t))
	cfg.Ghz = filepath.Join(dir, "ghz")
	if err := os.WriteFile(cfg.Ghz, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Requests, cfg.Concurrency = 20000, 10 // far more than it makes before it is cancelled
	cfg.Pairs, cfg.ArpHaVips, cfg.DescribeSet = 5, 5, 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := tenantConn(t, cfg)
	made := make(chan int, 1)
	go func() { // once ghz runs and has made 50 HAVIPs (the fixtures: 15), cancel
		defer close(made)
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
				r, err := havipv1.NewHaVipServiceClient(conn).DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 1})
				if n := int(r.GetTotalCount()) - 15; err == nil && n >= 50 {
					cancel()
					made <- n
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	rows, err := driver.Run(ctx, cfg, etcdtest.Quiet)
	if n, ok := <-made; !ok {
		t.Fatalf("the run ended (%v) before ghz made 50 HAVIPs", err)
	} else {
		t.Logf("cancelled after ghz made %d HAVIPs", n)
	}
	if !errors.Is(err, context.Canceled) || len(rows) != 0 {
		t.Fatalf("interrupted run: rows %v, error %v; want none and one wrapping context.Canceled", rows, err)
	}
	assertNothingLeft(t, cfg)
}
