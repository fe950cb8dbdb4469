// Package etcdtest starts a real embedded etcd and in-process services for tests and benchmarks.
package etcdtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
)

// Start runs an embedded etcd in a fresh temporary directory (no fsync: the data is thrown
// away) and returns its endpoint and a stop function. For TestMain, where there is no *testing.T.
func Start() (endpoint string, stop func(), err error) {
	return StartWith(Options{})
}

// Options tunes the etcd of StartWith.
type Options struct {
	// Fsync makes etcd sync its writes to disk, as etcd does by default and users run it: for
	// benchmarks whose figures stand next to etcd writes. Tests leave it off (their data is
	// thrown away, and syncing would only slow them).
	Fsync bool
}

// StartWith is Start with opts.
func StartWith(opts Options) (endpoint string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return "", nil, err
	}
	e, err := etcdx.StartEmbedded(context.Background(), etcdx.EmbeddedOptions{Dir: dir, UnsafeNoFsync: !opts.Fsync})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return e.Endpoint, func() { e.Close(); _ = os.RemoveAll(dir) }, nil
}

// StartClient is Start with a client connected to it; stop closes both. For examples, which have
// neither a *testing.T nor a TestMain.
func StartClient() (cli *clientv3.Client, stop func(), err error) {
	endpoint, stopEtcd, err := Start()
	if err != nil {
		return nil, nil, err
	}
	cli, err = etcdx.Connect(context.Background(), []string{endpoint})
	if err != nil {
		stopEtcd()
		return nil, nil, err
	}
	return cli, func() { _ = cli.Close(); stopEtcd() }, nil
}

// Fresh starts an etcd of the test's own (as Start) and a client of it; both stop when the test
// ends.
func Fresh(tb testing.TB) (endpoint string, cli *clientv3.Client) {
	tb.Helper()
	endpoint, stop, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return endpoint, Client(tb, endpoint)
}

// Client connects to etcd at endpoint and closes the client when the test ends.
func Client(tb testing.TB, endpoint string) *clientv3.Client {
	tb.Helper()
	cli, err := etcdx.Connect(context.Background(), []string{endpoint})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Quiet is a logger that drops everything, for tests.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Serve runs modules as one replica on 127.0.0.1:0 with its own etcd client, over mTLS as a
// service identity (mtlstest.Service), and returns a connection to it as an operator, which may
// assert any account (x-havip-account); DialAs makes connections as other identities. The replica
// stops when the test ends (or when stop is called).
func Serve(tb testing.TB, endpoint string, modules ...service.Module) (conn *grpc.ClientConn, stop func()) {
	tb.Helper()
	return ServeKeys(tb, endpoint, nil, modules...)
}

// ServeKeys is Serve with the API keys the replica accepts as Bearer credentials.
func ServeKeys(tb testing.TB, endpoint string, keys *apikey.Keys, modules ...service.Module) (conn *grpc.ClientConn, stop func()) {
	tb.Helper()
	addr, stopReplica := Replica(tb, endpoint, service.Security{TLS: mtlstest.Source(tb, mtlstest.Service), Keys: keys}, modules...)
	conn = DialAs(tb, addr, mtlstest.Operator)
	return conn, func() { _ = conn.Close(); stopReplica() }
}

// Replica runs modules as one replica on 127.0.0.1:0 with its own etcd client, secured by sec,
// and returns its address. The replica stops when the test ends (or when stop is called); an
// error it stops with fails the test.
func Replica(tb testing.TB, endpoint string, sec service.Security, modules ...service.Module) (addr string, stop func()) {
	tb.Helper()
	cli := Client(tb, endpoint)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Serve(ctx, Quiet, lis, cli, sec, modules...) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("replica stopped with %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return lis.Addr().String(), stop
}

// DialAs connects to addr over mTLS as id (a certificate of the test CA); the connection closes
// when the test ends.
func DialAs(tb testing.TB, addr string, id identity.ID) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, mtls.DialOption(mtlstest.Source(tb, id)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// FsyncEnv overrides whether Main's etcd syncs its writes: "1" (or true) always, "0" (or false)
// never. Unset, it syncs when benchmarks run (go test -bench), as users run etcd, and not for
// tests.
const FsyncEnv = "HAVIP_ETCDTEST_FSYNC"

// Main runs a package's tests and benchmarks with an embedded etcd whose endpoint it stores in
// *endpoint. The etcd syncs its writes to disk when benchmarks run (-test.bench): their
// baselines are etcd's own writes, which users run with fsync, etcd's default; tests run
// without (FsyncEnv overrides both).
func Main(m *testing.M, endpoint *string) int {
	if !flag.Parsed() {
		flag.Parse() // m.Run would parse them; Main needs -test.bench first
	}
	fsync, err := wantFsync()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdtest:", err)
		return 2
	}
	if fsync {
		fmt.Fprintf(os.Stderr, "etcdtest: etcd syncs its writes to disk, as users run it (%s=0: not)\n", FsyncEnv)
	}
	ep, stop, err := StartWith(Options{Fsync: fsync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdtest:", err)
		return 1
	}
	defer stop()
	*endpoint = ep
	return m.Run()
}

// wantFsync is Main's choice of fsync: FsyncEnv when set, else whether benchmarks run.
func wantFsync() (bool, error) {
	if v := os.Getenv(FsyncEnv); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: want 1 or 0", FsyncEnv, v)
		}
		return b, nil
	}
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != "", nil
}

// Must returns a function that passes a call's result through and fails tb on its error:
// Must[*X](t)(client.Call(ctx, req)).
func Must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}
