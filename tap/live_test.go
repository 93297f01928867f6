package tap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membench/membench/configs"
	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/profile"
)

// TestLive captures on the loopback interface while a client talks to a memcached on a free port, and checks
// that the recorded events are exactly the operations the client performed. It needs capture privileges
// (root); under CI=true it must run.
func TestLive(t *testing.T) {
	if !LiveCapture {
		t.Skip("a static build (CGO_ENABLED=0) has no live capture")
	}
	if os.Geteuid() != 0 {
		mctest.Missing(t, "live capture on lo needs root (or cap_net_raw,cap_net_admin on the test binary)")
	}
	mc := mctest.StartMemcached(t)
	cfg := configs.DefaultTap()
	cfg.Interface, cfg.Ports, cfg.MetricsListen = "lo", []int{mc.Port}, ""
	// Packed ring (TPACKET_V3): immediate mode gives one snaplen-sized slot per packet, and a loaded CI
	// machine can then drop packets, which would make this test flaky rather than wrong.
	cfg.ImmediateMode = false
	src, err := OpenLive(&cfg)
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	defer src.Close()
	var mu sync.Mutex
	var evs []profile.Event
	tp, err := New(cfg, Options{
		Anonymizer: profile.NewAnonymizer(testSalt, ':', true),
		Record: func(ev *profile.Event) bool {
			mu.Lock()
			evs = append(evs, *ev)
			mu.Unlock()
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tp.Run(ctx, src) }()

	// Two connections at once, each: set, get (hit), get of a missing key, a 3-key multi-get, delete.
	const conns, rounds = 2, 300
	want := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			errs <- liveClient(mc.Addr, c, rounds)
		}(c)
	}
	want["set stored"] = conns * rounds
	want["get hit"] = conns * rounds * 3 // the get and two of the multi-get's keys
	want["get miss"] = conns * rounds * 2
	want["delete deleted"] = conns * rounds
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, n := range want {
		total += n
	}
	// Bounded wait for the capture to catch up with the traffic (not a timing assertion: the check is on
	// counts once it has, and a slow machine only waits longer).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s := tp.Snapshot()
		if s.FlowsClosed >= conns && s.Events >= uint64(total) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := tp.Stats()
	mu.Lock()
	got := countBy(evs)
	mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("live capture recorded %v, want %v (%s)", got, want, st.String())
	}
	if st.KernelDrops != 0 || st.Gaps != [2]uint64{} || st.Flows != conns {
		t.Fatalf("live capture: %s", st.String())
	}
}

// liveClient runs rounds of set/get/get-miss/multi-get/delete on one connection and closes it.
func liveClient(addr string, c, rounds int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot connect to memcached at %s: %w", addr, err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(cmd, want string) error {
		if _, err := conn.Write([]byte(cmd)); err != nil {
			return err
		}
		var got strings.Builder
		for !strings.HasSuffix(got.String(), want) {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%q: %w after %q", cmd, err, got.String())
			}
			got.WriteString(line)
			if strings.HasPrefix(line, "ERROR") || strings.HasPrefix(line, "CLIENT_ERROR") {
				return fmt.Errorf("%q answered %q", cmd, got.String())
			}
		}
		return nil
	}
	for i := 0; i < rounds; i++ {
		k := fmt.Sprintf("live:%d:%d", c, i)
		v := strings.Repeat("v", 10+i%200)
		steps := [][2]string{
			{fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v), "STORED\r\n"},
			{"get " + k + "\r\n", "END\r\n"},
			{"get " + k + ":nope\r\n", "END\r\n"},
			{"get " + k + " " + k + ":nope " + k + "\r\n", "END\r\n"},
			{"delete " + k + "\r\n", "DELETED\r\n"},
		}
		for _, s := range steps {
			if err := expect(s[0], s[1]); err != nil {
				return err
			}
		}
	}
	return nil
}
