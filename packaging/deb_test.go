package packaging

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
)

// must runs a command that changes the machine (dpkg, make) for at most limit; it fails the test with the output.
func must(t *testing.T, limit time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// installedFiles are the package's own paths that must be gone after a purge, besides what dpkg-deb lists.
var installedFiles = []string{"/etc/membench", "/var/lib/membench", "/usr/bin/membench",
	"/lib/systemd/system/membench-proxy.service", "/lib/systemd/system/membench-tap.service",
	"/usr/lib/sysusers.d/membench.conf", "/usr/lib/tmpfiles.d/membench.conf", "/usr/share/doc/membench"}

// TestDebianPackage builds the package with make deb, installs it with dpkg -i, checks what it set up (a
// stamped binary, units systemd accepts, a salt the service account can read), and purges it: nothing of it
// is left. It changes the machine, so it runs as root only (CI runs as root) and refuses to touch a machine
// where membench is already installed. The membench account it creates is removed at the end; the package
// itself keeps it on purge, as Debian does with system accounts.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and installs a Debian package")
	}
	if os.Geteuid() != 0 {
		mctest.Missing(t, "installing a Debian package needs root (CI runs the tests as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "make", "git"} {
		mctest.Require(t, tool)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}", "membench").Output(); err == nil &&
		len(out) > 0 && string(out) != "not-installed" {
		mctest.Missing(t, "a membench package is installed ("+string(out)+"); the test would replace and purge it")
	}
	for _, p := range installedFiles {
		if _, err := os.Lstat(p); err == nil {
			mctest.Missing(t, p+" exists; the test would overwrite it and its purge would delete it")
		}
	}
	_, err := user.Lookup("membench")
	accountBefore := err == nil

	out := t.TempDir()
	must(t, 10*time.Minute, "make", "deb", "DEB_DIR="+out)
	pkgs, _ := filepath.Glob(filepath.Join(out, "membench_*.deb"))
	if len(pkgs) != 1 {
		t.Fatalf("make deb wrote %q to %s, want one membench_*.deb", pkgs, out)
	}
	pkg := pkgs[0]
	contents := must(t, time.Minute, "dpkg-deb", "--contents", pkg)
	conffiles := must(t, time.Minute, "dpkg-deb", "--info", pkg, "conffiles")
	for _, c := range []string{"/etc/membench/proxy.toml", "/etc/membench/tap.toml"} {
		if !strings.Contains(conffiles, c) {
			t.Fatalf("%s is not a conffile; conffiles:\n%s", c, conffiles)
		}
	}

	t.Cleanup(func() {
		// Whatever failed, leave the machine as it was.
		exec.Command("dpkg", "--purge", "membench").Run()
		if !accountBefore {
			exec.Command("userdel", "membench").Run()
			exec.Command("groupdel", "membench").Run()
		}
	})
	must(t, 2*time.Minute, "dpkg", "-i", pkg)

	checkInstalled(t)

	must(t, 2*time.Minute, "dpkg", "--purge", "membench")
	if st, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}", "membench").Output(); err == nil &&
		len(st) > 0 && string(st) != "not-installed" {
		t.Fatalf("after dpkg --purge the package is %q", st)
	}
	left := append([]string(nil), installedFiles...)
	for _, line := range strings.Split(contents, "\n") {
		// dpkg-deb --contents: mode owner size date time ./path
		f := strings.Fields(line)
		if len(f) == 6 && !strings.HasPrefix(f[0], "d") {
			left = append(left, strings.TrimPrefix(f[5], "."))
		}
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("after dpkg --purge, %s is still there", p)
		}
	}
}

// checkInstalled checks the installed package: the binary, the units, the account, the salt and the state
// directory.
func checkInstalled(t *testing.T) {
	t.Helper()
	code, stdout, stderr := run(t, "/usr/bin/membench", "version")
	if code != 0 || !strings.HasPrefix(stdout, "membench ") || strings.Contains(stdout, "dev (commit unknown") ||
		strings.Contains(stdout, "static build") {
		t.Fatalf("/usr/bin/membench version: exit %d, %q %q; want a stamped build with live capture", code, stdout,
			stderr)
	}
	if head, err := exec.Command("git", "-C", repoRoot, "rev-parse", "--short", "HEAD").Output(); err == nil &&
		!strings.Contains(stdout, strings.TrimSpace(string(head))) {
		t.Fatalf("/usr/bin/membench version = %q, want the commit %s in it", stdout, head)
	}
	if code, stdout, stderr = run(t, "/usr/bin/membench", "proxy", "--help"); code != 0 ||
		!strings.Contains(stdout, "--upstream") {
		t.Fatalf("/usr/bin/membench proxy --help: exit %d\n%s%s", code, stdout, stderr)
	}

	units := []string{"/lib/systemd/system/membench-proxy.service", "/lib/systemd/system/membench-tap.service"}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil || !strings.Contains(string(b), "\nExecStart=/usr/bin/membench ") {
			t.Fatalf("%s: %v; want ExecStart=/usr/bin/membench:\n%s", u, err, b)
		}
	}
	// systemd-analyze verify checks the units' syntax, that ExecStart's binary exists, and their users.
	analyze := mctest.Require(t, "systemd-analyze")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, analyze, append([]string{"verify"}, units...)...).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "membench") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	acct, err := user.Lookup("membench")
	if err != nil {
		t.Fatalf("no membench account after install: %v", err)
	}
	uid, _ := strconv.Atoi(acct.Uid)
	gid, _ := strconv.Atoi(acct.Gid)
	const salt = "/etc/membench/salt.hex"
	st, err := os.Stat(salt)
	if err != nil {
		t.Fatalf("postinst made no salt: %v", err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 0 || int(sys.Gid) != gid {
		t.Fatalf("%s: mode %04o owner %d:%d, want 0640 root:membench (%d)", salt, st.Mode().Perm(), sys.Uid, sys.Gid,
			gid)
	}
	st, err = os.Stat("/var/lib/membench")
	if err != nil || st.Mode().Perm() != 0o700 || int(st.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Fatalf("/var/lib/membench: %v %v, want 0700 membench", st, err)
	}

	// What the units do, as the service account: read the salt, write a profile in the state directory.
	pcap := "/var/lib/membench/test.pcap"
	src, err := os.Open(filepath.Join(repoRoot, "tap", "testdata", "text.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(pcap, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/membench", "tap", "--pcap", pcap, "--port", fixturePort(t),
		"--salt-file", salt, "--record", "/var/lib/membench/test.mbp", "--metrics-listen", "")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "events recorded") {
		t.Fatalf("membench tap as user membench with the packaged salt: %v\n%s", err, out)
	}
	if _, err := os.Stat("/var/lib/membench/test.mbp"); err != nil {
		t.Fatalf("no profile written as user membench: %v", err)
	}
}
