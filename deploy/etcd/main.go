// Command etcd is etcd's own server, built from the etcd module this project pins, for the docker-compose stack.
//
//	etcd [etcd's flags]                          etcd itself
//	etcd health -ca f -cert f -key f [URL]       exit 0 when the member at URL (https://127.0.0.1:2379) is ready
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		if err := health(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "etcd health:", err)
			os.Exit(1)
		}
		fmt.Println("etcd: ready")
		return
	}
	etcdmain.Main(os.Args)
}

// health asks a member for /readyz (a leader, no alarm, a linearizable read served) over TLS with
// a client certificate: the image is FROM scratch, with no shell or curl for a healthcheck.
func health(args []string) error {
	fs := flag.NewFlagSet("etcd health", flag.ContinueOnError)
	ca := fs.String("ca", "", "CA certificate (PEM) the member's certificate must be valid under")
	cert := fs.String("cert", "", "client certificate (PEM), one the member accepts")
	key := fs.String("key", "", "key (PEM) of -cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := "https://127.0.0.1:2379"
	if fs.NArg() > 0 {
		url = fs.Arg(0)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", *ca)
		}
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status + ": " + strings.TrimSpace(string(body)))
	}
	return nil
}
