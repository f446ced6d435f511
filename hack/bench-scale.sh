#!/usr/bin/env bash
# Scale benchmark: the full operator (kopf handlers, Prometheus reads, planner, API writes), run
# locally AS the chart's ServiceAccount as in the demo, against 100, 1,000 and 10,000
# InferenceServices on a cluster of its own (kwok pods; EMULATED model servers load every one).
# Per cycle: wall time, operator CPU and RSS, API requests by verb (the API server's audit log,
# the operator's user only), PromQL queries; then a load step on one service. Prints a table,
# writes JSON and a PNG. A measurement, not a test.
# Usage: hack/bench-scale.sh [OUT.json] [--counts 100,1000,10000] [--cycles 4] [--interval 15]
: "${INFSCALE_CACHE:=$HOME/.cache/infscale}"
export INFSCALE_CACHE
export INFSCALE_CLUSTER_NAME="${INFSCALE_CLUSTER_NAME:-infscale-scale}"
export INFSCALE_STATE="${INFSCALE_STATE:-$INFSCALE_CACHE/state-scale}"
export INFSCALE_APISERVER_PORT="${INFSCALE_APISERVER_PORT:-16777}"
export INFSCALE_PROMETHEUS_PORT="${INFSCALE_PROMETHEUS_PORT:-19377}"
export INFSCALE_SCRAPE_INTERVAL="${INFSCALE_SCRAPE_INTERVAL:-15s}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
OUT="bench-scale.json"
if [[ $# -gt 0 && "$1" != --* ]]; then OUT="$1"; shift; fi
RELEASE=infscale NAMESPACE=infscale-system OPERATOR_TOKEN_DURATION=12h
OPERATOR_KUBECONFIG="$INFSCALE_STATE/operator.kubeconfig"
AUDIT_LOG="$INFSCALE_STATE/audit.log"
mkdir -p "$INFSCALE_STATE"

# Audit only the operator's requests (metadata: verb, resource, time; one file, never rotated at
# the default 100 MB, which 10,000 services pass within the hour); the controller-manager
# gets the API rate a fleet of 10,000 Deployments needs to be created within minutes.
cat > "$INFSCALE_STATE/audit-policy.yaml" <<POLICY
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  users: ["system:serviceaccount:$NAMESPACE:$RELEASE"]
- level: None
POLICY
cat > "$INFSCALE_STATE/kwokctl-extra.yaml" <<EXTRA
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: audit-policy-file, value: "$INFSCALE_STATE/audit-policy.yaml"}
  - {key: audit-log-path, value: "$AUDIT_LOG"}
  - {key: audit-log-maxsize, value: "100000"}
  - {key: max-requests-inflight, value: "800"}
  - {key: max-mutating-requests-inflight, value: "400"}
- name: kube-controller-manager
  extraArgs:
  - {key: kube-api-qps, value: "300"}
  - {key: kube-api-burst, value: "600"}
  - {key: concurrent-deployment-syncs, value: "20"}
  - {key: concurrent-replicaset-syncs, value: "20"}
EXTRA
export INFSCALE_KWOKCTL_EXTRA="$INFSCALE_STATE/kwokctl-extra.yaml"

# A fresh cluster each run (the audit log and the fleet start empty); removed at the end.
"$HACK_DIR/cluster-down.sh" >/dev/null 2>&1 || true
rm -f "$AUDIT_LOG"
trap '"$HACK_DIR/cluster-down.sh" >/dev/null 2>&1 || true' EXIT
step "start cluster $CLUSTER_NAME with an audit log of the operator's requests" \
  "$HACK_DIR/cluster-up.sh" >/dev/null
prepare_local_operator

uv run --locked --extra bench python -m infscale.cli.bench_scale --out "$OUT" \
  --operator-kubeconfig "$OPERATOR_KUBECONFIG" --audit-log "$AUDIT_LOG" "$@"
