#!/usr/bin/env bash
# The benchmark, one command: every policy (infscale, single-variant planner, HPA and KEDA sweeps,
# Knative KPA, static peak, the oracle) on each case of a suite: the real traces in
# ../shared/traces (each on every scenario), the generated suite (infscale.sim.tracegen: each
# case on its own scenario; its development half is for tuning, its validation half for
# reporting) and extras (--trace files, the built-in synthetic trace). Prints the records, one
# row per case with the issue-19 bars it misses and a summary per split (with the attainment in
# minutes at rates seen a lead earlier and in minutes above any); writes the JSON results
# and one PNG per trace next to it, and measures planning time for 1,000 services.
#
# Usage: hack/bench.sh [RESULTS.json] [options of `python -m infscale.sim.bench`]
#   --suite default      real traces, synthetic, the first 4 generated cases of each half
#   --suite full         real traces, synthetic, all 48 generated cases
#   --suite real         real traces and synthetic (the benchmark before the generated suite)
#   --suite development  the development half only (tuning runs); --suite validation likewise
#   --suite none         --trace files only
#   --trace FILE         extra Azure-LLM CSV (TIMESTAMP,ContextTokens,GeneratedTokens), any suite
#   --only NAME          cases whose trace label contains NAME (file stem, genSEED, synthetic-sSEED;
#                        repeatable); --scenario NAME also restricts which generated cases run
#   --jobs N             worker processes (default: 2, or fewer cores)
#   --generated-on NAME  the generated cases run on scenario NAME (repeatable), not each on its own
#   --quick              narrower HPA/KEDA sweeps, no static bisection
#   --no-pod-baselines   no HPA, KEDA, KPA or static: infscale, its single variants, the oracle
#   e.g. the model-variants bars (issue 23), real traces and the validation half on both floors:
#        hack/bench.sh /tmp/mv/r.json --suite real --scenario model-variants \
#          --scenario model-variants-strict --no-pod-baselines
#        hack/bench.sh /tmp/mv/v.json --suite validation --generated-on model-variants \
#          --generated-on model-variants-strict --no-pod-baselines
#   e.g. hack/bench.sh /tmp/bench/bench-results.json --suite development --jobs 2
#        hack/bench.sh /tmp/bench/r.json --suite none --trace my-azure-format.csv --max-minutes 30
# Defaults: bench-results.json in the current directory; real traces clipped to 60 min (the Azure
# Functions day: minutes 420-600, scaled to 6 rps on average); a missing traces dir is reported
# and skipped. `--help` lists every option.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="$(results_path "${1:-}" bench-results.json)"
[[ $# -gt 0 && "$1" != -* ]] && shift
use_uv
cd "$REPO_ROOT"
step "benchmark -> $OUT" uv run --locked --extra bench python -m infscale.sim.bench --out "$OUT" "$@"
