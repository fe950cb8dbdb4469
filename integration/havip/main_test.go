package havip_test

import (
	"context"
	"os"
	"testing"

	"google.golang.org/grpc"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// etcdEndpoint is the real embedded etcd every test of the package shares.
var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

// clients are the two services of one replica (ipamd and havipd in one process, as in the suite).
type clients struct {
	ipam  ipamv1.IpamServiceClient
	havip havipv1.HaVipServiceClient
	conn  *grpc.ClientConn
}

func replica(t testing.TB) clients {
	conn, _ := etcdtest.Serve(t, etcdEndpoint, ipam.Module, service.Must(havip.NewModule(havip.Config{})))
	return clients{ipam: ipamv1.NewIpamServiceClient(conn), havip: havipv1.NewHaVipServiceClient(conn), conn: conn}
}

// unique makes an account name no other test (or run of the same test) uses.
func unique(name string) string { return name + ids.New("") }

func as(account string) context.Context { return tenant.Outgoing(context.Background(), account) }

// topo is a VPC with a subnet, two CVMs (each with a primary ENI) and a secondary ENI attached to
// each CVM, for one account.
type topo struct {
	vpc, subnet         string
	cvm1, cvm2          string
	primary1, primary2  string
	eni1, eni2          string
	primaryIP1, eniIP1  string
	detachedEni         string
	otherVpc, otherCvm  string
	otherEni, otherSubn string
}

func buildNet(t testing.TB, c clients, account, cidr string) topo {
	ctx := as(account)
	var n topo
	n.vpc = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	n.subnet = etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: n.vpc, SubnetName: "s", CidrBlock: cidr})).GetSubnet().GetSubnetId()
	cvm := func(vpcSubnet, host string) (string, string, string) {
		r := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "n", SubnetId: vpcSubnet, HostId: host}))
		return r.GetInstance().GetInstanceId(), r.GetPrimaryNetworkInterface().GetNetworkInterfaceId(), r.GetPrimaryNetworkInterface().GetPrimaryIpAddress()
	}
	eni := func(subnet, ins string) (string, string) {
		e := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.ipam.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: subnet, NetworkInterfaceName: "e"})).GetNetworkInterface()
		if ins != "" {
			etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.ipam.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: e.GetNetworkInterfaceId(), InstanceId: ins}))
		}
		return e.GetNetworkInterfaceId(), e.GetPrimaryIpAddress()
	}
	n.cvm1, n.primary1, n.primaryIP1 = cvm(n.subnet, "host-1")
	n.cvm2, n.primary2, _ = cvm(n.subnet, "host-2")
	n.eni1, n.eniIP1 = eni(n.subnet, n.cvm1)
	n.eni2, _ = eni(n.subnet, n.cvm2)
	n.detachedEni, _ = eni(n.subnet, "")
	n.otherVpc = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "o", CidrBlock: "192.168.0.0/16"})).GetVpc().GetVpcId()
	n.otherSubn = etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: n.otherVpc, SubnetName: "o", CidrBlock: "192.168.0.0/24"})).GetSubnet().GetSubnetId()
	n.otherCvm, _, _ = cvm(n.otherSubn, "host-3")
	n.otherEni, _ = eni(n.otherSubn, n.otherCvm)
	return n
}
