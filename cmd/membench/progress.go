// A progress line for long-running subcommands (inspect, import, synth; with a percentage and an ETA: tap --pcap,
// export, merge): one line, rewritten every second, on a terminal only, so that pipes, files and CI logs stay
// clean; --progress forces it (tap --pcap, export, merge).
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/membench/membench/profile"
)

// progressLine prints what() on one line of w every second until stop is called, when w is a terminal; on
// anything else it prints nothing. stop clears the line.
func progressLine(w io.Writer, what func() string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(f, "\r\033[K%s (%.0fs)", what(), time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progressMeter is progressLine for work of known size (tap --pcap, export, merge): done() of total units
// (bytes when unit is "bytes"), the percentage and an ETA, once a second. It prints on a terminal, or anywhere
// when force is set (--progress): off a terminal each report is a plain line of its own, so that logs stay
// readable. finish(true) prints a last line (100% when all was read) and ends it; finish(false), after a
// failure, clears the line (terminal) and prints nothing more; only the first call counts, so an early return
// may defer finish(false). With total <= 0 it shows only what was done.
func progressMeter(w io.Writer, force bool, label string, total int64, unit string,
	done func() int64) (finish func(ok bool)) {
	f, isFile := w.(*os.File)
	term := isFile && isTerminal(f)
	if !term && !force {
		return func(bool) {}
	}
	start := time.Now()
	line := func(d int64, final bool) string {
		el := time.Since(start)
		s := label + ": " + progressAmount(d, unit)
		if total > 0 {
			s += " of " + progressAmount(total, unit)
			frac := math.Min(float64(d)/float64(total), 1)
			s += fmt.Sprintf(", %.0f%%", 100*frac)
			if !final && frac > 0 && frac < 1 {
				eta := time.Duration(float64(el) * (1 - frac) / frac)
				s += ", ETA " + eta.Round(time.Second).String()
			}
		}
		return s + fmt.Sprintf(" (%.0fs)", el.Seconds())
	}
	prefix, end := "", "\n"
	if term {
		prefix, end = "\r\033[K", ""
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprint(w, prefix+line(done(), false)+end)
			}
		}
	}()
	var once sync.Once
	return func(ok bool) {
		once.Do(func() {
			close(stop)
			<-stopped
			switch {
			case ok:
				fmt.Fprint(w, prefix+line(done(), true)+"\n")
			case term:
				fmt.Fprint(w, prefix)
			}
		})
	}
}

// progressAmount prints n units for a progress line: sizes for bytes, a count otherwise.
func progressAmount(n int64, unit string) string {
	if unit == "bytes" {
		return humanSize(uint64(max(n, 0)))
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// countingReader counts the bytes read through it, for a progress line read by another goroutine.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// openProfileCounted opens a profile like profile.Open, adding the bytes read from it to n; close closes both.
// It returns the file's size for the progress total.
func openProfileCounted(path string, opts profile.ReaderOptions, n *atomic.Int64) (r *profile.Reader,
	size int64, close func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("cannot open profile: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	if r, err = profile.NewReader(countingReader{f, n}, path, opts); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return r, size, func() { r.Close(); f.Close() }, nil
}

// takeProgressFlag removes --progress (or -progress) from args, before any "--", and reports whether it was
// there: for subcommands whose flags map onto a config file that has no place for it (tap).
func takeProgressFlag(args []string) ([]string, bool) {
	var out []string
	found := false
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == "--progress" || a == "-progress" || a == "--progress=true" {
			found = true
			continue
		}
		out = append(out, a)
	}
	return out, found
}
