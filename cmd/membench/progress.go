// A progress line for long-running subcommands (inspect, import, synth): one line, rewritten every second, on a
// terminal only, so that pipes, files and CI logs stay clean.
package main

import (
	"fmt"
	"io"
	"os"
	"time"
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
