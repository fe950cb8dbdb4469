package suite_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/suite"
)

// TestQuorumLoss: a suite on a 3-member etcd that loses 2 members answers REST creates with 503,
// Retry-After and ResourceUnavailable.Store within the client's deadline — never 500 — both a
// create without a client token through the in-process gateway (sent once) and one with a token
// through a gateway that calls over gRPC (retried by grpcclient, then given up before the
// deadline). Once the members are back, the same calls succeed, and the token's create made one
// HAVIP.
func TestQuorumLoss(t *testing.T) {
	cluster := etcdtest.StartCluster(t, 3)
	dir := t.TempDir()
	key := apikey.New()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(apikey.Line("acct-quorum", key)), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _, _ := run(t, suite.Config{DataDir: dir, Etcd: cluster.Endpoints, InsecureEtcd: true, KeysFile: keys}, io.Discard)
	k, err := apikey.Load(keys)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), gateway.Config{IpamAddr: r.GRPCAddr, HaVipAddr: r.GRPCAddr, EipAddr: r.GRPCAddr, Keys: k, Log: etcdtest.Quiet,
		TLS: sourceAs(t, r.CertsDir, identity.ID{Kind: identity.Gateway}), RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { srv.Close(); gw.Close() })
	const deadline = 25 * time.Second // the client's
	local := &stack{base: "http://" + r.HTTPAddr, client: &http.Client{Timeout: deadline}}
	remote := &stack{base: srv.URL, client: &http.Client{Timeout: deadline}}

	vpc := ok(t, local.do(t, key, "POST", "/v1/vpcs", map[string]any{"vpc_name": "q", "cidr_block": "10.0.0.0/16"})).str("vpc", "vpc_id")
	subnet := ok(t, local.do(t, key, "POST", "/v1/subnets", map[string]any{"vpc_id": vpc, "subnet_name": "q", "cidr_block": "10.0.1.0/24"})).str("subnet", "subnet_id")
	createVpc := func() reply {
		return local.do(t, key, "POST", "/v1/vpcs", map[string]any{"vpc_name": "during", "cidr_block": "10.1.0.0/16"})
	}
	createHaVip := func() reply {
		return remote.do(t, key, "POST", "/v1/havips", map[string]any{"vpc_id": vpc, "subnet_id": subnet, "havip_name": "during", "client_token": "quorum-token-1"})
	}

	// The leader stays, alone: stopping a leader would hand its leadership over first, which
	// takes seconds; the survivor steps down once it has heard from no follower for an
	// election timeout.
	survivor := cluster.Leader()
	if survivor < 0 {
		t.Fatal("the cluster has no leader")
	}
	var stopped []int
	for i := range 3 {
		if i != survivor {
			stopped = append(stopped, i)
		}
	}
	cluster.Stop(stopped...)
	waitFor(t, 15*time.Second, "the survivor to lose its leadership", func() bool { return !cluster.HasLeader(survivor) })
	for _, c := range []struct {
		what string
		call func() reply
	}{{"CreateVpc (no token, in process)", createVpc}, {"CreateHaVip (client token, over gRPC)", createHaVip}} {
		start := time.Now()
		got := c.call()
		took := time.Since(start)
		refused(t, c.what, got, http.StatusServiceUnavailable, apierr.ReasonStoreUnavailable)
		if ra := got.header.Get("Retry-After"); ra != gateway.RetryAfter {
			t.Errorf("%s: Retry-After %q, want %q", c.what, ra, gateway.RetryAfter)
		}
		t.Logf("%s without a quorum: %d in %v", c.what, got.status, took.Round(time.Millisecond))
	}

	cluster.Restart(stopped...)
	back := time.Now()
	for _, c := range []struct {
		what string
		call func() reply
	}{{"CreateVpc", createVpc}, {"CreateHaVip", createHaVip}} {
		var last reply
		waitFor(t, 30*time.Second, c.what+" to succeed after the quorum is back", func() bool {
			last = c.call()
			if last.status == http.StatusInternalServerError {
				t.Fatalf("%s: 500 %s", c.what, last.raw)
			}
			return last.status == http.StatusOK
		})
		t.Logf("%s succeeds %v after the members are back", c.what, time.Since(back).Round(time.Millisecond))
	}
	if got := ok(t, local.do(t, key, "GET", "/v1/havips?filter.havip-name=during", nil)).str("total_count"); got != "1" {
		t.Errorf("HAVIPs made by the token's create: %s, want 1", got)
	}
}

// waitFor polls cond every 50 ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
