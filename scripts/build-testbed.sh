#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl 1.37 and etcd)
# from testbed/kube's Go module, once per go.sum: the binaries are cached outside the checkout,
# in $TESTBED_CACHE (default ~/.cache/modelstudio-testbed/<hash of go.mod+go.sum>).
# Prints the folder holding the binaries on its last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/../testbed/kube"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
out="${TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelstudio-testbed}/$key"
bins=(kube-apiserver kube-controller-manager kubectl etcd)

complete() {
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}
if complete; then
  echo "$out"
  exit 0
fi

# Callers that start at once (parallel tests, helpers) wait for one build instead of racing on it.
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
if complete; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-testbed: Go is needed to build the test control plane" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
V=v1.37.2
LDF="-s -w -X k8s.io/component-base/version.gitVersion=$V -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
start=$(date +%s)
echo "build-testbed: building the control plane into $out (one-time; several minutes)" >&2
go mod download >&2
go build -ldflags "$LDF" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -ldflags "$LDF" -o "$out.tmp/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager >&2
go build -ldflags "$LDF" -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl >&2
go build -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "build-testbed: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
