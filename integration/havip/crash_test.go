package havip_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/proctest"
)

// TestKillDuringCreates: havipd, a real process, is SIGKILLed in the middle of a stream of
// creates. Once the reservations' leases have run out, the subnet's allocations are exactly the
// VIPs of the HAVIPs that exist: nothing half-made is left.
func TestKillDuringCreates(t *testing.T) {
	t.Parallel()
	c := replica(t) // ipamd (and a havipd replica to look with) in this process
	account := unique("acct-kill")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/22")
	p := proctest.Start(t, proctest.Build(t, "../../services/havip/cmd/havipd"),
		append(mtlstest.Env(t, identity.ID{Kind: identity.Service, Name: "havipd"}),
			"HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS="+etcdEndpoint, "HAVIP_INSECURE_ETCD=true",
			"HAVIP_IPAM_ADDR="+c.conn.Target(), "HAVIP_RESERVATION_TTL=2s")...)
	victim := havipv1.NewHaVipServiceClient(etcdtest.DialAs(t, p.Addr, mtlstest.Operator))

	var created atomic.Int64
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-killed:
					return
				default:
				}
				if _, err := victim.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "k"}); err == nil {
					created.Add(1)
				}
			}
		}()
	}
	for created.Load() < 40 {
		time.Sleep(time.Millisecond) // waiting for the stream to be well under way
	}
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	close(killed)
	wg.Wait()
	_ = p.Wait()

	// Each address the HAVIPs hold, and the ENIs' primary IPs, and nothing else, once the
	// leases of reservations that were cut off have run out (2s TTL, +1s lease rounding).
	deadline := time.Now().Add(20 * time.Second)
	for {
		hv := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 1}))
		var held, reserved int
		for off := uint32(0); ; off += 100 {
			a := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.ipam.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: n.subnet, Offset: off, Limit: 100}))
			for _, x := range a.GetAddressSet() {
				if strings.HasPrefix(x.GetOwner(), "havip-") {
					held++
				}
				if x.GetReserved() {
					reserved++
				}
			}
			if len(a.GetAddressSet()) < 100 {
				break
			}
		}
		if reserved == 0 {
			if held != int(hv.GetTotalCount()) {
				t.Fatalf("%d addresses held for HAVIPs, %d HAVIPs exist", held, hv.GetTotalCount())
			}
			if hv.GetTotalCount() < 40 {
				t.Fatalf("only %d HAVIPs survived, %d creates had succeeded", hv.GetTotalCount(), created.Load())
			}
			t.Logf("%d HAVIPs, %d addresses: consistent after the kill", hv.GetTotalCount(), held)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reservations never expired", reserved)
		}
		time.Sleep(100 * time.Millisecond) // polling for the leases to run out
	}
}
