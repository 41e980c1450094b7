# Wildcat — build, run and test. A fresh machine needs only Go.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Every directory under plugins/ holding a main package is a plugin.
PLUGINS   := $(patsubst plugins/%/,%,$(sort $(dir $(wildcard plugins/*/*.go))))
# `WILDCAT_MONGODB_URI=… make test` runs the store-backed tests against that
# server; the daemon's own WILDCAT_MONGODB_URI must not leak into the tests.
TEST_URI  := $(or $(WILDCAT_TEST_MONGODB_URI),$(WILDCAT_MONGODB_URI))
TESTFLAGS ?=

.PHONY: all build build-static image test-image run test test-browser fuzz bench lint proto clean

all: build

## build: the daemon, every plugin under plugins/ and the SDK's echo example into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/wildcatd ./cmd/wildcatd
	@mkdir -p bin/plugins
	@for p in $(PLUGINS); do \
		[ "$$($(GO) list -f '{{.Name}}' ./plugins/$$p 2>/dev/null)" = main ] || continue; \
		echo "$(GO) build -o bin/plugins/$$p ./plugins/$$p"; \
		$(GO) build -ldflags "$(LDFLAGS)" -o bin/plugins/$$p ./plugins/$$p || exit 1; \
	done
	$(GO) build -o bin/plugins/echo ./sdk/examples/echo

# The container image's binaries: static (no cgo, so no libc or ELF
# interpreter in the image), without build paths or symbols, with the time
# zone database built in (a scratch image has no /usr/share/zoneinfo and
# rules take time zones). The Dockerfile's build stage runs this target;
# `make image` and its test run it outside a container.
STATIC_DIR   ?= bin/static
STATIC_FLAGS := -trimpath -tags timetzdata -ldflags "-s -w $(LDFLAGS)"

## build-static: static wildcatd and plugins (CGO_ENABLED=0, -trimpath, -s -w, tzdata) into bin/static/, for the container image
build-static:
	@rm -rf $(STATIC_DIR)  # the image takes the whole directory: nothing left from an older build
	CGO_ENABLED=0 $(GO) build $(STATIC_FLAGS) -o $(STATIC_DIR)/wildcatd ./cmd/wildcatd
	@mkdir -p $(STATIC_DIR)/plugins
	@for p in $(PLUGINS); do \
		[ "$$($(GO) list -f '{{.Name}}' ./plugins/$$p 2>/dev/null)" = main ] || continue; \
		echo "CGO_ENABLED=0 $(GO) build $(STATIC_FLAGS) -o $(STATIC_DIR)/plugins/$$p ./plugins/$$p"; \
		CGO_ENABLED=0 $(GO) build $(STATIC_FLAGS) -o $(STATIC_DIR)/plugins/$$p ./plugins/$$p || exit 1; \
	done
	CGO_ENABLED=0 $(GO) build $(STATIC_FLAGS) -o $(STATIC_DIR)/plugins/echo ./sdk/examples/echo

# Where make image writes the image (a tarball that docker load and podman
# load read) and the tag it carries.
IMAGE_TAR ?= bin/wildcat-image.tar
IMAGE_TAG ?= wildcat:dev

## image: the container image without Docker: runs the Dockerfile's make step, then assembles the image with go-containerregistry (cmd/wildcat-image) into bin/wildcat-image.tar
image:
	$(GO) run ./cmd/wildcat-image --out $(IMAGE_TAR) --tag $(IMAGE_TAG) --version $(VERSION)

## test-image: build the image, unpack it and start its entrypoint with its configuration; run its HEALTHCHECK
test-image:
	env -u WILDCAT_MONGODB_URI $(GO) test -tags image -count=1 -timeout 15m -run '^TestImage$$' -v $(TESTFLAGS) ./cmd/wildcat-image/

## run: build, then start the daemon with config.yaml (embedded store, 127.0.0.1:8080)
run: build
	./bin/wildcatd run --config config.yaml

# Volume tests push thousands of events (or 28 MiB of text) through a
# daemon, some killing it mid-way; under the race detector they take many
# minutes, so they run in a second pass without it (everything else they
# exercise runs with it).
VOLUME_TESTS = ^(TestSIGKILLLosesNoEvent|TestSIGKILLDuringGroupCommits|TestMediaArchiveCrashResumes|TestHugeTextRefusedAndHistorySurvives)$$

## test: the whole suite with the race detector, then the volume tests without it
test:
	env -u WILDCAT_MONGODB_URI WILDCAT_TEST_MONGODB_URI="$(TEST_URI)" \
		$(GO) test -race -count=1 -timeout 14m -skip '$(VOLUME_TESTS)' $(TESTFLAGS) ./...
	env -u WILDCAT_MONGODB_URI WILDCAT_TEST_MONGODB_URI="$(TEST_URI)" \
		$(GO) test -count=1 -timeout 10m -run '$(VOLUME_TESTS)' $(TESTFLAGS) ./cmd/wildcatd ./core/daemon
	$(GO) run ./cmd/wildcatd rules test --all --dir scripts
	$(MAKE) fuzz

# The dashboard's browser tests (core/dashboard, build tag browser) drive
# Debian's chromium (the package .ci/run installs; the tests fail without it) and
# run axe-core, which this target fetches from npm into AXE_CACHE once.
AXE_VERSION ?= 4.10.3
AXE_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wildcat/axe-core-$(AXE_VERSION)
BROWSER_ARTIFACTS ?= $(CURDIR)/bin/browser-artifacts

## test-browser: the dashboard's browser tests in headless chromium, with axe-core's accessibility check (needs chromium and npm)
test-browser:
	@if [ ! -f "$(AXE_CACHE)/axe.min.js" ]; then \
		set -e; tmp="$$(mktemp -d)"; \
		echo "npm pack axe-core@$(AXE_VERSION) into $(AXE_CACHE)"; \
		(cd "$$tmp" && npm pack --silent "axe-core@$(AXE_VERSION)" >/dev/null && tar -xzf axe-core-$(AXE_VERSION).tgz); \
		mkdir -p "$(AXE_CACHE)"; cp "$$tmp/package/axe.min.js" "$$tmp/package/LICENSE" "$(AXE_CACHE)/"; rm -rf "$$tmp"; \
	fi
	env -u WILDCAT_MONGODB_URI WILDCAT_AXE_JS="$(AXE_CACHE)/axe.min.js" WILDCAT_BROWSER_ARTIFACTS="$(BROWSER_ARTIFACTS)" \
		$(GO) test -tags browser -count=1 -timeout 15m -run '^TestDashboard' -v $(TESTFLAGS) ./core/dashboard/

# Fuzz targets (package:function); each runs FUZZTIME after its committed
# corpus (testdata/fuzz/<name>), one at a time: go test -fuzz takes one
# target per run.
FUZZ_TARGETS = ./core/api:FuzzDecodeJSON ./core/messages:FuzzDecodeCursor ./core/messages:FuzzEncodeDoc \
	./core/session/whatsapp:FuzzNormalizeMessage ./sdk/webhooks:FuzzVerify ./core/rules:FuzzJSONBridge
# A count, not a duration: a duration's deadline can fail a target with no
# crasher (Go's fuzz coordinator race, go.dev/issue/75804, fixed in 1.27).
FUZZTIME ?= 10000x

## fuzz: each fuzz target for FUZZTIME (request decoder, message normaliser, cursor, webhook signatures, rules' JSON bridge)
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME) $$pkg"; \
		env -u WILDCAT_MONGODB_URI $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## bench: benchmarks, each figure beside the raw limit it competes with
bench:
	$(GO) test -run '^$$' -bench . -skip '^Benchmark(Ingest|EndToEnd|AccountFootprint)$$' -benchmem ./...
	$(GO) test -run '^$$' -bench '^BenchmarkAccountFootprint$$' -benchtime 1x ./core/daemon/
	$(GO) test -run '^$$' -bench '^BenchmarkIngest$$' -benchtime 5s -benchmem ./core/daemon/
	WILDCAT_BENCH_JSON=$(CURDIR)/core/daemon/testdata/bench/e2e.json \
		$(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 10s -benchmem ./core/daemon/

## lint: gofmt check and go vet
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## proto: regenerate the plugin protocol's Go code (sdk/proto) in pure Go: protocompile and
## the protoc-gen-go / protoc-gen-go-grpc versions go.mod pins as tools (no protoc needed)
proto:
	$(GO) run ./sdk/proto/protogen

clean:
	rm -rf bin
