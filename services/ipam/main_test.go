package ipam_test

import (
	"context"
	"os"
	"testing"

	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/ipam"
)

// etcdEndpoint is the real embedded etcd every test of the package shares.
var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

// replica starts one ipamd replica on the shared etcd.
func replica(t testing.TB) (ipamv1.IpamServiceClient, *grpc.ClientConn) {
	conn, _ := etcdtest.Serve(t, etcdEndpoint, ipam.Module)
	return ipamv1.NewIpamServiceClient(conn), conn
}

// unique makes an account name no other test (or run of the same test) uses.
func unique(name string) string { return name + ids.New("") }

// as returns a context that calls as account.
func as(account string) context.Context { return tenant.Outgoing(context.Background(), account) }
