"""PolicySchedule: the controller evaluates a policy at its trained rate, whatever rate joint states come at."""
import numpy as np
import pytest

from warpd_core.runtime.policy_rate import PolicySchedule

MS = 1_000_000


def evaluations(schedule, state_times_ms, ticks_per_state=2, policy_at=lambda t: "p"):
    """Run ticks over joint states arriving at `state_times_ms`; the state times (ms) that were evaluated."""
    taken = []
    for t in state_times_ms:
        for _ in range(ticks_per_state):
            policy = policy_at(t)
            if schedule.due(t * MS, policy):
                schedule.taken(t * MS, policy)
                taken.append(t)
    return taken


def test_fast_states_are_thinned_to_the_policy_rate_without_drift():
    taken = evaluations(PolicySchedule(50.0), np.arange(0, 2000, 2))  # 500 Hz joint states for 2 s
    gaps = np.diff(taken)
    assert gaps[0] == 10 and set(gaps[1:]) == {20}  # half a period early once, then on the 20 ms grid
    assert len(taken) == 101


def test_states_at_the_policy_rate_are_all_taken_despite_jitter():
    rng = np.random.default_rng(0)
    times = np.arange(0, 4000, 20) + rng.integers(-4, 5, 200)
    taken = evaluations(PolicySchedule(50.0), times)
    assert taken == sorted(times.tolist())  # every state, once (4 ms of jitter is under a quarter period)


def test_a_lost_state_moves_the_grid_on_and_each_state_is_evaluated_once():
    times = [0, 20, 40, 80, 100, 120]  # the state at 60 ms was lost
    assert evaluations(PolicySchedule(50.0), times, ticks_per_state=5) == times


def test_a_new_policy_is_evaluated_at_once_and_restarts_the_grid():
    taken = evaluations(PolicySchedule(50.0), range(0, 100, 2), policy_at=lambda t: "a" if t < 30 else "b")
    assert taken == [0, 10, 30, 40, 60, 80]


def test_forget_evaluates_at_once_and_rate_zero_every_tick():
    schedule = PolicySchedule(50.0)
    assert evaluations(schedule, [0, 2]) == [0]
    schedule.forget()  # a HOLD
    assert schedule.due(4 * MS, "p")
    every = PolicySchedule(0.0)
    assert evaluations(every, [0, 2, 4], ticks_per_state=3) == [0] * 3 + [2] * 3 + [4] * 3
    with pytest.raises(ValueError):
        PolicySchedule(-1.0)
