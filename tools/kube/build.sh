#!/usr/bin/env bash
# Builds kube-apiserver and etcd for testenv/kubeapi into the cache directory
# (GITXDS_KUBE_BIN, default ~/.cache/gitxds/kube-v1.37.2), outside the
# repository. Does nothing when both binaries are there already (FORCE=1
# rebuilds). kube-apiserver takes several minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"
dir="${GITXDS_KUBE_BIN:-$HOME/.cache/gitxds/kube-v1.37.2}"
if [ -z "${FORCE:-}" ] && [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; then
  echo "kube binaries cached in $dir"
  exit 0
fi
mkdir -p "$dir"
start=$(date +%s)
# Built to a temporary name and renamed, so an interrupted build leaves no
# binary that looks complete.
go -C etcd build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" . && mv "$dir/etcd.tmp" "$dir/etcd"
echo "etcd built in $(( $(date +%s) - start ))s"
go build -trimpath -ldflags "-s -w" -o "$dir/kube-apiserver.tmp" ./kube-apiserver && mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
echo "etcd and kube-apiserver built in $(( $(date +%s) - start ))s into $dir"
