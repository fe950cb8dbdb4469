package telemetry_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRules: the recording and alerting rules are valid (promtool check rules) and their tests
// pass (promtool test rules): each alert fires when it should and not otherwise; the compose
// stack's Prometheus configuration, which loads them, is valid (promtool check config).
func TestRules(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := filepath.Dir(rulesFile)
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}, {"check", "config", "prometheus.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
