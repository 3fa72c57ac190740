#!/bin/bash
# fuzz.sh runs every fuzz target of the tree for FUZZTIME (default 30s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do
	for target in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "== $dir $target"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$dir"
	done
done
