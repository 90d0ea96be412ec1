#!/usr/bin/env bash
# Builds kube-apiserver, etcd and the client-go peer from the pins in go.mod,
# into a cache outside the repository keyed by a hash of the pins and the
# peer's source, so a rebuild happens only when one of them changes.
# Prints the directory holding the three binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
key=$(cat go.mod go.sum peer/*.go | sha256sum | cut -c1-16)
out="${LEADER_RUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leader-run}/control-plane/$key"
if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/etcd" ] || [ ! -x "$out/leader-peer" ]; then
  command -v go >/dev/null || { echo "build.sh: Go is not on PATH; install Go >= 1.26 to build the test control plane" >&2; exit 1; }
  echo "building the control plane into $out (a cold build takes several minutes)" >&2
  mkdir -p "$out.tmp"
  start=$(date +%s)
  go build -trimpath -o "$out.tmp/leader-peer" ./peer
  go build -trimpath -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  go build -trimpath -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built in $(( $(date +%s) - start ))s" >&2
fi
echo "$out"
