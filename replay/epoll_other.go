//go:build !linux

package replay

import (
	"errors"
	"log/slog"
	"net"
)

// The event-loop engine waits in epoll_wait (epoll_linux.go); elsewhere closed loops use goroutines.

type evClient struct{}

type loop struct{}

const haveEventLoops = false

func startEvClient(*engine, *slog.Logger) (*evClient, error) {
	return nil, errors.New("the eventloop engine needs Linux (epoll); use --engine goroutine")
}

func (h *evClient) close()         {}
func (h *evClient) pick(int) *loop { return nil }
func (l *loop) join(*conn)         {}
func (l *loop) wake(*conn)         {}

func detach(net.Conn) (int, error) { return -1, errors.New("no event loops") }
