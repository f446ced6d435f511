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
  echo "$(tool_dir kubernetes "$KUBERNETES_VERSION")/bin:$(tool_dir etcd "$ETCD_VERSION")/bin:$(tool_dir kwok "$KWOK_VERSION")/bin:$(tool_dir helm "$HELM_VERSION")/bin:$(tool_dir prometheus debian)/bin:$TOOLS_DIR/uv-$UV_VERSION/bin:$(tool_dir adapter "$PROMETHEUS_ADAPTER_VERSION")/bin:$(tool_dir karpenter "$KARPENTER_VERSION")/bin"
}

PROM_DIR="$INFSCALE_STATE/prometheus"
# A benchmark's results path, absolute (its directory made), as its first argument gives it or
# the default in $2; prints the path. The caller shifts the argument when one was given.
results_path() {
  local given="$1" default="$2"
  [[ -n "$given" && "$given" != -* ]] || { echo "$PWD/$default"; return; }
  mkdir -p "$(dirname "$given")" && echo "$(cd "$(dirname "$given")" && pwd)/$(basename "$given")"
}

# uv, built once, on PATH for a benchmark (with the system Python only).
use_uv() {
  "$HACK_DIR/tools.sh" uv >&2
  export PATH="$TOOLS_DIR/uv-$UV_VERSION/bin:$PATH" UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
}

prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

# write_env_file KUBECONFIG: the environment the tests read, printed and saved to $INFSCALE_STATE/env.
write_env_file() {
  cat > "$INFSCALE_STATE/env" <<ENV
export KUBECONFIG=$1
export INFSCALE_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export INFSCALE_PROMETHEUS_TARGETS_DIR=$PROM_DIR/targets
export INFSCALE_GATEWAY_API_CRDS=$(tool_dir gateway "$GATEWAY_API_VERSION")/crds
export PATH=$(tools_path):\$PATH
ENV
  cat "$INFSCALE_STATE/env"
}

# The chart and the operator's credentials, for scripts that run the operator locally as the chart's
# ServiceAccount (demo, bench-scale). They read RELEASE, NAMESPACE and OPERATOR_KUBECONFIG.

# prepare_local_operator: after cluster-up.sh, the cluster's environment, the Python environment,
# the chart and a kubeconfig holding only the chart's ServiceAccount token.
prepare_local_operator() {
  # shellcheck disable=SC1091
  source "$INFSCALE_STATE/env"
  export UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
  step "python environment" uv sync --locked --extra bench --quiet
  step "install the chart (release $RELEASE in $NAMESPACE; the operator runs locally)" install_chart
  step "mint a token for ServiceAccount $NAMESPACE/$RELEASE" operator_kubeconfig
}
install_chart() {
  # Helm installs crds/ only on the first install; applying them keeps them current on upgrades.
  kubectl apply --server-side --force-conflicts -f charts/infscale/crds/ >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  helm upgrade --install "$RELEASE" charts/infscale --namespace "$NAMESPACE" --create-namespace \
    --set replicas=0 --set rbac.createNodes=true --wait --timeout 2m >/dev/null
  helm status "$RELEASE" --namespace "$NAMESPACE" | sed -n '1,6p'
}

# A kubeconfig for the operator process holding only a bound token of the chart's ServiceAccount
# (TokenRequest API: kube-apiserver signs it with its --service-account-signing-key-file).
operator_kubeconfig() {
  local token server ca
  token="$(kubectl create token "$RELEASE" --namespace "$NAMESPACE" --duration "${OPERATOR_TOKEN_DURATION:-2h}")"
  server="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kubectl config view --raw --minify --flatten \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  (
    umask 077
    cat > "$OPERATOR_KUBECONFIG" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $NAMESPACE-$RELEASE
  user: {token: "$token"}
contexts:
- name: operator
  context: {cluster: local, user: $NAMESPACE-$RELEASE, namespace: $NAMESPACE}
current-context: operator
KUBECONFIG
  )
  local who
  who="$(kubectl --kubeconfig "$OPERATOR_KUBECONFIG" auth whoami -o jsonpath='{.status.userInfo.username}')"
  [[ "$who" == "system:serviceaccount:$NAMESPACE:$RELEASE" ]] || die "the operator's kubeconfig authenticates as '$who'"
  log "    the operator authenticates as $who ($OPERATOR_KUBECONFIG)"
  if kubectl --kubeconfig "$OPERATOR_KUBECONFIG" auth can-i delete secrets -A >/dev/null 2>&1; then
    die "the chart's ServiceAccount may delete Secrets: its RBAC is not least privilege"
  fi
}
