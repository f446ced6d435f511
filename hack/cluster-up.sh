#!/usr/bin/env bash
# Starts the local test cluster: a real kube-apiserver, etcd, kube-controller-manager,
# kube-scheduler and kwok controller as plain processes (kwokctl, binary runtime, 127.0.0.1),
# plus a real Prometheus on 127.0.0.1. Idempotent: a running cluster is reused.
# Prints `export` lines for KUBECONFIG and INFSCALE_PROMETHEUS_URL; also writes them to
# $INFSCALE_STATE/env, which hack/test.sh sources. Set INFSCALE_DRY_RUN=1 to print kwokctl's commands instead (proves that
# nothing is downloaded: every binary comes from the local cache). INFSCALE_KWOKCTL_EXTRA names a
# file of extra KwokctlConfiguration fields (componentsPatches) appended to the generated one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/tools.sh" all
export PATH="$(tools_path):$PATH"
export KWOK_WORKDIR="$INFSCALE_STATE/kwok"
mkdir -p "$INFSCALE_STATE" "$KWOK_WORKDIR"

write_kwokctl_config() {
  cat > "$INFSCALE_STATE/kwokctl.yaml" <<CONFIG
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $KUBERNETES_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: $KWOK_VERSION
  bindAddress: 127.0.0.1
  kubeApiserverPort: $KUBE_APISERVER_PORT
  kubeApiserverBinary: $(kube_bin kube-apiserver)
  kubeControllerManagerBinary: $(kube_bin kube-controller-manager)
  kubeSchedulerBinary: $(kube_bin kube-scheduler)
  kubectlBinary: $(kube_bin kubectl)
  etcdBinary: $(etcd_bin)
  kwokControllerBinary: $(kwok_bin kwok)
  cacheDir: $INFSCALE_STATE/kwok-cache
  nodeLeaseDurationSeconds: 40
CONFIG
  # Extra kwokctl settings (e.g. componentsPatches with flags; hack/bench-scale.sh's audit log).
  if [[ -n "${INFSCALE_KWOKCTL_EXTRA:-}" ]]; then
    cat "$INFSCALE_KWOKCTL_EXTRA" >> "$INFSCALE_STATE/kwokctl.yaml"
  fi
  echo --- >> "$INFSCALE_STATE/kwokctl.yaml"
  cat "$HACK_DIR/kwok/stages.yaml" >> "$INFSCALE_STATE/kwokctl.yaml"
}

cluster_ready() {
  [[ -f "$KUBECONFIG_PATH" ]] && kubectl --kubeconfig "$KUBECONFIG_PATH" --request-timeout=3s get --raw /readyz >/dev/null 2>&1
}

start_cluster() {
  write_kwokctl_config
  if [[ "${INFSCALE_DRY_RUN:-}" == 1 ]]; then
    local plan
    plan="$(kwokctl create cluster --name "$CLUSTER_NAME" --config "$INFSCALE_STATE/kwokctl.yaml" \
      --kubeconfig "$KUBECONFIG_PATH" --dry-run 2>&1)"
    printf '%s\n' "$plan"
    # kwokctl "downloads" each binary by copying it; every source must be a local path.
    if grep -E '^# Download ' <<<"$plan" | grep -vE '^# Download /'; then
      die "kwokctl would download something (above)"
    fi
    log "dry run: every binary comes from $TOOLS_DIR; nothing is downloaded"
    exit 0
  fi
  if cluster_ready; then
    log "cluster $CLUSTER_NAME already running"
    return 0
  fi
  # A half-started cluster from an interrupted run is removed first.
  kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
  kwokctl create cluster --name "$CLUSTER_NAME" --config "$INFSCALE_STATE/kwokctl.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" --wait 120s >"$INFSCALE_STATE/kwokctl.log" 2>&1 || {
    tail -40 "$INFSCALE_STATE/kwokctl.log" >&2
    die "kwokctl could not start the cluster (log: $INFSCALE_STATE/kwokctl.log)"
  }
  local deadline=$((SECONDS + 60))
  until kubectl --kubeconfig "$KUBECONFIG_PATH" get serviceaccount default >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the default service account never appeared"
    sleep 0.5
  done
}

step "start cluster $CLUSTER_NAME (kube-apiserver on 127.0.0.1:$KUBE_APISERVER_PORT)" start_cluster
"$HACK_DIR/prometheus-up.sh"

write_env_file "$KUBECONFIG_PATH"
