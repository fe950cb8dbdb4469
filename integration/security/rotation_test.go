package security_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/pki"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// party is one side's certificate files in a directory of its own.
type party struct {
	dir   string
	id    identity.ID
	hosts []string
}

func (p party) files() mtls.Files { return mtls.InDir(p.dir, "leaf") }

// trust writes the CA file: the PEM of each CA given, one after the other (a bundle).
func (p party) trust(t *testing.T, cas ...*pki.CA) {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.PEM...)
	}
	if err := pki.WriteFile(filepath.Join(p.dir, pki.CACert), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// issue writes a new certificate of ca for the party (key first, then certificate).
func (p party) issue(t *testing.T, ca *pki.CA) {
	t.Helper()
	leaf, err := ca.Issue(p.id, p.hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := leaf.Write(p.dir, "leaf"); err != nil {
		t.Fatal(err)
	}
}

// TestRotationUnderLoad: 50 clients call DescribeHaVips by ID without a pause, each dialing
// anew every 20 calls, while the CA and every certificate are rotated in three steps: both
// sides trust the old and the new CA; the server's and the clients' certificates are replaced
// by the new CA's; the old CA is dropped. The processes re-read their files (no restart), and
// not one call fails. Afterwards a new connection shows the new certificates, and a client
// still holding a certificate of the old CA is refused.
func TestRotationUnderLoad(t *testing.T) {
	oldCA, newCA := mtlstest.CA(t), mustCA(t)
	server := party{dir: t.TempDir(), id: identity.ID{Kind: identity.Service, Name: "rotating"}, hosts: mtlstest.Hosts}
	client := party{dir: t.TempDir(), id: mtlstest.Operator}
	for _, p := range []party{server, client} {
		p.trust(t, oldCA)
		p.issue(t, oldCA)
	}
	load := func(p party) *mtls.Source {
		s, err := mtls.Load(p.files(), etcdtest.Quiet, mtls.CheckEvery(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	serverSrc, clientSrc := load(server), load(client)

	addr, _ := etcdtest.Replica(t, etcdEndpoint, service.Security{TLS: serverSrc}, ipam.Module, service.Must(havip.NewModule(havip.Config{})))
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, mtls.DialOption(clientSrc))
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	setup := dial()
	defer setup.Close()
	ctx := tenant.Outgoing(context.Background(), "acct-rotation")
	ipamc := ipamv1.NewIpamServiceClient(setup)
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.1.0/24"})).GetSubnet().GetSubnetId()
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(havipv1.NewHaVipServiceClient(setup).CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h"})).GetHavip()

	var calls, dials, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := dial()
			defer func() { _ = conn.Close() }()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := havipv1.NewHaVipServiceClient(conn).DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}})
				if err != nil || len(r.GetHavipSet()) != 1 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				calls.Add(1)
				if i%20 == 0 { // a new connection: a new handshake, with the files as they are now
					_ = conn.Close()
					conn = dial()
					dials.Add(1)
				}
			}
		}()
	}
	// settle lets the load run on the files as they are: enough calls and new handshakes
	// that every party has looked at its files since they changed.
	settle := func(what string) {
		c0, d0 := calls.Load(), dials.Load()
		deadline := time.Now().Add(30 * time.Second)
		for calls.Load() < c0+1000 || dials.Load() < d0+100 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the load stalled (%d calls, %d dials)", what, calls.Load()-c0, dials.Load()-d0)
			}
			time.Sleep(10 * time.Millisecond) // the load runs
		}
	}
	settle("before")
	for _, p := range []party{server, client} {
		p.trust(t, oldCA, newCA)
	}
	settle("trusting both CAs")
	for _, p := range []party{server, client} {
		p.issue(t, newCA)
	}
	settle("new certificates")
	for _, p := range []party{server, client} {
		p.trust(t, newCA)
	}
	settle("the old CA dropped")
	close(stop)
	wg.Wait()
	t.Logf("%d calls, %d new connections, %d failed", calls.Load(), dials.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed during the rotation; the first: %v", failed.Load(), firstErr.Load())
	}

	// A new connection shows the new certificate on each side.
	conn := dial()
	defer conn.Close()
	var p peer.Peer
	if _, err := havipv1.NewHaVipServiceClient(conn).DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	state := p.AuthInfo.(credentials.TLSInfo).State
	if err := state.PeerCertificates[0].CheckSignatureFrom(newCA.Cert); err != nil {
		t.Errorf("the server still shows its old certificate: %v", err)
	}
	// A client with a certificate of the old CA is refused now.
	stale := party{dir: t.TempDir(), id: mtlstest.Operator}
	stale.trust(t, oldCA, newCA)
	stale.issue(t, oldCA)
	staleSrc, err := mtls.Load(stale.files(), etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	old, err := grpc.NewClient(addr, mtls.DialOption(staleSrc))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := havipv1.NewHaVipServiceClient(old).DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}}); err == nil {
		t.Error("a certificate of the dropped CA still gets through")
	}
}

func mustCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
