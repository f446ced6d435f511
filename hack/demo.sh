#!/usr/bin/env bash
# The demo, one command: builds what is missing, starts the local cluster and Prometheus,
# installs the CRDs, applies three node pools and two services (hack/demo/demo.yaml, time
# compressed), then runs the operator and the model-server EMULATOR on a trace with a live view,
# a report and a PNG timeline (demo-timeline.png).
# Usage: hack/demo.sh [--trace synthetic|poisson:RPS|FILE] [--speed 20] [--duration 240]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$HACK_DIR/cluster-up.sh" >/dev/null
# shellcheck disable=SC1091
source "$INFSCALE_STATE/env"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
step "python environment" uv sync --locked --quiet
step "install the CRDs" kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
step "apply the demo's pools and services" kubectl apply -f hack/demo/demo.yaml
uv run --locked infscale demo "$@"
