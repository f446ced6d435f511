"""What no autoscaler does: catch a flash crowd at an unknown minute within 1.25x the oracle.

``python -m infscale.sim.limits``

Issue 19 asks, on every case, for attainment at least min(0.99, reachable - 0.005) *and* a cost
at most 1.25x the oracle's, which knows the whole trace. This builds a family of traces that
differ only in when one flash crowd comes: the same Poisson arrivals at ``base_rps`` up to its
onset (each second has its own seed), then a jump to ``height`` times the base that decays with
``decay_s``, at any onset between ``first_onset_s`` and ``last_onset_s``, or none.

A policy that does not know the future acts the same on every member until the crowd comes: at
each second of that window it cannot tell the member whose crowd comes now from one whose comes
later. Requests of the jump arrive faster than the base's capacity drains them, and new capacity
takes a node's provisioning and a replica's start-up (6 min on gpu-classes), so on each member
the jump is met only by capacity Ready at its onset. To reach 0.99 on every member, a policy
holds the jump's capacity through the whole window; on the member whose crowd comes last it
then pays for that window, which the oracle, knowing the onset, does not.

The *envelope* makes that cost concrete: the trace whose rate is the highest any member shows
at each second (the jump's rate across the window, then the last member's decay). The oracle's
schedule for it is the cheapest that covers a crowd starting anywhere in the window; replayed
on the members it reaches the bar on each, and its cost, over the oracle of the last member, is
what holding for an unknown onset costs. Every policy of the benchmark runs on the members
beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from infscale.sim import bench, oracle, policies, scenario, traces


@dataclasses.dataclass(frozen=True)
class Family:
    """Traces identical up to one flash crowd's onset."""

    base_rps: float = 4.0
    height: float = 10.0  # the jump, times the base (the generated suite draws 3-10x)
    decay_s: float = 240.0
    first_onset_s: int = 600
    last_onset_s: int = 2000
    duration_s: int = 2700
    seed: int = 7

    def rate(self, onset_s: int | None) -> np.ndarray:
        """Per second, the member's arrival rate (no crowd for ``None``)."""
        t = np.arange(self.duration_s, dtype=float)
        jump = np.where(
            t >= (onset_s if onset_s is not None else np.inf),
            (self.height - 1.0) * np.exp(-(t - (onset_s or 0)) / self.decay_s),
            0.0,
        )
        return self.base_rps * (1.0 + jump)

    def envelope_rate(self) -> np.ndarray:
        """The highest rate any member with an onset in the window shows at each second."""
        rate = self.rate(self.last_onset_s)
        window = slice(self.first_onset_s, self.last_onset_s)
        rate[window] = self.base_rps * self.height
        return rate

    def trace(self, onset_s: int | None) -> traces.Trace:
        return arrivals(f"flash-at-{onset_s}", self.rate(onset_s), self.seed)

    def envelope(self) -> traces.Trace:
        return arrivals("envelope", self.envelope_rate(), self.seed)


def arrivals(name: str, rate: np.ndarray, seed: int) -> traces.Trace:
    """Poisson arrivals per second; second ``t`` draws from its own seed, so traces with the same
    rate up to a second have the same arrivals up to it."""
    times = [
        second + np.sort(rng.uniform(0.0, 1.0, rng.poisson(r)))
        for second, r in enumerate(rate.tolist())
        for rng in (np.random.default_rng([seed, second]),)
    ]
    return traces.Trace(name, np.concatenate(times), float(rate.size))


ROLES = ("oracle", "infscale", "single-variant", "hpa", "keda", "kpa", "static")
"""The benchmark's policy kinds; of each, the setting :func:`bench.best_of` picks per member."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One policy kind on one member of the family."""

    member: str
    role: str
    policy: str
    attainment: float
    x_oracle: float


def run(family: Family, scen: scenario.Scenario, log: Callable[[str], None] = print) -> list[Row]:
    """The benchmark's policies, and the envelope's schedule, on the member with no crowd and on
    the first, the middle and the last onset of the window."""
    envelope = oracle.solve(family.envelope(), scen, attainment=bench.ATTAINMENT_BAR)
    hold = policies.Schedule(
        "hold-for-any-onset", envelope.slice_s, envelope.replicas, envelope.nodes
    )
    middle = (family.first_onset_s + family.last_onset_s) // 2
    rows = []
    for onset in (None, family.first_onset_s, middle, family.last_onset_s):
        trace = family.trace(onset)
        log(f"{trace.name}: {trace.arrivals_s.size} requests, every policy")
        records, _ = bench.bench_one(
            trace,
            scen,
            family.seed,
            lambda _: None,
            static_bar=False,
            split="extra",
            hpa_fractions=(0.6, 0.8, 1.0),
            keda_thresholds=(1.0, 4.0),
        )
        best = {role: bench.best_of(records, role) for role in ROLES}
        oracle_usd = best["oracle"].cost_usd if best["oracle"] else float("nan")
        start = (envelope.replicas[0], envelope.nodes[0])
        held = bench._run(trace, scen, hold, start, False, family.seed)
        rows += [
            Row(trace.name, role, r.policy, r.slo_attainment, r.cost_usd / oracle_usd)
            for role, r in best.items()
            if r is not None
        ]
        rows.append(
            Row(
                trace.name, "envelope", held.policy, held.slo_attainment, held.cost_usd / oracle_usd
            )
        )
    return rows


def table(rows: Sequence[Row]) -> str:
    """Markdown: a policy kind per line, attainment and cost over the oracle per member."""
    members = list(dict.fromkeys(r.member for r in rows))
    by = {(r.member, r.role): r for r in rows}
    out = ["| policy (best setting per member) | " + " | ".join(members) + " |"]
    out.append("|---|" + "---|" * len(members))
    for role in dict.fromkeys(r.role for r in rows):
        cells = []
        for member in members:
            r = by.get((member, role))
            cells.append("-" if r is None else f"{r.attainment:.3f} at {r.x_oracle:.2f}x")
        out.append(f"| {role} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="gpu-classes")
    for field in dataclasses.fields(Family):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(field.default), default=field.default)
    args = parser.parse_args(argv)
    family = Family(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Family)})
    print(table(run(family, scenario.load(args.scenario))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
