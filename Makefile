# membench's build, test and demo entry points. `make test` is what CI runs (through .ci/run).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 30s
# Fuzz targets in ./mcproto, each run for FUZZTIME by `make fuzz`.
FUZZ_TARGETS := FuzzRequest FuzzResponse FuzzPairing

# Where make deb writes membench_VERSION_ARCH.deb.
DEB_DIR  ?= bin

.PHONY: build static deb deps test bench fuzz demo clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/membench ./cmd/membench

# A static binary without cgo (no libpcap, no C toolchain): everything but live capture (tap --interface);
# capture files (tap --pcap) still work. The Containerfile builds this.
static:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/membench-static ./cmd/membench

# The Debian package of bin/membench, with dpkg-deb (packaging/deb/build.sh says what it holds).
deb: build
	bash packaging/deb/build.sh bin/membench "$(DEB_DIR)" "$(VERSION)" "$(COMMIT)"

# As root, installs whatever Debian packages are missing; as another user, succeeds if all are present and
# otherwise fails, printing the apt-get line to run.
deps:
	@bash scripts/install-deps.sh

test: deps
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./mcproto/ ./profile/ ./replay/

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "$(GO) test -run='^\$$' -fuzz='^$$t\$$' -fuzztime=$(FUZZTIME) ./mcproto/"; \
		$(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) ./mcproto/; \
	done

demo: deps build
	./bin/membench demo

clean:
	rm -rf bin
