# Writes Convene's config with its secrets filled in, at service start (ExecStartPre), so that no secret
# is ever in the Nix store. The rendered config holds a placeholder "@secret:KEY@" for each secret; the
# value comes from the systemd credential KEY (LoadCredential=KEY:/path, read by systemd as root).
# Usage: secrets.sh TEMPLATE OUTPUT KEY...
set -euo pipefail
umask 077
template=$1 output=$2
shift 2
config=$(<"$template")
for key in "$@"; do
  file="${CREDENTIALS_DIRECTORY:?no credentials directory: run under systemd with LoadCredential}/$key"
  if [ ! -r "$file" ]; then
    echo "convene: secret $key: credential $file is missing" >&2
    exit 1
  fi
  value=$(<"$file")
  # The value goes inside a TOML basic string: escape backslashes, quotes and line breaks.
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  value=${value//$'\r'/\\r}
  value=${value//$'\t'/\\t}
  placeholder="\"@secret:$key@\""
  if [[ $config != *"$placeholder"* ]]; then
    echo "convene: secret $key: no placeholder for it in $template" >&2
    exit 1
  fi
  # Quoted, so that bash takes the replacement literally (no backslash or & processing).
  replacement="\"$value\""
  config=${config//"$placeholder"/"$replacement"}
done
printf '%s\n' "$config" >"$output.tmp"
mv "$output.tmp" "$output"
