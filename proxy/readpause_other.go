//go:build !linux || poll_opt

// Without Linux's default gnet poller, reading cannot be paused: the proxy closes connections at
// max_client_buffer instead (readpause_linux.go says why).
package proxy

import "github.com/panjf2000/gnet/v2"

func setReading(gnet.Conn, bool) bool { return false }
