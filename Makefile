# paddock: 'make demo' shows the main job, 'make test' runs every test.
GO       ?= go
BIN      := bin/paddock
GOFLAGS  ?=
PKGS     := ./...

# The Go that 'make deps' chose or fetched (scripts/go-toolchain.sh) comes
# first; without it, the Go on PATH.
export PATH := $(CURDIR)/.cache/go/bin:$(PATH)

.PHONY: all deps build build-device test test-short bench demo fuzz clean vm cross e2e-full fresh

all: build

deps:
	@scripts/deps.sh

# A static binary with cgo, for libseccomp (which compiles the filters).
BUILDFLAGS := -trimpath -tags osusergo,netgo -ldflags '-s -w -linkmode external -extldflags "-static"'

build:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS) $(BUILDFLAGS) -o $(BIN) ./cmd/paddock

# The device's binary: the agent, init and launcher without the operator's
# and developer's tools (fleet, image, vm, pack, sign).
build-device:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS) -trimpath -tags osusergo,netgo,paddock_omit_tools \
		-ldflags '-s -w -linkmode external -extldflags "-static"' -o bin/paddock-device ./cmd/paddock

# Every test; those that need root or a kernel feature skip with the reason
# elsewhere, and run as root in CI.
test: deps build
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) $(PKGS)

test-short: build
	$(GO) test -short $(PKGS)

# Run every fuzz target for a while (FUZZTIME=1m make fuzz).
fuzz:
	FUZZTIME=$(or $(FUZZTIME),30s) scripts/fuzz.sh

bench: deps build build-device
	scripts/bench-install.sh
	scripts/bench-run.sh
	scripts/bench-fleet.sh
	scripts/bench-boot.sh
	scripts/bench-services.sh
	scripts/bench-base.sh

demo: deps build
	scripts/demo.sh

# Both README commands, 'make test' and 'make demo', in a minimal Debian
# root (debootstrap, cached in .cache/fresh) of a clone of this checkout's
# HEAD, in its own mount namespace: a step 'make deps' misses fails here.
fresh:
	scripts/fresh.sh

clean:
	rm -rf bin

# Static binaries for the boards: bin/paddock-linux-{amd64,arm64,armv7}
# (installs the cross compilers and libseccomp-dev for each, when missing).
.PHONY: cross
cross: deps
	scripts/cross.sh

# Build the amd64 appliance image and boot it under QEMU.
vm: deps build build-device
	scripts/vm.sh

# The arm64 appliance under full emulation (slower; not part of make test).
e2e-full: deps build
	scripts/e2e-full.sh
