// Package driver runs the ghz load scenarios against a running control plane: it makes their fixtures through the API, runs ghz for each scenario, removes the fixtures, and returns one table row per scenario.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"strings"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/loadtest/fixture"
	"github.com/openhavip/havip/loadtest/ghz"
	"github.com/openhavip/havip/loadtest/report"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/mtls"
)

// Targets are the gRPC addresses of the services, host:port: one address for all in the
// one-process suite, one per service in the compose stack.
type Targets struct {
	Ipam, HaVip, Eip, ArpBroker string
}

// Config is what a run loads and how hard.
type Config struct {
	Targets Targets
	// APIKey is the tenant's key: every tenant call, fixtures included, carries it as
	// "authorization: Bearer <key>", and the fixtures belong to its account.
	APIKey string
	// Tenant is the identity the tenant calls are made as (a client certificate, or the
	// operator's: either may call with an API key).
	Tenant mtls.Files
	// Agent is the host agent identity the ARP reports are made as; the CVMs the reports are for
	// run on its host.
	Agent mtls.Files
	// Ghz is the ghz binary.
	Ghz string
	// Requests is how many requests each scenario makes; Concurrency, from how many workers.
	Requests, Concurrency int
	// Pairs is how many HAVIPs, each with its own EIP, the associate/disassociate rounds use:
	// a round binds each once, then unbinds each once, so no two calls touch one pair at a time.
	Pairs int
	// AllocRound is how many EIPs AllocateAddresses takes before they are released again
	// (the public pool is finite: 254 addresses by default).
	AllocRound int
	// ArpHaVips is how many HAVIPs the ARP burst announces (each by a CVM of the agent's host
	// in its switch range: the first report of each takes it, the others refresh it).
	ArpHaVips int
	// DescribeSet is how many HAVIPs the Describe scenarios read, by ID and by name.
	DescribeSet int
}

// Defaults are the sizes of a run when Config leaves them zero.
var Defaults = Config{Requests: 2000, Concurrency: 20, Pairs: 50, AllocRound: 100, ArpHaVips: 50, DescribeSet: 100}

// mainSubnetSize is the number of usable addresses of the subnet of the fixtures (a /20).
const mainSubnetSize = 4096 - 3

// maxRequests keeps the CreateHaVip subnet at most half full (it is at most a /16).
const maxRequests = 32766

func (c Config) withDefaults() Config {
	for _, f := range []struct{ p, d *int }{
		{&c.Requests, &Defaults.Requests}, {&c.Concurrency, &Defaults.Concurrency}, {&c.Pairs, &Defaults.Pairs},
		{&c.AllocRound, &Defaults.AllocRound}, {&c.ArpHaVips, &Defaults.ArpHaVips}, {&c.DescribeSet, &Defaults.DescribeSet},
	} {
		if *f.p == 0 {
			*f.p = *f.d
		}
	}
	return c
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, t := range []struct{ name, addr string }{{"ipam", c.Targets.Ipam}, {"havip", c.Targets.HaVip}, {"eip", c.Targets.Eip}, {"arpbroker", c.Targets.ArpBroker}} {
		if t.addr == "" {
			return fmt.Errorf("no target for %s", t.name)
		}
	}
	if c.APIKey == "" {
		return errors.New("no API key")
	}
	for _, f := range []struct{ what, path string }{
		{"the CA certificate", c.Tenant.CA}, {"the tenant certificate", c.Tenant.Cert}, {"the tenant key", c.Tenant.Key},
		{"the agent's CA certificate", c.Agent.CA}, {"the agent certificate", c.Agent.Cert}, {"the agent key", c.Agent.Key}, {"ghz", c.Ghz},
	} {
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.what, err)
		}
	}
	for _, n := range []struct {
		what     string
		v, lo, h int
	}{
		{"requests", c.Requests, 1, maxRequests}, {"concurrency", c.Concurrency, 1, 1000}, {"pairs", c.Pairs, 1, 200},
		{"EIPs per allocation round", c.AllocRound, 1, 1000}, {"HAVIPs of the ARP burst", c.ArpHaVips, 1, 1000}, {"HAVIPs described", c.DescribeSet, 1, 1000},
	} {
		if n.v < n.lo || n.v > n.h {
			return fmt.Errorf("%s = %d: want %d to %d", n.what, n.v, n.lo, n.h)
		}
	}
	if need := c.DescribeSet + c.Pairs + 2*c.ArpHaVips; need > mainSubnetSize {
		return fmt.Errorf("the fixtures need %d addresses, more than the %d of their subnet: fewer HAVIPs", need, mainSubnetSize)
	}
	return nil
}

// createSubnetBits is the prefix length of the subnet CreateHaVip fills: at most half full
// after n creates, and no smaller than a /24.
func createSubnetBits(n int) int {
	return min(24, 32-bits.Len(uint(2*n+3-1)))
}

// Run makes the fixtures, runs every scenario, removes what it made (on every path: failures
// and a cancelled ctx included) and returns a row per scenario run. Failed requests are counted
// in the rows; an error means a scenario could not run or its results were wrong (what ghz
// cannot see: a HAVIP not taken by its report, an EIP left bound), or the cleanup failed.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (rows []report.Row, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tmp, err := os.MkdirTemp("", "havip-load-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	tenant, err := mtls.Load(cfg.Tenant, log)
	if err != nil {
		return nil, fmt.Errorf("tenant certificate: %w", err)
	}
	agent, err := mtls.Load(cfg.Agent, log)
	if err != nil {
		return nil, fmt.Errorf("agent certificate: %w", err)
	}
	if agent.Identity().Kind != identity.Agent {
		return nil, fmt.Errorf("%s is the certificate of %s, not of a host agent", cfg.Agent.Cert, agent.Identity())
	}
	conns := map[string]*grpc.ClientConn{}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	dial := func(target string, src *mtls.Source, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
		key := target + " " + string(src.Identity().Kind)
		if c, ok := conns[key]; ok {
			return c, nil
		}
		c, err := grpc.NewClient(target, append([]grpc.DialOption{mtls.DialOption(src)}, opts...)...)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", target, err)
		}
		conns[key] = c
		return c, nil
	}
	withKey := grpc.WithPerRPCCredentials(bearer(cfg.APIKey))
	var cl fixture.Clients
	var ab arpbrokerv1.ArpBrokerServiceClient
	for _, d := range []struct {
		target string
		src    *mtls.Source
		set    func(*grpc.ClientConn)
	}{
		{cfg.Targets.Ipam, tenant, func(c *grpc.ClientConn) { cl.Ipam = ipamv1.NewIpamServiceClient(c) }},
		{cfg.Targets.HaVip, tenant, func(c *grpc.ClientConn) { cl.HaVip = havipv1.NewHaVipServiceClient(c) }},
		{cfg.Targets.Eip, tenant, func(c *grpc.ClientConn) { cl.Eip = eipv1.NewEipServiceClient(c) }},
		{cfg.Targets.ArpBroker, agent, func(c *grpc.ClientConn) { ab = arpbrokerv1.NewArpBrokerServiceClient(c) }},
	} {
		var opts []grpc.DialOption
		if d.src == tenant {
			opts = append(opts, withKey)
		}
		c, err := dial(d.target, d.src, opts...)
		if err != nil {
			return nil, err
		}
		d.set(c)
	}

	set := fixture.New(cl, log)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fixture.CleanupTimeout)
		defer cancel()
		log.Info("removing the fixtures")
		if cerr := set.Cleanup(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	run := &run{
		cfg: cfg, set: set, cl: cl, broker: ab, id: runID(), host: agent.Identity().Name,
		ghz: ghz.Runner{Bin: cfg.Ghz, Dir: tmp},
	}
	log.Info("making the fixtures", "run", run.id)
	if err := run.fixtures(ctx); err != nil {
		return nil, err
	}
	for _, sc := range scenarios {
		log.Info("scenario", "name", sc.name, "requests", cfg.Requests, "concurrency", cfg.Concurrency)
		res, err := sc.run(run, ctx)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", sc.name, err)
		}
		for _, r := range res {
			rows = append(rows, report.NewRow(r.name, r.Latencies, r.Elapsed, r.ErrorCount()))
			for msg, n := range r.Errors {
				log.Warn("failed requests", "scenario", r.name, "count", n, "error", msg)
			}
		}
	}
	return rows, nil
}

// bearer sends the API key with every call, over TLS only.
type bearer string

// GetRequestMetadata returns the authorization header.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity keeps the key off plaintext connections.
func (bearer) RequireTransportSecurity() bool { return true }

// runID names a run's resources: 6 lowercase letters and digits (of a fresh resource ID).
func runID() string { return strings.TrimPrefix(ids.New("run"), "run-")[:6] }
