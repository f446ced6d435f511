"""Manifests the integration and e2e tests share."""

from __future__ import annotations

from typing import Any

GROUP, VERSION = "infscale.dev", "v1alpha1"


def kwok_pool(
    name: str,
    *,
    gpus: int = 1,
    usd_per_hour: float = 0.8048,
    max_nodes: int = 4,
    provisioning_s: int = 2,
    tainted: bool = True,
) -> dict[str, Any]:
    """An InferenceNodePool of kwok nodes with `gpus` GPUs, 8 cores and 32 GiB per GPU."""
    node: dict[str, Any] = {
        "capacity": {"cpu": str(8 * gpus), "memory": f"{32 * gpus}Gi", "nvidia.com/gpu": str(gpus)},
        "labels": {"infscale.dev/pool": name},
    }
    if tainted:
        node["taints"] = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceNodePool",
        "metadata": {"name": name},
        "spec": {
            "provider": {"kwok": {}},
            "node": node,
            "usdPerHour": usd_per_hour,
            "maxNodes": max_nodes,
            "provisioningSeconds": provisioning_s,
        },
    }
