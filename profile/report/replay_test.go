package report

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// replaySample is a run of 1000 requests a second that ends lastLen seconds into its fourth second.
func replaySample(lastLen float64) Replay {
	rp := Replay{Title: "r", Facts: [][2]string{{"mode", "trace"}},
		Spectra: []Spectrum{
			{Name: "all", Count: 3400, Percentiles: []float64{0, 50, 90, 99, 99.9, 100}, Us: []float64{10, 80, 200, 900, 3000, 5000}},
			{Name: "get", Count: 3000, Percentiles: []float64{0, 50, 99, 100}, Us: []float64{10, 70, 800, 4000}},
		}}
	for i := 0; i < 3; i++ {
		rp.Seconds = append(rp.Seconds, Second{Start: float64(i), Length: 1, Ops: 1000, Measured: true, P50: 80, P99: 900})
	}
	rp.Seconds = append(rp.Seconds, Second{Start: 3, Length: lastLen, Ops: uint64(1000 * lastLen), Measured: true,
		P50: 85, P99: 950})
	return rp
}

// chartSVG returns the SVG of the chart titled title in page.
func chartSVG(t *testing.T, page, title string) string {
	t.Helper()
	i := strings.Index(page, "<h3>"+title+"</h3>")
	if i < 0 {
		t.Fatalf("no chart %q", title)
	}
	s := page[i:]
	return s[strings.Index(s, "<svg"):strings.Index(s, "</svg>")]
}

// polylineYs returns the y coordinates of each polyline of an SVG.
func polylineYs(svg string) [][]float64 {
	var out [][]float64
	for _, m := range regexp.MustCompile(`<polyline points="([^"]*)"`).FindAllStringSubmatch(svg, -1) {
		var ys []float64
		for _, pt := range strings.Fields(m[1]) {
			y, _ := strconv.ParseFloat(pt[strings.Index(pt, ",")+1:], 64)
			ys = append(ys, y)
		}
		out = append(out, ys)
	}
	return out
}

func TestWriteReplayHTML(t *testing.T) {
	var b strings.Builder
	if err := WriteReplayHTML(&b, replaySample(0.4)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Fatal("the page is not self-contained")
	}
	spec := chartSVG(t, page, "Latency by percentile")
	for _, want := range []string{">all<", ">get<", ">90%<", ">99%<", ">99.9%<", ">99.99%<"} {
		if !strings.Contains(spec, want) {
			t.Errorf("spectrum lacks %q", want)
		}
	}
	// all: 6 percentiles, the maximum at x = 3400 (1 in 3400); get: 4.
	if ys := polylineYs(spec); len(ys) != 2 || len(ys[0]) != 6 || len(ys[1]) != 4 {
		t.Errorf("spectrum lines: %v", ys)
	}
	lat := chartSVG(t, page, "Latency over time")
	if ys := polylineYs(lat); !strings.Contains(lat, ">p50<") || !strings.Contains(lat, ">p99<") || len(ys) != 2 ||
		len(ys[0]) != 4 {
		t.Errorf("latency over time: %v", ys)
	}
}

// TestWriteReplayHTML_PartialLastSecond: a run ending 0.4 s into a second draws that second at the run's rate
// (not 400/s, a drop that did not happen), and a last point of 0.1 s is left out.
func TestWriteReplayHTML_PartialLastSecond(t *testing.T) {
	f := func(lastLen float64, points int) {
		t.Helper()
		var b strings.Builder
		if err := WriteReplayHTML(&b, replaySample(lastLen)); err != nil {
			t.Fatal(err)
		}
		ys := polylineYs(chartSVG(t, b.String(), "Throughput"))
		if len(ys) != 1 || len(ys[0]) != points {
			t.Fatalf("last %gs: throughput lines %v, want one of %d points", lastLen, ys, points)
		}
		for _, y := range ys[0] {
			if y != ys[0][0] {
				t.Fatalf("last %gs: the rate changes: %v", lastLen, ys[0])
			}
		}
	}
	f(0.4, 4)
	f(1, 4)
	f(0.1, 3)
	f(0, 3) // length unknown
}
