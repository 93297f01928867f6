//go:build linux && !poll_opt

// Read back-pressure over gnet, which has none (docs/gnet-notes.md): a connection's reading is paused by changing
// its registration on its event loop's epoll instance, found through gnet's unexported fields. Two rules make
// this sound:
//   - only the event loop that owns the connection changes its registration, and only while the connection is
//     live (after OnClose its fd number may belong to another connection);
//   - gnet turns reading back on by itself when a write to the connection hits EAGAIN and when its outbound
//     buffer drains, so a paused connection is paused again after every event on it; each time gnet re-enables
//     reading, at most one read (gnet's 64 KiB buffer) gets through.
//
// gnet's default build registers a connection with its fd as the event's data and, without edge-triggered I/O,
// with EPOLLIN|EPOLLPRI (plus EPOLLOUT while it has bytes to send). If gnet's layout differs from that, pausing
// is off (logged once) and the proxy falls back to closing connections at max_client_buffer; the back-pressure
// tests fail first.
package proxy

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// pollers caches, per epoll fd, whether it was checked to be gnet's poller (/proc/self/fdinfo lists the
// connection's fd in it).
var pollers sync.Map // int → bool

// setReading turns reading of the live connection c on or off. It reports false when pausing is not possible.
func setReading(c gnet.Conn, on bool) bool {
	epfd, ok := pollerFD(c)
	if !ok {
		return false
	}
	fd := c.Fd()
	if v, seen := pollers.Load(epfd); !seen {
		ok = registeredIn(epfd, fd)
		pollers.Store(epfd, ok)
		if !ok {
			return false
		}
	} else if !v.(bool) {
		return false
	}
	var ev uint32
	if on {
		ev = unix.EPOLLIN | unix.EPOLLPRI
	}
	if c.OutboundBuffered() > 0 {
		ev |= unix.EPOLLOUT // gnet still has bytes to send; without them, EPOLLOUT would spin
	}
	return unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}) == nil
}

// pollerFD reads gnet's conn.loop.poller.fd.
func pollerFD(c gnet.Conn) (int, bool) {
	v := reflect.ValueOf(c)
	for _, name := range []string{"loop", "poller"} {
		if v.Kind() != reflect.Pointer || v.IsNil() {
			return -1, false
		}
		v = v.Elem()
		if v.Kind() != reflect.Struct {
			return -1, false
		}
		v = v.FieldByName(name)
	}
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return -1, false
	}
	f := v.Elem().FieldByName("fd")
	if f.Kind() != reflect.Int {
		return -1, false
	}
	return int(f.Int()), true
}

// registeredIn reports whether epfd is an epoll instance in which fd is registered.
func registeredIn(epfd, fd int) bool {
	if link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", epfd)); err != nil || link != "anon_inode:[eventpoll]" {
		return false
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(info, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) >= 2 && string(f[0]) == "tfd:" && string(f[1]) == fmt.Sprint(fd) {
			return true
		}
	}
	return false
}
