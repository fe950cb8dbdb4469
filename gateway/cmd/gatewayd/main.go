// Command gatewayd serves the REST/JSON API of the HAVIP control plane in front of its gRPC services.
//
//	gatewayd                    serve (see -h for flags and their HAVIP_* variables)
//	gatewayd new-key <account>  print a new API key and the keys file line for it
//	gatewayd health             exit 0 when the gateway serving at -http-addr answers /healthz with 200
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/healthcheck"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/tracing"
)

// Config is gatewayd's settings. A zero field means its default.
type Config struct {
	// HTTPAddr is where to serve HTTP (-http-addr, HAVIP_HTTP_ADDR; default 127.0.0.1:8080).
	HTTPAddr string
	// Backend is the gRPC address of the services (-backend, HAVIP_BACKEND_ADDR; default
	// 127.0.0.1:50051), unless the next three say otherwise.
	Backend string
	// IpamAddr, HaVipAddr and EipAddr are the gRPC addresses of ipamd, havipd and eipd
	// (-ipam-addr, -havip-addr, -eip-addr; HAVIP_IPAM_ADDR, HAVIP_HAVIP_ADDR, HAVIP_EIP_ADDR).
	// Empty: Backend.
	IpamAddr, HaVipAddr, EipAddr string
	// KeysFile holds the API keys (-keys, HAVIP_API_KEYS_FILE; default api-keys).
	KeysFile string
	// MaxBodyBytes bounds a request body (-max-body-bytes, HAVIP_MAX_BODY_BYTES; default 1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds a call to the services (-request-timeout, HAVIP_REQUEST_TIMEOUT;
	// default 30s).
	RequestTimeout time.Duration
	// TLS names the gateway's certificate files for calling the services (-ca, -cert, -key;
	// HAVIP_TLS_*; default certs/ca.crt, certs/gateway.crt, certs/gateway.key).
	TLS mtls.Config
	// HTTPCert and HTTPKey, when set, serve HTTPS with that certificate and key
	// (-http-cert, HAVIP_HTTP_CERT; -http-key, HAVIP_HTTP_KEY); empty: plain HTTP.
	HTTPCert, HTTPKey string
	// Log is the logging setting.
	Log logging.Config
	// Metrics is where to serve Prometheus /metrics (-metrics-addr, HAVIP_METRICS_ADDR; default
	// metrics.DefaultAddr, "off" for none), and Go's profiles when -pprof (HAVIP_PPROF) is on.
	Metrics metrics.Config
}

var (
	httpAddrSetting       = config.Setting{Flag: "http-addr", Env: "HAVIP_HTTP_ADDR"}
	backendSetting        = config.Setting{Flag: "backend", Env: "HAVIP_BACKEND_ADDR"}
	ipamAddrSetting       = config.Setting{Flag: "ipam-addr", Env: "HAVIP_IPAM_ADDR"}
	havipAddrSetting      = config.Setting{Flag: "havip-addr", Env: "HAVIP_HAVIP_ADDR"}
	eipAddrSetting        = config.Setting{Flag: "eip-addr", Env: "HAVIP_EIP_ADDR"}
	keysSetting           = config.Setting{Flag: "keys", Env: "HAVIP_API_KEYS_FILE"}
	maxBodySetting        = config.Setting{Flag: "max-body-bytes", Env: "HAVIP_MAX_BODY_BYTES"}
	requestTimeoutSetting = config.Setting{Flag: "request-timeout", Env: "HAVIP_REQUEST_TIMEOUT"}
	httpCertSetting       = config.Setting{Flag: "http-cert", Env: "HAVIP_HTTP_CERT"}
	httpKeySetting        = config.Setting{Flag: "http-key", Env: "HAVIP_HTTP_KEY"}
)

func (c Config) withDefaults() Config {
	for _, d := range []struct {
		field *string
		def   string
	}{{&c.HTTPAddr, "127.0.0.1:8080"}, {&c.Backend, "127.0.0.1:50051"}, {&c.KeysFile, "api-keys"}} {
		if *d.field == "" {
			*d.field = d.def
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = gateway.DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = gateway.DefaultRequestTimeout
	}
	return c
}

// RegisterFlags registers every setting on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.String(fs, &c.HTTPAddr, httpAddrSetting, "address to serve HTTP on, host:port")
	config.String(fs, &c.Backend, backendSetting, "gRPC address of the services, or a comma-separated list of replicas' addresses (each overridable below)")
	config.String(fs, &c.IpamAddr, ipamAddrSetting, "gRPC address of ipam.v1.IpamService (empty: -backend)")
	config.String(fs, &c.HaVipAddr, havipAddrSetting, "gRPC address of havip.v1.HaVipService (empty: -backend)")
	config.String(fs, &c.EipAddr, eipAddrSetting, "gRPC address of eip.v1.EipService (empty: -backend)")
	config.String(fs, &c.KeysFile, keysSetting, "keys file: lines of \"<account> sha256:<hex>\" (gatewayd new-key <account>)")
	config.Int64(fs, &c.MaxBodyBytes, maxBodySetting, "largest request body accepted, in bytes")
	config.Duration(fs, &c.RequestTimeout, requestTimeoutSetting, "longest a call to the services may take")
	config.String(fs, &c.HTTPCert, httpCertSetting, "certificate (PEM) to serve HTTPS with; empty: plain HTTP")
	config.String(fs, &c.HTTPKey, httpKeySetting, "key (PEM) of -http-cert")
	c.TLS.RegisterFlags(fs, "gateway")
	c.Log.RegisterFlags(fs)
	c.Metrics.RegisterFlags(fs, "gatewayd")
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, a := range []struct {
		s        config.Setting
		addr     string
		optional bool
	}{{httpAddrSetting, c.HTTPAddr, false}, {backendSetting, c.Backend, false}, {ipamAddrSetting, c.IpamAddr, true}, {havipAddrSetting, c.HaVipAddr, true}, {eipAddrSetting, c.EipAddr, true}} {
		if a.optional && a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return a.s.Errorf(a.addr, "want host:port")
		}
	}
	if c.MaxBodyBytes < 0 {
		return maxBodySetting.Errorf(c.MaxBodyBytes, "want a positive size")
	}
	if c.RequestTimeout < 0 {
		return requestTimeoutSetting.Errorf(c.RequestTimeout, "want a positive duration")
	}
	if (c.HTTPCert == "") != (c.HTTPKey == "") {
		return httpKeySetting.Errorf(c.HTTPKey, "give both -http-cert and -http-key, or neither")
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if err := c.Metrics.Validate(); err != nil {
		return err
	}
	return c.Log.Validate()
}

// gatewayConfig is the gateway's configuration with its keys and logger.
func (c Config) gatewayConfig(keys *apikey.Keys, src *mtls.Source, log *slog.Logger) gateway.Config {
	c = c.withDefaults()
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return gateway.Config{IpamAddr: or(c.IpamAddr, c.Backend), HaVipAddr: or(c.HaVipAddr, c.Backend), EipAddr: or(c.EipAddr, c.Backend),
		Keys: keys, TLS: src, MaxBodyBytes: c.MaxBodyBytes, RequestTimeout: c.RequestTimeout, Log: log}
}

// health asks the gateway serving at HTTPAddr (on 127.0.0.1 when it listens on every address)
// for /healthz, which answers 200 when every service behind it serves; over HTTPS (HTTPCert set),
// its certificate must be valid under the CA of -ca and for that address.
func (c Config) health(ctx context.Context) error {
	c = c.withDefaults()
	addr, err := healthcheck.LocalAddr(c.HTTPAddr)
	if err != nil {
		return err
	}
	scheme := "http"
	if c.HTTPCert != "" {
		scheme = "https"
	}
	return healthcheck.HTTP(ctx, scheme+"://"+addr+"/healthz", c.TLS.CA)
}

// identityOf names the identity the gateway calls the services as.
func identityOf(src *mtls.Source) string {
	if src == nil {
		return "none (plaintext)"
	}
	return src.Identity().String()
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "new-key" {
		key := apikey.New()
		fmt.Printf("key: %s\nkeys file line: %s", key, apikey.Line(os.Args[2], key))
		return
	}
	fs := config.NewFlagSet("gatewayd", "gatewayd serves the REST/JSON API of the HAVIP control plane in front of its gRPC services.\n`gatewayd new-key <account>` prints a new API key and the keys file line for it.\n`gatewayd health` exits 0 when the gateway serving at -http-addr answers /healthz with 200 (a container healthcheck).", tracing.EnvHelp)
	var cfg Config
	cfg.RegisterFlags(fs)
	args, health := healthcheck.Args(os.Args[1:])
	config.Load(fs, args, &cfg)
	if health {
		healthcheck.Exit("gatewayd", cfg.health(context.Background()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, cfg.Log.Level, "gatewayd")
	err := func() error {
		shutdown, err := tracing.Setup(ctx, "gatewayd")
		if err != nil {
			return err
		}
		defer func() { _ = shutdown(context.Background()) }()
		ms, err := metrics.Start(log, "gatewayd", cfg.Metrics)
		if err != nil {
			return err
		}
		defer func() { _ = ms.Stop(context.Background()) }()
		keys, err := apikey.Load(cfg.KeysFile)
		if err != nil {
			return err
		}
		src, err := cfg.TLS.Load(log)
		if err != nil {
			return err
		}
		g, err := gateway.New(ctx, cfg.gatewayConfig(keys, src, log))
		if err != nil {
			return err
		}
		defer g.Close()
		lis, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
		scheme := "http"
		if cfg.HTTPCert != "" {
			https, err := mtls.LoadKeyPair(cfg.HTTPCert, cfg.HTTPKey, log)
			if err != nil {
				_ = lis.Close()
				return fmt.Errorf("HTTPS certificate: %w", err)
			}
			lis = tls.NewListener(lis, https.HTTPSConfig()) // re-read when the files change
			scheme = "https"
		}
		log.Info("serving", scheme, lis.Addr().String(), "keys", keys.Len(), "identity", identityOf(src))
		return g.Serve(ctx, lis, 10*time.Second)
	}()
	if err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
