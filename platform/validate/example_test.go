package validate_test

import (
	"fmt"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/validate"
)

// Checking a CreateSubnet-like request: each check names the field and gives a Tencent-style
// reason a client can act on.
func Example() {
	check := func(name, cidr, addr string) {
		if err := validate.Name("SubnetName", name); err != nil {
			fmt.Println(apierr.Reason(err))
			return
		}
		p, err := validate.CIDR("CidrBlock", cidr, 16, 29)
		if err != nil {
			fmt.Println(apierr.Reason(err))
			return
		}
		if err := validate.Private("CidrBlock", p); err != nil {
			fmt.Println(apierr.Reason(err))
			return
		}
		a, err := validate.OptionalIPv4("PrivateIpAddress", addr)
		if err != nil {
			fmt.Println(apierr.Reason(err))
			return
		}
		fmt.Println("ok:", name, p, a.IsValid())
	}
	check("web", "10.0.1.0/24", "")
	check("web", "10.0.1.0/24", "10.0.1.9")
	check("", "10.0.1.0/24", "")
	check("web", "10.0.1.1/24", "")
	check("web", "10.0.0.0/8", "")
	check("web", "8.8.8.0/24", "")
	check("web", "10.0.1.0/24", "fd00::9")
	// Output:
	// ok: web 10.0.1.0/24 false
	// ok: web 10.0.1.0/24 true
	// InvalidParameterValue.Empty
	// InvalidParameterValue.Malformed
	// InvalidParameterValue.Range
	// InvalidParameterValue.CidrNotPrivate
	// InvalidParameterValue.NotIpv4
}
