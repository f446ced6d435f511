"""Shared specs for the planner tests: a three-pool cluster (H100, L4, CPU) and one service."""

from __future__ import annotations

from typing import Any

from infscale.domain import model

GPU = model.GPU


def pools(max_nodes: int = 20) -> list[model.PoolSpec]:
    """An 8 x H100 pool, a 1 x L4 pool and a small CPU pool (prices from BASELINES.md)."""
    return [
        model.PoolSpec("h100", model.Resources(192, 2048, {GPU: 8}), 55.04, 0, max_nodes, 600),
        model.PoolSpec("l4", model.Resources(4, 16, {GPU: 1}), 0.8048, 0, max_nodes, 300),
        model.PoolSpec("cpu", model.Resources(2, 8), 0.0816, 0, max_nodes, 120),
    ]


def service(
    name: str = "chat", min_replicas: int = 1, max_replicas: int = 40, **kwargs: Any
) -> model.ServiceSpec:
    """A service that can run on an H100 (30 rps per replica) or an L4 (6 rps per replica)."""
    variants = (
        model.VariantSpec("h100", "h100", model.Resources(16, 128, {GPU: 1}), 30.0, 90),
        model.VariantSpec("l4", "l4", model.Resources(3, 12, {GPU: 1}), 6.0, 120),
    )
    return model.ServiceSpec(
        "team-a",
        name,
        variants,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        **kwargs,
    )


HEALTHY_LATENCY_S = 0.2


def observe(rps: float | None, latency_s: float | None = HEALTHY_LATENCY_S) -> model.Observation:
    """A service-level observation: the latency is known (within the SLO) when there is traffic;
    pass ``latency_s=None`` for a known rate with an unknown latency (partial data)."""
    known_latency = latency_s if rps is not None and rps > 0 else None
    return model.Observation(rps=rps, latency_s=known_latency)
