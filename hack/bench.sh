#!/usr/bin/env bash
# The benchmark, one command: every policy (infscale, single-variant planner, HPA and KEDA sweeps,
# Knative KPA, static peak, the oracle) on every trace in ../shared/traces and the built-in
# synthetic one, over the bundled scenarios. Prints a table and the issue-5 bars, writes the JSON
# results and one PNG per trace next to it, and measures planning time for 1,000 services.
#
# Usage: hack/bench.sh [RESULTS.json] [options of `python -m infscale.sim.bench`]
#   e.g. hack/bench.sh /tmp/bench/bench-results.json --max-minutes 30 --trace my-azure-format.csv
# Defaults: bench-results.json in the current directory; traces clipped to 60 min (the Azure
# Functions day: minutes 420-600, scaled to 6 rps on average). `--help` lists every option.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="$PWD/bench-results.json"
if [[ $# -gt 0 && "$1" != -* ]]; then
  OUT="$(cd "$(dirname "$1")" 2>/dev/null && pwd || { mkdir -p "$(dirname "$1")" && cd "$(dirname "$1")" && pwd; })/$(basename "$1")"
  shift
fi

"$HACK_DIR/tools.sh" uv >&2
export PATH="$TOOLS_DIR/uv-$UV_VERSION/bin:$PATH" UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system
cd "$REPO_ROOT"
step "benchmark -> $OUT" uv run --locked python -m infscale.sim.bench --out "$OUT" "$@"
