package healthcheck_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/openhavip/havip/platform/healthcheck"
	"github.com/openhavip/havip/platform/pki"
)

func TestLocalAddr(t *testing.T) {
	for listen, want := range map[string]string{
		"0.0.0.0:50051":   "127.0.0.1:50051",
		"[::]:50051":      "127.0.0.1:50051",
		":8080":           "127.0.0.1:8080",
		"127.0.0.1:50051": "127.0.0.1:50051",
		"10.0.0.7:50051":  "10.0.0.7:50051",
		"localhost:1":     "localhost:1",
	} {
		if got, err := healthcheck.LocalAddr(listen); err != nil || got != want {
			t.Errorf("LocalAddr(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := healthcheck.LocalAddr("50051"); err == nil {
		t.Error("LocalAddr(50051): no error")
	}
}

// TestGRPC: SERVING is healthy; NOT_SERVING and a stopped server are not.
func TestGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	addr, plain := lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())
	ctx := context.Background()

	if err := healthcheck.GRPC(ctx, addr, plain); err != nil {
		t.Fatalf("serving: %v", err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if err := healthcheck.GRPC(ctx, addr, plain); !errors.Is(err, healthcheck.ErrNotServing) {
		t.Fatalf("not serving: got %v, want ErrNotServing", err)
	}
	srv.Stop()
	if err := healthcheck.GRPC(ctx, addr, plain); err == nil || errors.Is(err, healthcheck.ErrNotServing) {
		t.Fatalf("stopped: got %v, want a connection error", err)
	}
}

// TestHTTP: 200 under the right CA is healthy; another status, or a certificate the CA did not
// sign, is not.
func TestHTTP(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"x"}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong, err := pki.NewCA() // a CA that did not sign the server's certificate
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(otherCA, wrong.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := healthcheck.HTTP(ctx, srv.URL+"/healthz", ca); err != nil {
		t.Fatalf("200: %v", err)
	}
	if err := healthcheck.HTTP(ctx, srv.URL+"/healthz", otherCA); err == nil {
		t.Fatal("a CA that did not sign the server's certificate: no error")
	}
	status = http.StatusServiceUnavailable
	if err := healthcheck.HTTP(ctx, srv.URL+"/healthz", ca); !errors.Is(err, healthcheck.ErrNotServing) {
		t.Fatalf("503: got %v, want ErrNotServing", err)
	}
}
