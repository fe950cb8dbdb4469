package chaos_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/openhavip/havip/integration/chaos"
)

// bins are the programs the tests run, built once for the package.
var bins = chaos.Binaries{}

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if os.Geteuid() != 0 {
			return m.Run() // the models' tests; the fault suite skips
		}
		dir, err := os.MkdirTemp("", "havip-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		daemons := map[string]string{"ipamd": "../../services/ipam/cmd/ipamd", "havipd": "../../services/havip/cmd/havipd",
			"eipd": "../../services/eip/cmd/eipd", "arpbrokerd": "../../services/arpbroker/cmd/arpbrokerd"}
		args := []string{"build", "-o", dir + "/"}
		for name, pkg := range daemons {
			args = append(args, pkg)
			bins[name] = filepath.Join(dir, name)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the daemons: %v\n%s", err, out)
			return 1
		}
		// etcd itself, from the release deploy/etcd pins (a module outside the workspace).
		bins["etcd"] = filepath.Join(dir, "etcd")
		build := exec.Command("go", "build", "-o", bins["etcd"], ".")
		build.Dir, build.Env = "../../deploy/etcd", append(os.Environ(), "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build etcd: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}
