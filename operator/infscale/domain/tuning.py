"""Planner settings: every knob with its default and why, as one frozen dataclass."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PlannerSettings:
    """Tuning of the planner; defaults suit GPU inference with minute-scale cold starts."""

    target_utilization: float = 1.0
    """Plan capacity so forecast demand uses at most this share of it. ``capacity_rps`` is
    already the rate at which the SLO holds, and the forecast carries its own margin: 1.0."""

    level_tau_s: float = 60.0
    """Time constant of the forecast level (Holt): about one minute of memory."""

    trend_tau_s: float = 300.0
    """Time constant of the forecast trend: slower than the level so one sample is not a trend."""

    peak_hold_s: float = 60.0
    """The forecast never falls below the highest rate seen within the lead time of the capacity
    the service runs on (startup, plus provisioning when its pool has no free node), and at
    least within this window. Capacity released now could not be back within that lead, so a
    burst seen that recently is held, not forgotten: bursts shorter than node provisioning can
    only be met by capacity that is already there."""

    peak_hold_max_s: float = 900.0
    """Upper bound of that hold, however slow the pool (a 10-min H100 node would otherwise hold
    a burst for 11 min); longer holds are the stabilization window's job."""

    hold_keeps_only: bool = True
    """A held peak and the trend keep the capacity a service has or has ordered, and never order
    more: capacity ordered for a burst that has passed arrives after it (a one-minute spike once
    bought 585 CPU replicas, Ready after it had gone). ``hack/bench.sh``: development half,
    mean attainment 0.830 -> 0.837 and 1.30x -> 1.20x the oracle; validation half (not tuned
    on), 0.838 -> 0.847 and 1.36x -> 1.28x."""

    margin_sigmas: float = 1.0
    """Uncertainty margin in standard deviations of the one-step forecast error."""

    miss_hold_factor: float = 2.0
    """After an SLO miss, peaks are held this many times longer (two leads instead of one): a
    burst that outran the lead once tends to come back (the Azure code trace bursts every few
    minutes, after quiet spells longer than one lead), and capacity released between two such
    bursts is not back for the second."""

    miss_memory_s: float = 3600.0
    """How long an SLO miss keeps that longer hold (an hour: the synthetic trace's 3x bursts came
    back 45 min after the first, when half an hour had let the replicas go)."""

    miss_standby: bool = True
    """For ``miss_memory_s`` after an SLO miss, one replica of the variant with the most capacity
    per dollar stands by beside the plan (``planner._miss_standby``): a small variant sized to
    the forecast leaves no slack for the burst after the one it missed, and the largest
    capacity per dollar is the cheapest slack there is. ``infscale.sim.retune``: development
    half 0.8350 -> 0.8433 mean attainment for 6.3 % more, scale events 442 -> 352; validation
    half (not tuned on) 0.8450 -> 0.8647 for 1.7 % less, events 508 -> 351; real traces
    unchanged."""

    season_s: float = 3600.0
    """Period of recurring bursts: timer-triggered work starts on the hour (the Azure Functions
    day is 1.4-3.9x its hour's median rate in minute 0 of each of its 24 hours). A burst seen at
    the same phase of each of the last ``season_periods`` periods is provisioned for ahead of
    its next return, a lead time early. 0 turns this off."""

    season_bucket_s: float = 60.0
    """Resolution of that memory: the highest observed rate per bucket of this length."""

    season_periods: int = 2
    """A burst counts as seasonal only once it has come at the same phase this many periods in
    a row (one would replay every random burst an hour later)."""

    season_min_ratio: float = 1.3
    """And only if it reached this multiple of the median rate around it each time."""

    season_min_burst_rps: float = 1.0
    """And this rate (a mostly idle service's median is 0, and any blip is a multiple of it)."""

    max_trend_growth: float = 0.5
    """Trend extrapolation adds at most this fraction of the level (bounds runaway ramps)."""

    trend_horizon_s: float = 120.0
    """The trend is extrapolated at most this far, however long the lead (damped trend)."""

    backlog_grace_s: float = 120.0
    """After the service received more than its Ready replicas handle, latency over the SLO is
    blamed on the backlog for this long (the queue drains and the latency window forgets it):
    it teaches neither a lower capacity nor more headroom (default 120 s: two 60 s windows)."""

    headroom_step: float = 1.1
    """Each decision that sees latency over the SLO multiplies the service's demand by this
    (bursts that outrun the lead time leave no other trace in a rate forecast). One miss stays
    in the 60 s latency window for about four 15 s decisions, so one episode raises demand by
    about 1.1^4 = 1.46 (1.25 gave 2.4, capped: it doubled a peak that was already held)."""

    headroom_max: float = 2.0
    """Upper bound of that multiplier."""

    headroom_decay_s: float = 600.0
    """Time constant with which the multiplier returns to 1 while the SLO holds."""

    capacity_learning_rate: float = 0.2
    """Damping of online capacity learning: each sample moves the estimate this fraction."""

    capacity_max_step_fraction: float = 0.1
    """One sample changes a learned capacity by at most this fraction of its current value."""

    capacity_min_factor: float = 0.25
    """Learned capacity never falls below this multiple of the spec's capacity."""

    capacity_max_factor: float = 4.0
    """Learned capacity never exceeds this multiple of the spec's capacity."""

    capacity_ok_latency_fraction: float = 0.7
    """Raise capacity only from samples whose latency is below this fraction of the SLO."""

    capacity_probe_utilization: float = 0.8
    """A replica serving at least this share of its estimate with latency under
    ``capacity_ok_latency_fraction`` of the SLO raises the estimate by one damped step (about 2 %
    per sample): the planner never loads replicas past their estimate, so only this can correct a
    cautious spec upwards."""

    capacity_probe_max_factor: float = 1.2
    """Probes raise an estimate to at most this multiple of the spec. Latency stays flat until
    a many-slot replica is nearly saturated, so a probe that waits for latency to rise walks up
    to the knee and leaves no room for a ramp; a spec that is further off should be fixed."""

    capacity_ceiling_fraction: float = 0.95
    """Upward probes stay below this share of the per-replica rate at which the variant was last
    seen too slow (a replica sharing a queue with others can look fast well past its limit)."""

    capacity_ceiling_memory_s: float = 3600.0
    """How long that rate is remembered (the service's request mix, and so its capacity, may
    change)."""

    tolerance: float = 0.1
    """A service whose current replicas cover at least ``1 - tolerance`` of its demand, and at
    most ``1 + tolerance`` times what the optimiser would run, keeps them: small moves of the
    forecast do not each become a scaling event (Kubernetes HPA's default tolerance is 0.1). The
    forecast already carries a margin, and a larger move still acts at once."""

    too_slow_load_fraction: float = 0.7
    """A variant whose latency is over the SLO while its replicas serve at most this share of
    their capacity estimate, with no queue in front of them, is too slow for the SLO at any load
    (its service time alone is over it, e.g. a CPU build on long requests): it gets no traffic."""

    too_slow_confirm_s: float = 180.0
    """Every decision for this long must see it so (three 60 s latency windows): a burst's
    backlog that has just drained still fills the latency window of an idle variant, and on the
    Azure code trace one such sample excluded every variant for an hour."""

    too_slow_memory_s: float = 3600.0
    """How long such a variant stays out of the plan before it is tried again (the request mix,
    and so its latency, may change)."""

    solver_time_limit_s: float = 0.3
    """Time limit of the MILP (HiGHS). Past it the plan is the cheapest, by the program's own
    objective, of HiGHS's best so far and the LP relaxation rounded down and topped up greedily
    (at 1,000 services HiGHS's best after 0.3 s can leave most demand uncovered)."""

    solver_max_pairs: int = 1000
    """Above this many (service, variant) pairs the MILP is not tried: on the benchmark's fleet
    of four variants a service on six pools, HiGHS never finished within its time limit from 300
    services up, and its best so far never beat the LP relaxation rounded
    (``bench.planning_time``); the time limit was spent for nothing on every cycle."""

    solver_mip_gap: float = 0.005
    """Relative optimality gap at which HiGHS may stop."""

    use_solver: bool = True
    """False forces the greedy allocator (tests, or a solver-free fallback)."""

    skip_dominated: bool = True
    """A variant that serves an rps for more money than another, is Ready no sooner and holds
    no more per replica (of the same capacity type and no lower quality) is planned only where
    the other cannot be had (``demand.dominated``; not for batch services, whose requests may
    wait): its only gain is a smaller step, part of one replica's price, and that buys away the
    slack that meets the next rise before any node could (a T4 for a trickle instead of an
    L4). ``infscale.sim.retune``: development half 0.8433 -> 0.8623 mean attainment for 0.4 %
    more, 1 -> 3 cases passing every bar; validation half (not tuned on) 0.8647 -> 0.8785 for
    0.4 % more, 2 -> 3; real traces 0.9871 -> 0.9862."""

    switch_weight: float = 3.0
    """Weight of the cold-start cost of new replicas in the objective (discourages churn: a
    moved replica is paid twice while the new one starts; 3.0 measured best in the benchmark)."""

    amortize_s: float = 600.0
    """A new replica's cold start (startup, plus provisioning when its pool has no free node) is
    paid once; the objective spreads it over this long, the expected life of a decision."""

    move_after_paid: float = 1.0
    """The switch cost can keep a service on a dearer variant for good (a $0.20/h saving never
    outweighs a node's cold start spread over ``amortize_s``). So the planner adds up what the
    service's allocation costs over the cheapest cover of the same demand; once that excess
    reaches this multiple of what the move costs (the new replicas' node share while they
    start), the next decision weighs no switch cost for it and it moves. Rent or buy: the
    excess paid is never more than the move would have cost. ``inf`` turns it off."""

    bridge_max_cost_ratio: float = 1.0
    """The safety net's bridge (replicas of the variant Ready soonest, while the SLO is missed)
    costs at most this times what the planned replicas cost per hour, and is at least one
    replica: a bridge that more than doubles the spend is mostly replicas that arrive as the
    burst ends (a CPU variant learned at 0.23 rps a replica once bridged a 130 rps gap with 568
    of them, kept by the held peak after the burst had gone). ``inf``: no bound. Development half:
    cost -5.5 %, mean attainment 0.8369 -> 0.8363; validation half (not tuned on): cost -5.4 %,
    0.8473 -> 0.8471."""

    backlog_drain: bool = True
    """A queue that the spare capacity would clear only after more than a lead time (or never:
    replicas saturated, the rate is what they complete) gets capacity to clear it within one."""

    standby_sigmas: float = 2.0
    """A pool's standby nodes (``spec.standby``) cover each service's rise within one
    provisioning time: its upward trend, and this many standard deviations of its forecast's
    one-step under-forecasts (a burst arrives within a step)."""

    node_unneeded_s: float = 120.0
    """A pool shrinks only after its surplus nodes have been unneeded (empty) this long."""

    node_cooldown_s: float = 180.0
    """And never within this long after the pool last grew (no node flapping)."""

    def compressed(self, factor: float) -> PlannerSettings:
        """These settings for traffic replayed ``factor`` times faster than real time (the
        demo): every duration of the planner's own (memories, holds, the forecast's time
        constants) divided by it, the solver's wall-clock limit excepted."""
        return dataclasses.replace(
            self,
            **{
                name: getattr(self, name) / factor
                for name in (f.name for f in dataclasses.fields(self))
                if name.endswith("_s") and name not in WALL_CLOCK
            },
        )


WALL_CLOCK = frozenset({"solver_time_limit_s"})
"""PlannerSettings durations of the machine's time, not the traffic's."""
