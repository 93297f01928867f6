// Package mctest starts real servers and tools for integration tests: a memcached on a free loopback port,
// stopped by PID when the test ends. It also holds the rule for missing dependencies: locally a test skips
// with the reason, under CI=true it fails.
package mctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether tests run under CI (CI=true), where a missing dependency is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of the named program, or stops the test: Fatal under CI=true, Skip otherwise.
func Require(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		cand := dir + "/" + program
		if st, err := os.Stat(cand); err == nil && !st.IsDir() {
			return cand
		}
	}
	Missing(t, fmt.Sprintf("%s not found in PATH (install it: sudo scripts/install-deps.sh)", program))
	return ""
}

// Missing stops the test because a dependency is missing: Fatal under CI=true, Skip otherwise.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a test dependency is missing: %s", why)
	}
	t.Skipf("skipping: %s", why)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a memcached process started by a test.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	args []string
	env  []string // added to the test's environment, for this memcached only
	bin  string
	cmd  *exec.Cmd
	t    testing.TB
}

// PID returns the process id of the running memcached, or 0 when stopped.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// StartMemcached starts memcached on a free loopback port with the given extra arguments (for example "-m",
// "64") and registers its stop with t.Cleanup. It waits until the port accepts connections.
func StartMemcached(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartMemcachedEnv(t, nil, extra...)
}

// StartMemcachedEnv is StartMemcached with env ("NAME=value") added to the environment of this memcached
// process only (SASL_CONF_PATH for -S, for example).
func StartMemcachedEnv(t testing.TB, env []string, extra ...string) *Server {
	t.Helper()
	bin := Require(t, "memcached")
	port := FreePort(t)
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, bin: bin, env: env, t: t}
	s.args = append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "2"}, extra...)
	if os.Geteuid() == 0 {
		s.args = append(s.args, "-u", "root")
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("cannot start memcached %v: %v", s.args, err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("memcached on %s did not accept connections within 5s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills memcached by PID and waits for it. Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// Signal sends sig to the memcached process (SIGSTOP / SIGCONT to pause it).
func (s *Server) Signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("memcached on %s is not running", s.Addr)
	}
	return s.cmd.Process.Signal(sig)
}

// Pause stops memcached with SIGSTOP and waits until the kernel reports it stopped, so that nothing sent after
// Pause returns can be answered before SIGCONT.
func (s *Server) Pause() error {
	if err := s.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.PID())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return err
		}
		// The state follows the command name in parentheses: "PID (memcached) T …".
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
	}
	return fmt.Errorf("memcached on %s did not stop within 5s of SIGSTOP", s.Addr)
}

// Restart starts memcached again on the same port after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
