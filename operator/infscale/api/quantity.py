"""Kubernetes resource quantities ("500m", "32Gi", 8) as plain numbers."""

from __future__ import annotations

import re
from collections.abc import Mapping

from infscale.domain import model

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse(value: int | float | str) -> float:
    """The quantity as a number in base units (cores, bytes, devices).

    Raises ValueError with the offending text for anything Kubernetes would not accept.
    """
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if match is None or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def gib(value: int | float | str) -> float:
    """A memory quantity in GiB."""
    return parse(value) / 2.0**30


MAX_PODS_DEFAULT = 110
"""Pods a node takes when its capacity does not say (the kubelet's --max-pods default)."""


def node_resources(capacity: Mapping[str, int | float | str]) -> model.Resources:
    """A node's capacity as the planner's vector: cores, GiB, extended counts and its pod slots
    (``pods``, 110 unless stated): a node of small replicas fills up by count before by CPU."""
    return _resources({"pods": MAX_PODS_DEFAULT, **capacity})


def pod_resources(requests: Mapping[str, int | float | str]) -> model.Resources:
    """A replica's requests as the planner's vector, with the one pod slot it takes. A replica
    that requests nothing stays all zeros: by the planner's model it fits no node (it would
    look free), and it is never placed."""
    if not any(parse(value) > 0 for value in requests.values()):
        return _resources(requests)
    return _resources({**requests, "pods": 1})


def _resources(amounts: Mapping[str, int | float | str]) -> model.Resources:
    values = {k: parse(v) for k, v in amounts.items()}
    extended = {k: v for k, v in values.items() if k not in ("cpu", "memory")}
    return model.Resources(
        cpu=values.get("cpu", 0.0), memory_gib=values.get("memory", 0.0) / 2**30, extended=extended
    )
