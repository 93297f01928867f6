// This file draws a replay report (membench replay --json, membench report html): the latency spectrum from the
// HdrHistograms and the run second by second. It takes plain numbers, so that this package does not import the
// replay mode; cmd/membench converts a replay.Report.

package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
)

// Replay is a replay report to draw.
type Replay struct {
	Title   string
	Facts   [][2]string // overview rows: name, value
	Spectra []Spectrum  // latency distributions, "all" first
	Seconds []Second    // the time series, in order
}

// Spectrum is one latency distribution: latency (µs) at each percentile (0 to 100), ascending, as
// HdrHistogram's percentile iteration gives it; Count is how many latencies it holds.
type Spectrum struct {
	Name        string
	Count       uint64
	Percentiles []float64
	Us          []float64
}

// Second is one point of a replay's time series: [Start, Start+Length) seconds into the run. Length 0 means
// unknown (a report without it): a whole second, except for the last point, which is then left out of rates.
type Second struct {
	Start    float64
	Length   float64
	Ops      uint64
	Measured bool // P50 and P99 hold latencies
	P50, P99 float64
}

// minPartialSeconds is the shortest last point whose rate is drawn: shorter ones hold too few requests for a
// rate that means anything.
const minPartialSeconds = 0.25

// WriteReplayHTML writes the page of a replay report.
func WriteReplayHTML(w io.Writer, rp Replay) error {
	return replayTmpl.Execute(w, struct {
		Replay
		Charts []chart
	}{rp, replayCharts(rp)})
}

func replayCharts(rp Replay) []chart {
	return []chart{spectrumChart(rp.Spectra), latencyOverTime(rp.Seconds), rateOverTime(rp.Seconds)}
}

// spectrumChart draws latency against percentile on HdrHistogram's axis: 1/(1-p), logarithmic, so that 90%,
// 99%, 99.9% … are evenly spaced and the tail gets the room.
func spectrumChart(sp []Spectrum) chart {
	var ss []series
	maxX := 10.0
	for i, s := range sp {
		if i == len(colors) {
			break
		}
		xs, ys := spectrumPoints(s)
		if len(xs) == 0 {
			continue
		}
		maxX = math.Max(maxX, xs[len(xs)-1])
		ss = append(ss, series{name: s.Name, color: colors[i], x: xs, y: ys})
	}
	hi := math.Pow(10, math.Ceil(math.Log10(maxX)))
	var tks []float64
	for v := 1.0; v <= hi*1.0001; v *= 10 {
		tks = append(tks, v)
	}
	note := "latency (µs) at each percentile, from the HdrHistograms; the last point is the maximum"
	if len(ss) == 0 {
		note = "no latency measured (every request failed or was noreply)"
	}
	return chart{Title: "Latency by percentile", Note: note,
		SVG: plot(ss, axis{label: "percentile", log: true, fixed: true, min: 1, max: hi, ticks: tks, tickFmt: pctTick},
			axis{label: "µs", log: true}, false)}
}

// spectrumPoints maps a spectrum onto x = 1/(1-p). The 100th percentile (the maximum), at infinity there, is
// drawn at x = Count, where the 1-in-Count latency sits.
func spectrumPoints(s Spectrum) (xs, ys []float64) {
	for i, p := range s.Percentiles {
		x := 1 / (1 - p/100)
		if p >= 100 || math.IsInf(x, 0) {
			x = float64(s.Count)
		}
		if len(xs) > 0 && x <= xs[len(xs)-1] {
			if p < 100 {
				continue // the same x again: the axis cannot tell them apart
			}
			x = xs[len(xs)-1] * 1.01 // the maximum, right of everything
		}
		xs = append(xs, x)
		ys = append(ys, s.Us[i])
	}
	return xs, ys
}

// pctTick labels 1/(1-p) ticks with their percentile: 1 → 0%, 10 → 90%, 1000 → 99.9%.
func pctTick(v float64) string {
	p := 100 * (1 - 1/v)
	switch {
	case p <= 0:
		return "0%"
	case v <= 100:
		return fmt.Sprintf("%.0f%%", p)
	}
	return trimZero(fmt.Sprintf("%.*f%%", int(math.Round(math.Log10(v)))-2, p))
}

// latencyOverTime draws p50 and p99 of each second.
func latencyOverTime(pts []Second) chart {
	var p50, p99 series
	p50 = series{name: "p50", color: colors[0]}
	p99 = series{name: "p99", color: colors[1]}
	for _, s := range pts {
		if !s.Measured {
			continue
		}
		p50.x, p50.y = append(p50.x, s.Start), append(p50.y, s.P50)
		p99.x, p99.y = append(p99.x, s.Start), append(p99.y, s.P99)
	}
	var ss []series
	note := "p50 and p99 latency (µs) of the requests of each second"
	if len(p50.x) > 0 {
		ss = []series{p50, p99}
	} else {
		note = "no latency measured in any second"
	}
	return chart{Title: "Latency over time", Note: note,
		SVG: plot(ss, axis{label: "seconds", min: 0}, axis{label: "µs", log: true}, false)}
}

// rateOverTime draws requests per second. The last point covers only the rest of the run: its count is divided
// by its real length, so that a run ending mid-second does not look like a drop, and a last point too short for
// a rate (or of unknown length) is left out.
func rateOverTime(pts []Second) chart {
	s := series{name: "requests/s", color: colors[0]}
	left := false
	for i, p := range pts {
		last := i == len(pts)-1
		length := p.Length
		if length == 0 && !last {
			length = 1
		}
		if last && length < minPartialSeconds {
			left = len(pts) > 1 || length == 0
			continue
		}
		s.x, s.y = append(s.x, p.Start), append(s.y, float64(p.Ops)/length)
	}
	note := "requests completed or failed in each second; the last, partial second is scaled to its length"
	if left {
		note = fmt.Sprintf("requests completed or failed in each second; the last point, under %gs of the run "+
			"(or of unknown length), is left out", minPartialSeconds)
	}
	var ss []series
	if len(s.x) > 0 {
		ss = []series{s}
	}
	return chart{Title: "Throughput", Note: note,
		SVG: plot(ss, axis{label: "seconds", min: 0}, axis{label: "requests/s", min: 0}, false)}
}

var replayTmpl = template.Must(template.New("replay").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
` + reportCSS + `footer{margin-top:30px;font-size:12px;color:#57606a}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="sub">membench replay report.</p>
<table><tr><th>overview</th><th></th></tr>
{{range .Facts}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{end}}</table>
<h2>Charts</h2>
<div class="charts">
{{range .Charts}}<div class="chart"><h3>{{.Title}}</h3><p>{{.Note}}</p>{{.SVG}}</div>
{{end}}
</div>
<footer>Generated by membench. Self-contained: no scripts, no network.</footer>
</body></html>
`))
