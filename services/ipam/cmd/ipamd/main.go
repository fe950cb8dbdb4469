// Command ipamd serves ipam.v1.IpamService: VPCs, subnets, instances, ENIs and private IPs.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/ipam"
)

func main() {
	service.Main("ipamd", "ipamd serves ipam.v1.IpamService: VPCs, subnets, instances, ENIs and private IPs.",
		func() (service.Module, error) { return ipam.Module, nil })
}
