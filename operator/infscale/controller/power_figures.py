"""Each pool's electricity price and carbon intensity for this cycle: a PromQL query's answer
where the pool declares one and it answers, else the schedule's window of the hour, else the
constant. The cycle resolves them once; the planner, the services' status and the pools'
status then read the resolved pools. A figure a query answered holds for the rest of the day
too (a query tells now, not later); the schedule's other figures stay for the hours ahead."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from infscale.api import v1alpha1
from infscale.ports import metrics


@dataclasses.dataclass(frozen=True)
class Figures:
    """What a pool's status reports: the figures in force and where they come from."""

    usd_per_kwh: float
    grams_co2_per_kwh: float | None
    source: str


Answered = dict[tuple[str, str], float]
"""The last value each (pool, figure) query answered: it holds while the query fails."""


def resolve(
    pools: Mapping[str, v1alpha1.InferenceNodePoolSpec],
    source: metrics.ValueSource | None,
    hour_utc: int,
    answered: Answered | None = None,
) -> tuple[dict[str, v1alpha1.InferenceNodePoolSpec], dict[str, Figures]]:
    """The pools with their power figures of now as constants (no schedule, no query), and the
    figures per pool with power. One request for every pool's queries. ``answered`` (updated in
    place) keeps each query's last answer: while it fails, that holds, not a constant it may
    not have (electricity is not free because its price feed is down)."""
    answered = {} if answered is None else answered
    expressions = [
        q
        for spec in pools.values()
        if spec.power is not None
        for q in (spec.power.usd_per_kwh_query, spec.power.grams_co2_per_kwh_query)
        if q
    ]
    answers = source.values(expressions) if source is not None and expressions else {}
    resolved: dict[str, v1alpha1.InferenceNodePoolSpec] = {}
    figures: dict[str, Figures] = {}
    for name, spec in pools.items():
        power = spec.power
        if power is None:
            resolved[name] = spec
            continue
        origin = "schedule" if power.schedule else "constant"
        update: dict[str, object] = {"usd_per_kwh_query": None, "grams_co2_per_kwh_query": None}
        windows = list(power.schedule or [])
        notes = []
        for field, attribute, query in (
            ("usdPerKwh", "usd_per_kwh", power.usd_per_kwh_query),
            ("gramsCo2PerKwh", "grams_co2_per_kwh", power.grams_co2_per_kwh_query),
        ):
            if not query:
                continue
            value, why = answers.get(query, (None, "no Prometheus to ask (--prometheus-url)"))
            if value is None and (name, attribute) in answered:
                value = answered[name, attribute]
                notes.append(f"{field}Query: {why}; its last answer {value:g} holds")
            elif value is None:
                notes.append(f"{field}Query: {why}; the {origin} figure applies")
                continue
            else:
                answered[name, attribute] = value
                notes.append(f"{field} from its query")
            update[attribute] = value  # the answer holds all day: no window overrides it
            windows = [w.model_copy(update={attribute: None}) for w in windows]
            update["schedule"] = windows or None
        now = power.model_copy(update=update)
        resolved[name] = spec.model_copy(update={"power": now})
        usd, grams = now.at_hour(hour_utc)
        figures[name] = Figures(usd, grams, "; ".join(notes) or f"the {origin} figures")
    return resolved, figures
