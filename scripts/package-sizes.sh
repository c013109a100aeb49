#!/usr/bin/env bash
# For each built function (DIR/<Function>/bootstrap, as `sam build` leaves them): the zip
# Lambda receives, its size, and the cold start of the bootstrap under the Lambda Runtime
# Interface Emulator: the init duration the emulator reports (process start, settings, SDK
# clients, until the runtime asks for its first event), the first invocation's duration (an
# event rejected without any AWS call) and the wall time from starting the emulator to the
# answer. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.aws-sam/build}
rie=.venv/bin/aws-lambda-rie
[ -x "$rie" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
printf '%-24s %12s %12s %14s %14s %12s\n' FUNCTION BOOTSTRAP ZIPPED INIT FIRST-INVOKE WALL
port=24000
for bootstrap in "$dir"/*/bootstrap; do
  fn=$(basename "$(dirname "$bootstrap")")
  zip=$(mktemp -d)/$fn.zip
  .venv/bin/python - "$bootstrap" "$zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open(sys.argv[1], "rb").read())
PY
  port=$((port + 2))
  log=$(mktemp)
  start=$(date +%s%N)
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y \
  PTC_AWS_ENDPOINT_URL=http://127.0.0.1:9 PTC_REGISTRY_ENDPOINT=http://127.0.0.1:9 PTC_AWS_MAX_ATTEMPTS=1 \
    setsid unshare --pid --fork --kill-child --mount-proc "$rie" \
      --runtime-interface-emulator-address 127.0.0.1:$port --runtime-api-address 127.0.0.1:$((port + 1)) \
      "$bootstrap" > "$log" 2>&1 &
  pid=$!
  out=""
  for _ in $(seq 1 300); do
    out=$(curl -s -m 5 -d '{"detail-type": "not an event this function handles"}' \
      "http://127.0.0.1:$port/2015-03-31/functions/function/invocations" || true)
    [ -n "$out" ] && break
    sleep 0.01
  done
  end=$(date +%s%N)
  # SIGKILL to unshare's process group: --kill-child then ends the emulator and the
  # function with it.
  kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  init=$(grep -o 'INIT REPORT(durationMs: [0-9.]*' "$log" | head -1 | sed -E 's/.*: //')
  first=$(grep -o 'REPORT RequestId.*' "$log" | head -1 | sed -E 's/.*\tDuration: ([0-9.]+) ms.*/\1/')
  printf '%-24s %10s K %10s K %11s ms %11s ms %9s ms\n' "$fn" \
    $(( $(stat -c %s "$bootstrap") / 1024 )) $(( $(stat -c %s "$zip") / 1024 )) "${init:-?}" "${first:-?}" $(( (end - start) / 1000000 ))
  rm -f "$log" "$zip"
done
