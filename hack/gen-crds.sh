#!/usr/bin/env bash
# Regenerates crds/ from the pydantic models in operator/infscale/api (the single source of truth).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
export PATH="$(tools_path):$PATH"
uv run --locked python -m infscale.api.crd crds
