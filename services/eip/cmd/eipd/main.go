// Command eipd serves eip.v1.EipService: elastic public IPs and what they map to.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/eip"
)

func main() {
	var cfg eip.Config
	service.Main("eipd", "eipd serves eip.v1.EipService and eip.v1.NatRuleService: elastic public IPs and what they map to.",
		func() (service.Module, error) { return eip.NewModule(cfg) }, &cfg)
}
