#!/usr/bin/env bash
# The whole test suite: unit tests, and end-to-end tests against the local stack that the
# tests start and stop themselves (they fail, never skip, when it cannot start).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets --locked
