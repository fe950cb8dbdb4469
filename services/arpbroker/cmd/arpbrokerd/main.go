// Command arpbrokerd serves arpbroker.v1.ArpBrokerService: who owns each HAVIP, from ARP.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker"
)

func main() { service.Main("arpbrokerd", arpbroker.Module) }
