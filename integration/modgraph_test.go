package integration_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServicesDependOnlyOnPlatformAndProto keeps the module graph free of service → service
// edges: a service module (and the gateway) may require, and import, only the platform and
// proto modules of this repository, so each can change and ship alone.
func TestServicesDependOnlyOnPlatformAndProto(t *testing.T) {
	t.Parallel()
	mods, err := filepath.Glob("../services/*/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mods = append(mods, "../gateway/go.mod")
	if len(mods) < 5 {
		t.Fatalf("found only %v", mods)
	}
	allowed := map[string]bool{"github.com/openhavip/havip/platform": true, "github.com/openhavip/havip/proto": true}
	for _, gomod := range mods {
		out, err := exec.Command("go", "mod", "edit", "-json", gomod).Output()
		if err != nil {
			t.Fatalf("go mod edit -json %s: %v", gomod, err)
		}
		var m struct {
			Module  struct{ Path string }
			Require []struct{ Path string }
			Replace []struct{ Old struct{ Path string } }
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Require {
			if strings.HasPrefix(r.Path, "github.com/openhavip/havip/") && !allowed[r.Path] {
				t.Errorf("%s requires %s: a service may depend only on platform and proto", m.Module.Path, r.Path)
			}
		}
		for _, r := range m.Replace {
			if strings.HasPrefix(r.Old.Path, "github.com/openhavip/havip/") && !allowed[r.Old.Path] {
				t.Errorf("%s replaces %s: a service may depend only on platform and proto", m.Module.Path, r.Old.Path)
			}
		}
		// go.work resolves an import of a sibling module that go.mod does not name: list the
		// modules the packages and tests really use.
		cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{with .Module}}{{.Path}}{{end}}", "./...")
		cmd.Dir = filepath.Dir(gomod)
		out, err = cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps in %s: %v", cmd.Dir, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/openhavip/havip/") && dep != m.Module.Path && !allowed[dep] {
				t.Errorf("%s uses packages of %s: a service may depend only on platform and proto", m.Module.Path, dep)
			}
		}
	}
}
