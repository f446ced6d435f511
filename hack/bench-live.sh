#!/usr/bin/env bash
# Live benchmark: infscale against the real autoscalers on the same emulated traffic. One trace
# is replayed through the model-server EMULATOR once for infscale (replicas and node pools, the
# operator running locally as the chart's ServiceAccount) and once per HPA target for
# kube-controller-manager's own HPA on prometheus-adapter with the real Karpenter (kwok provider)
# bringing the nodes; each run on fresh kwok nodes of a cluster of its own. Prints a table,
# writes JSON and a PNG. A measurement, not a test.
# Usage: hack/bench-live.sh [OUT.json] [--trace synthetic|FILE] [--speed 15] [--duration 240]
#                           [--hpa-fractions 0.5,0.75,1.0] [--policies infscale,hpa]
: "${INFSCALE_CACHE:=$HOME/.cache/infscale}"
export INFSCALE_CACHE
export INFSCALE_CLUSTER_NAME="${INFSCALE_CLUSTER_NAME:-infscale-live}"
export INFSCALE_STATE="${INFSCALE_STATE:-$INFSCALE_CACHE/state-live}"
export INFSCALE_APISERVER_PORT="${INFSCALE_APISERVER_PORT:-16888}"
export INFSCALE_PROMETHEUS_PORT="${INFSCALE_PROMETHEUS_PORT:-19488}"
export INFSCALE_SCRAPE_INTERVAL="${INFSCALE_SCRAPE_INTERVAL:-1s}"  # rates over 5 s (bench_live.py)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
OUT="bench-live.json"
if [[ $# -gt 0 && "$1" != --* ]]; then OUT="$1"; shift; fi
SPEED=15
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[$i]}" == --speed ]] && SPEED="${args[$((i + 1))]}"
done
RELEASE=infscale NAMESPACE=infscale-system
OPERATOR_KUBECONFIG="$INFSCALE_STATE/operator.kubeconfig"
mkdir -p "$INFSCALE_STATE"

# The HPA decides every 15 s of trace time, as the operator does (kube-controller-manager's
# --horizontal-pod-autoscaler-sync-period; its default is 15 s of wall time).
SYNC_MS=$(python3 -c "print(max(500, round(15000 / $SPEED)))")
cat > "$INFSCALE_STATE/kwokctl-extra.yaml" <<EXTRA
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - {key: horizontal-pod-autoscaler-sync-period, value: "${SYNC_MS}ms"}
EXTRA
export INFSCALE_KWOKCTL_EXTRA="$INFSCALE_STATE/kwokctl-extra.yaml"

"$HACK_DIR/tools.sh" adapter karpenter
"$HACK_DIR/cluster-down.sh" >/dev/null 2>&1 || true
trap '"$HACK_DIR/cluster-down.sh" >/dev/null 2>&1 || true' EXIT
step "start cluster $CLUSTER_NAME (HPA sync every ${SYNC_MS} ms)" "$HACK_DIR/cluster-up.sh" >/dev/null
prepare_local_operator
uv run --locked --extra bench infscale bench-live "$OUT" \
  --operator-kubeconfig "$OPERATOR_KUBECONFIG" "$@"
