#!/usr/bin/env bash
# Builds the Go tools the tests run, from one Go module under testbed/ (default: kube), once per
# go.sum: the binaries are cached outside the checkout, in $TESTBED_CACHE (default
# ~/.cache/modelstudio-testbed/<module>-<hash of go.mod+go.sum+binaries>; the control plane keeps its old
# folder name, <hash>, so a warm cache stays warm).
#   scripts/build-testbed.sh          the control plane: kube-apiserver, kube-controller-manager,
#                                     kubectl 1.37 and etcd (testbed/kube)
#   scripts/build-testbed.sh MODULE   every binary named in testbed/MODULE/binaries, a line each:
#                                     "<name> <Go package> [-X flags] [tags=TAG,TAG]" (the
#                                     tags= word, if any, is go build's -tags)
# Prints the folder holding the binaries on its last line of stdout.
set -euo pipefail
module="${1:-kube}"
case "$module" in
  */* | .* | "") echo "build-testbed: $module is not a module folder under testbed/" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../testbed/$module"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
# A tool module's key covers its binaries list and its own Go sources too: a new binary, -X flag
# or change to a program of the module (./cmd/...) is a new build.
[ "$module" = kube ] ||
  key="$module-$( (cat go.mod go.sum binaries; find . -name '*.go' -type f | LC_ALL=C sort | xargs -r cat) | sha256sum | cut -c1-16)"
out="${TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelstudio-testbed}/$key"

# Each line: the binary's name, its Go package, and the -X flags it is linked with (if any).
V=v1.37.2
VERSION_X="-X k8s.io/component-base/version.gitVersion=$V -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
if [ "$module" = kube ]; then
  targets="kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver $VERSION_X
kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager $VERSION_X
kubectl k8s.io/kubernetes/cmd/kubectl $VERSION_X
etcd go.etcd.io/etcd/server/v3"
else
  targets=$(grep -v '^\s*\(#\|$\)' binaries)
fi
bins=$(awk '{print $1}' <<<"$targets")

complete() {
  for b in $bins; do [ -x "$out/$b" ] || return 1; done
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

command -v go >/dev/null || { echo "build-testbed: Go is needed to build testbed/$module" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
start=$(date +%s)
echo "build-testbed: building testbed/$module into $out (one-time; minutes)" >&2
go mod download >&2
while read -r name package rest; do
  flags="" tags=""
  for word in $rest; do
    case "$word" in
      tags=*) tags="${word#tags=}" ;;
      *) flags="$flags $word" ;;
    esac
  done
  # shellcheck disable=SC2086 # the -X flags are words of their own
  go build -tags "$tags" -ldflags "-s -w$flags" -o "$out.tmp/$name" "$package" >&2
done <<<"$targets"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "build-testbed: built testbed/$module in $(( $(date +%s) - start )) s" >&2
echo "$out"
