#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine:
#   - Debian: docker-registry (CNCF distribution, the upstream registries), python3-venv, skopeo
#     (the real-tool check of ptc map --format registries-conf);
#   - a Python venv in .venv with the stack's requirements (moto server, cbor2, bcrypt);
#   - the template's checkers: aws-sam-cli and cfn-lint in .venv-infra, checkov in .venv-checkov;
#   - the Rust toolchain pinned in rust-toolchain.toml must already be there (rustup).
# Safe to run again: it skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || [ -x /usr/bin/skopeo ] || need_apt+=(skopeo)
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

# The template's checks: SAM CLI and cfn-lint in their own venv (their pins do not mix with
# moto's). The SAM CLI also carries the AWS Lambda Runtime Interface Emulator, the real Lambda
# Runtime API the function tests use; it runs without Docker.
if [ ! -x .venv-infra/bin/python ]; then
  echo "setup: creating .venv-infra"
  python3 -m venv .venv-infra
fi
stamp=.venv-infra/.requirements.sha
want=$(sha256sum infra/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: pip install -r infra/requirements.txt (aws-sam-cli, cfn-lint)"
  .venv-infra/bin/pip install -q --disable-pip-version-check -r infra/requirements.txt
  echo "$want" > "$stamp"
fi
# checkov, the template's deploy-time rules, in a venv of its own: it pins boto3 and networkx
# to versions that aws-sam-cli's do not mix with.
if [ ! -x .venv-checkov/bin/python ]; then
  echo "setup: creating .venv-checkov"
  python3 -m venv .venv-checkov
fi
stamp=.venv-checkov/.requirements.sha
want=$(sha256sum infra/requirements-checkov.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: pip install -r infra/requirements-checkov.txt (checkov)"
  .venv-checkov/bin/pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
  echo "$want" > "$stamp"
fi
if [ ! -x .venv/bin/aws-lambda-rie ]; then
  case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=x86_64 ;; esac
  rie=$(.venv-infra/bin/python -c 'import os, samcli; print(os.path.dirname(samcli.__file__))')/local/rapid/aws-lambda-rie-$arch
  install -m 0755 "$rie" .venv/bin/aws-lambda-rie
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (toolchain pinned in rust-toolchain.toml)" >&2
  exit 1
fi
