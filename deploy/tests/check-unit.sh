#!/usr/bin/env bash
# Checks a systemd unit file the way systemd itself would load it:
#   - `systemd-analyze verify` prints nothing (it exits 0 even on warnings, so any output fails);
#   - `systemd-analyze security --offline=yes` rates its exposure at most $THRESHOLD (tenths: 20 = 2.0).
# The unit is verified inside a scratch root that holds systemd's own units and the convene binary at
# the path ExecStart names, so "command not executable" is checked against the real binary.
# Usage: deploy/tests/check-unit.sh UNIT_FILE [CONVENE_BIN]
set -euo pipefail

unit=$1
bin=${2:-${CONVENE_BIN:-target/debug/convene}}
threshold=${THRESHOLD:-20}
name=$(basename "$unit")

[ -x "$bin" ] || { echo "check-unit: no convene binary at $bin (build it first)" >&2; exit 1; }
units_dir=/usr/lib/systemd/system
[ -d "$units_dir" ] || units_dir=/lib/systemd/system

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
cp -a "$units_dir" "$root/usr/lib/systemd/"
cp "$unit" "$root/etc/systemd/system/$name"
# Every ExecStart*= names a program; place the binary under test at each such path inside the root.
grep -E '^Exec(Start|StartPre|StartPost|Stop|Reload)=' "$unit" | sed -E 's/^[^=]+=[-@:+!]*//; s/[[:space:]].*$//' |
  sort -u | while read -r program; do
    mkdir -p "$root$(dirname "$program")"
    # A hard link where possible: the debug binary is hundreds of megabytes.
    ln -f "$bin" "$root$program" 2>/dev/null || cp "$bin" "$root$program"
  done

out=$(systemd-analyze verify --root="$root" "$name" 2>&1) || { echo "$out"; echo "check-unit: systemd-analyze verify failed for $unit" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "$out"
  echo "check-unit: systemd-analyze verify printed warnings for $unit" >&2
  exit 1
fi
echo "ok: systemd-analyze verify $unit: no output"

report=$(systemd-analyze security --offline=yes --root="$root" --threshold="$threshold" "$name" 2>&1) && rc=0 || rc=$?
level=$(printf '%s\n' "$report" | grep 'Overall exposure level' || true)
if [ "$rc" -ne 0 ] || [ -z "$level" ]; then
  printf '%s\n' "$report" | grep -E '✗|Overall' || printf '%s\n' "$report"
  echo "check-unit: exposure of $unit is above $threshold (tenths)" >&2
  exit 1
fi
echo "ok: systemd-analyze security $unit: ${level#*: } (threshold $threshold)"
