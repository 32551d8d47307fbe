#!/usr/bin/env bash
# The deployment checks: the systemd unit, the NixOS module (parse, dead code, evaluation with a mock
# lib, and the unit and TOML it renders). Needs systemd-analyze, nix-instantiate (Debian nix-bin) and
# a built convene binary. Usage: deploy/tests/run.sh [CONVENE_BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-${CONVENE_BIN:-target/debug/convene}}
passed=0 failed=0
check() {
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name" >&2; fi
}

check "systemd unit" deploy/tests/check-unit.sh deploy/systemd/convene.service "$bin"
for t in deploy/tests/nix-*.sh; do
  [ -e "$t" ] || continue
  check "$(basename "$t" .sh)" "$t" "$bin"
done

echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
