package validate_test

import (
	"strings"
	"testing"

	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/validate"
)

// TestIDMessage checks that a malformed ID's message reads well whatever the kind (it once
// read "is not a ins ID").
func TestIDMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, field, prefix, id string
		want                    string // "" when the ID is valid
	}{
		{"valid instance", "instance_id", ids.Instance, "ins-0abcdefz", ""},
		{"empty", "instance_id", ids.Instance, "", `instance_id is required`},
		{"instance", "instance_id", ids.Instance, "ins-1", `instance_id "ins-1" is not a valid ID: it must be "ins-" followed by 8 lowercase letters or digits`},
		{"eni given for an instance", "instance_id", ids.Instance, "eni-0abcdefz", `instance_id "eni-0abcdefz" is not a valid ID: it must be "ins-" followed by 8 lowercase letters or digits`},
		{"eni", "network_interface_id", ids.NetworkInterface, "ENI-0ABCDEFZ", `network_interface_id "ENI-0ABCDEFZ" is not a valid ID: it must be "eni-" followed by 8 lowercase letters or digits`},
		{"vpc", "vpc_id", ids.Vpc, "vpc_0abcdefz", `vpc_id "vpc_0abcdefz" is not a valid ID: it must be "vpc-" followed by 8 lowercase letters or digits`},
		{"subnet", "subnet_id", ids.Subnet, "subnet-", `subnet_id "subnet-" is not a valid ID: it must be "subnet-" followed by 8 lowercase letters or digits`},
		{"havip", "havip_id", ids.HaVip, "havip-0abcdefz9", `havip_id "havip-0abcdefz9" is not a valid ID: it must be "havip-" followed by 8 lowercase letters or digits`},
		{"eip", "address_id", ids.Address, "eip-0abc.efz", `address_id "eip-0abc.efz" is not a valid ID: it must be "eip-" followed by 8 lowercase letters or digits`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := validate.ID(tt.field, tt.prefix, tt.id)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ID(%q, %q, %q) = %v, want nil", tt.field, tt.prefix, tt.id, err)
			case tt.want != "" && err == nil:
				t.Fatalf("ID(%q, %q, %q) = nil, want an error saying %q", tt.field, tt.prefix, tt.id, tt.want)
			case tt.want != "" && !strings.HasSuffix(err.Error(), ": "+tt.want):
				t.Fatalf("ID(%q, %q, %q) = %q, want the message %q", tt.field, tt.prefix, tt.id, err, tt.want)
			}
		})
	}
}
