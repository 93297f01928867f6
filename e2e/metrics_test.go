package e2e

// Metrics that Prometheus understands, checked against the real thing: promtool judges the /metrics of a
// proxy, a tap and a replay; a real Prometheus scrapes a proxy under load and answers histogram_quantile over
// its latency; a real VictoriaMetrics takes two replay shards' pushes, and its p99 over both agrees with
// `membench report merge` to a bucket. The shipped dashboard and alert rules name only metrics these scrapes
// hold. Prometheus and VictoriaMetrics run on free loopback ports with temporary data directories and are
// killed by PID when the test ends.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/internal/metricset"
)

// httpGet returns the body of a GET of u, bounded in time; a status other than 200 is an error.
func httpGet(u string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return string(b), nil
}

// scrapeAll returns addr's whole /metrics text.
func scrapeAll(t *testing.T, addr string) string {
	t.Helper()
	body, err := httpGet("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("cannot scrape %s: %v", addr, err)
	}
	return body
}

// sampleValue returns the value of the series written exactly as series in text, or -1 when it is absent.
func sampleValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// checkPromtool runs `promtool check metrics` on a scrape: it must exit 0 and say nothing.
func checkPromtool(t *testing.T, what, text string) {
	t.Helper()
	bin := mctest.Require(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("promtool check metrics on the %s's /metrics: %v\n%s", what, err, out)
	}
}

var membenchFamilyRE = regexp.MustCompile(`(?m)^# TYPE (membench_[a-z]+)_[a-z0-9_]+ `)

// checkOneMode checks that every membench family in a scrape belongs to mode (proxy, tap, replay), that no
// histogram is VictoriaMetrics' vmrange kind, and that the mode's latency (if it has one) has `le` buckets.
func checkOneMode(t *testing.T, mode, text string) {
	t.Helper()
	for _, m := range membenchFamilyRE.FindAllStringSubmatch(text, -1) {
		if m[1] != "membench_"+mode {
			t.Errorf("the %s exposes another mode's metrics: %s", mode, m[0])
		}
	}
	if strings.Contains(text, "vmrange") {
		t.Errorf("the %s exposes vmrange histograms, which Prometheus cannot read", mode)
	}
	if mode != "tap" && !strings.Contains(text, "membench_"+mode+`_latency_seconds_bucket{le="0.001"}`) {
		t.Errorf("the %s's latency has no le buckets", mode)
	}
}

// daemon is a Prometheus or VictoriaMetrics process started by a test and killed by PID at its end.
type daemon struct {
	cmd    *exec.Cmd
	output syncBuffer
	done   chan struct{}
}

func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = &d.output, &d.output
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", bin, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit within 10s of SIGKILL", bin, d.cmd.Process.Pid)
		}
	})
	return d
}

// waitHTTP polls u until it answers 200 (or the daemon exits, or 30 s pass).
func (d *daemon) waitHTTP(t *testing.T, u string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := httpGet(u); err == nil {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("%s exited:\n%s", d.cmd.Path, d.output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer %s within 30s:\n%s", d.cmd.Path, u, d.output.String())
		}
	}
}

// promQuery runs an instant query on a Prometheus-compatible HTTP API and returns the vector's values.
func promQuery(base, query string) ([]float64, error) {
	body, err := httpGet(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("cannot parse the answer to %s: %v: %s", query, err, body)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s", query, body)
	}
	var out []float64
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v", query, s.Value[1])
		}
		out = append(out, v)
	}
	return out, nil
}

// freeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(mctest.FreePort(t)) }

// startReplay runs `membench replay` with args and returns its process.
func startReplay(t *testing.T, args ...string) *proc {
	return start(t, append([]string{"replay"}, args...)...)
}

// TestMetrics_PromtoolAndNames scrapes a proxy under load, a live tap and a running replay: each passes
// `promtool check metrics`, exposes its own mode's metrics only (with every series known at start present at
// zero), and every metric the shipped dashboard and alert rules name is in one of the scrapes.
func TestMetrics_PromtoolAndNames(t *testing.T) {
	mc := mctest.StartMemcached(t, "-m", "64")
	scrapes := map[string]string{}

	t.Run("proxy", func(t *testing.T) {
		listen, maddr := freeAddr(t), freeAddr(t)
		p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--metrics-listen", maddr)
		waitListening(t, listen, p)
		waitListening(t, maddr, p)
		text := scrapeAll(t, maddr)
		for _, s := range []string{`membench_proxy_upstream_errors_total{kind="timeout"}`,
			`membench_proxy_requests_total{cmd="get"}`, `membench_proxy_profile_write_errors_total`} {
			if sampleValue(text, s) != 0 {
				t.Errorf("at start %s is not 0 (or absent):\n%s", s, text)
			}
		}
		l := startLoad(listen, 2, 50)
		time.Sleep(time.Second)
		l.halt()
		if l.completed.Load() == 0 {
			t.Fatalf("no request went through the proxy; stderr:\n%s", p.stderr.String())
		}
		text = scrapeAll(t, maddr)
		if sampleValue(text, `membench_proxy_latency_seconds_count`) <= 0 {
			t.Fatalf("no latency after load:\n%s", text)
		}
		checkPromtool(t, "proxy", text)
		checkOneMode(t, "proxy", text)
		scrapes["proxy"] = text
	})

	// Pool mode adds per-server and shadowing series.
	t.Run("pool", func(t *testing.T) {
		mc2 := mctest.StartMemcached(t, "-m", "64")
		listen, maddr := freeAddr(t), freeAddr(t)
		p := start(t, "proxy", "--upstream", mc.Addr+","+mc2.Addr, "--listen", listen, "--metrics-listen", maddr)
		waitListening(t, listen, p)
		waitListening(t, maddr, p)
		l := startLoad(listen, 1, 50)
		time.Sleep(500 * time.Millisecond)
		l.halt()
		text := scrapeAll(t, maddr)
		if sampleValue(text, `membench_proxy_pool_ejections_total{server="`+mc2.Addr+`"}`) != 0 {
			t.Errorf("no pool ejections series at zero for %s:\n%s", mc2.Addr, text)
		}
		checkPromtool(t, "pool proxy", text)
		checkOneMode(t, "proxy", text)
		scrapes["pool"] = text
	})

	t.Run("tap", func(t *testing.T) {
		if os.Geteuid() != 0 {
			mctest.Missing(t, "a live capture on lo needs root (or CAP_NET_RAW)")
		}
		maddr := freeAddr(t)
		p := start(t, "tap", "--interface", "lo", "--port", strconv.Itoa(mc.Port), "--metrics-listen", maddr)
		waitListening(t, maddr, p)
		var text string
		for deadline := time.Now().Add(20 * time.Second); ; {
			l := startLoad(mc.Addr, 1, 10)
			time.Sleep(100 * time.Millisecond)
			l.halt()
			time.Sleep(300 * time.Millisecond) // quiet for longer than a live read's timeout: the tap publishes
			if text = scrapeAll(t, maddr); sampleValue(text, "membench_tap_requests_total") > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tap framed no request within 20s; stderr:\n%s\n%s", p.stderr.String(), text)
			}
		}
		if sampleValue(text, `membench_tap_drops_total{where="kernel"}`) < 0 {
			t.Errorf("no kernel drops series:\n%s", text)
		}
		checkPromtool(t, "tap", text)
		checkOneMode(t, "tap", text)
		scrapes["tap"] = text
	})

	t.Run("replay", func(t *testing.T) {
		maddr := freeAddr(t)
		p := startReplay(t, "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr, "--rate", "2000",
			"--duration", "20s", "--metrics-listen", maddr)
		waitListening(t, maddr, p)
		text := scrapeAll(t, maddr)
		for _, s := range []string{`membench_replay_errors_total{kind="timeout"}`,
			`membench_replay_requests_total{cmd="delete"}`, `membench_replay_latency_seconds_count`} {
			if sampleValue(text, s) < 0 {
				t.Errorf("at start %s is absent:\n%s", s, text)
			}
		}
		for deadline := time.Now().Add(15 * time.Second); sampleValue(text, "membench_replay_latency_seconds_count") <= 0; {
			if time.Now().After(deadline) {
				t.Fatalf("no replay latency within 15s; stderr:\n%s\n%s", p.stderr.String(), text)
			}
			time.Sleep(200 * time.Millisecond)
			text = scrapeAll(t, maddr)
		}
		checkPromtool(t, "replay", text)
		checkOneMode(t, "replay", text)
		scrapes["replay"] = text
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.wait(t, 20*time.Second)
	})

	t.Run("dashboard and rules", func(t *testing.T) {
		if len(scrapes) != 4 {
			t.Skipf("needs the four scrapes; have %d", len(scrapes))
		}
		all := strings.Join([]string{scrapes["proxy"], scrapes["pool"], scrapes["tap"], scrapes["replay"]}, "\n")
		nameRE := regexp.MustCompile(`\bmembench_[a-z0-9_]+`)
		for _, file := range []string{"grafana-dashboard.json", "membench-alerts.yml"} {
			b, err := os.ReadFile(filepath.Join("..", "configs", "monitoring", file))
			if err != nil {
				t.Fatal(err)
			}
			names := nameRE.FindAllString(string(b), -1)
			if len(names) < 5 {
				t.Fatalf("%s names %d metrics", file, len(names))
			}
			for _, n := range names {
				if !regexp.MustCompile(`(?m)^` + n + `[{ ]`).MatchString(all) {
					t.Errorf("%s names %s, which no scrape holds", file, n)
				}
			}
		}
	})
}

// TestMetrics_PrometheusScrapesProxy: a real Prometheus scrapes a proxy under load (with the shipped alert rules
// loaded), and histogram_quantile over the proxy's latency buckets returns a value.
func TestMetrics_PrometheusScrapesProxy(t *testing.T) {
	bin := mctest.Require(t, "prometheus")
	mc := mctest.StartMemcached(t, "-m", "64")
	listen, maddr := freeAddr(t), freeAddr(t)
	p := start(t, "proxy", "--upstream", mc.Addr, "--listen", listen, "--metrics-listen", maddr)
	waitListening(t, listen, p)
	waitListening(t, maddr, p)
	l := startLoad(listen, 2, 100)
	defer l.halt()

	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("..", "configs", "monitoring", "membench-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	err = os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: membench-proxy
    static_configs:
      - targets: [%q]
`, rules, maddr)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	web := freeAddr(t)
	prom := startDaemon(t, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	base := "http://" + web
	prom.waitHTTP(t, base+"/-/ready")

	const q = `histogram_quantile(0.99, sum by (le) (rate(membench_proxy_latency_seconds_bucket[10s])))`
	var got []float64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		got, err = promQuery(base, q)
		if err == nil && len(got) == 1 && got[0] > 0 && !math.IsNaN(got[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s gave %v (%v) within 60s; load completed %d requests\nprometheus:\n%s", q, got, err,
				l.completed.Load(), prom.output.String())
		}
	}
	if got[0] > 10 {
		t.Fatalf("p99 latency through a loopback proxy is %v s", got[0])
	}
	t.Logf("Prometheus: %s = %v s", q, got[0])
	// The rules evaluate on real data without errors.
	body, err := httpGet(base + "/api/v1/rules")
	if err != nil || !strings.Contains(body, `"name":"MembenchUpstreamDown"`) || strings.Contains(body, `"health":"err"`) {
		t.Fatalf("rules: %v\n%s", err, body)
	}
}

// TestMetrics_VictoriaMetricsShards: two replay shards push to a real VictoriaMetrics; the PromQL p99 over both
// shards' latency buckets agrees with `membench report merge`'s p99 to the width of the bucket that holds it,
// and the pushed counts are the reports' counts.
func TestMetrics_VictoriaMetricsShards(t *testing.T) {
	bin := mctest.Require(t, "victoria-metrics")
	mc := mctest.StartMemcached(t, "-m", "64")
	dir := t.TempDir()
	web := freeAddr(t)
	vm := startDaemon(t, bin, "-storageDataPath="+filepath.Join(dir, "vm"), "-httpListenAddr="+web,
		"-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR")
	base := "http://" + web
	vm.waitHTTP(t, base+"/health")

	push := base + "/api/v1/import/prometheus"
	var shards []*proc
	var reports []string
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("node%d.json", i))
		reports = append(reports, out)
		shards = append(shards, startReplay(t, "--workload", "etc", "--keys-scale", "0.01", "--target", mc.Addr,
			"--rate", "3000", "--ops", "9000", "--shard", fmt.Sprintf("%d/2", i), "--metrics-push", push,
			"-o", out))
	}
	for i, p := range shards {
		if err := p.wait(t, 60*time.Second); err != nil {
			t.Fatalf("replay shard %d/2: %v\n%s", i, err, p.stderr.String())
		}
	}
	m := start(t, append([]string{"report", "merge"}, reports...)...)
	if err := m.wait(t, 30*time.Second); err != nil {
		t.Fatalf("report merge: %v\n%s", err, m.stderr.String())
	}
	var merged struct {
		Ops       uint64 `json:"ops"`
		LatencyUs struct {
			Count uint64  `json:"count"`
			P99   float64 `json:"p99"`
		} `json:"latency_us"`
	}
	if err := json.Unmarshal(m.stdout.Bytes(), &merged); err != nil {
		t.Fatalf("report merge output: %v\n%s", err, m.stdout.String())
	}
	if merged.LatencyUs.Count == 0 {
		t.Fatalf("the merged report has no latency: %s", m.stdout.String())
	}
	if _, err := httpGet(base + "/internal/force_flush"); err != nil {
		t.Fatal(err)
	}

	// query returns the single value of q once ok accepts it; freshly pushed samples take a moment to become
	// searchable.
	query := func(q string, ok func(float64) bool) float64 {
		t.Helper()
		var got []float64
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			got, err = promQuery(base, q)
			if err == nil && len(got) == 1 && ok(got[0]) {
				return got[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("VictoriaMetrics: %s gave %v (%v) within 30s\n%s", q, got, err, vm.output.String())
			}
		}
	}
	is := func(want uint64) func(float64) bool { return func(v float64) bool { return v == float64(want) } }
	anyValue := func(float64) bool { return true }
	query(`count(count by (shard) (membench_replay_latency_seconds_count))`, is(2))
	// The shards' last pushes hold their totals, which add up to the merged report's.
	query(`sum(last_over_time(membench_replay_latency_seconds_count[1h]))`, is(merged.LatencyUs.Count))
	query(`sum(last_over_time(membench_replay_requests_total[1h]))`, is(merged.Ops))
	p99 := query(`histogram_quantile(0.99, sum by (le) (last_over_time(membench_replay_latency_seconds_bucket[1h])))`,
		anyValue)
	want := merged.LatencyUs.P99 / 1e6
	i, _ := slices.BinarySearch(metricset.LatencyBuckets, want) // the bucket (lo, hi] that holds want
	lo, hi := 0.0, math.Inf(1)
	if i > 0 {
		lo = metricset.LatencyBuckets[i-1]
	}
	if i < len(metricset.LatencyBuckets) {
		hi = metricset.LatencyBuckets[i]
	}
	if math.Abs(p99-want) > hi-lo {
		t.Fatalf("PromQL p99 over both shards is %v s; report merge's is %v s, in the bucket (%v, %v]", p99, want,
			lo, hi)
	}
	t.Logf("p99: PromQL %v s, report merge %v s, bucket (%v, %v]", p99, want, lo, hi)
}
