// The page template: overview tables first, then the charts. CSS is inline; there is no script.
package report

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"

	"github.com/membench/membench/profile/analyze"
)

var funcs = template.FuncMap{
	"pct": func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) },
	"f3": func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	},
	"f2":    func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"bytes": humanBytes,
	"num":   func(v uint64) string { return groupDigits(v) },
	"mix":   mixRows,
	"hitpct": func(missRatio *float64) string {
		if missRatio == nil {
			return "–"
		}
		return fmt.Sprintf("%.2f%%", 100*(1-*missRatio))
	},
	"stat": statusRows,
}

func humanBytes(v uint64) string {
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%d B", v)
	}
	div, exp := uint64(unit), 0
	for n := v / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(v)/float64(div), "KMGTPE"[exp])
}

func groupDigits(v uint64) string {
	s := fmt.Sprint(v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

type row struct {
	Name  string
	Count uint64
	Share float64
}

func rows(m map[string]uint64, total uint64) []row {
	var out []row
	for k, v := range m {
		share := 0.0
		if total > 0 {
			share = float64(v) / float64(total)
		}
		out = append(out, row{k, v, share})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || (out[i].Count == out[j].Count && out[i].Name < out[j].Name)
	})
	return out
}

func mixRows(s *analyze.Summary) []row    { return rows(s.Commands, s.Events) }
func statusRows(s *analyze.Summary) []row { return rows(s.Statuses, s.Events) }

// reportCSS is the style every report page shares (profile pages and replay pages).
const reportCSS = `body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1360px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 16px;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:4px 0 12px}
td,th{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right} th{background:#f6f8fa} td:first-child,th:first-child{text-align:left}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(650px,1fr));gap:18px}
.chart{border:1px solid #d0d7de;border-radius:6px;padding:10px}
.chart h3{font-size:14px;margin:0} .chart p{font-size:12px;color:#57606a;margin:2px 0 6px}
svg .frame{fill:none;stroke:#8c959f} svg .grid{stroke:#eaeef2} svg .tick{font-size:10px;fill:#57606a}
svg .label{font-size:11px;fill:#24292f} svg .legend{font-size:11px;fill:#24292f} svg .empty{font-size:13px;fill:#8c959f}
`

var pageTmpl = template.Must(template.New("page").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
` + reportCSS + `.cards{display:flex;flex-wrap:wrap;gap:20px}
.card{flex:1 1 420px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.good{color:#1a7f37} .warn{color:#9a6700}
footer{margin-top:30px;font-size:12px;color:#57606a}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="sub">membench profile report. A profile holds keyed hashes and sizes only: no key or value bytes appear here.</p>
{{with .Compare}}
<h2>How alike</h2>
<table><tr><th>measure</th><th>value</th><th>meaning</th></tr>
<tr><td>command mix L1</td><td>{{f3 .CommandMixL1}}</td><td>0 = same mix, 2 = disjoint</td></tr>
<tr><td>key size KS</td><td>{{f3 .KeySizeKS}}</td><td>largest CDF gap</td></tr>
<tr><td>value size KS</td><td>{{f3 .ValueSizeKS}}</td><td>largest CDF gap</td></tr>
<tr><td>hit ratio delta</td><td>{{f3 .HitRatioDelta}}</td><td>second − first</td></tr>
<tr><td>Zipf α delta</td><td>{{f3 .ZipfAlphaDelta}}</td><td>second − first</td></tr>
<tr><td>MRC mean abs. error</td><td>{{f3 .MRCMAE}}</td><td>over all cache sizes</td></tr>
</table>
{{range .Warnings}}<p class="warn">{{.}}</p>{{end}}
{{end}}
<div class="cards">
{{range .Profiles}}{{$s := .S}}
<div class="card">
<h2><span class="swatch" style="background:{{.Color}}"></span>{{.Label}}</h2>
<table>
<tr><th>overview</th><th></th></tr>
<tr><td>events</td><td>{{num $s.Events}}</td></tr>
<tr><td>duration</td><td>{{f2 $s.DurationSeconds}} s</td></tr>
<tr><td>connections</td><td>{{num $s.Connections}}</td></tr>
<tr><td>hit ratio (retrievals)</td><td>{{if or $s.Hits $s.Misses}}{{pct $s.HitRatio}}{{else}}n/a (no outcomes recorded){{end}}</td></tr>
{{if $s.MultiKeyGets}}<tr><td>multi-key gets (keys)</td><td>{{num $s.MultiKeyGets}} ({{num $s.MultiKeyGetKeys}})</td></tr>{{end}}
<tr><td>unique keys</td><td>{{num $s.UniqueKeys}}{{if not $s.UniqueKeysExact}} (est.){{end}}</td></tr>
<tr><td>working set</td><td>{{bytes $s.WorkingSetBytes}}</td></tr>
<tr><td>Zipf α</td><td>{{f3 $s.ZipfAlpha}}</td></tr>
<tr><td>top 1 / 10 / 100 keys</td><td>{{pct $s.TopKeysShare.Top1}} / {{pct $s.TopKeysShare.Top10}} / {{pct $s.TopKeysShare.Top100}}</td></tr>
{{if or $s.TruncatedBlocks $s.CorruptBlocks}}<tr><td class="warn">damaged blocks (truncated / corrupt)</td><td class="warn">{{$s.TruncatedBlocks}} / {{$s.CorruptBlocks}}</td></tr>{{end}}
</table>
<table><tr><th>sizes (bytes)</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
<tr><td>key</td><td>{{$s.KeySize.Min}}</td><td>{{$s.KeySize.P50}}</td><td>{{$s.KeySize.P90}}</td><td>{{$s.KeySize.P99}}</td><td>{{$s.KeySize.Max}}</td></tr>
<tr><td>value</td><td>{{$s.ValueSize.Min}}</td><td>{{$s.ValueSize.P50}}</td><td>{{$s.ValueSize.P90}}</td><td>{{$s.ValueSize.P99}}</td><td>{{$s.ValueSize.Max}}</td></tr>
<tr><td>TTL (s)</td><td>{{$s.TTL.Min}}</td><td>{{$s.TTL.P50}}</td><td>{{$s.TTL.P90}}</td><td>{{$s.TTL.P99}}</td><td>{{$s.TTL.Max}}</td></tr>
</table>
<table><tr><th>command</th><th>events</th><th>share</th></tr>
{{range mix $s}}<tr><td>{{.Name}}</td><td>{{num .Count}}</td><td>{{pct .Share}}</td></tr>{{end}}
</table>
<table><tr><th>status</th><th>events</th><th>share</th></tr>
{{range stat $s}}<tr><td>{{.Name}}</td><td>{{num .Count}}</td><td>{{pct .Share}}</td></tr>{{end}}
</table>
{{with $s.Memcached}}<table><tr><th>memcached model{{if not .Segmented}} (flat LRU){{end}}</th><th>hit ratio</th><th>misses</th><th>evictions</th><th>LRU hit ratio</th></tr>
{{range .Points}}<tr><td>-m {{bytes .MemoryBytes}}</td><td>{{pct .HitRatio}}</td><td>{{num .Misses}}</td><td>{{num .Evictions}}</td><td>{{hitpct .LRUMissRatio}}</td></tr>{{end}}
</table>{{end}}
</div>
{{end}}
</div>
<h2>Charts</h2>
<div class="charts">
{{range .Charts}}<div class="chart"><h3>{{.Title}}</h3><p>{{.Note}}</p>{{.SVG}}</div>
{{end}}
</div>
<footer>Generated by membench. Self-contained: no scripts, no network.</footer>
</body></html>
`))
