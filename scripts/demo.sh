#!/bin/bash
# demo.sh walks through the life of an app on a paddock device, in a
# temporary root: keys, packing, signing, installing, refreshing, refusing a
# tampered package, reverting and removing.
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root, to loop-mount app revisions (try 'sudo make demo')" >&2
	exit 1
fi

work=$(mktemp -d /tmp/paddock-demo.XXXXXX)
export PADDOCK_ROOT="$work/root" PADDOCK_KEYS="$work/keys"
mkdir -p "$PADDOCK_ROOT"
daemon=""
others=()
cleanup() {
	set +e
	for pid in "${others[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
	if [ -n "$daemon" ]; then
		"$P" remove hello >/dev/null 2>&1
		"$P" remove ticker >/dev/null 2>&1
		kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
	fi
	# Whatever is still mounted under the demo root goes before the root does.
	grep -o " $work/root/apps/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "A root key for the device, and a publisher key it delegates to"
show "$P" key create root
show "$P" key create pub
"$P" key export root > "$work/root.asc"
show "$P" key trust "$work/root.asc"
show "$P" key delegate --key root --to pub --role publisher --names 'hello,ticker' -o "$work/pub.delegation"

step "Pack and sign the example app (revision 1)"
cd "$work"
show "$P" pack "$OLDPWD/examples/hello" -o hello.pdk
show "$P" sign hello.pdk --key pub --revision 1 --delegation pub.delegation

step "Start the agent"
"$P" daemon >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$PADDOCK_ROOT/run/paddock.sock" ] && break; sleep 0.05; done
echo "paddock daemon running (pid $daemon), root $PADDOCK_ROOT"

step "Install it: verified as it streams in, mounted read-only, made current"
show "$P" install hello.pdk
show "$P" list

step "Run it in its sandbox: namespaces, seccomp, device cgroup, no capabilities"
show "$P" run hello
show cat "$PADDOCK_ROOT/var/lib/paddock/data/hello/1/greetings"

step "A tampered package is refused, and nothing changes"
cp -r "$OLDPWD/examples/hello" hello-src
sed -i 's/^version: .*/version: "1.1"/' hello-src/meta/app.yaml
"$P" pack hello-src -o hello-1.1.pdk >/dev/null
"$P" sign hello-1.1.pdk --key pub --revision 2 --delegation pub.delegation >/dev/null
cp hello-1.1.pdk tampered.pdk; cp hello-1.1.pdk.assert tampered.pdk.assert
printf '\xff' | dd of=tampered.pdk bs=1 seek=4000 conv=notrunc status=none
show "$P" install tampered.pdk || echo "(refused, exit code $?)"
show "$P" list

step "Refresh to version 1.1 (revision 2): data is carried forward"
show "$P" refresh hello-1.1.pdk
show "$P" info hello
show "$P" run hello
show cat "$PADDOCK_ROOT/var/lib/paddock/data/hello/2/greetings"

step "Revert to revision 1 and its data"
show "$P" revert hello
show "$P" list --json

step "The changes the agent made, step by step"
show "$P" changes

step "A service: ticker's daemons start once it is installed, web after tick"
show "$P" pack "$OLDPWD/examples/ticker" -o ticker.pdk
"$P" sign ticker.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
show "$P" install ticker.pdk
# pidof SVC prints the PID of ticker's service SVC, once it runs.
pidof() {
	local pid=""
	for _ in $(seq 100); do
		pid=$("$P" services ticker --json | awk -v s="\"service\": \"$1\"" '$0 ~ s {f=1} f && /"pid"/ {gsub(/[^0-9]/, ""); print; exit}')
		[ -n "$pid" ] && break
		sleep 0.1
	done
	echo "$pid"
}
tick=$(pidof tick); pidof web >/dev/null
sleep 2
show "$P" services
show "$P" logs ticker -n 6

step "tick crashes (kill -9): the agent starts it again at once (then with growing delays)"
show kill -9 "$tick"
sleep 0.5
show "$P" services ticker
show "$P" logs ticker.tick -n 3

step "stop keeps a service stopped (across agent restarts too) until start"
show "$P" stop ticker.web
show "$P" services ticker
show "$P" start ticker.web
tick=$(pidof tick)

step "The fleet: the agent joins a broker, an operator installs over MQTT"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
mqtt_port=$(port); http_port=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" > mosquitto.conf
/usr/sbin/mosquitto -c mosquitto.conf >mosquitto.log 2>&1 & others+=($!)
kill "$daemon"; wait "$daemon" 2>/dev/null
broker=tcp://127.0.0.1:$mqtt_port
"$P" daemon --broker "$broker" --device-id demo1 --group lab >>"$work/daemon.log" 2>&1 &
daemon=$!
"$P" key create ops >/dev/null
show "$P" key delegate --key root --to ops --role operator --names '*' -o ops.delegation
mkdir -p artifacts
sed -i 's/^version: .*/version: "2.0"/' hello-src/meta/app.yaml
"$P" pack hello-src -o artifacts/hello.pdk >/dev/null
show "$P" sign artifacts/hello.pdk --key pub --revision 3 --delegation pub.delegation
"$P" fleet serve artifacts --listen "127.0.0.1:$http_port" 2>serve.log & others+=($!)
sleep 1
show "$P" fleet devices --broker "$broker"
show "$P" fleet send --broker "$broker" --key ops --delegation ops.delegation --device demo1 \
	--assert artifacts/hello.pdk.assert install "http://127.0.0.1:$http_port/hello.pdk"
show "$P" fleet devices --broker "$broker"
show "$P" run hello
echo "The agent was restarted to join the broker; ticker's services ran on and were re-adopted:"
echo "tick had pid $tick before the agent's restart"
show "$P" services ticker

step "A refresh to ticker's broken revision undoes itself, and the fleet says why"
# examples/ticker-broken's web fails at once: the refresh's health gate
# (app.yaml health-window:, 30 s by default) sees it, and the whole change
# is undone: revision 1 and its data are current again, and its services run.
"$P" pack "$OLDPWD/examples/ticker-broken" -o artifacts/ticker.pdk >/dev/null
show "$P" sign artifacts/ticker.pdk --key pub --revision 2 --delegation pub.delegation
export PADDOCK_FLEET_DIR="$work/fleet" # where the operator keeps rollouts
started=$(date +%s.%N)
show "$P" fleet rollout --broker "$broker" --key ops --delegation ops.delegation --group lab \
	--soak 5s --max-unhealthy 0 --assert artifacts/ticker.pdk.assert \
	refresh "http://127.0.0.1:$http_port/ticker.pdk" || echo "(the rollout stopped, exit code $?)"
echo "the rollout took $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
show "$P" fleet rollout status
show "$P" services ticker
id=$("$P" changes | awk '/Refresh "ticker"/ { id = $1 } END { print id }')
show "$P" changes "$id"
sleep 1 # the state is published once the changes settle
show "$P" fleet devices --broker "$broker"

step "Remove the app"
show "$P" remove hello
show "$P" list
echo
echo "demo done: every step above ran against the real agent in $PADDOCK_ROOT"
