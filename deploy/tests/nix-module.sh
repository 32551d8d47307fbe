#!/usr/bin/env bash
# Checks the NixOS module and package expression without nixpkgs:
#   - every .nix file under deploy/ parses (nix-instantiate --parse) and has no dead code (deadnix);
#   - deploy/tests/nix/eval.nix evaluates the module with a mock lib (--store dummy://) for sample
#     cases; for each, the rendered TOML (secrets filled in by secrets.sh, as at service start) passes
#     `convene check-config`, the rendered unit passes check-unit.sh, and the firewall opens the
#     ports the config listens on; the cases with mistakes fail with the expected assertion.
# Usage: deploy/tests/nix-module.sh [CONVENE_BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-${CONVENE_BIN:-target/debug/convene}}
bin=$(realpath "$bin")
for tool in nix-instantiate deadnix node; do
  command -v "$tool" >/dev/null || { echo "nix-module: $tool is missing (scripts/test installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "nix-module: $*" >&2; exit 1; }

mapfile -t files < <(find deploy -name '*.nix' | sort)
for f in "${files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null || fail "$f does not parse"
done
echo "ok: ${#files[@]} Nix files parse"
deadnix --fail deploy >/dev/null || { deadnix deploy; fail "deadnix found unused code"; }
echo "ok: deadnix finds nothing unused"

evaluate() {
  nix-instantiate --eval --strict --json --store dummy:// deploy/tests/nix/eval.nix --argstr case "$1"
}
# Prints one field of a JSON object read from stdin: strings raw, anything else as JSON.
field() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); const v = j[process.argv[1]];
    process.stdout.write(typeof v === "string" ? v : JSON.stringify(v ?? null))' "$1"
}

# case expected-tcp expected-udp expected-udp-ranges
for spec in 'acme [443,80,10000] [10000] []' 'proxy [] [] []' 'files [8080,10000] [10000] []' 'turn [8080,10500,3478] [10500,3478] ["50000-50100"]'; do
  read -r name want_tcp want_udp want_ranges <<<"$spec"
  out=$(evaluate "$name") || fail "case $name does not evaluate"
  failed=$(field failed <<<"$out")
  [ "$failed" = "[]" ] || fail "case $name: assertions failed: $failed"
  dir="$work/$name"
  mkdir -p "$dir/credentials"
  field toml <<<"$out" >"$dir/template.toml"
  config="$dir/template.toml"
  mapfile -t secrets < <(field secrets <<<"$out" | node -e 'JSON.parse(require("fs").readFileSync(0, "utf8")).forEach(s => console.log(s))')
  if [ ${#secrets[@]} -gt 0 ]; then
    # What systemd's LoadCredential gives the start script: one file per secret, odd characters included.
    for s in "${secrets[@]}"; do printf 'value of %s with "quotes" \\ and & signs\n' "$s" >"$dir/credentials/$s"; done
    CREDENTIALS_DIRECTORY="$dir/credentials" bash deploy/nixos/secrets.sh "$dir/template.toml" "$dir/convene.toml" "${secrets[@]}"
    config="$dir/convene.toml"
    grep -q '@secret:' "$config" && fail "case $name: a secret placeholder is left in the config"
  fi
  "$bin" check-config "$config" >/dev/null || { cat "$config"; fail "case $name: convene check-config rejects the rendered config"; }
  for s in "${secrets[@]}"; do
    "$bin" check-config --print "$config" | grep -qF "value of $s with" || fail "case $name: secret $s did not reach the config"
  done
  echo "ok: case $name: the rendered config passes convene check-config"
  field unit <<<"$out" >"$dir/convene.service"
  deploy/tests/check-unit.sh "$dir/convene.service" "$bin" >/dev/null || { deploy/tests/check-unit.sh "$dir/convene.service" "$bin" || true; fail "case $name: the rendered unit fails its checks"; }
  echo "ok: case $name: the rendered unit passes systemd-analyze verify and security"
  tcp=$(field tcp <<<"$out") udp=$(field udp <<<"$out") ranges=$(field udpRanges <<<"$out")
  [ "$tcp" = "$want_tcp" ] && [ "$udp" = "$want_udp" ] && [ "$ranges" = "$want_ranges" ] ||
    fail "case $name: firewall opens TCP $tcp UDP $udp $ranges, expected TCP $want_tcp UDP $want_udp $want_ranges"
  echo "ok: case $name: firewall opens TCP $tcp UDP $udp $ranges"
  if [ "$(field openFirewall <<<"$out")" = "true" ]; then
    # Exactly the ports `convene ports` lists for the same config, no more, no fewer.
    listed=$("$bin" ports --config "$config")
    want=$(awk '$1 == "tcp" || $1 == "udp" { print $1, $2 }' <<<"$listed" | sort -u)
    have=$(node -e 'const [t, u, r] = process.argv.slice(1).map(JSON.parse);
      for (const p of t) console.log("tcp", p); for (const p of u) console.log("udp", p); for (const p of r) console.log("udp", p);' \
      "$tcp" "$udp" "$ranges" | sort -u)
    [ "$want" = "$have" ] || fail "case $name: firewall opens
$have
but convene ports lists
$want"
    echo "ok: case $name: firewall opens exactly what convene ports lists"
  fi
  web=$(field webDist <<<"$out")
  [[ $web == /nix/store/*-convene-web-* ]] || fail "case $name: the package does not embed the web app ($web)"
done

# case expected-message-part
while IFS='|' read -r name want; do
  out=$(evaluate "$name") || fail "case $name does not evaluate"
  failed=$(field failed <<<"$out")
  [[ $failed == *"$want"* ]] || fail "case $name: expected an assertion containing '$want', got $failed"
  echo "ok: case $name is refused: $want"
done <<'CASES'
inlineSecret|settings.auth.secret would be world-readable in the Nix store
acmeWithoutName|needs a host name
tokenWithoutKey|needs a key to check tokens
unknownSecret|not a secret key
secretInStore|is in the Nix store
turnWithoutSecret|needs the shared secret
CASES
echo "nix-module: all checks passed"
