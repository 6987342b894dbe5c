#!/usr/bin/env bash
# Runs the fault-injection suite (tests/reliability.rs) one test at a time and writes its
# figures to docs/reliability.md. Rerun it any time; RELIABILITY_SEED changes the kill points.
# The tests run on the real control plane (kube-apiserver 1.37, etcd, kube-controller-manager)
# that scripts/build-testbed.sh builds once and caches; RELIABILITY_EMBEDDED=1 runs them on the
# embedded in-memory API server instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RELIABILITY_EMBEDDED:-}" = 1 ]; then
  unset MODELSTUDIO_TESTBED_BIN
elif [ -z "${MODELSTUDIO_TESTBED_BIN:-}" ]; then
  MODELSTUDIO_TESTBED_BIN="$(./scripts/build-testbed.sh | tail -n 1)"
  export MODELSTUDIO_TESTBED_BIN
fi
out_dir=target/reliability
rm -rf "$out_dir"
mkdir -p "$out_dir" docs
start=$(date +%s)
RELIABILITY_REPORT_DIR="$PWD/$out_dir" cargo test --locked --test reliability -- --test-threads 1 --nocapture
took=$(( $(date +%s) - start ))
# Each section names the API server it ran on; they all ran on the same one.
server=$(grep -h '^| API server |' "$out_dir"/*.md | sort -u | sed 's/^| API server | \(.*\) |$/\1/')
{
  echo "# Reliability figures"
  echo
  echo "Produced by \`scripts/reliability.sh\` (the fault-injection suite \`tests/reliability.rs\`, one test at a time,"
  echo "debug build, ${took} s in all) on $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "on the ${server}."
  echo "Each test starts its own Kubernetes API (\`modelstudio_testbed::Cluster::start()\`: the real control plane"
  echo "built by \`scripts/build-testbed.sh\` when \`MODELSTUDIO_TESTBED_BIN\` names it, else the embedded API server)"
  echo "and the Model Studio simulator on 127.0.0.1, runs the real controller binary as a separate process and"
  echo "asserts what the tables report; \`scripts/test.sh\` runs the same tests in CI, on the real control plane."
  echo
  for f in "$out_dir"/*.md; do
    cat "$f"
    echo
  done
} > docs/reliability.md
echo "wrote docs/reliability.md (on the ${server})"
