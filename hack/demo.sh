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
# shellcheck disable=SC1091
source "$INFSCALE_STATE/env"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
step "python environment" uv sync --locked --extra bench --quiet

install_chart() {
  # Helm installs crds/ only on the first install; applying them keeps them current on upgrades.
  kubectl apply --server-side --force-conflicts -f charts/infscale/crds/ >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  helm upgrade --install "$RELEASE" charts/infscale --namespace "$NAMESPACE" --create-namespace \
    --set replicas=0 --set rbac.createNodes=true --wait --timeout 2m >/dev/null
  helm status "$RELEASE" --namespace "$NAMESPACE" | sed -n '1,6p'
}
step "install the chart (release $RELEASE in $NAMESPACE; the operator runs locally)" install_chart

# A kubeconfig for the operator process holding only a bound token of the chart's ServiceAccount
# (TokenRequest API: kube-apiserver signs it with its --service-account-signing-key-file).
operator_kubeconfig() {
  local token server ca
  token="$(kubectl create token "$RELEASE" --namespace "$NAMESPACE" --duration 2h)"
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
step "mint a token for ServiceAccount $NAMESPACE/$RELEASE" operator_kubeconfig

uv run --locked --extra bench infscale demo --operator-kubeconfig "$OPERATOR_KUBECONFIG" "$@"
