// Package metricsrv serves one mode's metric set (internal/metricset) and the process's CPU, memory and Go
// runtime metrics as Prometheus text on /metrics, and Go's pprof handlers under /debug/pprof/. The proxy, the
// tap and replay share it; none of the modes imports another.
package metricsrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/membench/membench/internal/metricset"
)

// Server is a running /metrics endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start listens on addr (host:port; use a loopback host unless the operator chose otherwise) and serves set on
// /metrics in the background.
func Start(addr string, set *metricset.Set) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s (set metrics_listen / --metrics-listen, or \"\" to turn it off): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		set.WritePrometheus(w)
		metricset.WriteProcessMetrics(w)
	})
	// Profiling on the same (loopback by default) listener, for "where does the time go" questions.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener was closed under us; Close reports nothing more useful
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
