#!/bin/sh
# go-toolchain.sh makes a Go that can build paddock available:
#
#   scripts/go-toolchain.sh check     exit 0 when one is there already
#   scripts/go-toolchain.sh install   print the bin folder of one, fetching it when needed
#
# A Go is good when it is at least the version go.mod asks for (its
# 'toolchain' line, else its 'go' line). The one on PATH or in /usr/local/go
# is used when good; else the toolchain pinned below is fetched through the
# Go module proxy (the golang.org/toolchain module, as the go command itself
# fetches toolchains; GOPROXY is respected), checked against the SHA-256
# pinned here, and unpacked into .cache/go. Debian's golang (1.19 in
# bookworm) is too old. Either way .cache/go/bin becomes a link to the
# chosen bin folder; the Makefile puts it first on PATH.
set -eu
cd "$(dirname "$0")/.."

# The pinned toolchain and the SHA-256 of its module zips, as the proxy
# serves them; taken from 'go mod download -json
# golang.org/toolchain@v0.0.1-go1.26.8.linux-ARCH', which checked them
# against the checksum database (h1:ZOmGe1On... for amd64, h1:sYL/O6Mq...
# for arm64). To move on: bump GO_VERSION, run that for both arches, and
# put the sha256sum of each Zip here.
GO_VERSION=1.26.8
GO_SHA256_amd64=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
GO_SHA256_arm64=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99

CACHE=$(pwd)/.cache/go
LINK=$CACHE/bin

die() {
	echo "go-toolchain: $*" >&2
	exit 1
}

# wanted prints the Go version go.mod asks for, e.g. 1.26.0.
wanted() {
	v=$(sed -n 's/^toolchain go\([0-9][0-9.]*\)[[:space:]]*$/\1/p' go.mod)
	[ -n "$v" ] || v=$(sed -n 's/^go \([0-9][0-9.]*\)[[:space:]]*$/\1/p' go.mod)
	[ -n "$v" ] || die "cannot read the Go version from go.mod"
	echo "$v"
}

# at_least A B: whether version A >= version B.
at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# version GO prints GO's version (1.26.8), or nothing when it does not run.
# GOTOOLCHAIN=local: a Go 1.21+ would otherwise fetch a newer one itself.
version() {
	GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9][0-9.]*\).*/\1/p'
}

# good prints the bin folder of the first good Go, or fails.
good() {
	want=$(wanted)
	for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go "$CACHE/go$GO_VERSION/bin/go"; do
		[ -n "$g" ] && [ -x "$g" ] || continue
		v=$(version "$g")
		if [ -n "$v" ] && at_least "$v" "$want"; then
			(cd "$(dirname "$g")" && pwd -P)
			return 0
		fi
	done
	return 1
}

# proxy prints the first proxy URL of GOPROXY (a list separated by , or |;
# "direct" and "off" are not proxies).
proxy() {
	for p in $(echo "${GOPROXY:-https://proxy.golang.org,direct}" | tr ',|' '  '); do
		case $p in
		https://* | http://* | file://*) echo "${p%/}" && return 0 ;;
		esac
	done
	return 1
}

# fetch downloads, checks and unpacks the pinned toolchain into $CACHE.
fetch() {
	want=$(wanted)
	at_least "$GO_VERSION" "$want" ||
		die "go.mod asks for Go $want, newer than the Go $GO_VERSION this script pins: install Go $want, or update GO_VERSION and the checksums in $0"
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) die "no Go toolchain pinned for $(uname -m): install Go $want or newer (https://go.dev/dl)" ;;
	esac
	eval "sum=\$GO_SHA256_$arch"
	base=$(proxy) || die "GOPROXY=$GOPROXY names no proxy to fetch Go from: set GOPROXY, or install Go $want or newer"
	for tool in curl unzip sha256sum; do
		command -v $tool >/dev/null 2>&1 || die "$tool is missing (make deps installs it; or install Go $want or newer)"
	done
	mod=v0.0.1-go$GO_VERSION.linux-$arch
	url=$base/golang.org/toolchain/@v/$mod.zip
	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "go-toolchain: fetching Go $GO_VERSION from $url" >&2
	curl -fsSL --retry 3 -o "$tmp/go.zip" "$url" || die "cannot download $url"
	got=$(sha256sum "$tmp/go.zip" | cut -d' ' -f1)
	[ "$got" = "$sum" ] || die "$url has SHA-256 $got, want $sum: refusing it (a proxy serving other bytes, or a broken download)"
	unzip -q "$tmp/go.zip" -d "$tmp/x" || die "cannot unpack $url"
	root=$tmp/x/golang.org/toolchain@$mod
	# Module zips do not keep file modes (the go command sets these too).
	chmod -R a+rX "$root"
	chmod a+x "$root"/bin/* "$root"/pkg/tool/*/*
	rm -rf "$CACHE/go$GO_VERSION"
	mv "$root" "$CACHE/go$GO_VERSION"
	rm -rf "$tmp"
	trap - EXIT
}

case ${1:-} in
check)
	good
	;;
install)
	dir=$(good) || {
		fetch
		dir=$(good) || die "the Go fetched into $CACHE/go$GO_VERSION does not run"
	}
	mkdir -p "$CACHE"
	ln -sfn "$dir" "$LINK"
	echo "$dir"
	;;
*)
	echo "usage: $0 check|install" >&2
	exit 2
	;;
esac
