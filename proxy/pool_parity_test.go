// Placement parity with twemproxy: the same keys written through nutcracker (ketama) and through membench's pool
// mode, in front of the same servers with the same hash and weights, must land on the same servers.
package proxy_test

import (
	"testing"

	"github.com/membench/membench/proxy"
)

func TestPoolPlacementParity(t *testing.T) {
	servers := poolServers(t, 3)
	keys := poolKeys("parity", 2000)
	f := func(hash string, weights ...int) {
		t.Helper()
		lines := poolLines(servers, weights...)

		poolFlush(t, servers)
		nc := startNutcracker(t, hash, lines)
		poolSetAll(t, nc.Addr, keys)
		nc.stop()
		viaTwemproxy := poolWhere(t, servers, keys)

		poolFlush(t, servers)
		cfg := poolTestConfig(t, hash, lines)
		srv := poolStart(t, cfg, proxy.Options{})
		poolSetAll(t, cfg.Listen, keys)
		shutdown(t, srv)
		viaPool := poolWhere(t, servers, keys)

		r := poolRing(t, cfg.Pool)
		perServer := make([]int, len(servers))
		for _, k := range keys {
			tw, mb := viaTwemproxy[k], viaPool[k]
			if tw < 0 || mb < 0 {
				t.Fatalf("hash %s weights %v: key %q not stored (twemproxy: server %d, membench: server %d)",
					hash, weights, k, tw, mb)
			}
			if tw != mb {
				t.Fatalf("hash %s weights %v: key %q on server %d through twemproxy, %d through membench",
					hash, weights, k, tw, mb)
			}
			if p := r.Pick([]byte(k)); p != mb {
				t.Fatalf("hash %s: key %q on server %d, ring.Pick says %d", hash, k, mb, p)
			}
			perServer[mb]++
		}
		for i, n := range perServer {
			if n == 0 && hash != "crc32" {
				t.Fatalf("hash %s weights %v: no key on server %d (%v): the test proves nothing", hash, weights, i,
					perServer)
			}
		}
		t.Logf("hash %s weights %v: %d keys placed alike, per server %v", hash, weights, len(keys), perServer)
	}
	f("fnv1a_64")
	f("md5")
	f("fnv1a_64", 1, 2, 3)
	f("md5", 3, 1, 1)
	// twemproxy's crc32 is libmemcached's 15-bit variant: on a 32-bit ring every key lands before the first
	// point above 2^15, so one server gets them all. Parity still holds, and is checked.
	f("crc32")
	f("one_at_a_time")
	f("murmur", 1, 1, 2)
}
