// Package healthcheck asks a process's own listener whether it serves: the `health` subcommand of every binary, for container healthchecks in images with no shell and no curl.
package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Timeout bounds one check, connection included.
const Timeout = 3 * time.Second

// LocalAddr is the address that reaches, from the same host (or container), a listener given
// listen: an unspecified host (empty, 0.0.0.0 or ::) becomes 127.0.0.1, the port stays.
func LocalAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// GRPC asks the gRPC health service (grpc.health.v1) at target for the whole server (service
// ""): nil when it answers SERVING, an error naming the status or the failure otherwise.
func GRPC(ctx context.Context, target string, opts ...grpc.DialOption) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return fmt.Errorf("health of %s: %w", target, err)
	}
	defer func() { _ = conn.Close() }()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health of %s: %w", target, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health of %s: %s: %w", target, s, ErrNotServing)
	}
	return nil
}

// HTTP GETs url: nil when it answers 200, an error with the status and the start of the body
// otherwise. For https://, the server's certificate must be valid under the CA in caFile.
func HTTP(ctx context.Context, url, caFile string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true}
	if strings.HasPrefix(url, "https://") {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("health of %s: CA: %w", url, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("health of %s: %s holds no PEM certificate", url, caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health of %s: %w", url, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("health of %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health of %s: HTTP %d: %s: %w", url, resp.StatusCode, strings.TrimSpace(string(body)), ErrNotServing)
	}
	return nil
}

// Args splits a leading "health" subcommand off a binary's arguments.
func Args(args []string) (rest []string, health bool) {
	if len(args) > 0 && args[0] == "health" {
		return args[1:], true
	}
	return args, false
}

// Exit is the end of a health subcommand: it prints "SERVING" and exits 0 when err is nil, and
// prints err and exits 1 otherwise (a container healthcheck's convention).
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%s: SERVING\n", name)
	os.Exit(0)
}

// ErrNotServing is returned by a check whose answer says the process does not serve.
var ErrNotServing = errors.New("not serving")
