// Command arpbrokerd serves arpbroker.v1.ArpBrokerService: who owns each HAVIP, from ARP.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker"
)

func main() {
	var cfg arpbroker.Config
	service.Main("arpbrokerd", "arpbrokerd serves arpbroker.v1.ArpBrokerService: who owns each HAVIP, from ARP.",
		func() (service.Module, error) { return arpbroker.NewModule(cfg) }, &cfg)
}
