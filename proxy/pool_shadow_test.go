// Shadowing: a second pool receives a fire-and-forget copy of the requests for a fraction of the keys, chosen by
// the rule in poolclient.go's shadow(): 64-bit FNV-1a of the key finished with fmix64, below fraction·2^64. Which
// keys reached the shadow servers is read back from them; killing the shadow servers must not cause one error
// or one wrong answer on the primary pool. No timing assertions.
package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/membench/membench/proxy"
	"github.com/membench/membench/ring"
)

// poolShadowSelected is poolclient.go's selection rule, restated: a test of the documented behaviour, not a
// copy of the code's constants by reference.
func poolShadowSelected(key string, fraction float64) bool {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	bound := uint64(fraction * (1 << 64))
	if fraction >= 1 {
		bound = ^uint64(0)
	}
	return h < bound
}

func TestPoolShadow(t *testing.T) {
	primary := poolServers(t, 3)
	shadow := poolServers(t, 2)
	cfg := poolTestConfig(t, "fnv1a_64", poolLines(primary))
	cfg.Pool.Shadow.Servers = poolLines(shadow)
	cfg.Pool.Shadow.Hash = "md5"
	cfg.Pool.Shadow.Fraction = 0.5
	poolStart(t, cfg, proxy.Options{})

	keys := poolKeys("shadow", 2000)
	// Text sets for most keys, binary sets for some, so both kinds of shadow connection carry copies.
	poolSetAll(t, cfg.Listen, keys[:1800])
	c := dial(t, cfg.Listen)
	var b []byte
	for i, k := range keys[1800:] {
		b = append(b, binReq{op: 0x01, key: k, extras: storeExtras(0, 0), value: k, opaque: uint32(i)}.bytes()...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	for i := range keys[1800:] {
		if f, err := readBinResp(c); err != nil || f.status != 0 || f.opaque != uint32(i) {
			t.Fatalf("binary set %d: %v %v", i, f, err)
		}
	}

	var want []string
	for _, k := range keys {
		if poolShadowSelected(k, 0.5) {
			want = append(want, k)
		}
	}
	if len(want) < 800 || len(want) > 1200 {
		t.Fatalf("the rule selects %d of %d keys for fraction 0.5", len(want), len(keys))
	}
	// Copies are fire-and-forget: wait (bounded) until the shadow servers hold every selected key.
	shadowServers, _ := cfg.Pool.ShadowServers()
	sr, err := ring.New(shadowServers, "md5", ring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var where map[string]int
	waitFor(t, "the selected keys on the shadow servers", func() bool {
		where = poolWhere(t, shadow, keys)
		for _, k := range want {
			if where[k] < 0 {
				return false
			}
		}
		return true
	})
	n := 0
	for _, k := range keys {
		switch {
		case where[k] >= 0 && !poolShadowSelected(k, 0.5):
			t.Fatalf("key %q reached the shadow pool but the rule does not select it", k)
		case where[k] >= 0 && where[k] != sr.Pick([]byte(k)):
			t.Fatalf("key %q is on shadow server %d, the shadow ring (md5) says %d", k, where[k], sr.Pick([]byte(k)))
		case where[k] >= 0:
			n++
		}
	}
	t.Logf("%d of %d keys shadowed (fraction 0.5)", n, len(keys))
	// The configured fraction: 2000 keys at 0.5 have a standard deviation of about 22 keys.
	if n < 900 || n > 1100 {
		t.Fatalf("%d of %d keys shadowed, want about half", n, len(keys))
	}
	// The primary pool holds every key, whatever the shadow does.
	for k, i := range poolWhere(t, primary, keys) {
		if i < 0 {
			t.Fatalf("key %q is missing from the primary pool", k)
		}
	}

	// Kill the shadow pool: the primary answers stay complete and correct.
	for _, s := range shadow {
		s.Stop()
	}
	tc := dialText(t, cfg.Listen)
	bc := dial(t, cfg.Listen)
	for round := range 5 {
		var sb strings.Builder
		for _, k := range keys[round*300 : round*300+300] {
			v := fmt.Sprintf("r%d:%s", round, k)
			fmt.Fprintf(&sb, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k)
		}
		sb.WriteString("get " + strings.Join(keys[round*300:round*300+20], " ") + "\r\n")
		tc.send(sb.String())
		for _, k := range keys[round*300 : round*300+300] {
			v := fmt.Sprintf("r%d:%s", round, k)
			tc.expect("STORED", fmt.Sprintf("VALUE %s 0 %d", k, len(v)), v, "END")
		}
		for _, k := range keys[round*300 : round*300+20] {
			v := fmt.Sprintf("r%d:%s", round, k)
			tc.expect(fmt.Sprintf("VALUE %s 0 %d", k, len(v)), v)
		}
		tc.expect("END")
		// Binary, quiet: sets answer nothing, gets answer with the value.
		b = b[:0]
		for i, k := range keys[1800+round*40 : 1800+round*40+40] {
			b = append(b, binReq{op: 0x11, key: k, extras: storeExtras(0, 0), value: "b" + k, opaque: uint32(i)}.bytes()...)
			b = append(b, binReq{op: 0x0d, key: k, opaque: uint32(i)}.bytes()...)
		}
		b = append(b, binReq{op: 0x0a, opaque: 9999}.bytes()...)
		if _, err := bc.Write(b); err != nil {
			t.Fatal(err)
		}
		for i, k := range keys[1800+round*40 : 1800+round*40+40] {
			f, err := readBinResp(bc)
			if err != nil || f.op != 0x0d || f.status != 0 || f.opaque != uint32(i) || string(f.value) != "b"+k {
				t.Fatalf("binary GetKQ %q with the shadow pool dead: %v %v", k, f, err)
			}
		}
		if f, err := readBinResp(bc); err != nil || f.op != 0x0a || f.opaque != 9999 {
			t.Fatalf("binary noop with the shadow pool dead: %v %v", f, err)
		}
	}
}
