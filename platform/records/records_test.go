package records_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

func roundTrip[T any](t *testing.T, v T) {
	t.Helper()
	got, err := kvcache.DecodeJSON[T]("k", []byte(kvcache.EncodeJSON(v)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("round trip of %T (-want +got):\n%s", v, diff)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 123, time.UTC)
	roundTrip(t, records.Instance{ID: "ins-1", Account: "a", VpcID: "vpc-1", SubnetID: "subnet-1", Name: "web", HostID: "host-a", PrimaryEni: "eni-1", PrivateIP: netip.MustParseAddr("10.0.0.5"), Created: now})
	roundTrip(t, records.NetworkInterface{ID: "eni-1", Account: "a", VpcID: "vpc-1", SubnetID: "subnet-1", Name: "n", MAC: "02:00:00:00:00:01", IP: netip.MustParseAddr("10.0.0.5"), Primary: true, InstanceID: "ins-1", Created: now})
	roundTrip(t, records.HaVip{ID: "havip-1", Account: "a", Name: "vip", VpcID: "vpc-1", SubnetID: "subnet-1", VIP: netip.MustParseAddr("10.0.0.9"), CheckAssociate: true, Associations: []records.Association{{InstanceID: "ins-1", Type: records.TypeCVM}}, ClientToken: "t", Created: now})
	roundTrip(t, records.AddressBinding{AddressID: "eip-1", AddressIP: "203.0.113.1"})
	roundTrip(t, records.Owner{HaVipID: "havip-1", VIP: netip.MustParseAddr("10.0.0.9"), NetworkInterfaceID: "eni-1", InstanceID: "ins-1", HostID: "host-a", AgentID: "agent-a", Session: 42, Changed: now})
	roundTrip(t, records.Eip{ID: "eip-1", Account: "a", IP: "203.0.113.1", Name: "e", HaVipID: "havip-1", PrivateIP: "10.0.0.9", Created: now})
}

// An EIP is stored at its address's allocation key, so every replica's allocator reads it as
// the address's ipalloc.Record.
func TestEipReadsAsAllocation(t *testing.T) {
	t.Parallel()
	e := records.Eip{ID: "eip-1", Account: "acct", IP: "203.0.113.1", Reservation: "r"}
	got, err := kvcache.DecodeJSON[ipalloc.Record]("k", []byte(kvcache.EncodeJSON(e)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ipalloc.Record{Owner: "eip-1", Account: "acct", Reservation: "r"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, got, want string }{
		{"address", records.AddressKey("subnet-1", netip.MustParseAddr("10.0.0.5")), "/havip/ipam/ip/subnet-1/10.0.0.5"},
		{"eni", records.NetworkInterfaceKey("eni-1"), "/havip/ipam/eni/eni-1"},
		{"instance", records.InstanceKey("ins-1"), "/havip/ipam/instance/ins-1"},
		{"subnet", records.SubnetKey("subnet-1"), "/havip/ipam/subnet/subnet-1"},
		{"havip", records.HaVipKey("havip-1"), "/havip/havip/havip/havip-1"},
		{"binding", records.HaVipAddressKey("havip-1"), "/havip/havip/address/havip-1"},
		{"owner", records.OwnerKey("havip-1"), "/havip/arp/owner/havip-1"},
		{"eip", records.EipKey("203.0.113.1"), "/havip/eip/ip/public/203.0.113.1"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s key = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func ExampleAddressKey() {
	fmt.Println(records.AddressKey("subnet-qm6oe4il", netip.MustParseAddr("10.0.0.12")))
	// Output: /havip/ipam/ip/subnet-qm6oe4il/10.0.0.12
}
