//go:build memcached_current

// The dialect cases against a current memcached build, which Debian does not package: run by
// bench/mctsuite/run.sh (or by hand) with
//
//	MCPROTO_MEMCACHED_NEW=/path/to/memcached go test -tags memcached_current -run TestDialectServersCurrent ./mcproto/
package mcproto

import (
	"os"
	"testing"
)

func TestDialectServersCurrent(t *testing.T) {
	bin := os.Getenv("MCPROTO_MEMCACHED_NEW")
	if bin == "" {
		t.Fatal("MCPROTO_MEMCACHED_NEW must name a memcached 1.6.45 binary")
	}
	addr := dialectStart(t, bin)
	if d := confDialect(t, addr); d != NewDialect(1, 6, 45) {
		t.Fatalf("%s is memcached %v; these bytes are 1.6.45's", bin, d)
	}
	dialectPlayAll(t, addr, func(c dialectCase) string { return c.new })
}
