"""Closed-form queueing results used to check the simulator (Erlang C for M/M/c)."""

from __future__ import annotations

import math


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (``offered_load`` = lambda / mu)."""
    if offered_load >= servers:
        return 1.0
    term = 1.0
    total = 1.0  # sum_{k < c} a^k / k!
    for k in range(1, servers):
        term *= offered_load / k
        total += term
    last = term * offered_load / servers  # a^c / c!
    tail = last * servers / (servers - offered_load)
    return tail / (total + tail)


def mm_c_mean_wait_s(arrival_rps: float, service_s: float, servers: int) -> float:
    """Mean time in queue (before service) of an M/M/c queue."""
    offered = arrival_rps * service_s
    if offered >= servers:
        return math.inf
    return erlang_c(servers, offered) * service_s / (servers - offered)
