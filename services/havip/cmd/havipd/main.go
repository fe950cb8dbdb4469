// Command havipd serves havip.v1.HaVipService: HAVIP lifecycle, switch range and status.
package main

import (
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/havip"
)

func main() {
	var cfg havip.Config
	service.Main("havipd", "havipd serves havip.v1.HaVipService: HAVIP lifecycle, switch range and status.", func() (service.Module, error) {
		if err := cfg.ValidateStandalone(); err != nil {
			return service.Module{}, err
		}
		return havip.NewModule(cfg)
	}, &cfg)
}
