// Privacy: keys and values that pass through a recording proxy never reach the profile, the logs or /metrics,
// and neither does the anonymizer's secret, raw or in hex.
package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membench/membench/internal/mctest"
	"github.com/membench/membench/internal/metricsrv"
	"github.com/membench/membench/profile"
	"github.com/membench/membench/proxy"
)

// syncBuffer is a bytes.Buffer safe for the proxy's event loops to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func TestPrivacy(t *testing.T) {
	mc := mctest.StartMemcached(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// An uncompressed profile, so that a leaked key would show as plain bytes.
	anon := profile.NewAnonymizer(testSecret, profile.DefaultNSDelim, true)
	path := filepath.Join(t.TempDir(), "private.mbp")
	w, err := profile.NewWriter(path, profile.Header{Created: time.Now(), Mode: "proxy", Host: "privacy-test",
		SaltFingerprint: anon.Fingerprint()}, profile.WriterOptions{Compression: profile.CompressionNone})
	if err != nil {
		t.Fatal(err)
	}
	q := profile.NewQueue(w, 1<<16)
	defer q.Close()
	cfg := testConfig(t, mc.Addr)
	srv := startProxy(t, cfg, proxy.Options{Anonymizer: anon, Queue: q, Logger: logger})
	msrv, err := metricsrv.Start("127.0.0.1:0", proxy.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer msrv.Close()

	// Distinctive keys (one per namespace shape) and values.
	keys := []string{"PRIVKEY-alpha-7f3a91", "tenant-PRIVKEY:user-5521-beta", "PRIVKEY-gamma:session:0xDEAD",
		"PRIVKEY-" + strings.Repeat("long", 55)}
	values := []string{"PRIVVALUE-credit-card-4111", "PRIVVALUE-" + strings.Repeat("password", 200)}
	b64Key := base64.StdEncoding.EncodeToString([]byte("PRIVKEY-meta-base64-binary\x00\x01"))
	tooLong := "PRIVKEY-" + strings.Repeat("x", 250) // 258 bytes: memcached rejects it

	text := dialText(t, cfg.Listen)
	for i, k := range keys {
		v := values[i%len(values)]
		text.roundTrip("set "+k+" 5 0 "+strconv.Itoa(len(v))+"\r\n"+v+"\r\n", "STORED")
		text.roundTrip("get "+k+" "+k+"-missing\r\n", "VALUE "+k+" 5 "+strconv.Itoa(len(v)), v, "END")
		text.roundTrip("append "+k+" 0 0 4\r\nMORE\r\n", "STORED")
		text.roundTrip("touch "+k+" 100\r\n", "TOUCHED")
		text.roundTrip("mg "+k+" v k\r\n", "VA "+strconv.Itoa(len(v)+4)+" k"+k, v+"MORE")
		text.roundTrip("delete "+k+"\r\n", "DELETED")
	}
	text.roundTrip("ms "+b64Key+" 9 b\r\nPRIVVALUE\r\n", "HD")
	text.roundTrip("mg "+b64Key+" b v k\r\n", "VA 9 k"+b64Key+" b", "PRIVVALUE")
	text.roundTrip("set "+tooLong+" 0 0 9\r\nPRIVVALUE\r\n", "CLIENT_ERROR bad command line format", "ERROR")
	big := "PRIVVALUE-big-" + repeat(1100<<10) // over memcached's default item size
	text.roundTrip("set "+keys[0]+" 0 0 "+strconv.Itoa(len(big))+"\r\n"+big+"\r\n",
		"SERVER_ERROR object too large for cache")
	text.roundTrip("PRIVKEY-as-a-command "+keys[1]+"\r\n", "ERROR")

	bin := dial(t, cfg.Listen)
	for i, k := range keys[:3] {
		for _, r := range []binReq{
			{op: 0x01, key: k, extras: storeExtras(0, 0), value: values[0], opaque: uint32(i)},
			{op: 0x0c, key: k, opaque: uint32(i)},
			{op: 0x04, key: k, opaque: uint32(i)},
		} {
			if _, err := bin.Write(r.bytes()); err != nil {
				t.Fatal(err)
			}
			if f, err := readBinResp(bin); err != nil || f.status != 0 {
				t.Fatalf("binary %#x %q: %v %v", r.op, k, f, err)
			}
		}
	}
	// A client that leaves with a request in flight, and one whose upstream is gone: both are logged.
	text.send("get " + keys[2] + "\r\nget " + keys[3] + "\r\n")
	text.c.Close()
	mc.Stop()
	down := dialText(t, cfg.Listen)
	down.send("get " + keys[0] + "\r\n")
	_ = down.c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, _ = io.ReadAll(down.r)

	shutdown(t, srv)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readProfile(t, path)
	if len(evs) < 30 {
		t.Fatalf("only %d events recorded", len(evs))
	}
	profileBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+msrv.Addr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Contains(metricsText, []byte("membench_proxy_events_recorded_total")) {
		t.Fatalf("GET /metrics: %v\n%.300s", err, metricsText)
	}
	logText := logs.Bytes()
	if !bytes.Contains(logText, []byte("upstream")) {
		t.Fatalf("the scenario logged nothing about the upstream; logs:\n%s", logText)
	}

	// Secrets: every key and value, as sent and hex-encoded, in 12-byte windows so that no fragment leaks
	// either; the base64 key decoded and encoded; the anonymizer secret raw and in hex.
	var secrets [][]byte
	add := func(s string) {
		for _, form := range []string{s, hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s)))} {
			for i := 0; i+12 <= len(form); i += 4 {
				secrets = append(secrets, []byte(form[i:i+12]))
			}
			if len(form) < 12 {
				secrets = append(secrets, []byte(form))
			}
		}
	}
	for _, k := range append(keys, b64Key, tooLong, "PRIVKEY-meta-base64-binary") {
		add(k)
	}
	for _, v := range append(values, "PRIVVALUE", "PRIVVALUE-big-") {
		add(v)
	}
	secrets = append(secrets, []byte("PRIVKEY"), []byte("PRIVVALUE"), testSecret[:],
		[]byte(hex.EncodeToString(testSecret[:])), []byte(strings.ToUpper(hex.EncodeToString(testSecret[:]))),
		[]byte(base64.StdEncoding.EncodeToString(testSecret[:])))
	for _, out := range []struct {
		name string
		b    []byte
	}{{"profile", profileBytes}, {"logs", logText}, {"metrics", metricsText}} {
		for _, s := range secrets {
			if i := bytes.Index(out.b, s); i >= 0 {
				t.Errorf("%s contains %q at offset %d: …%q…", out.name, s, i, out.b[max(0, i-40):min(len(out.b), i+40)])
			}
		}
	}
}
