#!/usr/bin/env bash
# Starts the local test cluster: a real kube-apiserver, etcd, kube-controller-manager,
# kube-scheduler and kwok controller as plain processes (kwokctl, binary runtime, 127.0.0.1),
# plus a real Prometheus on 127.0.0.1. Idempotent: a running cluster is reused.
# Prints `export` lines for KUBECONFIG and INFSCALE_PROMETHEUS_URL; also writes them to
# $INFSCALE_STATE/env. Set INFSCALE_DRY_RUN=1 to print kwokctl's commands instead (proves that
# nothing is downloaded: every binary comes from the local cache).
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
---
CONFIG
  cat "$HACK_DIR/kwok/stages.yaml" >> "$INFSCALE_STATE/kwokctl.yaml"
}

cluster_ready() {
  [[ -f "$KUBECONFIG_PATH" ]] && kubectl --kubeconfig "$KUBECONFIG_PATH" --request-timeout=3s get --raw /readyz >/dev/null 2>&1
}

start_cluster() {
  write_kwokctl_config
  if [[ "${INFSCALE_DRY_RUN:-}" == 1 ]]; then
    kwokctl create cluster --name "$CLUSTER_NAME" --config "$INFSCALE_STATE/kwokctl.yaml" --dry-run
    exit 0
  fi
  if cluster_ready; then
    log "cluster $CLUSTER_NAME already running"
    return 0
  fi
  # A half-started cluster from an interrupted run is removed first.
  kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
  kwokctl create cluster --name "$CLUSTER_NAME" --config "$INFSCALE_STATE/kwokctl.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" --wait 120s
  local deadline=$((SECONDS + 60))
  until kubectl --kubeconfig "$KUBECONFIG_PATH" get serviceaccount default >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the default service account never appeared"
    sleep 0.5
  done
}

PROM_DIR="$INFSCALE_STATE/prometheus"
prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

start_prometheus() {
  if prometheus_ready; then
    log "Prometheus already running on 127.0.0.1:$PROMETHEUS_PORT"
    return 0
  fi
  mkdir -p "$PROM_DIR/targets" "$PROM_DIR/data"
  # Tests and the emulator add scrape targets by writing JSON files into targets/.
  cat > "$PROM_DIR/prometheus.yml" <<CONFIG
global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
- job_name: prometheus
  static_configs: [{targets: ['127.0.0.1:$PROMETHEUS_PORT']}]
- job_name: file-targets
  file_sd_configs:
  - files: ['$PROM_DIR/targets/*.json']
    refresh_interval: 2s
CONFIG
  nohup prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle \
    --storage.tsdb.retention.time=1d >"$PROM_DIR/prometheus.log" 2>&1 &
  echo $! > "$PROM_DIR/pid"
  local deadline=$((SECONDS + 60))
  until prometheus_ready; do
    kill -0 "$(cat "$PROM_DIR/pid")" 2>/dev/null || { tail -20 "$PROM_DIR/prometheus.log"; die "Prometheus exited"; }
    ((SECONDS < deadline)) || die "Prometheus not ready after 60 s (log: $PROM_DIR/prometheus.log)"
    sleep 0.3
  done
}

step "start cluster $CLUSTER_NAME (kube-apiserver on 127.0.0.1:$KUBE_APISERVER_PORT)" start_cluster
step "start Prometheus on 127.0.0.1:$PROMETHEUS_PORT" start_prometheus

cat > "$INFSCALE_STATE/env" <<ENV
export KUBECONFIG=$KUBECONFIG_PATH
export INFSCALE_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export INFSCALE_PROMETHEUS_TARGETS_DIR=$PROM_DIR/targets
export PATH=$(tools_path):\$PATH
ENV
cat "$INFSCALE_STATE/env"
