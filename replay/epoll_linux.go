// This file holds the event loops of the event-loop engine (evloop.go): one OS thread per loop, waiting in
// epoll_wait for the sockets of its connections and for an eventfd through which other goroutines hand it
// connections and wake-ups.
//
// gnet v2's client was this engine's first loop. bench/replay.sh put it at 0.5–0.65× memcaslap's rate at depth 1,
// and perf showed the cost outside membench's code: after every empty poll gnet yields (runtime.Gosched), which
// wakes a second OS thread that finds nothing to do (futex, sched_yield and nanosleep calls by the thousand per
// second), and a loop blocked in epoll_wait without an idle P to spare has its P taken by the runtime's monitor,
// so that leaving epoll_wait costs a futex hand-off. These loops never yield, and the engine keeps one P more than
// it has loops (reserveProcs). Reads and writes on the non-blocking sockets are raw system calls: they never
// block, so they need not tell the scheduler. Nor does a loop's wait while it has sessions (rawEpollWait).

//go:build linux

package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// evClient holds a run's event loops.
type evClient struct {
	loops []*loop
	wg    sync.WaitGroup
}

// loop is one event loop.
type loop struct {
	epfd, efd int
	cpu       int  // the CPU the loop's thread is bound to (-1: none)
	batch     bool // the loop's thread runs under SCHED_BATCH
	log       *slog.Logger

	mu      sync.Mutex
	joins   []*conn // connections handed over by their goroutines
	wakes   []*conn // connections the dispatcher woke
	stop    bool
	counter []byte // the eventfd's counter, read to reset it

	slots []*conn // by slot; nil: free
	free  []int
}

const haveEventLoops = true

// wakeSlot is the eventfd's data in the epoll set; sockets carry their connection's slot.
const wakeSlot = -1

// startEvClient starts the event loops of a closed-loop run: one per P (GOMAXPROCS as it was). A loop is bound to
// one of the CPUs the process may use when pin is set, as memcaslap binds its threads.
func startEvClient(e *engine, log *slog.Logger) (*evClient, error) {
	n := reserveProcs()
	h := &evClient{}
	cpus := allowedCPUs()
	for i := range n {
		l, err := newLoop(log)
		if err != nil {
			h.close()
			return nil, err
		}
		l.cpu = -1
		if e.pin && len(cpus) > 0 {
			l.cpu = cpus[i%len(cpus)]
		}
		l.batch = e.batch
		h.loops = append(h.loops, l)
	}
	for _, l := range h.loops {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			l.run()
		}()
	}
	return h, nil
}

// allowedCPUs lists the CPUs the process may run on.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < len(set)*64 && len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// pick returns the loop for the i-th connection.
func (h *evClient) pick(i int) *loop { return h.loops[i%len(h.loops)] }

// close stops the loops (every connection has ended by then) and restores GOMAXPROCS.
func (h *evClient) close() {
	for _, l := range h.loops {
		l.mu.Lock()
		l.stop = true
		l.mu.Unlock()
		l.signal()
	}
	h.wg.Wait()
	for _, l := range h.loops {
		_ = unix.Close(l.epfd)
		_ = unix.Close(l.efd)
	}
	releaseProcs()
}

// While event loops run, GOMAXPROCS is one more than their number, so that a P stays free for the dispatcher and
// the runtime while every loop waits in epoll_wait: without one the runtime takes a waiting loop's P away, and
// getting it back costs a thread hand-off per wake-up. Runs may overlap (tests); the first raises it, the last
// restores it.
var procs struct {
	sync.Mutex
	users int
	base  int
}

// reserveProcs raises GOMAXPROCS for a run's loops and returns how many loops to start.
func reserveProcs() int {
	procs.Lock()
	defer procs.Unlock()
	if procs.users == 0 {
		procs.base = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(procs.base + 1)
	}
	procs.users++
	return procs.base
}

func releaseProcs() {
	procs.Lock()
	defer procs.Unlock()
	if procs.users--; procs.users == 0 {
		runtime.GOMAXPROCS(procs.base)
	}
}

func newLoop(log *slog.Logger) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cannot start an event loop: epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("cannot start an event loop: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(efd)
		return nil, fmt.Errorf("cannot start an event loop: epoll_ctl: %w", err)
	}
	return &loop{epfd: epfd, efd: efd, log: log, counter: make([]byte, 8)}, nil
}

// detach takes the socket out of nc, which it closes: the returned descriptor is a non-blocking duplicate that
// the Go runtime does not poll.
func detach(nc net.Conn) (int, error) {
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// join hands c, whose goroutine has just dialed, to the loop.
func (l *loop) join(c *conn) {
	l.mu.Lock()
	l.joins = append(l.joins, c)
	l.mu.Unlock()
	l.signal()
}

// wake asks the loop to serve c: a batch came for it.
func (l *loop) wake(c *conn) {
	l.mu.Lock()
	l.wakes = append(l.wakes, c)
	l.mu.Unlock()
	l.signal()
}

func (l *loop) signal() {
	one := [8]byte{1}
	_, _ = unix.Write(l.efd, one[:])
}

// run is the loop's thread.
func (l *loop) run() {
	runtime.LockOSThread()
	defer l.unbind(l.bind())
	events := make([]unix.EpollEvent, 256)
	var joins, wakes []*conn
	nextTick := int64(0)
	for {
		var n int
		var err error
		if l.busy() {
			n, err = rawEpollWait(l.epfd, events, int(evTick/time.Millisecond))
		} else {
			n, err = unix.EpollWait(l.epfd, events, -1)
		}
		if err != nil && err != unix.EINTR {
			l.log.Error("event loop: epoll_wait failed", "err", err)
			n = 0
		}
		for i := range max(n, 0) {
			ev := &events[i]
			if ev.Fd == wakeSlot {
				_, _ = unix.Read(l.efd, l.counter)
				l.mu.Lock()
				joins, l.joins = l.joins, joins[:0]
				wakes, l.wakes = l.wakes, wakes[:0]
				stop := l.stop
				l.mu.Unlock()
				for _, c := range joins {
					l.open(c)
				}
				for _, c := range wakes {
					if c.ev.slot >= 0 { // still in a session
						l.serve(c, false)
					}
				}
				if stop {
					return
				}
				continue
			}
			c := l.slots[ev.Fd]
			if c == nil {
				continue
			}
			readable := ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0
			if ev.Events&unix.EPOLLOUT != 0 && c.ev.wpending {
				if !l.write(c) {
					continue
				}
				if !c.ev.wpending && !readable {
					// The stalled write is out: encode the next requests, which no response may come to ask
					// for (noreply requests).
					l.serve(c, false)
					continue
				}
			}
			if readable {
				l.read(c)
			}
		}
		// Timeouts, stalled writes and quiet requests of connections that heard nothing.
		if l.busy() {
			now := time.Now().UnixNano()
			if now >= nextTick {
				nextTick = now + int64(evTick)
				for _, c := range l.slots {
					if c != nil && (c.q.len() > 0 || c.ev.wpending) {
						l.serve(c, false)
					}
				}
			}
		}
	}
}

// threadState is what bind changed on the loop's thread, for unbind to restore.
type threadState struct {
	cpus   *unix.CPUSet    // the previous CPU set (nil: unchanged)
	policy *unix.SchedAttr // the previous scheduling policy (nil: unchanged)
}

// bind binds the loop's thread to its CPU, if it has one, and puts it under SCHED_BATCH if asked. Under
// SCHED_BATCH a thread woken up does not preempt the one running on its CPU: a loop woken by a response lets the
// server's thread, when it shares the CPU, go on answering the other connections, so that both sides find several
// sockets ready when they next run. A failure leaves the thread as it was, logged at debug level.
func (l *loop) bind() threadState {
	var st threadState
	if l.cpu >= 0 {
		var saved, set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedGetaffinity(0, &saved); err != nil {
			l.log.Debug("cannot bind an event loop to its CPU", "cpu", l.cpu, "err", err)
		} else if err := unix.SchedSetaffinity(0, &set); err != nil {
			l.log.Debug("cannot bind an event loop to its CPU", "cpu", l.cpu, "err", err)
		} else {
			st.cpus = &saved
		}
	}
	if l.batch {
		saved, err := unix.SchedGetAttr(0, 0)
		if err == nil && saved.Policy != unix.SCHED_BATCH {
			batch := *saved
			batch.Size, batch.Policy, batch.Flags = unix.SizeofSchedAttr, unix.SCHED_BATCH, 0
			err = unix.SchedSetAttr(0, &batch, 0)
			if err == nil {
				st.policy = saved
			}
		}
		if err != nil {
			l.log.Debug("cannot run an event loop under SCHED_BATCH", "err", err)
		}
	}
	return st
}

// unbind gives the loop's thread back to the runtime as it was before bind. The thread is not left to end with
// the loop: a thread's end kills the children started from it with a parent-death signal (Pdeathsig), and the
// runtime picks any thread to start a child from. Should the thread's state not come back, the thread stays
// locked and ends, rather than serve other goroutines on one CPU or under another policy.
func (l *loop) unbind(st threadState) {
	if st.cpus != nil {
		if err := unix.SchedSetaffinity(0, st.cpus); err != nil {
			return
		}
	}
	if st.policy != nil {
		st.policy.Size, st.policy.Flags = unix.SizeofSchedAttr, 0
		if err := unix.SchedSetAttr(0, st.policy, 0); err != nil {
			return
		}
	}
	runtime.UnlockOSThread()
}

// busy reports whether the loop holds any session.
func (l *loop) busy() bool { return len(l.slots) > len(l.free) }

// open starts c's session in the loop.
func (l *loop) open(c *conn) {
	slot := len(l.slots)
	if k := len(l.free); k > 0 {
		slot, l.free = l.free[k-1], l.free[:k-1]
		l.slots[slot] = c
	} else {
		l.slots = append(l.slots, c)
	}
	c.ev.slot = slot
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(slot)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.ev.fd, &ev); err != nil {
		l.end(c, errConnLost)
		return
	}
	if len(c.ev.rbuf) == 0 {
		c.ev.rbuf = make([]byte, 16<<10)
	}
	l.serve(c, false)
}

// read reads what c's socket holds and serves c.
func (l *loop) read(c *conn) {
	if c.ev.rn == len(c.ev.rbuf) {
		// A partial frame is shorter than maxResponse (consume fails larger ones), so the buffer has room
		// once it holds maxResponse bytes.
		if len(c.ev.rbuf) >= maxResponse {
			panic("BUG: a partial response fills the whole input buffer")
		}
		c.ev.rbuf = append(c.ev.rbuf, make([]byte, min(len(c.ev.rbuf), maxResponse-len(c.ev.rbuf)))...)
	}
	n, errno := rawIO(unix.SYS_READ, c.ev.fd, c.ev.rbuf[c.ev.rn:])
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return
	case errno != 0 || n == 0: // an error, or the peer closed the connection
		l.end(c, errConnLost)
		return
	}
	c.ev.rn += n
	c.bytesIn.Add(uint64(n))
	l.serve(c, true)
}

// serve runs c's session logic, then writes what it encoded, and ends the session when it is over.
func (l *loop) serve(c *conn, read bool) {
	if kind, end := c.serve(read); end {
		l.end(c, kind)
		return
	}
	// The encoder stopped at the write buffer's limit, not for want of requests or of room in flight.
	more := len(c.wbuf) >= maxWriteBuffer
	if len(c.wbuf) > 0 && !c.ev.wpending && !l.write(c) {
		return
	}
	if c.finished() {
		l.end(c, handDone)
		return
	}
	if more && !c.ev.wpending {
		// Written at once, and no response may come to ask for more (noreply requests): serve c again on
		// the next round, after the loop's other connections.
		l.wake(c)
	}
}

// write writes c's buffer. A short write leaves the rest for when the socket is writable. It reports false when
// the session ended.
func (l *loop) write(c *conn) bool {
	n, errno := rawIO(unix.SYS_WRITE, c.ev.fd, c.wbuf)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		n = 0
	case errno != 0:
		l.end(c, errConnLost)
		return false
	}
	c.bytesOut.Add(uint64(n))
	rest := copy(c.wbuf, c.wbuf[n:])
	c.wbuf = c.wbuf[:rest]
	if rest > 0 && (n > 0 || !c.ev.wpending) {
		c.ev.wsince = c.e.now() // the stall timeout counts from the last progress
	}
	if pending := rest > 0; pending != c.ev.wpending {
		c.ev.wpending = pending
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.ev.slot)}
		if pending {
			ev.Events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.ev.fd, &ev); err != nil {
			l.end(c, errConnLost)
			return false
		}
	}
	if !c.ev.wpending && c.finished() {
		l.end(c, handDone)
		return false
	}
	return true
}

// end closes c's session for the reason kind and hands c back to its goroutine.
func (l *loop) end(c *conn, kind int) {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.ev.fd, nil)
	_ = unix.Close(c.ev.fd)
	l.slots[c.ev.slot] = nil
	l.free = append(l.free, c.ev.slot)
	c.ev.slot, c.ev.fd = -1, -1
	c.ev.wpending = false
	c.wbuf = c.wbuf[:0]
	switch kind {
	case errConnLost, errTimeout:
		c.failAll(kind)
	}
	if c.ev.answered {
		c.backoff = 0
	}
	c.ev.back <- kind
}

// rawIO reads or writes a non-blocking socket without telling the scheduler: the call never blocks.
func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// rawEpollWait is epoll_wait without telling the scheduler: the loop keeps its P while it waits. A loop with
// sessions waits here tens of thousands of times a second, for a few microseconds each; told of each wait, the
// runtime's monitor (sysmon) finds a P in a system call on most of its rounds, so it never slows down from its
// 20 µs period (about 3 000 wake-ups a second here, 6% of the process's CPU) and takes the P away now and then.
// The wait is bounded (evTick) and a signal ends it (EINTR), so the runtime still stops the loop when it must: it
// signals a goroutine it wants to preempt, for a garbage collection for instance. An idle loop, which may wait
// for long, waits with unix.EpollWait.
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
