"""Fuzzing the policy-swap path: malformed PolicyWeights cases, and the runs that pass them to the controller.

The cases (Hypothesis strategies, :func:`malformed_case`) start from a valid, signed policy message
and break it in one or more ways: wrong weight or normalisation lengths, wrong or absurd layer
sizes, NaN/Inf anywhere, zero/negative scales, stale/future stamps, expired or negative valid_for,
unknown activations, wrong joint names, replayed policy ids, and missing or bad auth tags. Each
case knows which reasons may refuse it. :func:`run_case` passes the message through exactly what
the controller node runs (``warpd_ros.admission.admit_policy``: conversion, auth tag,
validation, clocks, replay) and checks the outcome: refused with an expected reason, nothing else
raised, the running policy untouched; :func:`fuzz` runs many. :func:`dds_fuzz` sends them over real
DDS to a controller process.

Three controller set-ups are drawn per case: signatures required (malformed messages are signed
with the right key, as a compromised planner would, so validation is still exercised), a key but
signatures optional, and no key. test/test_fuzz_swap.py asserts on these runs; bench/fuzz_swap.py is
the long run and its report.
"""
from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.compute_budget import REASON_COMPUTE
from warpd_core.runtime.command_pipeline import Mode
from warpd_core.runtime.policy_spec import ACTIVATIONS, MAX_LAYER_ENTRIES, MAX_LAYER_WIDTH, OUTPUT_ACTIVATIONS
from warpd_core.runtime.signing import PolicyVerifier, policy_tag
from warpd_core.runtime.swap import ActivePolicy, ControllerSpec, PolicySlot
from warpd_ros.testing.policies import policy_for, policy_message
from warpd_ros.testing.standin import JOINTS

LAYERS = (8, 16, 16, 3)
N_FEATURES = 2
PLANNER = "fuzz_planner"
LAST_ID = 1_000  # the id of the running policy: the last one accepted from PLANNER
KEY = bytes(range(32))  # a fuzzing key, not a secret
OTHER_KEY = bytes(range(100, 132))
MAX_AGE_S, SKEW_S = 5.0, 0.5
SPEC = ControllerSpec(JOINTS, N_FEATURES, max_clock_skew_s=SKEW_S, max_policy_age_s=MAX_AGE_S)
S = 10**9
VERIFIERS = {"required": PolicyVerifier(KEY, required=True), "optional": PolicyVerifier(KEY),
             "none": PolicyVerifier(None)}

# what a mutation may be refused for (the first failing check names the reason)
KINDS = {
    "weights_length": {"weights_size"},
    "layer_sizes": {"weights_size", "architecture_mismatch"},
    "absurd_sizes": {"architecture"},
    "nonfinite": {"weights_nonfinite", "normalisation_nonfinite", "latent_nonfinite"},
    "bad_scale": {"normalisation_scale"},
    "normalisation_length": {"normalisation_size"},
    "stale_stamp": {"stale_stamp"},
    "future_stamp": {"future_stamp"},
    "expired": {"expired"},
    "negative_valid_for": {"valid_for"},
    "activation": {"activation"},
    "joint_names": {"joint_names"},
    "replayed": {"replayed"},
}
SIGNATURE_KINDS = {"unsigned": {"unsigned"}, "bad_signature": {"bad_signature"}}
KNOWN_REASONS = frozenset().union(*KINDS.values(), *SIGNATURE_KINDS.values())
# Over DDS the controller's compute budget comes first: absurd layer sizes are refused for their cost
# (from the message's length or sizes) before the structural checks would name them.
DDS_REASONS = KNOWN_REASONS | {REASON_COMPUTE}

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])


def base_message(now_ns: int, policy_id: int = LAST_ID + 1, weights_seed: int = 3):
    """A valid, unsigned PolicyWeights for SPEC, stamped `now_ns`."""
    return policy_message(policy_for(JOINTS, policy_id, layers=LAYERS, seed=weights_seed, planner=PLANNER,
                                     valid_for_s=30.0, stamp_ns=now_ns))


def running_policy(now_ns: int) -> ActivePolicy:
    from warpd_ros.conversions import msg_to_policy

    return ActivePolicy.from_policy(msg_to_policy(base_message(now_ns, LAST_ID)))


def _floats(values) -> array:
    return array("f", np.asarray(values, np.float32).tobytes())


def _set_stamp(msg, ns: int) -> None:
    from warpd_ros.conversions import ns_to_stamp

    msg.header.stamp = ns_to_stamp(ns)


def _mutate(kind: str, msg, draw, now_ns: int, margin_s: float = 0.0) -> None:
    """Break `msg` in the way `kind` names (in place); time faults stay faults for `margin_s` seconds."""
    if kind == "weights_length":
        n = len(msg.weights)
        new = draw(st.one_of(st.integers(0, n - 1), st.integers(n + 1, n + 500)))
        msg.weights = _floats(np.resize(np.frombuffer(msg.weights, np.float32), new))
    elif kind == "layer_sizes":
        sizes = draw(st.lists(st.integers(1, 40), min_size=2, max_size=6).filter(lambda s: tuple(s) != LAYERS))
        if draw(st.booleans()):  # weights consistent with the new sizes: the dimensions must then differ
            if sizes[0] == LAYERS[0] and sizes[-1] == LAYERS[-1]:
                sizes[-1] = LAYERS[-1] + draw(st.integers(1, 5))
            n = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
            msg.weights = _floats(np.full(n, 0.01))
        elif (sizes[0], sizes[-1]) == (LAYERS[0], LAYERS[-1]) and \
                sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:])) == len(msg.weights):
            sizes[-1] += 1  # e.g. [8, 21, 11, 3] has exactly as many parameters as [8, 16, 16, 3]: a valid policy
        msg.layer_sizes = array("I", sizes)
    elif kind == "absurd_sizes":
        width = st.integers(1, MAX_LAYER_WIDTH)
        sizes = draw(st.one_of(
            st.lists(width, max_size=1),  # empty or a single entry
            st.lists(width, min_size=MAX_LAYER_ENTRIES + 1, max_size=MAX_LAYER_ENTRIES + 40),
            st.lists(st.integers(MAX_LAYER_WIDTH + 1, 2**32 - 1), min_size=2, max_size=5),
            st.lists(st.integers(0, 8), min_size=2, max_size=5).filter(lambda s: 0 in s),
            st.just([MAX_LAYER_WIDTH] * 3),  # every width allowed, but 33 M parameters in all
        ))
        msg.layer_sizes = array("I", sizes)
    elif kind == "nonfinite":
        name = draw(st.sampled_from(["weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent"]))
        values = np.frombuffer(getattr(msg, name), np.float32).copy()
        if values.size:
            values[draw(st.integers(0, values.size - 1))] = draw(_nonfinite)
        else:  # emptied by an earlier fault of this case
            values = np.array([draw(_nonfinite)])
        setattr(msg, name, _floats(values))
    elif kind == "bad_scale":
        name = draw(st.sampled_from(["obs_std", "action_std"]))
        values = np.frombuffer(getattr(msg, name), np.float32).copy()
        bad = draw(st.one_of(st.just(0.0), st.just(-0.0), st.floats(-1e30, -1e-30)))
        if values.size:
            values[draw(st.integers(0, values.size - 1))] = bad
        else:
            values = np.array([bad])
        setattr(msg, name, _floats(values))
    elif kind == "normalisation_length":
        name = draw(st.sampled_from(["obs_mean", "obs_std", "action_mean", "action_std"]))
        values = np.frombuffer(getattr(msg, name), np.float32)
        new = draw(st.integers(0, 20).filter(lambda n: n != values.size))
        setattr(msg, name, _floats(np.resize(values, new) if values.size else np.ones(new)))
    elif kind == "stale_stamp":  # valid "until replaced", but recorded long ago (a replay after a restart)
        msg.valid_for.sec, msg.valid_for.nanosec = 0, 0
        _set_stamp(msg, now_ns - int((MAX_AGE_S + draw(st.floats(0.01, 1e6))) * S))
    elif kind == "future_stamp":
        _set_stamp(msg, now_ns + int((SKEW_S + margin_s + draw(st.floats(0.01, 1e8))) * S))
    elif kind == "expired":
        age = draw(st.floats(0.01, 1e5))
        msg.valid_for.sec, msg.valid_for.nanosec = 0, draw(st.integers(1, int(min(age, 0.99) * S * 0.99)))
        _set_stamp(msg, now_ns - int(age * S))
    elif kind == "negative_valid_for":
        msg.valid_for.sec = draw(st.integers(-(2**31), -1))
    elif kind == "activation":
        which = draw(st.sampled_from(["activation", "output_activation"]))
        known = ACTIVATIONS if which == "activation" else OUTPUT_ACTIVATIONS
        setattr(msg, which, draw(_text.filter(lambda t: t not in known)))
    elif kind == "joint_names":
        msg.joint_names = draw(st.one_of(
            st.permutations(JOINTS).filter(lambda p: tuple(p) != JOINTS),
            st.lists(st.sampled_from(JOINTS), min_size=1, max_size=5).filter(lambda p: tuple(p) != JOINTS),
            st.lists(_text, min_size=1, max_size=4).filter(lambda p: tuple(p) != JOINTS),
        ))
    elif kind == "replayed":
        msg.policy_id = draw(st.integers(0, LAST_ID))
    else:
        raise ValueError(f"unknown mutation {kind!r}")


def message_tag(msg, key: bytes) -> array:
    """The auth_tag field value for `msg` under `key` (whatever the message holds)."""
    from warpd_ros.conversions import msg_to_policy

    return array("B", policy_tag(msg_to_policy(msg, validate=False), key))


@dataclass
class Case:
    kinds: tuple[str, ...]
    verifier: str
    msg: object
    expected: frozenset = field(default_factory=frozenset)


ALL_KINDS = (*sorted(KINDS), *SIGNATURE_KINDS, "combined")


def _verifiers_for(kind: str) -> list[str]:
    """The controller set-ups in which this kind of message must be refused."""
    if kind == "unsigned":
        return ["required"]
    if kind == "bad_signature":
        return ["optional", "required"]
    return sorted(VERIFIERS)


@st.composite
def malformed_case(draw, clock, kind: str, verifiers=None, margin_s: float = 0.0) -> Case:
    """One malformed PolicyWeights of `kind` stamped around clock() (ns), the controller set-up it meets
    (drawn from `verifiers`, default all that apply), and the reasons allowed to refuse it.

    `margin_s`: how long after clock() the message may be judged (a future stamp must still be in the
    future then); other time faults only get worse with time."""
    now_ns = clock()
    verifier = draw(st.sampled_from([v for v in _verifiers_for(kind) if verifiers is None or v in verifiers]))
    # a different valid starting point every time: newer id, recent stamp, other weights
    msg = base_message(now_ns - draw(st.integers(0, S)), LAST_ID + 1 + draw(st.integers(0, 10**9)),
                       draw(st.integers(0, 2**16)))
    if kind in SIGNATURE_KINDS:
        if kind == "bad_signature":
            how = draw(st.sampled_from(["random", "other_key", "bit_flip", "truncated", "changed_after"]))
            if how == "random":
                msg.auth_tag = array("B", draw(st.binary(min_size=1, max_size=64)))
            elif how == "other_key":
                msg.auth_tag = message_tag(msg, OTHER_KEY)
            else:
                tag = message_tag(msg, KEY)
                if how == "bit_flip":
                    tag[draw(st.integers(0, len(tag) - 1))] ^= 1 << draw(st.integers(0, 7))
                elif how == "truncated":
                    tag = tag[:draw(st.integers(1, len(tag) - 1))]
                msg.auth_tag = tag
                if how == "changed_after":  # a man in the middle edits a signed message
                    change = draw(st.sampled_from(["policy_id", "task", "weight", "stamp"]))
                    if change == "policy_id":
                        msg.policy_id += draw(st.integers(1, 10**6))
                    elif change == "task":
                        msg.task = msg.task + "x"
                    elif change == "weight":
                        w = np.frombuffer(msg.weights, np.float32).copy()
                        w.view(np.uint32)[draw(st.integers(0, w.size - 1))] ^= 1
                        msg.weights = _floats(w)
                    else:
                        _set_stamp(msg, now_ns + 1)
        return Case((kind,), verifier, msg, frozenset(SIGNATURE_KINDS[kind]))
    kinds = tuple(draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=3, unique=True))) \
        if kind == "combined" else (kind,)
    for k in kinds:
        _mutate(k, msg, draw, now_ns, margin_s)
    if verifier == "required" or (verifier == "optional" and draw(st.booleans())):
        msg.auth_tag = message_tag(msg, KEY)  # signed with the right key: authentication passes, validation must refuse
    elif verifier == "none" and draw(st.booleans()):
        msg.auth_tag = array("B", draw(st.binary(min_size=1, max_size=40)))  # ignored without a key
    return Case(kinds, verifier, msg, frozenset().union(*(KINDS[k] for k in kinds)))


@dataclass
class FuzzStats:
    cases: int = 0
    rejected: int = 0
    accepted: int = 0  # must stay 0
    crashes: int = 0  # exceptions other than PolicyValidationError: must stay 0
    wrong_reason: int = 0  # refused, but not for a reason the case allows: must stay 0
    active_changed: int = 0  # must stay 0
    reasons: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)  # the first few, described

    def ok(self) -> bool:
        return self.cases > 0 and self.rejected == self.cases and not (
            self.accepted or self.crashes or self.wrong_reason or self.active_changed)


def run_case(case: Case, now_ns: int, slot: PolicySlot, stats: FuzzStats) -> None:
    """Pass one case through the controller's admission; record what happened."""
    from warpd_ros.admission import admit_policy

    active = slot.active
    stats.cases += 1
    stats.kinds.update(case.kinds)
    problem = None
    try:
        admitted = admit_policy(case.msg, SPEC, now_ns, {PLANNER: LAST_ID}, VERIFIERS[case.verifier])
    except PolicyValidationError as exc:
        stats.rejected += 1
        stats.reasons[exc.reason] += 1
        if exc.reason not in case.expected or exc.reason not in KNOWN_REASONS:
            stats.wrong_reason += 1
            problem = f"refused for {exc.reason!r}, expected one of {sorted(case.expected)}: {exc}"
    except Exception as exc:  # noqa: BLE001 - counting these is the point
        stats.crashes += 1
        problem = f"{type(exc).__name__}: {exc}"
    else:
        stats.accepted += 1
        problem = f"accepted policy {admitted.policy_id}"
    if slot.active is not active:
        stats.active_changed += 1
        problem = problem or "the running policy changed"
    if problem and len(stats.failures) < 10:
        stats.failures.append(f"{'+'.join(case.kinds)} ({case.verifier}): {problem}")


def fuzz(cases: int, seed_value: int = 0, now_ns: int = 1_000_000 * S, stats: FuzzStats | None = None) -> FuzzStats:
    """Run about `cases` Hypothesis-generated cases (an equal share per kind, rounded up) against one
    running policy; returns the stats (added to `stats` if given)."""
    stats = stats if stats is not None else FuzzStats()
    slot = PolicySlot()
    slot.install(running_policy(now_ns))
    obs = np.linspace(-1, 1, SPEC.obs_dim)
    before = slot.active.executor.select_action(obs)

    per_kind = -(-cases // len(ALL_KINDS))

    def one(kind):
        @seed(seed_value)
        @settings(max_examples=per_kind, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=["generate"])
        @given(case=malformed_case(lambda: now_ns, kind))
        def run(case):
            run_case(case, now_ns, slot, stats)
        run()

    for kind in ALL_KINDS:  # every kind gets its share (one drawn kind would favour the first few)
        one(kind)
    if not np.array_equal(slot.active.executor.select_action(obs), before):
        stats.active_changed += 1
    return stats


# ---------------------------------------------------------------------------------- over real DDS
# ---------------------------------------------------------------------------------- over real DDS

DDS_VELOCITY_LIMIT, DDS_ACCELERATION_LIMIT = 1.0, 50.0


def dds_fuzz(per_kind: int, workdir: Path, seed_value: int = 7, rate_hz: float = 250.0) -> dict:
    """Malformed PolicyWeights over real DDS to a real controller process that requires signatures.

    Starts `python -m warpd_ros.nodes.controller` (signatures required, a key file in `workdir`,
    max_policy_age_s, joint limits), installs one valid signed policy, then publishes `per_kind`
    cases of every kind (signed with the right key where the kind is not about signatures), paced
    10 ms apart, and then all of them again as one burst. Returns what came back: how many were
    handled, refused and accepted, the refusal reasons from diagnostics, whether the active policy
    ever changed, and every command published meanwhile (non-finite ones, ones beyond the limits,
    the share equal to the running policy's command). Needs ROS; DDS stays on loopback.
    """
    from warpd_ros import topics
    from warpd_ros.modes import status_mode
    from warpd_ros.msg import PolicyWeights
    from warpd_ros.qos import policy_swap_qos
    from warpd_ros.testing.policies import PIPELINE_PARAMETERS, expected_command, pipeline_from_parameters
    from warpd_ros.testing.processes import start_module, stop_process, use_private_domain
    from warpd_ros.testing.standin import RobotStandIn, diagnostic_values, feed, observation, running

    env = use_private_domain()
    key_file = Path(workdir) / "fuzz_policy.key"  # the format `warpd keygen` writes: hex, mode 0600
    key_file.write_text(KEY.hex())
    key_file.chmod(0o600)
    log_path = Path(workdir) / "fuzz_controller.log"
    proc = start_module("warpd_ros.nodes.controller", {
        "control_rate_hz": rate_hz, "require_signature": True, "signing_key_file": key_file,
        "max_policy_age_s": MAX_AGE_S, "stale_timeout_s": 0.5, "position_lower": [-2.8], "position_upper": [2.8],
        "velocity_limit": [DDS_VELOCITY_LIMIT], "acceleration_limit": [DDS_ACCELERATION_LIMIT]},
        log_path=log_path, env=env)
    try:
        with running(RobotStandIn, feed(order=JOINTS), name="fuzz_stand_in") as robot:
            def wait(predicate, timeout: float):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    status = robot.status()
                    if status is not None and predicate(status):
                        return status
                    if proc.poll() is not None:
                        raise RuntimeError(f"the controller exited: {log_path.read_text()[-2000:]}")
                    time.sleep(0.02)
                return None

            if wait(lambda s: True, 30) is None:
                raise RuntimeError(f"no ControllerStatus within 30 s: {log_path.read_text()[-2000:]}")
            # valid until replaced, signed with the controller's key
            good = policy_for(JOINTS, LAST_ID, layers=LAYERS, seed=3, planner=PLANNER, valid_for_s=0.0)
            robot.policy_pub.publish(policy_message(good, KEY))
            start = wait(lambda s: status_mode(s) == Mode.RUN and s.active_policy_id == LAST_ID, 15)
            if start is None:
                raise RuntimeError(f"the signed policy never ran: {robot.status()}")
            pipeline = pipeline_from_parameters(robot.controller_parameters(PIPELINE_PARAMETERS))
            expected = expected_command(good, observation(JOINTS), pipeline)
            time.sleep(0.5)  # the ramp up to the policy's command (rate limit) is over

            messages = []
            for kind in ALL_KINDS:
                @seed(seed_value)
                @settings(max_examples=per_kind, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck), phases=["generate"])
                @given(case=malformed_case(time.time_ns, kind, verifiers=("required",), margin_s=120.0))
                def collect(case):
                    messages.append(case.msg)
                collect()
            t0 = time.monotonic()
            before = robot.status()
            fuzz_pub = robot.node.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS,
                                                   policy_swap_qos(len(messages)))
            for msg in messages:  # paced: each one is handled before the next arrives
                fuzz_pub.publish(msg)
                time.sleep(0.01)
            paced = wait(lambda s: s.swaps_rejected - before.swaps_rejected >= len(messages), 5) or robot.status()
            for msg in messages:  # a burst, as fast as this process publishes (keep-last 1: most are superseded)
                fuzz_pub.publish(msg)
            wait(lambda s: s.swaps_rejected > paced.swaps_rejected, 10)
            time.sleep(0.5)
            final = robot.status()
            with robot.lock:
                statuses = [s for t, s in robot.statuses if t >= t0]
                diag = diagnostic_values(robot.diagnostics[-1][1]) if robot.diagnostics else {}
            sent = np.array([c.data for c in robot.commands_since(t0)])
    finally:
        stop_process(proc)
    reasons = dict(item.split("=") for item in diag.get("rejections_by_reason", "").split())
    finite = np.isfinite(sent).all(axis=1) if sent.size else np.zeros(0, bool)
    return {
        "messages": 2 * len(messages), "paced_sent": len(messages), "burst_sent": len(messages),
        "paced_refused": paced.swaps_rejected - before.swaps_rejected,
        "burst_refused": final.swaps_rejected - paced.swaps_rejected,
        "accepted": final.swaps_accepted - before.swaps_accepted,
        "reasons": {k: int(v) for k, v in reasons.items()},
        "active_policy_ids": sorted({s.active_policy_id for s in statuses if s.has_active_policy}),
        "final_mode": status_mode(final), "final_active_policy_id": final.active_policy_id,
        "commands": int(sent.shape[0]) if sent.size else 0,
        "nonfinite_commands": int((~finite).sum()),
        "commands_beyond_limits": int((np.abs(np.nan_to_num(sent, nan=np.inf)) > DDS_VELOCITY_LIMIT + 1e-9)
                                      .any(axis=1).sum()) if sent.size else 0,
        "running_policy_share": float(np.all(np.abs(sent - expected) <= 1e-6, axis=1).mean()) if sent.size else 0.0,
        "missed_ticks": final.missed_ticks,
    }


def dds_ok(result: dict) -> bool:
    return (result["accepted"] == 0 and result["nonfinite_commands"] == 0 and result["commands_beyond_limits"] == 0
            and result["active_policy_ids"] == [LAST_ID] and result["commands"] > 0
            and set(result["reasons"]) <= DDS_REASONS)

