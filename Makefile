# Entry points; the README explains each. Everything runs on a fresh Debian machine.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/.venv-infra/bin:$(PATH)
ARCH ?= x86_64

.PHONY: test demo setup sam-build package-sizes fuzz

setup:
	bash scripts/setup.sh

# The README's test command (what CI runs, then fmt and clippy).
test:
	bash scripts/test.sh

# The local demo.
demo:
	bash scripts/demo.sh

# `sam build` of the four functions with cargo-lambda (installed from PyPI with its zig).
# x86_64 here: the aarch64 Rust standard library is not installable from the registries this
# machine reaches; build arm64 (the template's default) where you deploy, with ARCH=arm64.
sam-build: setup
	.venv-infra/bin/pip install -q --disable-pip-version-check cargo-lambda==1.9.2
	sam build --beta-features --parameter-overrides Architecture=$(ARCH)

# Each built function zipped as Lambda receives it, and its cold start under the emulator.
package-sizes:
	bash scripts/package-sizes.sh .aws-sam/build

# Fuzz the parsers (references, routing, settings, policies, manifests, events) far longer
# than the test command does: PROPTEST_CASES cases per property, bounded by FUZZ_SECONDS.
# Failing cases are kept in tests/tests/fuzz.proptest-regressions and replayed by the tests.
PROPTEST_CASES ?= 100000
FUZZ_SECONDS ?= 900
fuzz:
	PROPTEST_CASES=$(PROPTEST_CASES) timeout $(FUZZ_SECONDS) cargo test --locked -p ptc-tests --test fuzz -- --test-threads 2
