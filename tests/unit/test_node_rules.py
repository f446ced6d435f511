"""Node-pool decisions: bounded scale-up, and scale-down only of safe, cooled-down nodes."""

from __future__ import annotations

from infscale.domain import nodes

LIMITS = nodes.PoolLimits(
    min_nodes=1, max_nodes=6, max_change_per_cycle=2, scale_down_cooldown_s=600
)
NOW = 10_000.0


def node(name: str, **facts: object) -> nodes.NodeFacts:
    values: dict[str, object] = {"ready": True, "created_s": 0.0, "empty_since_s": NOW - 900}
    values.update(facts)
    return nodes.NodeFacts(name=name, **values)


def test_scale_up_is_bounded_per_cycle_and_by_max_nodes() -> None:
    action = nodes.decide(10, [node("a")], LIMITS, NOW, None, owns_nodes=True)
    assert action.create == 2
    assert "more next cycle" in action.reason
    full = [node(str(i)) for i in range(6)]
    assert nodes.decide(10, full, LIMITS, NOW, None, owns_nodes=True).create == 0


def test_a_draining_node_is_revived_before_a_new_one_is_bought() -> None:
    action = nodes.decide(2, [node("a"), node("b", draining=True)], LIMITS, NOW, None, True)
    assert action.uncordon == ("b",)
    assert action.create == 0


def test_only_empty_cooled_down_unprotected_nodes_without_foreign_pods_are_drained() -> None:
    pool = [
        node("serving", managed_ready_pods=1, empty_since_s=None),
        node("foreign", foreign_pods=1, empty_since_s=None),
        node("protected", protected=True),
        node("fresh", empty_since_s=NOW - 30),
        node("old-empty"),
        node("starting", managed_other_pods=1),
    ]
    action = nodes.decide(1, pool, LIMITS, NOW, None, owns_nodes=True)
    assert set(action.drain) <= {"old-empty", "starting"}
    assert action.drain[0] == "old-empty"
    assert len(action.drain) == 2


def test_no_scale_down_within_the_cool_down_after_a_scale_up() -> None:
    action = nodes.decide(1, [node("a"), node("b")], LIMITS, NOW, NOW - 60, owns_nodes=True)
    assert action.drain == ()
    assert "cool-down" in action.reason


def test_min_nodes_is_kept() -> None:
    action = nodes.decide(0, [node("a")], LIMITS, NOW, None, owns_nodes=True)
    assert action.drain == ()


def test_blocked_scale_down_says_why() -> None:
    action = nodes.decide(1, [node("a"), node("b", foreign_pods=2)], LIMITS, NOW, None, True)
    assert action.drain == ("a",)
    blocked = nodes.decide(
        1, [node("a", protected=True), node("b", foreign_pods=2)], LIMITS, NOW, None, True
    )
    assert blocked.drain == ()
    assert "do-not-disrupt" in blocked.reason
    assert "does not own" in blocked.reason


def test_pools_infscale_cannot_grow_report_it() -> None:
    action = nodes.decide(3, [node("a")], LIMITS, NOW, None, owns_nodes=False)
    assert action.create == 0
    assert "cannot add nodes" in action.reason


def test_a_pool_may_double_each_cycle_unless_a_node_is_stuck_not_ready() -> None:
    big = nodes.PoolLimits(min_nodes=0, max_nodes=100, max_change_per_cycle=2, provisioning_s=300)
    ready = [node(str(i)) for i in range(6)]
    young = [node(f"new{i}", ready=False, created_s=NOW - 60, empty_since_s=None) for i in range(4)]
    assert nodes.decide(60, ready + young, big, NOW, None, owns_nodes=True).create == 10
    stuck = [node("stuck", ready=False, created_s=NOW - 900, empty_since_s=None)]
    assert nodes.decide(60, ready + young + stuck, big, NOW, None, True).create == 2


def test_a_pool_whose_nodes_someone_else_owns_is_never_drained() -> None:
    idle = [node("a", empty_since_s=NOW - 3600), node("b", empty_since_s=NOW - 3600)]
    owned = nodes.decide(0, idle, LIMITS, NOW, None, owns_nodes=True)
    assert owned.drain
    external = nodes.decide(0, idle, LIMITS, NOW, None, owns_nodes=False)
    assert external.drain == ()
    assert "does not remove" in external.reason


def test_a_held_pool_grows_but_starts_no_removal() -> None:
    # A service on the pool has no metrics: its empty surplus nodes stay (an outage of
    # Prometheus once let two go while it was hung), but it may still grow.
    surplus = [node("a"), node("b"), node("c")]
    held = nodes.decide(1, surplus, LIMITS, NOW, None, True, "team-a/chat has no metrics")
    assert held.drain == ()
    assert held.reason == "2 node(s) surplus kept: team-a/chat has no metrics"
    assert nodes.decide(1, surplus, LIMITS, NOW, None, True).drain != ()
    assert nodes.decide(5, surplus, LIMITS, NOW, None, True, "no metrics").create == 2


def test_a_node_with_a_termination_notice_is_replaced_at_once_and_never_removed_by_us() -> None:
    serving = {"managed_ready_pods": 1, "empty_since_s": None}
    pool = [node("a", **serving), node("b", terminating=True, **serving)]
    action = nodes.decide(2, pool, LIMITS, NOW, None, owns_nodes=True)
    assert action.create == 1
    assert "b leaving (termination notice)" in action.reason
    assert action.drain == ()
    # Not revived either, when it was draining.
    noticed = [node("a", **serving), node("b", terminating=True, draining=True)]
    again = nodes.decide(2, noticed, LIMITS, NOW, None, owns_nodes=True)
    assert (again.uncordon, again.create) == ((), 1)
