"""Polling helper for integration tests: wait for a condition, fail clearly at a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    probe: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.2
) -> T:
    """Call `probe` until it returns a truthy value and return that value.

    Fails with an AssertionError naming `what` and the last value seen after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval_s)
