// Package monitoring_test checks the shipped Grafana dashboard and Prometheus alert rules with a real promtool:
// the rules load, their unit tests (membench-alerts.test.yml) pass, and every dashboard query is valid PromQL.
// That each metric they name exists in a real scrape is checked in e2e/metrics_test.go.
package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// promtool runs promtool with args in dir, bounded in time, and fails the test on a non-zero exit.
func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin := mctest.Require(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRules(t *testing.T) {
	out := promtool(t, ".", "check", "rules", "membench-alerts.yml")
	if !strings.Contains(out, "SUCCESS: 6 rules found") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	promtool(t, ".", "test", "rules", "membench-alerts.test.yml")
}

// dashboard is the part of a Grafana dashboard this test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard: the dashboard is JSON Grafana can import (unique panel ids, every graph on the datasource
// variable), and every query is PromQL that promtool accepts (as recording rules in a temporary file).
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("grafana-dashboard.json has no uid or no panels")
	}
	ids := map[int]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: want queries on the ${datasource} variable", p.Title)
		}
		for _, tg := range p.Targets {
			// Grafana's variables, as Grafana would fill them in.
			expr := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(tg.Expr)
			q, _ := json.Marshal(expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
			n++
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := promtool(t, ".", "check", "rules", file); !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Fatalf("promtool check rules (dashboard queries):\n%s", out)
	}
}
