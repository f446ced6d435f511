#!/usr/bin/env bash
# The demo, one command: builds what is missing, starts the local cluster and Prometheus,
# installs the Helm chart (CRDs, RBAC, ServiceAccount; its operator Deployment at 0 replicas, as
# no image exists here), then runs the operator locally AS the chart's ServiceAccount (a token from
# the TokenRequest API in a kubeconfig of its own, so the chart's RBAC is what it gets), applies
# examples/ (three node pools, two services with different SLOs) with every duration divided by
# --speed, and runs the model-server EMULATOR on a trace with a live view, a report and a PNG
# timeline (demo-timeline.png).
# Usage: hack/demo.sh [--trace synthetic|poisson:RPS|FILE] [--speed 15] [--duration 240] [--out F]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
RELEASE=infscale NAMESPACE=infscale-system
OPERATOR_KUBECONFIG="$INFSCALE_STATE/demo-operator.kubeconfig"
"$HACK_DIR/cluster-up.sh" >/dev/null
prepare_local_operator

uv run --locked --extra bench infscale demo --operator-kubeconfig "$OPERATOR_KUBECONFIG" "$@"
