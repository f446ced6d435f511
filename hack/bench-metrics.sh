#!/usr/bin/env bash
# Measures the Prometheus adapter: queries and seconds per cycle for 1, 50 and 500 services,
# against the real local Prometheus fed by EMULATED model servers. Prints a table.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$HACK_DIR/tools.sh" uv prometheus
"$HACK_DIR/prometheus-up.sh"
export PATH="$(tools_path):$PATH"
export INFSCALE_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT"
export INFSCALE_PROMETHEUS_TARGETS_DIR="$PROM_DIR/targets"
uv run --locked --extra bench python -m infscale.emulator.bench_metrics "$@"
