#!/usr/bin/env bash
# Runs the fault-injection suite (tests/reliability.rs) one test at a time and writes its
# figures to docs/reliability.md. Rerun it any time; RELIABILITY_SEED changes the kill points.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=target/reliability
rm -rf "$out_dir"
mkdir -p "$out_dir" docs
RELIABILITY_REPORT_DIR="$PWD/$out_dir" cargo test --locked --test reliability -- --test-threads 1 --nocapture
{
  echo "# Reliability figures"
  echo
  echo "Produced by \`scripts/reliability.sh\` (the fault-injection suite \`tests/reliability.rs\`, one test at a time,"
  echo "debug build) on $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB."
  echo "Each test starts the in-memory Kubernetes API server and the Model Studio simulator on 127.0.0.1,"
  echo "runs the real controller binary as a separate process and asserts what the tables report;"
  echo "\`scripts/test.sh\` runs the same tests in CI."
  echo
  for f in "$out_dir"/*.md; do
    cat "$f"
    echo
  done
} > docs/reliability.md
echo "wrote docs/reliability.md"
