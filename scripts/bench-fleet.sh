#!/bin/bash
# bench-fleet.sh rolls a command out to 10,000 simulated devices, each with
# the real device-side link and real signature checks, against one
# mosquitto on loopback, and prints the time from start to all done (goal:
# under 30 s), the memory per link and the command round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
PADDOCK_FLEET_DEVICES=${DEVICES:-10000} go test -count=1 -timeout 15m -run 'TestRolloutRealLinks$' -v ./mqtt/fleet 2>&1 |
	grep -E '^fleet:|FAIL|SKIP|needs' || true
