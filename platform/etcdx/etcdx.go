// Package etcdx connects to etcd and starts an embedded etcd for the one-process suite and for tests.
package etcdx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/retry"
)

// Connect dials etcd at endpoints and checks it answers.
func Connect(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	return ConnectTLS(ctx, endpoints, nil)
}

// ConnectTLS is Connect over TLS with tlsCfg (for https:// endpoints; nil: plaintext).
func ConnectTLS(ctx context.Context, endpoints []string, tlsCfg *tls.Config) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		TLS:         tlsCfg,
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// Keep the connection alive through idle periods so watches notice a dead server.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		// Every transaction's latency and result (havip_etcd_txn_duration_seconds), and no call
		// waiting on a member without a leader.
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(measureTxns, requireLeader)},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// A cluster that is still electing its leader answers "no leader" (requireLeader): wait.
	for n := 1; ; n++ {
		_, err := cli.Get(sctx, "health-check-probe")
		if err == nil {
			return cli, nil
		}
		if !apierr.StoreUnavailable(err) || !retry.DefaultBackoff.Wait(sctx, n) {
			_ = cli.Close()
			return nil, fmt.Errorf("etcd at %v does not answer: %w", endpoints, err)
		}
	}
}

// requireLeader is clientv3.WithRequireLeader on every unary call of a client: a member that
// has no leader answers at once with etcd's "no leader" (apierr.StoreUnavailable: a 503), rather
// than hold a write until etcd's request timeout (7 s by default), past most callers' deadlines.
// A member refuses so before it handles the call, so a refused write was never proposed and may
// be sent again: it is, for up to LeaderWait (an election's length), so that a leader change
// costs writes a wait rather than an error; so is a write raft dropped (the member lost its
// leader after it took the call: apierr.ProposalDropped); reads etcd's client retries itself,
// for as long.
func requireLeader(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx = clientv3.WithRequireLeader(ctx)
	err := invoker(ctx, method, req, reply, cc, opts...)
	if method == rangeMethod {
		return err
	}
	start := time.Now()
	for n := 1; (errors.Is(err, rpctypes.ErrGRPCNoLeader) || apierr.ProposalDropped(err)) && time.Since(start) < LeaderWait && leaderBackoff.Wait(ctx, n); n++ {
		err = invoker(ctx, method, req, reply, cc, opts...)
	}
	return err
}

// LeaderWait is how long a write refused for want of a leader is sent again: etcd elects a
// leader within about two election timeouts (1 s each by default) of losing one.
const LeaderWait = 2 * time.Second

// leaderBackoff paces those tries.
var leaderBackoff = retry.Backoff{Base: 25 * time.Millisecond, Cap: 250 * time.Millisecond}

// rangeMethod is etcd's gRPC method of a read.
const rangeMethod = "/etcdserverpb.KV/Range"

// Embedded is an etcd server running inside this process.
type Embedded struct {
	etcd *embed.Etcd
	// Endpoint is the client URL the server listens on.
	Endpoint string
}

// Defaults of EmbeddedOptions, also those of the docker-compose etcd (docker-compose.yml).
const (
	// DefaultCompactionRetention is how much history etcd keeps: every minute it compacts the
	// revisions older than a minute (etcd's periodic auto-compaction), so that churn (HAVIPs
	// created and deleted over and over) reuses the space earlier writes freed rather than
	// growing the database by 5 minutes of writes, as Kubernetes' 5-minute compaction would.
	// Nothing here reads history: the caches (kvcache) only resume their watches from where
	// they were, and one cut off for longer than this reloads.
	DefaultCompactionRetention = time.Minute
	// DefaultQuotaBytes is the space quota: etcd goes read-only (alarm NOSPACE) once its
	// database reaches it. 8 GiB, etcd's suggested maximum, sized by the history rather than
	// the live data: a HAVIP with its address records takes about 500 bytes compacted (half a
	// GiB for a million), but its creation adds about 650 bytes of history, and at the 8,500
	// creations a second BenchmarkHaVip reaches, the 5 to 10 minutes of history a 5-minute
	// retention holds take 1.6 to 3.3 GB, past etcd's default of 2 GiB.
	DefaultQuotaBytes = 8 << 30
)

// EmbeddedOptions tunes an embedded etcd.
type EmbeddedOptions struct {
	// Dir keeps the data; it survives restarts.
	Dir string
	// ClientAddr is host:port to listen on for clients; "127.0.0.1:0" picks a free port.
	ClientAddr string
	// UnsafeNoFsync skips fsync (tests and benchmarks on throwaway data only).
	UnsafeNoFsync bool
	// CompactionRetention is the history kept by periodic auto-compaction (zero:
	// DefaultCompactionRetention; negative: no auto-compaction). Compaction frees space inside
	// the database for reuse; only a defragmentation (etcdctl defrag) shrinks its file.
	CompactionRetention time.Duration
	// QuotaBytes is the space quota (zero: DefaultQuotaBytes).
	QuotaBytes int64
	// TLS, when set, serves clients over TLS (Endpoint is then https://) and requires client
	// certificates issued by its CA.
	TLS *TLSFiles
}

// TLSFiles are the PEM files of an etcd serving TLS: its certificate and key, and the CA its
// clients' certificates must come from (etcd re-reads them at each handshake).
type TLSFiles struct {
	Cert, Key, CA string
	// AllowedHostnames, when set: a client certificate must also be valid for one of these names.
	AllowedHostnames []string
}

// StartEmbedded starts a single-member etcd on loopback and waits until it is ready.
func StartEmbedded(ctx context.Context, opts EmbeddedOptions) (*Embedded, error) {
	if opts.ClientAddr == "" {
		opts.ClientAddr = "127.0.0.1:0"
	}
	cfg := embed.NewConfig()
	cfg.Dir = opts.Dir
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Slow-request warnings format the whole request before handing it to the (discarding)
	// logger: under load that costs measurable CPU for nothing.
	cfg.WarningApplyDuration = time.Hour
	cfg.WarningUnaryRequestDuration = time.Hour
	cfg.UnsafeNoFsync = opts.UnsafeNoFsync
	switch {
	case opts.CompactionRetention == 0:
		opts.CompactionRetention = DefaultCompactionRetention
	case opts.CompactionRetention < 0:
		opts.CompactionRetention = 0 // etcd's "off"
	}
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = opts.CompactionRetention.String()
	if opts.QuotaBytes == 0 {
		opts.QuotaBytes = DefaultQuotaBytes
	}
	cfg.QuotaBackendBytes = opts.QuotaBytes
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: opts.TLS.Cert, KeyFile: opts.TLS.Key, TrustedCAFile: opts.TLS.CA, ClientCertAuth: true, AllowedHostnames: opts.TLS.AllowedHostnames}
	}
	curl, err := url.Parse(scheme + "://" + opts.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("client address %q: %w", opts.ClientAddr, err)
	}
	// The peer listener is never dialled by anyone (one member); port 0 keeps it free of clashes.
	purl, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls = []url.URL{*curl}
	cfg.AdvertiseClientUrls = []url.URL{*curl}
	cfg.ListenPeerUrls = []url.URL{*purl}
	cfg.AdvertisePeerUrls = []url.URL{*purl}
	cfg.InitialCluster = cfg.Name + "=" + purl.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", opts.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready after 60s", opts.Dir)
	}
	return &Embedded{etcd: e, Endpoint: scheme + "://" + e.Clients[0].Addr().String()}, nil
}

// Close stops the server.
func (e *Embedded) Close() { e.etcd.Close() }
