package suite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/logging/logtest"
	"github.com/openhavip/havip/platform/pki"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/suite"
)

// externalEtcd runs an etcd apart from any suite until the test ends, serving TLS with tls
// when it is not nil.
func externalEtcd(t *testing.T, tls *etcdx.TLSFiles) string {
	t.Helper()
	e, err := etcdx.StartEmbedded(context.Background(), etcdx.EmbeddedOptions{Dir: t.TempDir(), UnsafeNoFsync: true, TLS: tls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.Endpoint
}

// createVpc creates a VPC named name through the suite conn reaches and returns its ID.
func createVpc(t *testing.T, conn *grpc.ClientConn, name string) string {
	t.Helper()
	ctx := tenant.Outgoing(context.Background(), "acct-external")
	v, err := ipamv1.NewIpamServiceClient(conn).CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: name, CidrBlock: "10.0.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	return v.GetVpc().GetVpcId()
}

// TestExternalEtcd: with -etcd the suite keeps its state in that etcd and starts none of its
// own; a second suite, on another data directory, on the same etcd sees the first one's state.
func TestExternalEtcd(t *testing.T) {
	endpoint := externalEtcd(t, nil)
	dir := t.TempDir()
	out := &logtest.Buffer{}
	r, conn, stop := run(t, suite.Config{DataDir: dir, Etcd: []string{endpoint}, InsecureEtcd: true}, out)
	if r.EtcdEndpoint != endpoint || !strings.Contains(out.String(), "etcd at "+endpoint) {
		t.Errorf("the suite does not say it uses %s: %q, %q", endpoint, r.EtcdEndpoint, out.String())
	}
	vpc := createVpc(t, conn, "external")
	stop()
	if _, err := os.Stat(filepath.Join(dir, "etcd")); !os.IsNotExist(err) {
		t.Errorf("the suite made an etcd directory of its own: %v", err)
	}
	cli := etcdtest.Client(t, endpoint)
	resp, err := cli.Get(context.Background(), "/havip/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range resp.Kvs {
		found = found || strings.Contains(string(kv.Key), vpc)
	}
	if !found {
		t.Errorf("no key of %s in the external etcd (%d keys)", vpc, len(resp.Kvs))
	}

	_, conn, _ = run(t, suite.Config{DataDir: t.TempDir(), Etcd: []string{endpoint}, InsecureEtcd: true}, &logtest.Buffer{})
	list, err := ipamv1.NewIpamServiceClient(conn).DescribeVpcs(tenant.Outgoing(context.Background(), "acct-external"), &ipamv1.DescribeVpcsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetVpcSet()) != 1 || list.GetVpcSet()[0].GetVpcId() != vpc {
		t.Errorf("another suite on the same etcd: %v", list.GetVpcSet())
	}
}

// TestExternalEtcdOverTLS: an https:// etcd is called with the suite's certificate; the etcd
// requires client certificates from the suite's CA and serves one from it.
func TestExternalEtcdOverTLS(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	ca, _, err := pki.OpenCA(certs) // the suite keeps this CA
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(identity.ID{Kind: identity.Service, Name: "etcd"}, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	etcdCerts := t.TempDir()
	cert, key, err := leaf.Write(etcdCerts, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := externalEtcd(t, &etcdx.TLSFiles{Cert: cert, Key: key, CA: filepath.Join(certs, pki.CACert)})
	if !strings.HasPrefix(endpoint, "https://") {
		t.Fatalf("endpoint %s", endpoint)
	}
	// Without a client certificate the etcd refuses.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if cli, err := etcdx.Connect(ctx, []string{endpoint}); err == nil {
		_ = cli.Close()
		t.Fatal("the etcd answers a client without a certificate")
	}

	_, conn, _ := run(t, suite.Config{DataDir: dir, Etcd: []string{endpoint}}, &logtest.Buffer{})
	createVpc(t, conn, "over-tls")
}
