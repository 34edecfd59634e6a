"""Policy swap and mode logic of the controller (warpd_core/runtime/swap.py), without ROS."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture
from warpd_core.runtime.command_pipeline import Mode, hold_command, inputs_ok
from warpd_core.runtime.swap import (
    ActivePolicy,
    ControllerSpec,
    LoopTimer,
    PolicySlot,
    check_policy,
    decide_mode,
    expires_at_ns,
    state_time_ns,
)
from warpd_core.runtime.synthetic import synthetic_policy

JOINTS = ("shoulder", "elbow", "wrist")
SPEC = ControllerSpec(JOINTS, 2)
LAYERS = (8, 16, 16, 3)
NOW = 1_000 * 10**9
S = 10**9


def make(policy_id=1, planner="planner_a", stamp=NOW, valid_for=1.0, joints=JOINTS, layers=LAYERS, **kw):
    policy = synthetic_policy(layers, policy_id, valid_for_s=valid_for, **kw)
    policy.planner_id, policy.stamp_ns, policy.joint_names = planner, stamp, tuple(joints)
    return policy


def reason_of(policy, now=NOW, last=None, spec=SPEC):
    with pytest.raises(PolicyValidationError) as info:
        check_policy(policy, spec, now, last or {})
    return info.value.reason


# ---------------------------------------------------------------- ControllerSpec / check_policy

def test_spec_dimensions_and_bad_specs():
    assert (SPEC.obs_dim, SPEC.action_dim) == (8, 3)
    assert ControllerSpec(("a",), 0).obs_dim == 2
    for joints, n in (((), 2), (("a", "a"), 2), (("a",), -1)):
        with pytest.raises(ValueError):
            ControllerSpec(joints, n)


def test_a_valid_policy_passes():
    check_policy(make(), SPEC, NOW, {})
    check_policy(make(joints=()), SPEC, NOW, {})  # empty joint_names: the controller's order
    check_policy(make(valid_for=0.0, stamp=0), SPEC, NOW, {})  # valid_for 0: until replaced


@pytest.mark.parametrize("field,index,value,reason", [
    ("weights", 5, np.nan, "weights_nonfinite"),
    ("weights", 0, np.inf, "weights_nonfinite"),
    ("obs_std", 1, 0.0, "normalisation_scale"),
    ("action_mean", 0, np.nan, "normalisation_nonfinite"),
    ("latent", 0, np.nan, "latent_nonfinite"),
])
def test_what_validate_rejects_is_rejected(field, index, value, reason):
    policy = make()
    arr = getattr(policy, field).copy()
    arr[index] = value
    setattr(policy, field, arr)
    assert reason_of(policy) == reason


def test_truncated_weights_and_bad_activation_are_rejected():
    policy = make()
    policy.weights = policy.weights[:-1]
    assert reason_of(policy) == "weights_size"
    policy = make()
    policy.architecture = MLPArchitecture(LAYERS, activation="sigmoid")
    assert reason_of(policy) == "activation"
    policy = make()
    policy.valid_for_s = float("nan")
    assert reason_of(policy) == "valid_for"


@pytest.mark.parametrize("layers", [(9, 16, 3), (8, 16, 4), (7, 2), (8, 3, 3, 2)])
def test_wrong_dims_are_an_architecture_mismatch(layers):
    assert reason_of(make(layers=layers)) == "architecture_mismatch"


def test_absurd_declared_sizes_are_refused_before_any_array_is_touched():
    """An architecture claiming billions of weights is refused from its integers alone."""
    policy = GeneratedPolicy(MLPArchitecture((8, 4096, 4096, 4096, 3)), np.zeros(1, np.float32),
                             np.ones(8, np.float32), np.ones(8, np.float32), np.zeros(3, np.float32),
                             np.ones(3, np.float32))
    assert reason_of(policy) == "architecture"
    # and a mismatching but otherwise valid architecture is refused before validate() sees the arrays
    policy.architecture = MLPArchitecture((9, 3))
    assert reason_of(policy) == "architecture_mismatch"


def test_joint_names_must_match_in_order():
    assert reason_of(make(joints=("elbow", "shoulder", "wrist"))) == "joint_names"
    assert reason_of(make(joints=("shoulder", "elbow"))) == "joint_names"


def test_stamps_in_the_future_beyond_the_skew_are_refused():
    check_policy(make(stamp=NOW + S // 2), SPEC, NOW, {})  # exactly at max_clock_skew_s
    assert reason_of(make(stamp=NOW + S // 2 + 1)) == "future_stamp"
    assert reason_of(make(stamp=NOW + 10 * S)) == "future_stamp"
    relaxed = ControllerSpec(JOINTS, 2, max_clock_skew_s=20.0)
    check_policy(make(stamp=NOW + 10 * S), relaxed, NOW, {})


def test_expired_policies_are_refused():
    assert reason_of(make(stamp=NOW - 2 * S, valid_for=1.0)) == "expired"
    check_policy(make(stamp=NOW - S, valid_for=1.0), SPEC, NOW, {})  # expires exactly now: still valid
    check_policy(make(stamp=NOW - 100 * S, valid_for=0.0), SPEC, NOW, {})


def test_replays_are_refused_per_planner():
    last = {"planner_a": 5}
    assert reason_of(make(5, "planner_a"), last=last) == "replayed"
    assert reason_of(make(4, "planner_a"), last=last) == "replayed"
    check_policy(make(6, "planner_a"), SPEC, NOW, last)
    check_policy(make(1, "planner_b"), SPEC, NOW, last)  # another planner has its own sequence
    assert last == {"planner_a": 5}  # check_policy records nothing


@settings(max_examples=200, deadline=None)
@given(layers=st.lists(st.integers(1, 12), min_size=2, max_size=4),
       truncate=st.integers(0, 3), poison=st.sampled_from([None, np.nan, np.inf, -np.inf, 0.0, -1.0]),
       field=st.sampled_from(["weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent"]),
       stamp_offset_s=st.floats(-5, 5), valid_for=st.sampled_from([0.0, 0.5, 2.0, float("nan"), -1.0]),
       policy_id=st.integers(0, 10), joints=st.sampled_from([JOINTS, (), ("a", "b", "c"), JOINTS[:2]]))
def test_fuzz_check_policy_either_accepts_a_runnable_policy_or_says_why(layers, truncate, poison, field,
                                                                        stamp_offset_s, valid_for, policy_id, joints):
    policy = make(policy_id, stamp=NOW + int(stamp_offset_s * S), valid_for=0.0, joints=joints, layers=tuple(layers))
    policy.valid_for_s = valid_for
    arr = getattr(policy, field).copy()
    if truncate and arr.size:
        arr = arr[:-min(truncate, arr.size)]
    if poison is not None and arr.size:
        arr[arr.size // 2] = poison
    setattr(policy, field, arr)
    try:
        check_policy(policy, SPEC, NOW, {"planner_a": 3})
    except PolicyValidationError as exc:
        assert exc.reason and str(exc)
        return
    action = ActivePolicy.from_policy(policy).executor.select_action(np.linspace(-1, 1, SPEC.obs_dim))
    assert action.shape == (3,) and policy.policy_id > 3
    assert np.isfinite(action).all()


# ---------------------------------------------------------------- ActivePolicy / PolicySlot

def test_active_policy_runs_its_own_copy_of_the_weights():
    policy = make(valid_for=2.0)
    active = ActivePolicy.from_policy(policy)
    obs = np.linspace(-1, 1, 8)
    expected = MLPPolicy(policy).select_action(obs)
    policy.weights[:] = 0  # the message buffer is reused: the running policy must not change
    np.testing.assert_array_equal(active.executor.select_action(obs), expected)
    assert (active.policy_id, active.planner_id, active.stamp_ns) == (1, "planner_a", NOW)
    assert active.expires_at_ns == NOW + 2 * S
    assert not active.expired(NOW + 2 * S) and active.expired(NOW + 2 * S + 1)
    assert ActivePolicy.from_policy(make(valid_for=0.0)).expires_at_ns is None
    assert expires_at_ns(make(valid_for=0.0)) is None
    with pytest.raises(AttributeError):
        active.policy_id = 2  # immutable


def test_slot_install_shadow_promote():
    slot = PolicySlot()
    a, b, c = (ActivePolicy.from_policy(make(i)) for i in (1, 2, 3))
    assert slot.active is None and slot.shadow is None
    with pytest.raises(ValueError):
        slot.promote()
    slot.install(a)
    assert slot.active is a
    slot.set_shadow(b)
    assert (slot.active, slot.shadow) == (a, b)
    slot.install(c)  # a new active policy keeps the candidate
    assert (slot.active, slot.shadow) == (c, b)
    before = slot.state
    assert slot.promote() is b
    assert (slot.active, slot.shadow) == (b, None)
    assert (before.active, before.shadow) == (c, b)  # a snapshot taken earlier is never edited
    slot.clear()
    assert slot.active is None


def test_slot_reader_sees_only_whole_states_while_a_writer_swaps():
    """A reader taking `state` once always gets a consistent pair, never a half-made swap."""
    policies = [ActivePolicy.from_policy(make(i)) for i in range(1, 9)]
    pairs = {(policies[i], policies[(i + 1) % 8]) for i in range(8)} | {(p, None) for p in policies}
    slot = PolicySlot()
    slot.install(policies[0])
    slot.set_shadow(policies[1])
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            state = slot.state
            if (state.active, state.shadow) not in pairs:
                bad.append(state)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(20_000):  # (p_i, p_i+1) -> promote -> (p_i+1, None) -> (p_i+1, p_i+2) -> ...
            slot.promote()
            slot.set_shadow(policies[(n + 2) % 8])
    finally:
        stop.set()
        thread.join()
    assert bad == []


# ---------------------------------------------------------------- decide_mode / hold_command

def test_decide_mode_in_every_situation():
    active = ActivePolicy.from_policy(make(1, valid_for=1.0))
    forever = ActivePolicy.from_policy(make(2, valid_for=0.0))
    shadow = ActivePolicy.from_policy(make(3, valid_for=1.0))
    fresh = NOW - 10**6  # a joint state 1 ms ago
    timeout = 0.1

    assert decide_mode(NOW, None, fresh, None, timeout) == (Mode.HOLD, "no valid policy")
    assert decide_mode(NOW, None, None, "joint_state_nonfinite", timeout)[1] == "no valid policy"
    assert decide_mode(NOW + 2 * S, active, NOW + 2 * S, None, timeout) == (Mode.HOLD, "policy expired")
    assert decide_mode(NOW, active, None, None, timeout) == (Mode.HOLD, "joint states stale")
    assert decide_mode(NOW, active, NOW - int(0.2 * S), None, timeout) == (Mode.HOLD, "joint states stale")
    assert decide_mode(NOW, active, NOW - int(0.1 * S), None, timeout)[0] == Mode.RUN  # exactly at the timeout
    assert decide_mode(NOW, active, fresh, "joint_state_nonfinite", timeout) == (Mode.HOLD, "joint_state_nonfinite")
    assert decide_mode(NOW, active, fresh, "task_features_missing", timeout) == (Mode.HOLD, "task_features_missing")
    mode, reason = decide_mode(NOW, active, fresh, None, timeout)
    assert mode == Mode.RUN and "1" in reason
    assert decide_mode(NOW + 100 * S, forever, NOW + 100 * S, None, timeout)[0] == Mode.RUN
    mode, reason = decide_mode(NOW, active, fresh, None, timeout, shadow)
    assert mode == Mode.SHADOW and "3" in reason
    assert decide_mode(NOW + 2 * S, forever, NOW + 2 * S, None, timeout, shadow)[0] == Mode.RUN  # expired shadow
    assert decide_mode(NOW, active, None, None, timeout, shadow) == (Mode.HOLD, "joint states stale")


def test_hold_command():
    last = np.array([0.5, -0.2, 0.1])
    assert hold_command("zero_velocity", 3, last, NOW, NOW, 0.1).tolist() == [0, 0, 0]
    assert hold_command("last_command", 3, None, None, NOW, 0.1).tolist() == [0, 0, 0]
    assert hold_command("last_command", 3, last, NOW, NOW + int(0.05 * S), 0.1) is last
    # never a stale non-zero velocity for longer than stale_timeout_s
    assert hold_command("last_command", 3, last, NOW, NOW + int(0.11 * S), 0.1).tolist() == [0, 0, 0]
    # and never while blind: stale or invalid inputs hold with zeros at once
    assert hold_command("last_command", 3, last, NOW, NOW + 1, 0.1, inputs_ok=False).tolist() == [0, 0, 0]


def test_inputs_ok_tells_policy_holds_from_input_holds():
    assert inputs_ok(Mode.RUN, "running policy 1") and inputs_ok(Mode.SHADOW, "x")
    assert inputs_ok(Mode.HOLD, "no valid policy") and inputs_ok(Mode.HOLD, "policy expired")
    assert not inputs_ok(Mode.HOLD, "joint states stale")
    assert not inputs_ok(Mode.HOLD, "joint_state_nonfinite")


# ---------------------------------------------------------------- LoopTimer

def test_loop_timer_statistics_on_synthetic_ticks():
    timer = LoopTimer(1000.0)
    assert timer.window_stats()["periods"] == 0 and timer.last_tick_ns is None
    t = 0
    errors_us = [10] * 98 + [300, 2500]  # 100 periods: 98 slightly long, one late, one missed tick
    for e in errors_us:
        timer.tick(t)
        t += 1_000_000 + e * 1000
    timer.tick(t)
    assert timer.last_tick_ns == t
    stats = timer.window_stats()
    assert stats["periods"] == 100
    assert stats["period_error_p50"] == pytest.approx(10e-6)
    assert stats["period_error_max"] == pytest.approx(2500e-6)
    assert 300e-6 <= stats["period_error_p99"] <= 2500e-6
    assert stats["loop_rate_hz"] == pytest.approx(100 / (t * 1e-9))
    assert timer.missed_ticks == 1 and timer.ticks == 101
    # the window restarts; missed ticks accumulate since start
    timer.tick(t + 500_000)  # a short period: error 500 µs, not missed
    stats = timer.window_stats()
    assert stats["periods"] == 1 and stats["period_error_max"] == pytest.approx(500e-6)
    assert timer.missed_ticks == 1


def test_loop_timer_ring_keeps_the_newest_and_rate_changes_restart():
    timer = LoopTimer(100.0, capacity=16)
    for i in range(100):
        timer.tick(i * 10_000_000)
    stats = timer.window_stats()
    assert stats["periods"] == 16 and stats["period_error_max"] == 0 and stats["loop_rate_hz"] == pytest.approx(100)
    timer.set_rate(200.0)
    timer.tick(10 * S)  # first tick after the change: no period across it
    timer.tick(10 * S + 5_000_000)
    assert timer.window_stats()["periods"] == 1 and timer.missed_ticks == 0
    with pytest.raises(ValueError):
        LoopTimer(0.0)


def test_a_joint_state_is_as_old_as_its_stamp_or_its_arrival_whichever_is_older():
    arrival = NOW
    assert state_time_ns(arrival, arrival - 300_000_000) == arrival - 300_000_000  # delivered 0.3 s late
    assert state_time_ns(arrival, arrival + 5 * S) == arrival  # a future stamp buys no freshness
    assert state_time_ns(arrival, 0) == arrival  # unstamped: arrival
    assert state_time_ns(arrival, arrival - 300_000_000, use_stamp=False) == arrival  # clocks not comparable
    active = ActivePolicy.from_policy(make(valid_for=0.0))
    late = state_time_ns(arrival, arrival - 300_000_000)
    assert decide_mode(arrival, active, late, None, 0.1)[0] == Mode.HOLD
    assert decide_mode(arrival, active, state_time_ns(arrival, arrival - 5_000_000), None, 0.1)[0] == Mode.RUN
