// Package suite runs every HAVIP service in one process, on one gRPC address, over an embedded etcd or an external one.
package suite

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/platform/apikey"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/inproc"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/pki"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// Config is where the suite listens, where it keeps its data, and the settings of its
// services. A zero field means its default.
type Config struct {
	// GRPCAddr serves every gRPC service (-grpc-addr, HAVIP_GRPC_ADDR; default
	// 127.0.0.1:50051).
	GRPCAddr string
	// Etcd lists the endpoints of an external etcd to keep the state in instead of the
	// embedded one (-etcd, HAVIP_ETCD_ENDPOINTS, comma-separated, as the services read it;
	// empty: the embedded etcd). https:// endpoints are called with the suite's certificate
	// (<DataDir>/certs/havip-suite.crt), so such an etcd must trust the suite's CA and serve a
	// certificate from it (havip-cert -dir <DataDir>/certs create ...).
	Etcd []string
	// EtcdAddr is the embedded etcd's client address (-etcd-addr, HAVIP_ETCD_ADDR; default
	// 127.0.0.1:0, any free port).
	EtcdAddr string
	// EtcdCompactionRetention is how much history the embedded etcd keeps: every that long it
	// compacts what is older (-etcd-compaction-retention, HAVIP_ETCD_COMPACTION_RETENTION;
	// default etcdx.DefaultCompactionRetention, 1m).
	EtcdCompactionRetention time.Duration
	// EtcdQuotaBytes is the embedded etcd's space quota, past which it refuses writes
	// (-etcd-quota-bytes, HAVIP_ETCD_QUOTA_BYTES; default etcdx.DefaultQuotaBytes, 8 GiB).
	EtcdQuotaBytes int64
	// InsecureEtcd lets the suite call an external etcd in plaintext (http://) although it serves
	// mTLS: development only (-insecure-etcd, HAVIP_INSECURE_ETCD).
	InsecureEtcd bool
	// DataDir keeps etcd's data across restarts (-data-dir, HAVIP_DATA_DIR; default
	// .havip-data).
	DataDir string
	// UnsafeNoFsync skips fsync in etcd: for throwaway data in tests only (no flag).
	UnsafeNoFsync bool
	// HTTPAddr serves the REST gateway (-http-addr, HAVIP_HTTP_ADDR; default 127.0.0.1:8080).
	HTTPAddr string
	// KeysFile holds the gateway's API keys (-keys, HAVIP_API_KEYS_FILE). When empty, the
	// suite makes a fresh key for DemoAccount at each start, prints it, and keeps only its hash.
	KeysFile string
	// Log is the logging setting (-log-level, HAVIP_LOG_LEVEL), for the program that calls
	// Run with its logger.
	Log logging.Config
	// Metrics is where the suite serves Prometheus /metrics, every service's in one
	// (-metrics-addr, HAVIP_METRICS_ADDR; default metrics.DefaultAddr from flags, "off" for
	// none; a Config built in code with none serves none), and Go's profiles when -pprof
	// (HAVIP_PPROF) is on.
	Metrics metrics.Config
	// Plaintext serves gRPC without TLS, trusting every caller as any identity: for
	// development only (-insecure-plaintext, HAVIP_INSECURE_PLAINTEXT). Otherwise the suite
	// serves mTLS with the certificates it makes in <DataDir>/certs on first start.
	Plaintext bool
	// HaVip, ArpBroker and Eip are the settings of those services. HaVip.IpamAddr and
	// ArpBroker.AdvertiseAddr have no flag: ipamd runs in the process, and the broker is its
	// only replica.
	HaVip     havip.Config
	ArpBroker arpbroker.Config
	Eip       eip.Config
}

var (
	grpcAddrSetting = config.Setting{Flag: "grpc-addr", Env: "HAVIP_GRPC_ADDR"}
	etcdSetting     = config.Setting{Flag: "etcd", Env: "HAVIP_ETCD_ENDPOINTS"}
	etcdAddrSetting = config.Setting{Flag: "etcd-addr", Env: "HAVIP_ETCD_ADDR"}
	retainSetting   = config.Setting{Flag: "etcd-compaction-retention", Env: "HAVIP_ETCD_COMPACTION_RETENTION"}
	quotaSetting    = config.Setting{Flag: "etcd-quota-bytes", Env: "HAVIP_ETCD_QUOTA_BYTES"}
	dataDirSetting  = config.Setting{Flag: "data-dir", Env: "HAVIP_DATA_DIR"}
	httpAddrSetting = config.Setting{Flag: "http-addr", Env: "HAVIP_HTTP_ADDR"}
	keysSetting     = config.Setting{Flag: "keys", Env: "HAVIP_API_KEYS_FILE"}
	plainSetting    = config.Setting{Flag: "insecure-plaintext", Env: "HAVIP_INSECURE_PLAINTEXT"}
	insecureEtcd    = config.Setting{Flag: "insecure-etcd", Env: "HAVIP_INSECURE_ETCD"}
)

func (c Config) withDefaults() Config {
	for _, d := range []struct {
		field *string
		def   string
	}{{&c.GRPCAddr, "127.0.0.1:50051"}, {&c.EtcdAddr, "127.0.0.1:0"}, {&c.DataDir, ".havip-data"}, {&c.HTTPAddr, "127.0.0.1:8080"}} {
		if *d.field == "" {
			*d.field = d.def
		}
	}
	if c.EtcdCompactionRetention == 0 {
		c.EtcdCompactionRetention = etcdx.DefaultCompactionRetention
	}
	if c.EtcdQuotaBytes == 0 {
		c.EtcdQuotaBytes = etcdx.DefaultQuotaBytes
	}
	return c
}

// minQuota is the least space quota the suite accepts for its etcd.
const minQuota = 16 << 20

// RegisterFlags registers every setting on fs: the suite's, then its services'.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.String(fs, &c.GRPCAddr, grpcAddrSetting, "address of every gRPC service, host:port")
	config.List(fs, &c.Etcd, etcdSetting, "comma-separated endpoints of an external etcd to use instead of the embedded one (https:// ones are called with the suite's certificate); empty: the embedded etcd")
	config.String(fs, &c.EtcdAddr, etcdAddrSetting, "client address of the embedded etcd, host:port")
	config.Duration(fs, &c.EtcdCompactionRetention, retainSetting, "history the embedded etcd keeps: every that long, it compacts what is older")
	config.Int64(fs, &c.EtcdQuotaBytes, quotaSetting, "space quota of the embedded etcd in bytes: past it, etcd refuses writes until compacted and defragmented")
	config.String(fs, &c.DataDir, dataDirSetting, "directory keeping the data across restarts")
	config.String(fs, &c.HTTPAddr, httpAddrSetting, "address of the REST gateway, host:port")
	config.String(fs, &c.KeysFile, keysSetting, "the gateway's API keys file; empty: a fresh key for "+DemoAccount+" at each start")
	config.Bool(fs, &c.InsecureEtcd, insecureEtcd, "DEVELOPMENT ONLY: allow an http:// (plaintext) external etcd while serving mTLS")
	config.Bool(fs, &c.Plaintext, plainSetting, "DEVELOPMENT ONLY: serve gRPC without TLS; every caller that reaches the port is trusted as any identity")
	c.Log.RegisterFlags(fs)
	c.Metrics.RegisterFlags(fs, "havip-suite")
	c.HaVip.RegisterSuiteFlags(fs)
	c.ArpBroker.RegisterSuiteFlags(fs)
	c.Eip.RegisterFlags(fs)
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, a := range []struct {
		s    config.Setting
		addr string
	}{{grpcAddrSetting, c.GRPCAddr}, {etcdAddrSetting, c.EtcdAddr}, {httpAddrSetting, c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return a.s.Errorf(a.addr, "want host:port")
		}
	}
	if err := mtls.PlaintextOnLoopback(c.Plaintext, c.GRPCAddr); err != nil {
		return grpcAddrSetting.Errorf(c.GRPCAddr, "%v", err)
	}
	for _, e := range c.Etcd {
		if !endpoint(e) {
			return etcdSetting.Errorf(strings.Join(c.Etcd, ","), "%q is not an endpoint: want http://host:port, https://host:port or host:port", e)
		}
		if strings.HasPrefix(e, "https://") && c.Plaintext {
			return etcdSetting.Errorf(strings.Join(c.Etcd, ","), "an https:// etcd is called with the suite's certificate, which %s does not make", plainSetting)
		}
		if !strings.HasPrefix(e, "https://") && !c.Plaintext && !c.InsecureEtcd {
			return etcdSetting.Errorf(strings.Join(c.Etcd, ","), "%q is plaintext: etcd is a hop like the others; use https:// (etcd with client-cert auth), or %s for development", e, insecureEtcd)
		}
	}
	if c.EtcdCompactionRetention < time.Second {
		return retainSetting.Errorf(c.EtcdCompactionRetention, "want at least 1s")
	}
	if c.EtcdQuotaBytes < minQuota {
		return quotaSetting.Errorf(c.EtcdQuotaBytes, "want at least %d (16 MiB)", minQuota)
	}
	for _, v := range []config.Validator{c.Log, c.Metrics, c.HaVip, c.ArpBroker, c.Eip} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// endpoint reports whether e is an etcd endpoint: a URL with a host, or host:port.
func endpoint(e string) bool {
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
	}
	_, _, err := net.SplitHostPort(e)
	return err == nil
}

// DemoAccount is the account of the key the suite makes when no keys file is given.
const DemoAccount = "acct-demo"

// modules are the services the suite serves, built from cfg.
func modules(cfg Config) ([]service.Module, error) {
	hv, err := havip.NewModule(cfg.HaVip)
	if err != nil {
		return nil, err
	}
	ab, err := arpbroker.NewModule(cfg.ArpBroker)
	if err != nil {
		return nil, err
	}
	ep, err := eip.NewModule(cfg.Eip)
	if err != nil {
		return nil, err
	}
	return []service.Module{ipam.Module, hv, ab, ep}, nil
}

// Ready describes a running suite.
type Ready struct {
	GRPCAddr string
	// EtcdEndpoint is the embedded etcd's endpoint, or the external etcd's endpoints
	// (comma-separated).
	EtcdEndpoint string
	// HTTPAddr is the REST gateway's address.
	HTTPAddr string
	// APIKey is the key made for DemoAccount (empty when a keys file was given).
	APIKey string
	// CertsDir holds the CA and the suite's and operator's certificates (empty in plaintext).
	CertsDir string
	// MetricsAddr is where /metrics is served (empty: nowhere).
	MetricsAddr string
}

// Run serves the suite until ctx ends. It prints where it listens to out and, once serving,
// calls ready (if not nil).
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer, ready func(Ready)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	mods, err := modules(cfg)
	if err != nil {
		return err
	}
	shutdown, err := tracing.Setup(ctx, "havip-suite")
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(context.Background()) }()
	ms, err := metrics.Start(log, "havip-suite", cfg.Metrics)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Stop(context.Background()) }()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	keys, apiKey, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	sec := service.Security{Keys: keys}
	certsDir := ""
	if !cfg.Plaintext {
		certsDir = filepath.Join(cfg.DataDir, "certs")
		if sec.TLS, err = Certs(certsDir, cfg.GRPCAddr, log); err != nil {
			return err
		}
	}
	cli, etcdAt, stopEtcd, err := connectEtcd(ctx, cfg, sec.TLS)
	if err != nil {
		return err
	}
	defer stopEtcd()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	hlis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	grpcAddr := lis.Addr().String()
	// The gateway calls the services in process (same interceptors, no network hop).
	local := inproc.New()
	gw, err := gateway.New(ctx, gateway.Config{IpamAddr: grpcAddr, HaVipAddr: grpcAddr, EipAddr: grpcAddr, Local: local, Keys: keys, TLS: sec.TLS, Log: log.With("module", "gateway")})
	if err != nil {
		return err
	}
	defer gw.Close()
	security := "mTLS"
	if cfg.Plaintext {
		security = "PLAINTEXT (development only)"
	}
	where := "embedded etcd on " + etcdAt
	if len(cfg.Etcd) > 0 {
		where = "etcd at " + etcdAt
	}
	fmt.Fprintf(out, "havip suite: gRPC (%s) on %s, REST on http://%s, %s, data in %s\n", security, grpcAddr, hlis.Addr(), where, cfg.DataDir)
	for _, m := range mods {
		fmt.Fprintf(out, "  service %s\n", m.Name)
	}
	fmt.Fprintf(out, "  web console on http://%s/console/ (sign in with an API key)\n", hlis.Addr())
	if ms != nil {
		fmt.Fprintf(out, "  Prometheus metrics on http://%s/metrics\n", ms.Addr())
	}
	shownKey := "<your API key>"
	if apiKey != "" {
		fmt.Fprintf(out, "  API key for account %s (new at each start): %s\n", DemoAccount, apiKey)
		shownKey = apiKey
	}
	printClientFlags(out, certsDir, grpcAddr, shownKey)
	if ready != nil {
		ready(Ready{GRPCAddr: grpcAddr, EtcdEndpoint: etcdAt, HTTPAddr: hlis.Addr().String(), APIKey: apiKey, CertsDir: certsDir, MetricsAddr: ms.Addr()})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() {
		err := gw.Serve(ctx, hlis, 10*time.Second)
		cancel() // the suite stops as a whole
		httpDone <- err
	}()
	err = service.ServeLocal(ctx, log, lis, cli, sec, local, mods...)
	cancel()
	if herr := <-httpDone; err == nil {
		err = herr
	}
	return err
}

// connectEtcd connects to the external etcd cfg names, with src's certificate for https://
// endpoints, or else starts the embedded one and connects to it. It returns the client, the
// endpoints, and what closes them.
func connectEtcd(ctx context.Context, cfg Config, src *mtls.Source) (*clientv3.Client, string, func(), error) {
	if len(cfg.Etcd) > 0 {
		cli, err := etcdx.ConnectTLS(ctx, cfg.Etcd, service.EtcdTLS(src, cfg.Etcd))
		if err != nil {
			return nil, "", nil, err
		}
		return cli, strings.Join(cfg.Etcd, ","), func() { _ = cli.Close() }, nil
	}
	opts := etcdx.EmbeddedOptions{
		Dir: filepath.Join(cfg.DataDir, "etcd"), ClientAddr: cfg.EtcdAddr, UnsafeNoFsync: cfg.UnsafeNoFsync,
		CompactionRetention: cfg.EtcdCompactionRetention, QuotaBytes: cfg.EtcdQuotaBytes,
	}
	var tlsCfg *tls.Config
	if src != nil {
		// etcd is a hop too: TLS, and only the suite's own certificate gets in (it alone is
		// valid for the name SuiteIdentity.Name).
		f := src.Files()
		opts.TLS = &etcdx.TLSFiles{Cert: f.Cert, Key: f.Key, CA: f.CA, AllowedHostnames: []string{SuiteIdentity.Name}}
		tlsCfg = src.ClientConfig()
	}
	e, err := etcdx.StartEmbedded(ctx, opts)
	if err != nil {
		return nil, "", nil, err
	}
	cli, err := etcdx.ConnectTLS(ctx, []string{e.Endpoint}, tlsCfg)
	if err != nil {
		e.Close()
		return nil, "", nil, err
	}
	return cli, e.Endpoint, func() { _ = cli.Close(); e.Close() }, nil
}

// printClientFlags prints how grpcurl and ghz reach the suite.
func printClientFlags(out io.Writer, certsDir, grpcAddr, key string) {
	tlsFlags, ghzFlags := "-plaintext", "--insecure"
	if certsDir != "" {
		f := mtls.InDir(certsDir, "operator")
		tlsFlags = fmt.Sprintf("-cacert %s -cert %s -key %s", f.CA, f.Cert, f.Key)
		ghzFlags = fmt.Sprintf("--cacert %s --cert %s --key %s", f.CA, f.Cert, f.Key)
		fmt.Fprintf(out, "  certificates in %s (CA ca.crt; operator.crt and operator.key for grpcurl and ghz; more: go run ./platform/cmd/havip-cert -dir %s create-agent <host-id>)\n", certsDir, certsDir)
	}
	fmt.Fprintf(out, "  grpcurl %s -H 'authorization: Bearer %s' %s list\n", tlsFlags, key, grpcAddr)
	fmt.Fprintf(out, "  ghz %s --metadata '{\"authorization\":\"Bearer %s\"}' --call havip.v1.HaVipService/DescribeHaVips -d '{}' %s\n", ghzFlags, key, grpcAddr)
}

// SuiteIdentity is the service identity the suite serves and calls as.
var SuiteIdentity = identity.ID{Kind: identity.Service, Name: "havip-suite"}

// Certs makes, in dir, the CA (on first start), a fresh certificate for the suite's identity
// valid for 127.0.0.1, localhost and the host of grpcAddr, and an operator certificate (kept
// while it has more than 30 days left); it returns the suite's Source.
func Certs(dir, grpcAddr string, log *slog.Logger) (*mtls.Source, error) {
	ca, created, err := pki.OpenCA(dir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("made a CA", "dir", dir)
	}
	hosts := []string{"127.0.0.1", "localhost", SuiteIdentity.Name} // the last lets it into its etcd
	if h, _, err := net.SplitHostPort(grpcAddr); err == nil && !slices.Contains(hosts, h) {
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			if name, err := os.Hostname(); err == nil { // every address: the machine's name, for agents elsewhere
				hosts = append(hosts, name)
			}
		} else {
			hosts = append(hosts, h)
		}
	}
	leaf, err := ca.Issue(SuiteIdentity, hosts, pki.LeafValidity)
	if err != nil {
		return nil, err
	}
	if _, _, err := leaf.Write(dir, SuiteIdentity.Name); err != nil {
		return nil, err
	}
	operator := identity.ID{Kind: identity.Operator}
	if !pki.Usable(ca, dir, "operator", operator, 30*24*time.Hour) {
		leaf, err := ca.Issue(operator, nil, pki.LeafValidity)
		if err != nil {
			return nil, err
		}
		if _, _, err := leaf.Write(dir, "operator"); err != nil {
			return nil, err
		}
	}
	return mtls.Load(mtls.InDir(dir, SuiteIdentity.Name), log)
}

// loadKeys reads the keys file, or makes a key for DemoAccount and keeps its hash in the data
// directory.
func loadKeys(cfg Config) (*apikey.Keys, string, error) {
	if cfg.KeysFile != "" {
		k, err := apikey.Load(cfg.KeysFile)
		return k, "", err
	}
	key := apikey.New()
	line := apikey.Line(DemoAccount, key)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "api-keys"), []byte(line), 0o600); err != nil {
		return nil, "", fmt.Errorf("write keys file: %w", err)
	}
	k, err := apikey.Parse(strings.NewReader(line))
	return k, key, err
}
