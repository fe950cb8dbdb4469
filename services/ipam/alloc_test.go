package ipam_test

import (
	"net/netip"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
)

// newSubnet creates a VPC and a subnet for account and returns the subnet ID.
func newSubnet(t testing.TB, c ipamv1.IpamServiceClient, account, vpcCIDR, cidr string) string {
	t.Helper()
	ctx := as(account)
	v, err := c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "vpc", CidrBlock: vpcCIDR})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: v.GetVpc().GetVpcId(), SubnetName: "subnet", CidrBlock: cidr})
	if err != nil {
		t.Fatal(err)
	}
	return s.GetSubnet().GetSubnetId()
}

// TestExhaustionAcrossReplicas: two replicas, 64 clients, one /24: exactly 253 distinct
// addresses (10.0.0.2-10.0.0.254), then ResourceInsufficient for everyone.
func TestExhaustionAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, _ := replica(t)
	b, _ := replica(t)
	acct := unique("acct-exhaust")
	subnet := newSubnet(t, a, acct, "10.0.0.0/16", "10.0.0.0/24")

	var mu sync.Mutex
	got := map[string]int{}
	var failures []error
	var wg sync.WaitGroup
	for i := range 64 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				resp, err := c.AllocatePrivateIpAddress(as(acct), &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet})
				mu.Lock()
				if err != nil {
					if status.Code(err) != codes.ResourceExhausted || apierr.Reason(err) != apierr.ReasonResourceInsufficient {
						failures = append(failures, err)
					}
					mu.Unlock()
					return
				}
				got[resp.GetAddress().GetIpAddress()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range failures {
		t.Errorf("unexpected error: %v", err)
	}
	if len(got) != 253 {
		t.Errorf("got %d distinct addresses, want 253", len(got))
	}
	for ip, n := range got {
		if n != 1 {
			t.Errorf("%s handed out %d times", ip, n)
		}
		a := netip.MustParseAddr(ip)
		if a.Less(netip.MustParseAddr("10.0.0.2")) || netip.MustParseAddr("10.0.0.254").Less(a) {
			t.Errorf("%s is outside 10.0.0.2-10.0.0.254", ip)
		}
	}
	// Both replicas agree that the subnet is full, and say so the same way.
	for i, c := range []ipamv1.IpamServiceClient{a, b} {
		_, err := c.AllocatePrivateIpAddress(as(acct), &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet})
		if apierr.Reason(err) != apierr.ReasonResourceInsufficient {
			t.Errorf("replica %d after exhaustion: %v, want %s", i, err, apierr.ReasonResourceInsufficient)
		}
		resp, err := c.DescribeSubnets(as(acct), &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{subnet}})
		if err != nil {
			t.Fatal(err)
		}
		if s := resp.GetSubnetSet()[0]; s.GetTotalIpAddressCount() != 253 || s.GetAvailableIpAddressCount() != 0 {
			t.Errorf("replica %d: total %d available %d, want 253 and 0", i, s.GetTotalIpAddressCount(), s.GetAvailableIpAddressCount())
		}
	}
}
