// Package report renders profile summaries (profile/analyze) as one self-contained HTML page: inline SVG
// charts and CSS, no scripts, no fonts or files fetched, so the page opens anywhere, offline, and can be mailed
// around. One summary gives an inspect report; two give a compare report with every chart overlaid.
//
// A report shows only what the summary holds — counts, sizes, hashes of namespaces — never key or value bytes,
// which a profile does not have.
package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/membench/membench/profile/analyze"
)

// Input is one profile to draw: a label (usually the file name) and its summary.
type Input struct {
	Label   string
	Summary *analyze.Summary
}

// colors of the first and second profile.
var colors = []string{"#1f6feb", "#d1495b", "#2a9d8f", "#e9c46a", "#8d6cab", "#6c757d"}

// WriteHTML writes the report for one profile (inspect) or two (compare; cmp may be nil otherwise).
func WriteHTML(w io.Writer, title string, in []Input, cmp *analyze.Comparison) error {
	if len(in) == 0 || len(in) > 2 {
		return fmt.Errorf("a report draws one or two profiles, got %d", len(in))
	}
	page := pageData{Title: title}
	for i, x := range in {
		page.Profiles = append(page.Profiles, profileData{Label: x.Label, Color: colors[i], S: x.Summary})
	}
	page.Charts = charts(in)
	if cmp != nil {
		page.Compare = cmp
	}
	return pageTmpl.Execute(w, page)
}

type pageData struct {
	Title    string
	Profiles []profileData
	Charts   []chart
	Compare  *analyze.Comparison
}

type profileData struct {
	Label string
	Color string
	S     *analyze.Summary
}

type chart struct {
	Title string
	Note  string
	SVG   template.HTML
}

// series is one line of a chart.
type series struct {
	name  string
	color string
	dash  bool
	marks bool // a circle at every point, however many
	x, y  []float64
}

func charts(in []Input) []chart {
	var out []chart
	// Size CDFs.
	for _, which := range []string{"key", "value"} {
		var ss []series
		for i, x := range in {
			d := x.Summary.KeySize
			if which == "value" {
				d = x.Summary.ValueSize
			}
			xs, ys := cdf(d.Hist)
			if len(xs) > 0 {
				ss = append(ss, series{name: x.Label, color: colors[i], x: xs, y: ys})
			}
		}
		out = append(out, chart{Title: strings.ToUpper(which[:1]) + which[1:] + " size CDF",
			Note: "share of events with a " + which + " of at most this many bytes",
			SVG:  plot(ss, axis{label: "bytes", log: true}, axis{label: "CDF", min: 0, max: 1, fixed: true}, true)})
	}
	// Popularity.
	{
		var ss []series
		for i, x := range in {
			s := x.Summary
			var xs, ys []float64
			for _, p := range s.Popularity {
				if p.Rank > 0 && p.Count > 0 {
					xs, ys = append(xs, p.Rank), append(ys, p.Count)
				}
			}
			if len(xs) == 0 {
				continue
			}
			ss = append(ss, series{name: x.Label, color: colors[i], x: xs, y: ys})
			if s.ZipfAlpha > 0 && len(xs) > 1 {
				// The fitted line through the head: count(r) = c1 · r^-α, anchored at the first point.
				c1 := ys[0] * math.Pow(xs[0], s.ZipfAlpha)
				lx := []float64{xs[0], xs[len(xs)-1]}
				ly := []float64{c1 * math.Pow(lx[0], -s.ZipfAlpha), c1 * math.Pow(lx[1], -s.ZipfAlpha)}
				ss = append(ss, series{name: fmt.Sprintf("%s Zipf α=%.2f", x.Label, s.ZipfAlpha), color: colors[i],
					dash: true, x: lx, y: ly})
			}
		}
		out = append(out, chart{Title: "Key popularity (rank–frequency)", Note: "accesses per key by popularity rank, log–log, with the fitted Zipf line",
			SVG: plot(ss, axis{label: "rank", log: true}, axis{label: "accesses per key", log: true}, false)})
	}
	// Request rate by command.
	{
		var ss []series
		for i, x := range in {
			s := x.Summary
			width := s.RateBucketSeconds
			if width <= 0 {
				width = 1
			}
			var xs, ys []float64
			for _, p := range s.Rate {
				xs, ys = append(xs, p.T), append(ys, float64(p.Total)/width)
			}
			if len(xs) == 0 {
				continue
			}
			ss = append(ss, series{name: x.Label + " all", color: colors[i], x: xs, y: ys})
			for j, cmd := range topCommands(s, 3) {
				cx, cy := make([]float64, len(s.Rate)), make([]float64, len(s.Rate))
				for k, p := range s.Rate {
					cx[k], cy[k] = p.T, float64(p.ByCommand[cmd])/width
				}
				ss = append(ss, series{name: x.Label + " " + cmd, color: shade(colors[i], j+1), dash: true, x: cx, y: cy})
			}
		}
		out = append(out, chart{Title: "Request rate over time", Note: "requests per second, all and by top command",
			SVG: plot(ss, axis{label: "seconds since start"}, axis{label: "requests/s", min: 0}, false)})
	}
	// Hit ratio over time.
	{
		var ss []series
		for i, x := range in {
			var xs, ys []float64
			for _, p := range x.Summary.HitRatioOverTime {
				xs, ys = append(xs, p.T), append(ys, p.HitRatio)
			}
			if len(xs) > 0 {
				ss = append(ss, series{name: x.Label, color: colors[i], x: xs, y: ys})
			}
		}
		out = append(out, chart{Title: "Hit ratio over time", Note: "hits / retrievals per time bucket",
			SVG: plot(ss, axis{label: "seconds since start"}, axis{label: "hit ratio", min: 0, max: 1, fixed: true}, false)})
	}
	// Miss-ratio curve.
	{
		var ss []series
		for i, x := range in {
			var xs, ys []float64
			for _, p := range x.Summary.MRC {
				if p.Size() > 0 {
					xs, ys = append(xs, float64(p.Size())), append(ys, p.MissRatio)
				}
			}
			if len(xs) > 0 {
				ss = append(ss, series{name: x.Label + " (" + x.Summary.MRCModel + ", " + x.Summary.MRCMethod + ")",
					color: colors[i], x: xs, y: ys})
			}
		}
		// Both curves share the axis; compare refuses curves in different units, and so does this chart.
		label := "cache bytes"
		if in[0].Summary.MRCUnit == analyze.UnitObjects {
			label = "cache objects"
		}
		for _, x := range in[1:] {
			if x.Summary.MRCUnit != in[0].Summary.MRCUnit {
				ss = ss[:min(len(ss), 1)]
			}
		}
		note := "miss ratio of retrievals an LRU cache of this size would have"
		// The memcached model's predictions, at its memory limits (bytes), next to the LRU curve.
		for i, x := range in {
			m := x.Summary.Memcached
			if m == nil || len(m.Points) == 0 || label != "cache bytes" {
				continue
			}
			var xs, ys []float64
			for _, p := range m.Points {
				xs, ys = append(xs, float64(p.MemoryBytes)), append(ys, p.MissRatio)
			}
			ss = append(ss, series{name: x.Label + " memcached -m (predicted)", color: shade(colors[i], 2), marks: true,
				x: xs, y: ys})
			note = "miss ratio of retrievals an LRU cache of this size would have; points: memcached with this " +
				"memory limit (-m), as the memcached model predicts it"
		}
		out = append(out, chart{Title: "LRU miss-ratio curve", Note: note,
			SVG: plot(ss, axis{label: label, log: true}, axis{label: "miss ratio", min: 0, max: 1, fixed: true}, true)})
	}
	// Latency percentiles.
	{
		var ss []series
		for i, x := range in {
			l := x.Summary.LatencyUs
			if l == nil || l.Count == 0 {
				continue
			}
			ss = append(ss, series{name: x.Label, color: colors[i],
				x: []float64{50, 90, 99, 99.9, 100}, y: []float64{l.P50, l.P90, l.P99, l.P999, l.Max}})
		}
		note := "latency at each percentile, µs"
		if len(ss) == 0 {
			note = "no latency in this profile (recorded by a source that cannot time requests)"
		}
		out = append(out, chart{Title: "Latency percentiles", Note: note,
			SVG: plot(ss, axis{label: "percentile", ticks: []float64{50, 90, 99, 99.9, 100}, cat: true},
				axis{label: "µs", log: true}, false)})
	}
	return out
}

// cdf turns histogram buckets into CDF points.
func cdf(hist [][2]uint64) (xs, ys []float64) {
	var total float64
	for _, b := range hist {
		total += float64(b[1])
	}
	if total == 0 {
		return nil, nil
	}
	var acc float64
	for _, b := range hist {
		acc += float64(b[1])
		xs = append(xs, math.Max(float64(b[0]), 1))
		ys = append(ys, acc/total)
	}
	return xs, ys
}

func topCommands(s *analyze.Summary, n int) []string {
	type kv struct {
		k string
		v uint64
	}
	var all []kv
	for k, v := range s.Commands {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || (all[i].v == all[j].v && all[i].k < all[j].k) })
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].k)
	}
	return out
}

// shade lightens a #rrggbb color for secondary lines.
func shade(c string, step int) string {
	var r, g, b int
	fmt.Sscanf(c, "#%02x%02x%02x", &r, &g, &b)
	f := 0.25 * float64(step)
	mix := func(v int) int { return int(float64(v) + (255-float64(v))*math.Min(f, 0.75)) }
	return fmt.Sprintf("#%02x%02x%02x", mix(r), mix(g), mix(b))
}

type axis struct {
	label    string
	log      bool
	min, max float64
	fixed    bool                 // use min/max as given
	ticks    []float64            // explicit ticks
	cat      bool                 // categorical: ticks evenly spaced
	tickFmt  func(float64) string // tick labels; fmtNum when nil
}

// tickLabel is the label of tick v on a.
func (a axis) tickLabel(v float64) string {
	if a.tickFmt != nil {
		return a.tickFmt(v)
	}
	return fmtNum(v)
}

const (
	chartW, chartH = 640, 300
	padL, padR     = 70, 20
	padT, padB     = 15, 45
)

// plot draws series as an SVG line chart.
func plot(ss []series, ax, ay axis, step bool) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img">`,
		chartW, chartH+20*((len(ss)+1)/2), chartW, chartH+20*((len(ss)+1)/2))
	if len(ss) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no data</text></svg>`, chartW/2-30, chartH/2)
		return template.HTML(b.String())
	}
	xmin, xmax := bounds(ss, true, ax)
	ymin, ymax := bounds(ss, false, ay)
	if ax.cat {
		xmin, xmax = 0, float64(len(ax.ticks)-1)
	}
	px := func(v float64) float64 {
		if ax.cat {
			for i, t := range ax.ticks {
				if t == v {
					v = float64(i)
					break
				}
			}
		} else if ax.log {
			v = math.Log10(math.Max(v, 1e-12))
		}
		lo, hi := xmin, xmax
		if ax.log && !ax.cat {
			lo, hi = math.Log10(xmin), math.Log10(xmax)
		}
		if hi == lo {
			hi = lo + 1
		}
		return padL + (v-lo)/(hi-lo)*float64(chartW-padL-padR)
	}
	py := func(v float64) float64 {
		lo, hi := ymin, ymax
		if ay.log {
			v, lo, hi = math.Log10(math.Max(v, 1e-12)), math.Log10(ymin), math.Log10(ymax)
		}
		if hi == lo {
			hi = lo + 1
		}
		return float64(chartH-padB) - (v-lo)/(hi-lo)*float64(chartH-padT-padB)
	}
	// Axes and grid.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for _, t := range ticks(xmin, xmax, ax) {
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`, x, padT, x, chartH-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x, chartH-padB+16, template.HTMLEscapeString(ax.tickLabel(t)))
	}
	for _, t := range ticks(ymin, ymax, ay) {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, padL-6, y+4, template.HTMLEscapeString(ay.tickLabel(t)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="middle">%s</text>`, (chartW+padL)/2, chartH-8, template.HTMLEscapeString(ax.label))
	fmt.Fprintf(&b, `<text x="14" y="%d" class="label" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`,
		(chartH)/2, (chartH)/2, template.HTMLEscapeString(ay.label))
	// Lines.
	for _, s := range ss {
		var pts strings.Builder
		for i := range s.x {
			if (ax.log && s.x[i] <= 0) || (ay.log && s.y[i] <= 0) {
				continue
			}
			x, y := px(s.x[i]), py(s.y[i])
			if step && i > 0 && pts.Len() > 0 {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x, py(s.y[i-1]))
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.TrimSpace(pts.String()), s.color, dash)
		if (len(s.x) <= 8 && !s.dash) || s.marks {
			for i := range s.x {
				if (ax.log && s.x[i] <= 0) || (ay.log && s.y[i] <= 0) {
					continue
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(s.x[i]), py(s.y[i]), s.color)
			}
		}
	}
	// Legend, two per row under the chart.
	for i, s := range ss {
		x := padL + (i%2)*((chartW-padL)/2)
		y := chartH + 5 + 20*(i/2)
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`, x, y, x+24, y, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="legend">%s</text>`, x+30, y+4, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func bounds(ss []series, isX bool, a axis) (lo, hi float64) {
	if a.fixed {
		return a.min, a.max
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		vs := s.y
		if isX {
			vs = s.x
		}
		for _, v := range vs {
			if a.log && v <= 0 {
				continue
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 10
	}
	if !a.log && a.min == 0 && lo > 0 {
		lo = 0
	}
	if a.log {
		lo = math.Pow(10, math.Floor(math.Log10(lo)))
		hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if hi <= lo {
			hi = lo * 10
		}
		return lo, hi
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi * 1.05
}

func ticks(lo, hi float64, a axis) []float64 {
	if a.ticks != nil {
		return a.ticks
	}
	var out []float64
	if a.log {
		for v := lo; v <= hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := niceStep((hi - lo) / 5)
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// fmtNum prints axis values compactly: 1.5k, 2M, 0.25.
func fmtNum(v float64) string {
	av := math.Abs(v)
	switch {
	case av >= 1e9:
		return trimZero(fmt.Sprintf("%.1fG", v/1e9))
	case av >= 1e6:
		return trimZero(fmt.Sprintf("%.1fM", v/1e6))
	case av >= 1e3:
		return trimZero(fmt.Sprintf("%.1fk", v/1e3))
	case av >= 1 || av == 0:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
	return trimZero(fmt.Sprintf("%.3f", v))
}

func trimZero(s string) string {
	for _, suf := range []string{"G", "M", "k", ""} {
		if strings.HasSuffix(s, ".0"+suf) {
			return strings.TrimSuffix(s, ".0"+suf) + suf
		}
	}
	return s
}
