package telemetry_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRules: the recording and alerting rules are valid (promtool check rules) and their tests
// pass (promtool test rules): each alert fires when it should and not otherwise.
func TestRules(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := filepath.Dir(rulesFile)
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
