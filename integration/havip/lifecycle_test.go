package havip_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
)

func available(t testing.TB, c clients, account, subnet string) uint64 {
	t.Helper()
	r := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.ipam.DescribeSubnets(as(account), &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{subnet}}))
	return r.GetSubnetSet()[0].GetAvailableIpAddressCount()
}

// free returns an address of a /24 subnet that nothing holds (automatic allocation is random,
// so a test that names an address picks one that is still free).
func free(t testing.TB, c clients, account, subnet string) string {
	t.Helper()
	r := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.ipam.DescribePrivateIpAddresses(as(account), &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: subnet, Limit: 100}))
	taken := map[string]bool{}
	for _, a := range r.GetAddressSet() {
		taken[a.GetIpAddress()] = true
	}
	for i := 200; ; i++ {
		if ip := fmt.Sprintf("10.0.0.%d", i); !taken[ip] {
			return ip
		}
	}
}

func cvms(ids ...string) []*havipv1.HaVipAssociation {
	var out []*havipv1.HaVipAssociation
	for _, id := range ids {
		out = append(out, &havipv1.HaVipAssociation{InstanceId: id, InstanceType: "CVM"})
	}
	return out
}

func enis(ids ...string) []*havipv1.HaVipAssociation {
	var out []*havipv1.HaVipAssociation
	for _, id := range ids {
		out = append(out, &havipv1.HaVipAssociation{InstanceId: id, InstanceType: "ENI"})
	}
	return out
}

// TestLifecycle: create (automatic and manual VIP), describe with each filter, modify, switch
// range, keepalived configuration, delete; the VIP comes and goes with the HAVIP.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("acct-life")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/24")
	before := available(t, c, account, n.subnet)

	auto := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "auto"})).GetHavip()
	if auto.GetState() != "UNBIND" || !auto.GetCheckAssociate() || auto.GetVip() == "" || auto.GetCreatedTime() == nil || auto.GetNetworkInterfaceId() != "" {
		t.Fatalf("new HAVIP: %v", auto)
	}
	f := false
	manualVIP := free(t, c, account, n.subnet)
	manual := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{
		VpcId: n.vpc, SubnetId: n.subnet, HavipName: "manual", Vip: manualVIP, CheckAssociate: &f,
		HavipAssociationSet: cvms(n.cvm1, n.cvm2),
	})).GetHavip()
	if manual.GetVip() != manualVIP || manual.GetCheckAssociate() || len(manual.GetHavipAssociationSet()) != 2 {
		t.Fatalf("manual HAVIP: %v", manual)
	}
	if got := available(t, c, account, n.subnet); got != before-2 {
		t.Errorf("available %d, want %d", got, before-2)
	}
	// The VIP is recorded in ipamd as the HAVIP's, committed.
	addrs := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.ipam.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: n.subnet, Limit: 100}))
	var owned int
	for _, a := range addrs.GetAddressSet() {
		if a.GetOwner() == auto.GetHavipId() || a.GetOwner() == manual.GetHavipId() {
			owned++
			if a.GetReserved() {
				t.Errorf("%s still a reservation", a.GetIpAddress())
			}
		}
	}
	if owned != 2 {
		t.Errorf("%d addresses owned by the HAVIPs, want 2", owned)
	}

	filters := []struct {
		key, value string
		want       []string
	}{
		{"havip-id", auto.GetHavipId(), []string{auto.GetHavipId()}},
		{"havip-name", "manual", []string{manual.GetHavipId()}},
		{"vpc-id", n.vpc, []string{auto.GetHavipId(), manual.GetHavipId()}},
		{"subnet-id", n.subnet, []string{auto.GetHavipId(), manual.GetHavipId()}},
		{"vip", manualVIP, []string{manual.GetHavipId()}},
		{"address-ip", "203.0.113.9", nil},
		{"havip-association.instance-id", n.cvm2, []string{manual.GetHavipId()}},
		{"havip-association.instance-type", "CVM", []string{manual.GetHavipId()}},
		{"check-associate", "true", []string{auto.GetHavipId()}},
	}
	for _, tc := range filters {
		r := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Filters: []*havipv1.Filter{{Name: tc.key, Values: []string{tc.value}}}}))
		var got []string
		for _, h := range r.GetHavipSet() {
			got = append(got, h.GetHavipId())
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || int(r.GetTotalCount()) != len(tc.want) {
			t.Errorf("filter %s=%s: got %v (total %d), want %v", tc.key, tc.value, got, r.GetTotalCount(), tc.want)
		}
	}

	name := "renamed"
	tr := true
	mod := etcdtest.Must[*havipv1.ModifyHaVipAttributeResponse](t)(c.havip.ModifyHaVipAttribute(ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: manual.GetHavipId(), HavipName: &name, CheckAssociate: &tr})).GetHavip()
	if mod.GetHavipName() != "renamed" || !mod.GetCheckAssociate() {
		t.Errorf("modify: %v", mod)
	}
	// Read-your-writes: the next Describe shows the change.
	if r := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{manual.GetHavipId()}})); r.GetHavipSet()[0].GetHavipName() != "renamed" {
		t.Errorf("describe after modify: %v", r)
	}

	// Switch range of ENIs: add two secondary ENIs, drop one.
	as1 := etcdtest.Must[*havipv1.AssociateHaVipInstanceResponse](t)(c.havip.AssociateHaVipInstance(ctx, &havipv1.AssociateHaVipInstanceRequest{HavipId: auto.GetHavipId(), HavipAssociationSet: enis(n.eni1, n.eni2)})).GetHavip()
	if len(as1.GetHavipAssociationSet()) != 2 {
		t.Fatalf("associate: %v", as1)
	}
	cfg := etcdtest.Must[*havipv1.DescribeHaVipKeepalivedConfigResponse](t)(c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: auto.GetHavipId()}))
	if len(cfg.GetConfigSet()) != 2 || cfg.GetConfigSet()[0].GetUnicastSrcIp() != n.eniIP1 || !strings.Contains(cfg.GetConfigSet()[0].GetConfig(), auto.GetVip()) ||
		cfg.GetConfigSet()[0].GetPriority() == cfg.GetConfigSet()[1].GetPriority() {
		t.Errorf("keepalived config: %v", cfg)
	}
	cvmCfg := etcdtest.Must[*havipv1.DescribeHaVipKeepalivedConfigResponse](t)(c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: manual.GetHavipId(), Interface: "ens5"}))
	if cvmCfg.GetConfigSet()[0].GetUnicastSrcIp() != n.primaryIP1 || cvmCfg.GetConfigSet()[0].GetNetworkInterfaceId() != n.primary1 || !strings.Contains(cvmCfg.GetConfigSet()[0].GetConfig(), "interface ens5") {
		t.Errorf("keepalived config of a CVM range uses the primary ENI: %v", cvmCfg)
	}
	dis := etcdtest.Must[*havipv1.DisassociateHaVipInstanceResponse](t)(c.havip.DisassociateHaVipInstance(ctx, &havipv1.DisassociateHaVipInstanceRequest{HavipId: auto.GetHavipId(), HavipAssociationSet: enis(n.eni1)})).GetHavip()
	if len(dis.GetHavipAssociationSet()) != 1 || dis.GetHavipAssociationSet()[0].GetInstanceId() != n.eni2 {
		t.Errorf("disassociate: %v", dis)
	}

	del := etcdtest.Must[*havipv1.DeleteHaVipResponse](t)(c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: auto.GetHavipId()}))
	if !strings.Contains(del.GetNotice(), "HA software") {
		t.Errorf("delete notice: %q", del.GetNotice())
	}
	if _, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{auto.GetHavipId()}}); status.Code(err) != codes.NotFound {
		t.Errorf("deleted HAVIP: %v", err)
	}
	if got := available(t, c, account, n.subnet); got != before-1 {
		t.Errorf("available after delete %d, want %d", got, before-1)
	}
	// The address can be taken again.
	etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "again", Vip: auto.GetVip()}))
}
