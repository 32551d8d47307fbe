#!/bin/sh
# Runs the standard whiteboard relay scenarios against one server command.
#
# Usage: bench/whiteboard/run.sh PORT SERVER-COMMAND...
#   The server must listen on 127.0.0.1:PORT. It runs pinned to CPU 0 and the load tool
#   pinned to CPU 1, both at nice -15 when run as root so that other work on the machine
#   disturbs the measurement less. Server output goes to /tmp/wb-bench-server.log.
# Examples:
#   bench/whiteboard/run.sh 18080 target/release/convene whiteboard --listen 127.0.0.1:18080 --config bench/whiteboard/bench.toml
#   PORT=18081 bench/whiteboard/run.sh 18081 node excalidraw-room/dist/index.js
set -eu
port=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
load=${WB_LOAD:-$here/target/release/wb-load}
[ -x "$load" ] || cargo build --release --manifest-path "$here/Cargo.toml"
nice=""
[ "$(id -u)" -eq 0 ] && nice="nice -n -15"
$nice taskset -c 0 "$@" >/tmp/wb-bench-server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
sleep 2
url=http://127.0.0.1:$port
run() { $nice taskset -c 1 "$load" --url "$url" --pid "$pid" --warmup 2 "$@"; sleep 1; }
echo "load average: $(cat /proc/loadavg)"
run --idle 2000 --duration 5
run --duration 10 --rooms 10 --clients 5 --rate 20
run --duration 10 --rooms 100 --clients 5 --rate 10
run --duration 10 --rooms 1 --clients 50 --rate 10
run --duration 10 --rooms 20 --clients 5 --rate 400
run --duration 10 --rooms 2 --clients 50 --rate 100
echo "load average: $(cat /proc/loadavg)"
