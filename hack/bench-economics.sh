#!/usr/bin/env bash
# The economics benchmark (issue 24): an interactive chat service and a batch indexing service
# sharing on-demand and spot L4 pools (spot nodes reclaimed at a seeded rate), replayed by
# infscale (one plan for both), infscale without spot, and HPA + KEDA + Cluster Autoscaler (batch
# on demand, or pinned to spot). Prints cost, chat attainment, batch deadlines met, $, kWh and
# gCO2 per 1M requests for every policy and case, infscale's saving from spot and the bars; writes
# the JSON results.
#
# Usage: hack/bench-economics.sh [RESULTS.json] [options of `python -m infscale.sim.economics`]
#   --cases N     generated cases per half of the suite (default 4: 8 cases)
#   --hours H     replay length (default 2; batch jobs stop in time for their deadlines)
#   --policy P    only this policy (repeatable)
#   --jobs N      worker processes (default: 2, or fewer cores)
# e.g. hack/bench-economics.sh /tmp/econ/economics.json
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="$(results_path "${1:-}" economics-results.json)"
[[ $# -gt 0 && "$1" != -* ]] && shift
use_uv
cd "$REPO_ROOT"
step "economics benchmark -> $OUT" uv run --locked --extra bench python -m infscale.sim.economics --out "$OUT" "$@"
