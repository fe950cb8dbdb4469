// Command havipd serves havip.v1.HaVipService: HAVIP lifecycle, switch range and status.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/havip"
)

func main() { service.Main("havipd", havip.Module) }
