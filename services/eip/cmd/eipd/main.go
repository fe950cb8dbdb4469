// Command eipd serves eip.v1.EipService: elastic public IPs and what they map to.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/eip"
)

func main() { service.Main("eipd", eip.Module) }
