#!/usr/bin/env bash
# The one test command (README, CI): installs what is missing, runs lint, types, the import
# contract and unit tests, starts the real local cluster and Prometheus, runs the integration and
# e2e tiers against them, tears everything down, and prints how long each phase took.
# Exits non-zero on any failure. INFSCALE_KEEP_CLUSTER=1 leaves the cluster running afterwards
# (then `source ~/.cache/infscale/state-test/env` to reach it).
# The test run gets a cluster of its own (name, state directory and ports), fresh every time, so a
# developer's cluster from hack/cluster-up.sh is neither reused nor stopped.
export INFSCALE_CLUSTER_NAME="${INFSCALE_CLUSTER_NAME:-infscale-test}"
export INFSCALE_STATE="${INFSCALE_STATE:-${INFSCALE_CACHE:-$HOME/.cache/infscale}/state-test}"
export INFSCALE_APISERVER_PORT="${INFSCALE_APISERVER_PORT:-16444}"
export INFSCALE_PROMETHEUS_PORT="${INFSCALE_PROMETHEUS_PORT:-19091}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PHASES=()
record() { PHASES+=("$(printf '%-28s %5d s  %s' "$1" "$2" "$3")"); }
phase() {
  local name="$1"; shift
  local start=$SECONDS status=0
  log "==> phase: $name"
  "$@" || status=$?
  record "$name" "$((SECONDS - start))" "$([[ $status == 0 ]] && echo ok || echo "FAILED ($status)")"
  log "<== phase: $name ($((SECONDS - start)) s, exit $status)"
  return "$status"
}
summary() {
  local status=$?
  if [[ "${INFSCALE_KEEP_CLUSTER:-}" != 1 ]]; then
    local start=$SECONDS
    "$HACK_DIR/cluster-down.sh" || status=1
    record "cluster-down" "$((SECONDS - start))" "done"
  fi
  printf '\n%s\n' "---- hack/test.sh phases ----" >&2
  printf '%s\n' "${PHASES[@]}" >&2
  printf 'total %d s; %s\n' "$SECONDS" "$([[ $status == 0 ]] && echo PASSED || echo FAILED)" >&2
  exit "$status"
}
trap summary EXIT

# A phase runs its function in an `||` list, where bash ignores `set -e`: each step that can
# fail returns at once (or the phase would report only its last command's status).
python_env() {
  "$HACK_DIR/tools.sh" uv helm || return  # helm: the unit tests render the chart
  export PATH="$(tools_path):$PATH" UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
  # Compiled once here: with PYTHONDONTWRITEBYTECODE set (as on the development machines) every
  # Python process, each operator and emulator the tests start included, would otherwise compile
  # kubernetes, kopf and scipy from source again (about 4 s of CPU each).
  uv sync --locked --compile-bytecode --quiet
}
lint() {
  uv run --locked ruff check . || return
  uv run --locked ruff format --check . || return
  uv run --locked mypy || return
  uv run --locked lint-imports
}
unit() { uv run --locked pytest -q tests/unit; }
cluster() {
  "$HACK_DIR/cluster-down.sh" || return
  "$HACK_DIR/cluster-up.sh" >/dev/null || return
  # shellcheck disable=SC1091
  source "$INFSCALE_STATE/env"
}
# The integration and e2e tests mostly wait on the cluster: INFSCALE_TEST_WORKERS (default 4)
# pytest-xdist workers run them at once, e2e first so the long scenarios start early, handed out
# one at a time (--maxschedchunk 1: a worker holds at most one test besides the one it runs).
# The tests marked `serial` (second-level timing bounds on shared components, or flooding the
# API server on purpose) run afterwards, alone.
integration() {
  local status=0
  uv run --locked pytest -q --durations=15 -m "not serial" \
    -n "${INFSCALE_TEST_WORKERS:-4}" --dist load --maxschedchunk 1 tests/e2e tests/integration \
    || status=$?
  uv run --locked pytest -q --durations=15 -m serial tests/integration tests/e2e || status=$?
  return "$status"
}

phase "python environment (uv, helm)" python_env
phase "lint, types, import contract" lint
phase "unit tests" unit
phase "tools and cluster-up" cluster
phase "integration + e2e tests" integration
