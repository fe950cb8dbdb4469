package service_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/pki"
	"github.com/openhavip/havip/platform/service"
)

// TestHealth: Health reaches a serving process over mTLS with a certificate of its CA, and
// fails once the process stopped, or with a certificate of another CA.
func TestHealth(t *testing.T) {
	id := identity.ID{Kind: identity.Service, Name: "testd"}
	files := mtlstest.Files(t, id)
	src, err := mtls.Load(files, etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Serve(ctx, etcdtest.Quiet, lis, nil, service.Security{TLS: src}) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer func() { _ = stop() }()
	cfg := service.Config{GRPCAddr: lis.Addr().String(), TLS: mtls.Config{CA: files.CA, Cert: files.Cert, Key: files.Key}}

	if err := service.Health(context.Background(), cfg); err != nil {
		t.Fatalf("serving: %v", err)
	}
	otherCA, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other := mtlstest.FilesFrom(t, otherCA, id)
	if err := service.Health(context.Background(), service.Config{GRPCAddr: cfg.GRPCAddr, TLS: mtls.Config{CA: other.CA, Cert: other.Cert, Key: other.Key}}); err == nil {
		t.Fatal("a certificate of another CA: no error")
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := service.Health(context.Background(), cfg); err == nil {
		t.Fatal("stopped: no error")
	}
}
