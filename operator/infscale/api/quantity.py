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


def resources(amounts: Mapping[str, int | float | str]) -> model.Resources:
    """A resource map (quantities) as the planner's vector: cores, GiB and extended counts."""
    values = {k: parse(v) for k, v in amounts.items()}
    extended = {k: v for k, v in values.items() if k not in ("cpu", "memory", "pods")}
    return model.Resources(
        cpu=values.get("cpu", 0.0), memory_gib=values.get("memory", 0.0) / 2**30, extended=extended
    )
