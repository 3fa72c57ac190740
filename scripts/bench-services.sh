#!/bin/bash
# bench-services.sh measures the agent supervising services: its RSS with 5
# services running, idle, at the end of the idle minute (goal: under 15 MB;
# Greengrass's nucleus needs 96 MB or more); its wakeups over 60 s while idle (goal: no polling loop
# faster than 1 s), counted from the scheduler's statistics of every thread;
# and the first restart after a crash, from the date its service read
# before it exited to the date its new process read first (goal: under
# 100 ms), beside the floor of that measure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
# The agent is the device's build (without the operator's tools), as on a device.
D="$PWD/bin/paddock-device"
[ -x "$D" ] || D="$P"
IDLE=${IDLE:-60}
SAMPLES=${SAMPLES:-5}

bench_need_root "create namespaces and cgroups"
bench_workdir five
# The run directory is a tmpfs, as /run is on a device (bench_cleanup
# unmounts it): the agent's records of its services live there.
mkdir -p "$PADDOCK_ROOT/run"
mount -t tmpfs -o mode=0755,size=16m paddock-bench-run "$PADDOCK_ROOT/run"
# The agent runs from a copy, installed as on a device. The file the linker
# just wrote sits in the page cache in large folios (up to 2 MiB), and a
# fault maps a whole folio: an agent run from it maps nearly all of its
# binary (18 MB of 19). A file written as an install writes it is mapped
# 64 KiB around each fault (measured on this host's ext4).
install -m 0755 "$D" "$work/paddock"
D="$work/paddock"

{
	printf 'name: five\nversion: "1"\napps:\n'
	for s in one two three four; do printf '  %s:\n    command: bin/idle\n    daemon: simple\n' "$s"; done
	printf '  crash:\n    command: bin/crash\n    daemon: simple\n'
} > "$work/src/meta/app.yaml"
printf '#!/bin/sh\nexec sleep 1000000\n' > "$work/src/bin/idle"
# crash says when it starts; unless told to stay (the file stay), it exits 1
# a second later, saying when. (With $FLOOR, for the bare loop below, it
# ends at once instead of staying.)
cat > "$work/src/bin/crash" <<'SH'
#!/bin/sh
echo "start $(date +%s%N)" >> "$APP_DATA/times"
if [ -e "$APP_DATA/stay" ]; then
	[ -n "${FLOOR:-}" ] && exit 0
	exec sleep 1000000
fi
touch "$APP_DATA/stay"
sleep 1
echo "exit $(date +%s%N)" >> "$APP_DATA/times"
exit 1
SH
chmod 755 "$work/src/bin/"*
cd "$work"
bench_publish five
# shellcheck disable=SC2086 # DAEMON_FLAGS are words
bench_start_agent "$D" ${DAEMON_FLAGS:-}
"$P" install five.pdk >/dev/null 2>&1
times="$PADDOCK_ROOT/var/lib/paddock/data/five/1/times"

# running_count prints how many of the services run.
running_count() { "$P" services five --json | grep -c '"state": "running"' || true; }

# The first restart after a crash, SAMPLES times: each time the crash
# service is restarted by hand (which resets its backoff), crashes once,
# and comes back at once.
# load prints the load average of the last minute.
load() { cut -d' ' -f1 /proc/loadavg; }
# gap prints, in ms, the time from the first exit to the second start in
# the times file $1.
gap() {
	local e s
	e=$(awk '$1 == "exit" {print $2; exit}' "$1")
	s=$(awk '$1 == "start" {n++; if (n == 2) {print $2; exit}}' "$1")
	[ -n "$e" ] && [ -n "$s" ] || return 1
	awk -v a="$e" -v b="$s" 'BEGIN{printf "%.1f", (b-a)/1e6}'
}
# stats prints min/median/max of its arguments.
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s/%s/%s", a[1], a[int((NR+1)/2)], a[NR]}'; }
restart_load0=$(load)
restarts=()
for i in $(seq "$SAMPLES"); do
	rm -f "$times" "$(dirname "$times")/stay"
	"$P" restart five.crash >/dev/null 2>&1
	for _ in $(seq 100); do [ "$(grep -c . "$times" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
	g=$(gap "$times") || { echo "bench: the crash service did not restart:"; cat "$times"; "$P" services five; exit 1; }
	restarts+=("$g")
done
# The floor of this measure, in the same run and load: the same script
# restarted at once by a bare shell loop, without agent or sandbox (what is
# left is the measure's own cost: a shell and two date processes).
floors=()
for i in $(seq "$SAMPLES"); do
	mkdir -p "$work/floor$i"
	APP_DATA="$work/floor$i" FLOOR=1 sh -c 'until "$1"; do :; done' sh "$work/src/bin/crash"
	floors+=("$(gap "$work/floor$i/times")")
done
restart_load1=$(load)
for _ in $(seq 100); do [ "$(running_count)" = 5 ] && break; sleep 0.1; done
[ "$(running_count)" = 5 ] || { echo "bench: not all 5 services run"; "$P" services five; exit 1; }

# Idle: let the agent settle (it gives memory back once it has had
# nothing to do for 5 s: agent/daemon/idle.go), then count.
sleep 15
launchers_kb=0
for pid in $(pgrep -f "^paddock run five\." || true); do
	launchers_kb=$((launchers_kb + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
done
# wakeups sums, over the agent's threads, how often each was scheduled in
# (field 3 of /proc/PID/task/TID/schedstat).
wakeups() { cat /proc/"$daemon"/task/*/schedstat | awk '{n += $3} END {print n}'; }
idle_load0=$(load)
w0=$(wakeups)
sleep "$IDLE"
w1=$(wakeups)
idle_load1=$(load)
# Its memory at the end of the idle minute.
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$daemon/status")
anon_kb=$(awk '/^RssAnon/ {print $2}' "/proc/$daemon/status")
pss_kb=$(awk '/^Pss:/ {print $2}' "/proc/$daemon/smaps_rollup")

[ -n "${HOLD:-}" ] && { echo "agent $daemon"; sleep "$HOLD"; }
printf 'services: the agent supervising 5 services (sleep in their sandboxes)\n'
printf '  agent RSS, idle, 5 services running:   %6.1f MB   (goal < 15 MB; Greengrass nucleus: 96 MB or more, its docs; not installable here)\n' "$(echo "$rss_kb" | awk '{print $1/1024}')"
printf '    anonymous %.1f MB, pages of the binary %.1f MB; Pss %.1f MB; load %s -> %s\n' "$(echo "$anon_kb" | awk '{print $1/1024}')" "$(echo "$rss_kb $anon_kb" | awk '{print ($1-$2)/1024}')" "$(echo "$pss_kb" | awk '{print $1/1024}')" "$idle_load0" "$idle_load1"
printf '  (their 5 launchers, paddock run:        %6.1f MB together, RSS)\n' "$(echo "$launchers_kb" | awk '{print $1/1024}')"
printf '  agent wakeups while idle:              %6d in %d s (its threads scheduled in: %.1f per run of its loop, which runs every 5 s; goal: no loop faster than 1/s)\n' "$((w1 - w0))" "$IDLE" "$(awk -v w=$((w1 - w0)) -v s="$IDLE" 'BEGIN{print w/(s/5)}')"
printf '  first restart after a crash, exit to new process: min/median/max %s ms of %d (goal < 100 ms; load %s -> %s)\n' "$(stats "${restarts[@]}")" "$SAMPLES" "$restart_load0" "$restart_load1"
printf '    the same script restarted by a bare shell loop (the floor of this measure): %s ms; systemd waits RestartSec=, 100 ms by default (its docs)\n' "$(stats "${floors[@]}")"
