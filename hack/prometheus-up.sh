#!/usr/bin/env bash
# Starts a real Prometheus (Debian's build, from the tool cache) on 127.0.0.1. Idempotent.
# Tests and the emulator add scrape targets by writing file_sd JSON files into
# $INFSCALE_STATE/prometheus/targets/; Prometheus picks them up within seconds.
# INFSCALE_SCRAPE_INTERVAL sets the scrape interval (default 2s; the scale benchmark uses 15s), and
# a scrape may take all of it (10,000 emulated servers' metrics take over Prometheus's default 10 s).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$HACK_DIR/tools.sh" prometheus
export PATH="$(tools_path):$PATH"


start_prometheus() {
  if prometheus_ready; then
    log "Prometheus already running on 127.0.0.1:$PROMETHEUS_PORT"
    return 0
  fi
  mkdir -p "$PROM_DIR/targets" "$PROM_DIR/data"
  cat > "$PROM_DIR/prometheus.yml" <<CONFIG
global:
  scrape_interval: ${INFSCALE_SCRAPE_INTERVAL:-2s}
  evaluation_interval: ${INFSCALE_SCRAPE_INTERVAL:-2s}
  scrape_timeout: ${INFSCALE_SCRAPE_INTERVAL:-2s}
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

step "start Prometheus on 127.0.0.1:$PROMETHEUS_PORT" start_prometheus
