package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/membench/membench/internal/fulldisk"
)

var tapExitLineRE = regexp.MustCompile(`membench tap: (\d+) events recorded, (\d+) bytes`)

// TestTapDiskFull reads a capture into a profile on a file system with room for its header only: the tap
// logs the failure naming the file, ends with an error, and its exit line claims exactly the events and bytes
// the file holds (none of the events: the one block could not be written).
func TestTapDiskFull(t *testing.T) {
	dir := fulldisk.Mount(t, 1<<20)
	fulldisk.Fill(t, dir, 4096)
	record := filepath.Join(dir, "t.mbp")
	cfg := filepath.Join(t.TempDir(), "tap.toml")
	if err := os.WriteFile(cfg, []byte("compress = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMembench("tap", "--config", cfg, "--pcap", filepath.Join(fixturesDir,
		"midstream.pcap"), "--port", fixturePortString(t), "--record", record, "--metrics-listen", "")
	if code != 1 || !strings.Contains(stderr, "level=ERROR") || !strings.Contains(stderr, record) ||
		!strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d, want 1 with an ERROR naming %s and the error:\n%s%s", code, record, stdout, stderr)
	}
	m := tapExitLineRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no exit line in %q", stdout)
	}
	claimed, _ := strconv.Atoi(m[1])
	claimedBytes, _ := strconv.ParseInt(m[2], 10, 64)
	_, evs := readProfile(t, record)
	if len(evs) != claimed {
		t.Fatalf("exit line claims %d events, the file holds %d:\n%s", claimed, len(evs), stdout)
	}
	if st, err := os.Stat(record); err != nil || st.Size() != claimedBytes {
		t.Fatalf("exit line claims %d bytes, the file has %d (%v)", claimedBytes, st.Size(), err)
	}
}
