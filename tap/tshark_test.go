package tap

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/mcproto"
)

// TestTshark cross-checks the tap against Wireshark's memcache dissector on the text-protocol fixture: the
// numbers of get, set and delete requests and of hits must agree exactly. Only the first connection (the
// pymemcache client) is compared: the second splits a command line after its first two bytes ("se" + "t …"),
// which the dissector shows as a continuation and never decodes (the tap does: see TestFixtures).
func TestTshark(t *testing.T) {
	tshark := mctest.Require(t, "tshark")
	port := fixturePort(t)
	path := filepath.Join("testdata", "text.pcap")
	out, err := exec.Command(tshark, "-r", path, "-d", "tcp.port=="+strconv.Itoa(port)+",memcache",
		"-Y", "tcp.stream == 0", "-T", "fields", "-E", "separator=|", "-e", "tcp.srcport", "-e", "memcache.command",
		"-e", "memcache.response", "-e", "memcache.key").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	want := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			t.Fatalf("tshark printed %q, want 4 fields", line)
		}
		if f[0] != strconv.Itoa(port) {
			for _, c := range strings.Split(f[1], ",") {
				want[c]++
			}
			continue
		}
		if f[3] != "" { // keys in a response come from VALUE lines: one per hit
			want["hit"] += len(strings.Split(f[3], ","))
		}
	}
	evs, _ := decodeFixture(t, "text.pcap")
	got := map[string]int{}
	type req struct {
		conn uint64
		time int64
	}
	gets := map[req]bool{}
	for _, ev := range evs {
		if ev.Conn != 1 {
			continue
		}
		switch ev.Cmd {
		case mcproto.CmdGet:
			gets[req{ev.Conn, ev.Time}] = true // one request, one event per key
		case mcproto.CmdSet, mcproto.CmdDelete:
			got[ev.Cmd.String()]++
		}
		if ev.Status == mcproto.StatusHit && (ev.Cmd == mcproto.CmdGet || ev.Cmd == mcproto.CmdGets) {
			got["hit"]++
		}
	}
	got["get"] = len(gets)
	for _, k := range []string{"get", "set", "delete", "hit"} {
		if got[k] != want[k] || want[k] == 0 {
			t.Errorf("%s: tap counts %d, tshark %d", k, got[k], want[k])
		}
	}
}
