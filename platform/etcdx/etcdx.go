// Package etcdx connects to etcd and starts an embedded etcd for the one-process suite and for tests.
package etcdx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
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
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Get(sctx, "health-check-probe"); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("etcd at %v does not answer: %w", endpoints, err)
	}
	return cli, nil
}

// Embedded is an etcd server running inside this process.
type Embedded struct {
	etcd *embed.Etcd
	// Endpoint is the client URL the server listens on.
	Endpoint string
}

// EmbeddedOptions tunes an embedded etcd.
type EmbeddedOptions struct {
	// Dir keeps the data; it survives restarts.
	Dir string
	// ClientAddr is host:port to listen on for clients; "127.0.0.1:0" picks a free port.
	ClientAddr string
	// UnsafeNoFsync skips fsync (tests and benchmarks on throwaway data only).
	UnsafeNoFsync bool
	// TLS, when set, serves clients over TLS with client certificates required: only clients
	// whose certificate is valid for one of TLS.AllowedHostnames get in.
	TLS *EmbeddedTLS
}

// EmbeddedTLS is the server side of an embedded etcd's TLS (PEM files, re-read by etcd at each
// handshake).
type EmbeddedTLS struct {
	CertFile, KeyFile, CAFile string
	// AllowedHostnames: a client certificate must be valid for one of these names.
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
	scheme := "http://"
	if opts.TLS != nil {
		scheme = "https://"
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile: opts.TLS.CertFile, KeyFile: opts.TLS.KeyFile, TrustedCAFile: opts.TLS.CAFile,
			ClientCertAuth: true, AllowedHostnames: opts.TLS.AllowedHostnames,
		}
	}
	curl, err := url.Parse(scheme + opts.ClientAddr)
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
	return &Embedded{etcd: e, Endpoint: scheme + e.Clients[0].Addr().String()}, nil
}

// Close stops the server.
func (e *Embedded) Close() { e.etcd.Close() }
