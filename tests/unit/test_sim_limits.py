"""`infscale.sim.limits`: the flash-crowd family that no policy without foresight passes."""

from __future__ import annotations

import numpy as np

from infscale.sim import limits


def test_members_share_every_arrival_before_their_onset() -> None:
    family = limits.Family(duration_s=900, first_onset_s=300, last_onset_s=600)
    early, late, calm = family.trace(300), family.trace(600), family.trace(None)
    for trace in (early, late):
        assert np.array_equal(
            trace.arrivals_s[trace.arrivals_s < 300], calm.arrivals_s[calm.arrivals_s < 300]
        )
    assert np.array_equal(
        late.arrivals_s[late.arrivals_s < 600], calm.arrivals_s[calm.arrivals_s < 600]
    )
    # The crowd is there: ten times the base in the minute after the onset.
    assert np.sum((early.arrivals_s >= 300) & (early.arrivals_s < 360)) > 5 * np.sum(
        (calm.arrivals_s >= 300) & (calm.arrivals_s < 360)
    )


def test_the_envelope_is_the_highest_rate_any_member_shows() -> None:
    family = limits.Family(duration_s=900, first_onset_s=300, last_onset_s=600)
    envelope = family.envelope_rate()
    for onset in (None, 300, 450, 599, 600):
        assert np.all(envelope >= family.rate(onset) - 1e-9)
    assert np.allclose(envelope[300:600], family.base_rps * family.height)
    assert np.allclose(envelope[600:], family.rate(600)[600:])


def test_the_table_has_a_line_per_policy_kind_and_a_column_per_member() -> None:
    rows = [
        limits.Row("flash-at-None", "infscale", "infscale", 1.0, 1.0),
        limits.Row("flash-at-600", "infscale", "infscale", 0.536, 2.05),
        limits.Row("flash-at-600", "envelope", "hold-for-any-onset", 1.0, 2.06),
    ]
    lines = limits.table(rows).splitlines()
    assert lines[0] == "| policy (best setting per member) | flash-at-None | flash-at-600 |"
    assert lines[2] == "| infscale | 1.000 at 1.00x | 0.536 at 2.05x |"
    assert lines[3] == "| envelope | - | 1.000 at 2.06x |"
