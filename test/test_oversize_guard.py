"""When the controller stops listening to a policy topic that floods it with oversized messages
(warpd_core/runtime/oversize_guard.py): a lone one is only refused; a flood trips a pause; a flood
that goes on doubles it up to the cap; a calm spell starts over. (The controller dropping and taking
back its subscription, over real DDS, is in test_controller_lifecycle.py.)"""
import pytest

from warpd_core.runtime.oversize_guard import OversizeGuard


def test_lone_oversized_messages_are_refused_without_a_pause():
    guard = OversizeGuard(pause_s=2.0)  # 3 within 1 s trip
    assert [guard.oversized(t) for t in (0.0, 1.5, 3.0, 4.5, 4.9)] == [None] * 5  # never 3 inside one second
    assert guard.trips == 0


def test_a_flood_trips_and_a_flood_that_goes_on_doubles_the_pause_up_to_the_cap():
    guard = OversizeGuard(pause_s=2.0, max_pause_s=5.0)
    assert guard.oversized(0.0) is None and guard.oversized(0.1) is None
    assert guard.oversized(0.2) == 2.0  # the third within a second
    guard.listening_again(2.2)
    assert guard.oversized(2.3) == 4.0  # the first message after the pause: still flooding
    guard.listening_again(6.3)
    assert guard.oversized(6.35) == 5.0  # doubled, capped
    guard.listening_again(11.35)
    assert guard.oversized(12.5) is None  # back for over a second: a lone message is only refused again
    assert guard.trips == 3


def test_a_calm_spell_starts_the_pause_over():
    guard = OversizeGuard(pause_s=1.0, calm_s=30.0)
    for t in (0.0, 0.1):
        guard.oversized(t)
    assert guard.oversized(0.2) == 1.0
    guard.listening_again(1.2)
    assert guard.oversized(1.3) == 2.0
    guard.listening_again(3.3)
    for t in (100.0, 100.1):  # long after the last trip
        assert guard.oversized(t) is None
    assert guard.oversized(100.2) == 1.0


def test_zero_pause_disables_and_bad_settings_are_refused():
    guard = OversizeGuard(pause_s=0.0)
    assert not guard.enabled and all(guard.oversized(t / 100) is None for t in range(50))
    for kwargs in ({"pause_s": -1.0}, {"pause_s": 2.0, "trip_count": 0}, {"pause_s": 2.0, "window_s": 0.0},
                   {"pause_s": 10.0, "max_pause_s": 5.0}):
        with pytest.raises(ValueError, match="bad oversize guard"):
            OversizeGuard(**kwargs)
