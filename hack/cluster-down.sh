#!/usr/bin/env bash
# Stops the local cluster and Prometheus started by hack/cluster-up.sh and leaves no process behind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PATH="$(tools_path):$PATH"
export KWOK_WORKDIR="$INFSCALE_STATE/kwok"

if command -v kwokctl >/dev/null; then
  kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
fi
if [[ -f "$PROM_DIR/pid" ]]; then
  kill "$(cat "$PROM_DIR/pid")" 2>/dev/null || true
  rm -f "$PROM_DIR/pid"
fi
# Anything still running from the state directory (a crashed run's leftovers) goes too.
for signal in TERM KILL; do
  pids="$(pgrep -f -- "$INFSCALE_STATE/" || true)"
  [[ -z "$pids" ]] && break
  # shellcheck disable=SC2086
  kill -s "$signal" $pids 2>/dev/null || true
  sleep 1
done
pids="$(pgrep -f -- "$INFSCALE_STATE/" || true)"
[[ -z "$pids" ]] || die "processes still running: $pids"
rm -rf "$PROM_DIR/data" "$KUBECONFIG_PATH"
log "cluster $CLUSTER_NAME and Prometheus stopped"
