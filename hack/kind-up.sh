#!/usr/bin/env bash
# For machines WITH Docker: a kind cluster with the kwok controller inside it (fake GPU nodes,
# the same Stages as the local cluster) and the same local Prometheus, so the whole test suite runs
# against kind:  hack/kind-up.sh && source ~/.cache/infscale/state/env && uv run pytest tests
# Needs Docker and network access to GitHub (kwok's kustomization) and a registry (node image).
# Remove it with: kind delete cluster --name infscale
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "kind needs a running Docker engine"

KIND_BIN="$(tool_dir kind "$KIND_VERSION")/bin/kind"
if [[ ! -x "$KIND_BIN" ]]; then
  step "build kind $KIND_VERSION" env GOBIN="$(dirname "$KIND_BIN")" go install "sigs.k8s.io/kind@$KIND_VERSION"
fi
"$HACK_DIR/tools.sh" kubernetes
export PATH="$(tools_path):$PATH"
mkdir -p "$INFSCALE_STATE"
KIND_KUBECONFIG="$INFSCALE_STATE/kind-kubeconfig"

if ! "$KIND_BIN" get clusters | grep -qx "$CLUSTER_NAME"; then
  step "create kind cluster $CLUSTER_NAME" "$KIND_BIN" create cluster --name "$CLUSTER_NAME" \
    --kubeconfig "$KIND_KUBECONFIG" --wait 120s
fi
"$KIND_BIN" get kubeconfig --name "$CLUSTER_NAME" > "$KIND_KUBECONFIG"
export KUBECONFIG="$KIND_KUBECONFIG"
step "install the kwok controller $KWOK_VERSION and infscale's Stages" bash -c "
  kubectl apply -k 'https://github.com/kubernetes-sigs/kwok/kustomize/kwok?ref=$KWOK_VERSION'
  kubectl -n kube-system rollout status deployment/kwok-controller --timeout=180s
  kubectl apply -f '$HACK_DIR/kwok/stages.yaml'"
"$HACK_DIR/prometheus-up.sh"
write_env_file "$KIND_KUBECONFIG"
