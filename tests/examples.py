"""The documents in examples/, as the unit tests read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infscale.api import v1alpha1

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def documents(kind: str) -> list[dict[str, Any]]:
    """Every document of ``kind`` in examples/*.yaml, in file order."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        found += [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]
    return found


def pools() -> dict[str, v1alpha1.InferenceNodePoolSpec]:
    """The example node pools' specs by name."""
    return {
        d["metadata"]["name"]: v1alpha1.InferenceNodePool.model_validate(d).spec
        for d in documents("InferenceNodePool")
    }
