"""The loop: wakes on changes or every interval, snapshots the indexes, runs one cycle; and
leader election among several replicas. kopf feeds it (`handlers`); the cycle is `cycle.Cycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from infscale.controller import cycle, leader, telemetry, wiring
from infscale.controller.settings import OperatorSettings
from infscale.ports import errors

LOG = logging.getLogger(__name__)
Indexes = Mapping[str, Mapping[Any, Iterable[Mapping[str, Any]]]]
"""kopf's indexes by id: "services" and "pools", each a store of object bodies per key."""


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy of an object, safe to read from another thread, without its
    ``metadata.managedFields`` (server-side apply's bookkeeping, which infscale never reads:
    every status write adds to it, and the indexes hold every service)."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return copy.deepcopy({**body, "metadata": metadata})


def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None
    return trim


_MALLOC_TRIM = _libc_trim()


def trim_heap() -> None:
    """Hand the memory a cycle freed back to the OS. A cycle of 1,000 services parses tens of
    MB of lists; glibc keeps the freed pages, so RSS would stay at the largest cycle's peak."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Runtime:
    """The loop: wakes on changes or every interval, snapshots the indexes, reconciles all."""

    def __init__(
        self,
        settings: OperatorSettings,
        adapters: wiring.Adapters,
        elector: leader.LeaderElector | None = None,
    ) -> None:
        self.settings = settings
        self.elector = elector
        self.cycle = cycle.Cycle(settings, adapters, self.may_act)
        self._wakeup = asyncio.Event()
        self._indexed = asyncio.Event()  # set by the first watch event: the indexes are filled
        self._indexes: Indexes = {}
        self._task: asyncio.Task[None] | None = None
        self._election: asyncio.Task[None] | None = None
        self._seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def wake(self) -> None:
        """A watch event: kopf calls event handlers only once every index is filled."""
        self._indexed.set()
        self._wakeup.set()

    def alive(self) -> dict[str, Any]:
        """For the liveness probe: raises if the loop or the election has stopped (kubelet then
        restarts the pod), else whether this replica leads and how many cycles it has run."""
        for task in (self._task, self._election):
            if task is not None and task.done():
                error = None if task.cancelled() else task.exception()
                raise RuntimeError(f"{task.get_name()} stopped: {error!r}")
        return {"leader": self.may_act(), "indexed": self._indexed.is_set()}

    def changed(self, body: Mapping[str, Any], event_type: str | None) -> bool:
        """Whether an event is news: a new, deleted or re-specified object, or a Deployment's
        readiness. infscale's own status writes are not news (they would wake it in a loop)."""
        meta = body.get("metadata", {})
        key = (body.get("kind"), meta.get("namespace"), meta.get("name"))
        if event_type == "DELETED":
            self._seen.pop(key, None)
            return True
        status = body.get("status") or {}
        fingerprint = (
            meta.get("generation"),
            tuple(sorted((meta.get("annotations") or {}).items())),
            status.get("readyReplicas") if body.get("kind") == "Deployment" else None,
        )
        if self._seen.get(key) == fingerprint:
            return False
        self._seen[key] = fingerprint
        return True

    def start(self, indexes: Indexes) -> None:
        self._indexes = indexes
        self._task = asyncio.create_task(self._run(), name="infscale-reconcile-loop")
        if self.elector is not None:
            self._election = asyncio.create_task(self._elect(), name="infscale-leader-election")

    async def stop(self) -> None:
        for task in (self._task, self._election):
            if task is not None:
                task.cancel()
        if self.elector is not None:
            await asyncio.to_thread(self.elector.release)

    def may_act(self) -> bool:
        """Whether this replica may write: always alone, only as the leader among several."""
        return self.elector is None or self.elector.is_leader()

    async def _elect(self) -> None:
        assert self.elector is not None
        while True:
            was_leader = self.elector.is_leader()
            try:
                leading = await asyncio.to_thread(self.elector.step)
            except Exception:  # never stop electing: a leader that cannot renew stops acting
                LOG.exception("leader election step failed; retrying")
                leading = self.elector.is_leader()
            telemetry.LEADER.set(1 if leading else 0)
            if leading and not was_leader and self._indexed.is_set():
                self._wakeup.set()  # before the first watch event, that event starts the loop
            await asyncio.sleep(self.elector.timing.retry_s)

    async def _run(self) -> None:
        # kopf calls event handlers only after every index is filled: the first watch event means
        # the snapshot is complete (winning the election does not).
        await self._indexed.wait()
        while True:
            await asyncio.sleep(self.settings.debounce_seconds)
            self._wakeup.clear()
            if not self.may_act():
                LOG.debug("not the leader: standing by")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.interval_seconds)
                continue
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.cycle.run, *self._snapshot())
            except errors.ClusterError as error:  # the API server refused or throttled a read
                telemetry.ERRORS.labels("cycle").inc()
                LOG.error("reconcile cycle failed: %s; retrying next cycle", error)
            except Exception:
                telemetry.ERRORS.labels("cycle").inc()
                LOG.exception("reconcile cycle failed; retrying next cycle")
            telemetry.CYCLES.inc()
            telemetry.CYCLE_SECONDS.observe(time.monotonic() - started)
            trim_heap()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.settings.interval_seconds)

    def _snapshot(
        self,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        services = [plain(b) for store in self._indexes["services"].values() for b in store]
        pools = {k: plain(b) for k, store in self._indexes["pools"].items() for b in store}
        return services, pools
