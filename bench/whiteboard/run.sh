#!/bin/sh
# Runs the standard whiteboard relay scenarios against one server command.
#
# Usage: bench/whiteboard/run.sh PORT SERVER-COMMAND...
#   The server is started with its output in /tmp/wb-bench-server.log, pinned to CPU 0;
#   the load tool runs pinned to CPU 1. The server must listen on 127.0.0.1:PORT.
# Example (Convene, release build):
#   bench/whiteboard/run.sh 18080 target/release/convene whiteboard --listen 127.0.0.1:18080
set -eu
port=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
load=${WB_LOAD:-$here/target/release/wb-load}
[ -x "$load" ] || cargo build --release --manifest-path "$here/Cargo.toml"
taskset -c 0 "$@" >/tmp/wb-bench-server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
sleep 1
url=http://127.0.0.1:$port
run() { taskset -c 1 "$load" --url "$url" --pid "$pid" "$@"; sleep 1; }
run --rooms 10 --clients 5 --rate 20
run --rooms 100 --clients 5 --rate 10
run --rooms 1 --clients 50 --rate 10
run --rooms 100 --clients 5 --rate 40
run --rooms 100 --clients 5 --rate 100 --volatile
run --rooms 20 --clients 50 --rate 10
run --idle 2000 --duration 5
