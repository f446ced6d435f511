#!/usr/bin/env bash
# Shared helpers for hack/ scripts: pinned versions, cache paths, timed steps.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

INFSCALE_CACHE="${INFSCALE_CACHE:-$HOME/.cache/infscale}"
TOOLS_DIR="$INFSCALE_CACHE/tools"
# Runtime state of the local cluster (kubeconfig, Prometheus data, pids) lives outside the repo too.
INFSCALE_STATE="${INFSCALE_STATE:-$INFSCALE_CACHE/state}"
CLUSTER_NAME="${INFSCALE_CLUSTER_NAME:-infscale}"
KUBECONFIG_PATH="$INFSCALE_STATE/kubeconfig"
PROMETHEUS_PORT="${INFSCALE_PROMETHEUS_PORT:-19090}"
KUBE_APISERVER_PORT="${INFSCALE_APISERVER_PORT:-16443}"

export GOTOOLCHAIN=local

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# step "description" command...: runs a command and prints how long it took.
step() {
  local what="$1"; shift
  local start=$SECONDS
  log "==> $what"
  "$@"
  log "<== $what ($((SECONDS - start)) s)"
}

# Directory holding one tool build, keyed by name and version.
tool_dir() { echo "$TOOLS_DIR/$1-$2"; }

kube_bin() { echo "$(tool_dir kubernetes "$KUBERNETES_VERSION")/bin/$1"; }
etcd_bin() { echo "$(tool_dir etcd "$ETCD_VERSION")/bin/etcd"; }
kwok_bin() { echo "$(tool_dir kwok "$KWOK_VERSION")/bin/$1"; }
helm_bin() { echo "$(tool_dir helm "$HELM_VERSION")/bin/helm"; }
prometheus_bin() { echo "$(tool_dir prometheus debian)/bin/prometheus"; }

# PATH with every pinned tool first, so scripts and tests never pick up a system copy.
tools_path() {
  echo "$(tool_dir kubernetes "$KUBERNETES_VERSION")/bin:$(tool_dir etcd "$ETCD_VERSION")/bin:$(tool_dir kwok "$KWOK_VERSION")/bin:$(tool_dir helm "$HELM_VERSION")/bin:$(tool_dir prometheus debian)/bin:$TOOLS_DIR/uv-$UV_VERSION/bin"
}

PROM_DIR="$INFSCALE_STATE/prometheus"
prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

# write_env_file KUBECONFIG: the environment the tests read, printed and saved to $INFSCALE_STATE/env.
write_env_file() {
  cat > "$INFSCALE_STATE/env" <<ENV
export KUBECONFIG=$1
export INFSCALE_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export INFSCALE_PROMETHEUS_TARGETS_DIR=$PROM_DIR/targets
export PATH=$(tools_path):\$PATH
ENV
  cat "$INFSCALE_STATE/env"
}
