package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/openhavip/havip/platform/logging"
)

// A service's logger: JSON lines at the configured level, each naming the service. (The example
// drops each line's "time" to keep its output stable; map keys print sorted.)
func ExampleNew() {
	cfg := logging.Config{Level: "info"}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer // os.Stderr in a binary
	log := logging.New(&out, cfg.Level, "ipamd")
	log.Debug("not shown at info")
	log.Info("subnet created", "subnet", "subnet-0a1b2c3d", "addresses", 253)
	log.Warn("watch broke; resuming", "prefix", "/havip/ipam/eni/")

	lines := bufio.NewScanner(&out)
	for lines.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			fmt.Println(err)
			return
		}
		delete(rec, "time")
		b, _ := json.Marshal(rec)
		fmt.Println(string(b))
	}

	// A level that is none of the four is refused before the logger is built.
	fmt.Println(logging.Config{Level: "verbose"}.Validate())
	// Output:
	// {"addresses":253,"level":"INFO","msg":"subnet created","service":"ipamd","subnet":"subnet-0a1b2c3d"}
	// {"level":"WARN","msg":"watch broke; resuming","prefix":"/havip/ipam/eni/","service":"ipamd"}
	// -log-level (HAVIP_LOG_LEVEL) = "verbose": want debug, info, warn or error
}
