package chaos_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openhavip/havip/integration/chaos"
)

// The programs the fault suite runs, built once for the package, by the first run that needs them
// (the models' tests need none).
var (
	buildOnce sync.Once
	buildDir  string
	bins      = chaos.Binaries{}
	buildErr  error
)

// binaries builds the daemons and etcd into a temporary directory the first time it is called.
func binaries(t *testing.T) chaos.Binaries {
	t.Helper()
	buildOnce.Do(func() { buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bins
}

func build() error {
	dir, err := os.MkdirTemp("", "havip-chaos-")
	if err != nil {
		return err
	}
	buildDir = dir
	daemons := map[string]string{"ipamd": "../../services/ipam/cmd/ipamd", "havipd": "../../services/havip/cmd/havipd",
		"eipd": "../../services/eip/cmd/eipd", "arpbrokerd": "../../services/arpbroker/cmd/arpbrokerd"}
	args := []string{"build", "-o", dir + "/"}
	for name, pkg := range daemons {
		args = append(args, pkg)
		bins[name] = filepath.Join(dir, name)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("build the daemons: %w\n%s", err, out)
	}
	// etcd itself, from the release deploy/etcd pins (a module outside the workspace).
	bins["etcd"] = filepath.Join(dir, "etcd")
	cmd := exec.Command("go", "build", "-o", bins["etcd"], ".")
	cmd.Dir, cmd.Env = "../../deploy/etcd", append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build etcd: %w\n%s", err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	if len(runs) > 1 {
		summary := chaos.Summary(runs)
		fmt.Printf("the faults over %d runs:\n%s", len(runs), summary)
		if *tableFile != "" {
			if f, err := os.OpenFile(*tableFile, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
				_, _ = f.WriteString(summary)
				_ = f.Close()
			}
		}
	}
	os.Exit(code)
}
