#!/usr/bin/env bash
# Builds kube-apiserver, etcd and the client-go peer from the pins in go.mod, into a cache
# outside the repository. The servers are keyed by a hash of go.mod and go.sum, the peer by
# that and its source too, so changing the peer does not rebuild the servers. Prints the
# directory holding the three (the servers linked in from their own directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
cache="${LEADER_RUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leader-run}/control-plane"
pins=$(cat go.mod go.sum | sha256sum | cut -c1-16)
key=$(cat go.mod go.sum peer/*.go | sha256sum | cut -c1-16)
servers="$cache/servers-$pins"
out="$cache/$key"
need() { command -v go >/dev/null || { echo "build.sh: Go is not on PATH; install Go >= 1.26 to build the test control plane" >&2; exit 1; }; }
if [ ! -x "$servers/kube-apiserver" ] || [ ! -x "$servers/etcd" ]; then
  need
  echo "building etcd and kube-apiserver into $servers (a cold build takes several minutes)" >&2
  rm -rf "$servers.tmp" && mkdir -p "$servers.tmp"
  start=$(date +%s)
  go build -trimpath -o "$servers.tmp/etcd" go.etcd.io/etcd/server/v3
  go build -trimpath -o "$servers.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  rm -rf "$servers" && mv "$servers.tmp" "$servers"
  echo "built the servers in $(( $(date +%s) - start ))s" >&2
fi
if [ ! -x "$out/leader-peer" ]; then
  need
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  go build -trimpath -o "$out.tmp/leader-peer" ./peer
  ln -s "$servers/etcd" "$out.tmp/etcd"
  ln -s "$servers/kube-apiserver" "$out.tmp/kube-apiserver"
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$out"
