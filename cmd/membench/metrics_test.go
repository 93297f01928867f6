package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/membench/membench/internal/metricset"
	"github.com/membench/membench/proxy"
	"github.com/membench/membench/replay"
	"github.com/membench/membench/tap"
)

// TestMetrics_Documented: every family of every mode is in docs/OPERATIONS.md's "Metrics reference", under its
// short name (`requests_total{cmd}` in the proxy's table is membench_proxy_requests_total).
func TestMetrics_Documented(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Metrics reference")
	if start < 0 {
		t.Fatal(`docs/OPERATIONS.md has no "## Metrics reference"`)
	}
	doc = doc[start:]
	if end := strings.Index(doc[1:], "\n## "); end >= 0 {
		doc = doc[:end+1]
	}
	proxy.Metrics.GetOrCreateCounter(`membench_proxy_pool_requests_total{server="a:1"}`) // made by a pool
	proxy.Metrics.GetOrCreateCounter(`membench_proxy_pool_errors_total{server="a:1"}`)
	proxy.Metrics.GetOrCreateCounter(`membench_proxy_pool_ejections_total{server="a:1"}`)
	for mode, set := range map[string]*metricset.Set{"proxy": proxy.Metrics, "tap": tap.Metrics,
		"replay": replay.NewMetrics().Set} {
		fams := set.Families()
		if len(fams) < 5 {
			t.Fatalf("%s: %d families", mode, len(fams))
		}
		for _, f := range fams {
			short := strings.TrimPrefix(f, "membench_"+mode+"_")
			if !regexp.MustCompile("`" + short + "[`{]").MatchString(doc) {
				t.Errorf("%s is not in docs/OPERATIONS.md's Metrics reference (as `%s`)", f, short)
			}
		}
	}
}

// TestMetrics_OneSetPerMode: with every mode linked in, nothing registers in VictoriaMetrics/metrics' default
// set, which every process would otherwise serve and push: each mode's metrics live in its own set
// (proxy.Metrics, tap.Metrics, replay.NewMetrics), served only by that mode's process.
func TestMetrics_OneSetPerMode(t *testing.T) {
	if names := metrics.GetDefaultSet().ListMetricNames(); len(names) > 0 {
		t.Fatalf("metrics in the default set: %v", names)
	}
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	if b.Len() > 0 {
		t.Fatalf("metrics.WritePrometheus writes:\n%s", b.String())
	}
}

// TestReplay_MetricsPushRefused: a push target that answers 4xx (a Prometheus Pushgateway answers the push's
// GET with 405; a wrong path gives 404) stops the replay before it sends anything, with an error that names
// --metrics-push and says what it must be. A target that is down or answers 5xx only warns.
func TestReplay_MetricsPushRefused(t *testing.T) {
	f := func(status int, wantCode int, want ...string) {
		t.Helper()
		var pushes atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pushes.Add(1)
			http.Error(w, http.StatusText(status), status)
		}))
		defer srv.Close()
		code, stdout, stderr := runMembench("replay", "--workload", "etc", "--keys-scale", "0.01",
			"--target", "127.0.0.1:1", "--ops", "10", "--max-error-ratio", "1",
			"--metrics-push", "http://user:secret@"+strings.TrimPrefix(srv.URL, "http://")+"/metrics/job/replay")
		if code != wantCode {
			t.Fatalf("HTTP %d: replay exited %d, want %d: %s %s", status, code, wantCode, stdout, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Fatalf("HTTP %d: stderr lacks %q:\n%s", status, w, stderr)
			}
		}
		if strings.Contains(stderr, "secret") {
			t.Fatalf("HTTP %d: the push URL's password is in the messages:\n%s", status, stderr)
		}
		if pushes.Load() == 0 {
			t.Fatalf("HTTP %d: nothing was pushed", status)
		}
	}
	refused := []string{"--metrics-push", "/api/v1/import/prometheus", "Pushgateway"}
	f(http.StatusMethodNotAllowed, 1, append(refused, "HTTP 405")...)
	f(http.StatusNotFound, 1, append(refused, "HTTP 404")...)
	f(http.StatusBadRequest, 1, append(refused, "HTTP 400")...)
	// A 5xx may pass: the replay runs (its requests all fail against port 1) and warns.
	f(http.StatusServiceUnavailable, 0, "metrics push failed")
}
