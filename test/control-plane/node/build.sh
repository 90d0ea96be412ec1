#!/usr/bin/env bash
# Builds the node's Kubernetes binaries (kubelet, kube-controller-manager, kube-scheduler) from
# the pins in this sibling module's go.mod, so the normal suite's build key (../go.mod) is
# unchanged. Cached beside the apiserver build, keyed by a hash of go.mod and go.sum: rebuilt only
# when a pin changes. Prints the directory holding the three.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
cache="${LEADER_RUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leader-run}/control-plane"
pins=$(cat go.mod go.sum | sha256sum | cut -c1-16)
out="$cache/node-$pins"
if [ ! -x "$out/kubelet" ] || [ ! -x "$out/kube-controller-manager" ] || [ ! -x "$out/kube-scheduler" ]; then
  command -v go >/dev/null || { echo "node/build.sh: Go is not on PATH; install Go >= 1.26 to build the test node" >&2; exit 1; }
  echo "building kubelet, kube-controller-manager and kube-scheduler into $out (a cold build takes about 5 minutes)" >&2
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  start=$(date +%s)
  for cmd in kubelet kube-controller-manager kube-scheduler; do
    t=$(date +%s)
    go build -trimpath -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    echo "built $cmd in $(( $(date +%s) - t ))s" >&2
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built the node in $(( $(date +%s) - start ))s" >&2
fi
echo "$out"
