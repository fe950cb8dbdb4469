package suite_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/openhavip/havip/proto/arpbroker/v1"
	_ "github.com/openhavip/havip/proto/eip/v1"
	_ "github.com/openhavip/havip/proto/havip/v1"
	_ "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/grpcclient"
)

// TestRetryReadRule checks grpcclient's rule of which calls may be sent again against every
// method of every service of the platform: exactly the methods listed here are reads, and
// exactly the creates listed here carry a client token. A new method the rule takes for a read,
// or whose request has a client token, fails this test until it is listed here after a look at
// what it does: a write can never be retried by accident.
func TestRetryReadRule(t *testing.T) {
	reads := map[string]bool{
		"/arpbroker.v1.ArpBrokerService/ListArpRejections":     true,
		"/eip.v1.EipService/DescribeAddresses":                 true,
		"/havip.v1.HaVipService/DescribeHaVips":                true,
		"/havip.v1.HaVipService/DescribeHaVipKeepalivedConfig": true,
		"/havip.v1.HaVipService/DescribeHaVipArpRejections":    true,
		"/ipam.v1.IpamService/DescribeVpcs":                    true,
		"/ipam.v1.IpamService/DescribeSubnets":                 true,
		"/ipam.v1.IpamService/DescribeInstances":               true,
		"/ipam.v1.IpamService/DescribeNetworkInterfaces":       true,
		"/ipam.v1.IpamService/DescribePrivateIpAddresses":      true,
	}
	tokened := map[string]bool{
		"/eip.v1.EipService/AllocateAddresses": true,
		"/havip.v1.HaVipService/CreateHaVip":   true,
	}
	seen := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(f.Path(), "arpbroker/") && !strings.HasPrefix(f.Path(), "eip/") && !strings.HasPrefix(f.Path(), "havip/") && !strings.HasPrefix(f.Path(), "ipam/") {
			return true
		}
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				name := "/" + string(s.FullName()) + "/" + string(m.Name())
				seen[name] = true
				if got := grpcclient.Read(name); got != reads[name] {
					t.Errorf("Read(%s) = %v, want %v", name, got, reads[name])
				}
				hasToken := m.Input().Fields().ByName("client_token") != nil
				if hasToken != tokened[name] {
					t.Errorf("%s: request has a client_token: %v, want %v", name, hasToken, tokened[name])
				}
			}
		}
		return true
	})
	for _, list := range []map[string]bool{reads, tokened} {
		for m := range list {
			if !seen[m] {
				t.Errorf("%s is listed but is no method of the platform's services", m)
			}
		}
	}
}
