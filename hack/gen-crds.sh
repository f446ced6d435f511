#!/usr/bin/env bash
# Regenerates everything derived from the pydantic models (the single source of truth):
# crds/, the chart's copy in charts/infscale/crds/, and charts/infscale/values.schema.json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
export PATH="$(tools_path):$PATH"
uv run --locked python -m infscale.api.crd crds
cp crds/*.yaml charts/infscale/crds/
uv run --locked python -c 'from infscale.controller import chart_values; print(chart_values.render(), end="")' \
  > charts/infscale/values.schema.json
echo "wrote charts/infscale/crds/ and charts/infscale/values.schema.json" >&2
