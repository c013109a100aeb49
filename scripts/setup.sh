#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine:
#   - Debian: docker-registry (CNCF distribution, the upstream registries), python3-venv;
#   - a Python venv in .venv with the stack's requirements (moto server, cbor2, bcrypt);
#   - the Rust toolchain pinned in rust-toolchain.toml must already be there (rustup).
# Safe to run again: it skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Debian package starts a registry on :5000 through systemd where systemd runs; the stack
# starts its own on free loopback ports and does not need that one.

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum tests/stack/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: pip install -r tests/stack/requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r tests/stack/requirements.txt
  echo "$want" > "$stamp"
fi

# The AWS Lambda Runtime Interface Emulator: the real Lambda Runtime API, shipped inside the
# aws-sam-cli wheel. Only that binary is taken from the wheel; it runs without Docker.
if [ ! -x .venv/bin/aws-lambda-rie ]; then
  echo "setup: extracting aws-lambda-rie from the aws-sam-cli wheel"
  tmp=$(mktemp -d)
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$tmp" "aws-sam-cli==${SAM_CLI_VERSION:-1.170.0}"
  case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=x86_64 ;; esac
  .venv/bin/python - "$tmp"/aws_sam_cli-*.whl "samcli/local/rapid/aws-lambda-rie-$arch" .venv/bin/aws-lambda-rie <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[3], "wb") as out:
    out.write(wheel.read(sys.argv[2]))
os.chmod(sys.argv[3], 0o755)
PY
  rm -rf "$tmp"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (toolchain pinned in rust-toolchain.toml)" >&2
  exit 1
fi
