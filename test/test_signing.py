"""Policy signing (warpd_core/runtime/signing.py), key files, `warpd keygen`, and what bringup does with keys."""
import dataclasses
import os

import numpy as np
import pytest

from warpd_core.errors import PolicyValidationError, WarpdError
from warpd_core.runtime.policy_spec import MLPArchitecture
from warpd_core.runtime.signing import (
    MIN_KEY_BYTES,
    TAG_BYTES,
    PolicyVerifier,
    load_key,
    policy_tag,
    sign_policy,
    write_key_file,
)
from warpd_core.runtime.swap import ControllerSpec, check_policy
from warpd_core.runtime.synthetic import synthetic_policy

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_000 * 10**9


def make(policy_id=7, **changes):
    policy = synthetic_policy((8, 16, 3), policy_id)
    policy.planner_id, policy.task, policy.joint_names = "planner_a", "reach_around", ("a", "b", "c")
    policy.stamp_ns, policy.valid_for_s = NOW, 1.0
    for name, value in changes.items():
        setattr(policy, name, value)
    return policy


def reason(verifier, policy):
    with pytest.raises(PolicyValidationError) as info:
        verifier.check(policy)
    return info.value.reason


def test_a_signed_policy_verifies_and_the_tag_is_deterministic():
    policy = sign_policy(make(), KEY)
    assert len(policy.auth_tag) == TAG_BYTES
    assert policy.auth_tag == policy_tag(make(), KEY)
    PolicyVerifier(KEY, required=True).check(policy)
    assert policy_tag(make(), OTHER_KEY) != policy.auth_tag


def _mutations():
    """Every field the tag covers, changed a little (one bit of a float is enough)."""
    def flip(name):
        def change(p):
            arr = getattr(p, name).copy()
            arr.view(np.uint32)[0] ^= 1
            setattr(p, name, arr)
        return change

    def field(name, value):
        return lambda p: setattr(p, name, value)

    yield "planner_id", field("planner_id", "planner_b")
    yield "policy_id", field("policy_id", 8)
    yield "task", field("task", "other")
    yield "stamp", field("stamp_ns", NOW + 1)
    yield "valid_for", field("valid_for_s", 1.001)
    yield "joint_names", field("joint_names", ("a", "c", "b"))
    yield "layer_sizes", field("architecture", MLPArchitecture((8, 16, 3), "relu", "tanh"))
    yield "activation", field("architecture", MLPArchitecture((8, 16, 3), "tanh"))
    for name in ("obs_mean", "obs_std", "action_mean", "action_std", "weights", "latent"):
        yield name, flip(name)


@pytest.mark.parametrize("name,mutate", list(_mutations()), ids=[n for n, _ in _mutations()])
def test_changing_any_covered_field_breaks_the_tag(name, mutate):
    policy = sign_policy(make(), KEY)
    mutate(policy)
    assert reason(PolicyVerifier(KEY, required=True), policy) == "bad_signature"


def test_fields_cannot_be_shifted_into_their_neighbours():
    """Length prefixes: moving bytes between adjacent strings or list entries changes the tag."""
    assert policy_tag(make(planner_id="ab", task="c"), KEY) != policy_tag(make(planner_id="a", task="bc"), KEY)
    assert policy_tag(make(joint_names=("ab", "c", "d")), KEY) != policy_tag(make(joint_names=("a", "bc", "d")), KEY)
    assert policy_tag(make(joint_names=("a", "b")), KEY) != policy_tag(make(joint_names=("a", "b", "")), KEY)
    p = make()
    moved = make(weights=p.weights[:-1], latent=np.concatenate([p.weights[-1:], p.latent]))
    assert policy_tag(p, KEY) != policy_tag(moved, KEY)


def test_tags_survive_the_message_round_trip():
    pytest.importorskip("rclpy")
    from warpd_ros.conversions import msg_to_policy, policy_to_msg

    policy = sign_policy(make(valid_for_s=0.3), KEY)  # 0.3 s is not exact in binary: signed as whole ns
    received = msg_to_policy(policy_to_msg(policy))
    assert received.auth_tag == policy.auth_tag
    PolicyVerifier(KEY, required=True).check(received)


def test_verifier_modes():
    unsigned, signed, forged = make(), sign_policy(make(), KEY), sign_policy(make(), OTHER_KEY)
    required = PolicyVerifier(KEY, required=True)
    assert reason(required, unsigned) == "unsigned"
    assert reason(required, forged) == "bad_signature"
    assert reason(required, dataclasses.replace(signed, auth_tag=signed.auth_tag[:16])) == "bad_signature"
    optional = PolicyVerifier(KEY, required=False)  # a key but signatures not required
    optional.check(unsigned)  # accepted: the topic is not authenticated
    optional.check(signed)
    assert reason(optional, forged) == "bad_signature"  # a tag that is present must verify
    no_key = PolicyVerifier(None)
    for policy in (unsigned, signed, forged):  # without a key tags cannot be checked: behaviour unchanged
        no_key.check(policy)
    with pytest.raises(WarpdError, match="no signing key"):
        PolicyVerifier(None, required=True)


def test_check_policy_authenticates_before_it_validates():
    spec = ControllerSpec(("a", "b", "c"), 2)
    verifier = PolicyVerifier(KEY, required=True)
    bad = make()
    bad.weights = bad.weights[:-3]
    with pytest.raises(PolicyValidationError) as info:
        check_policy(bad, spec, NOW, {}, verifier)
    assert info.value.reason == "unsigned"
    sign_policy(bad, KEY)  # a signed but malformed policy is still refused by validation
    with pytest.raises(PolicyValidationError) as info:
        check_policy(bad, spec, NOW, {}, verifier)
    assert info.value.reason == "weights_size"
    good = sign_policy(make(), KEY)
    check_policy(good, spec, NOW, {}, verifier)
    with pytest.raises(PolicyValidationError) as info:  # replaying the same signed message
        check_policy(good, spec, NOW, {"planner_a": good.policy_id}, verifier)
    assert info.value.reason == "replayed"


def test_stamp_window_refuses_old_recordings():
    spec = ControllerSpec(("a", "b", "c"), 2, max_policy_age_s=5.0)
    old = sign_policy(make(valid_for_s=0.0, stamp_ns=NOW - 6 * 10**9), KEY)  # valid "until replaced"
    with pytest.raises(PolicyValidationError) as info:
        check_policy(old, spec, NOW, {}, PolicyVerifier(KEY, required=True))  # e.g. after a controller restart
    assert info.value.reason == "stale_stamp"
    check_policy(old, spec, NOW - 2 * 10**9, {})  # inside the window
    check_policy(old, ControllerSpec(("a", "b", "c"), 2), NOW, {})  # 0 = no window


# ------------------------------------------------------------------------------ key files

def test_write_and_load_a_key(tmp_path):
    path = write_key_file(tmp_path / "keys" / "policy.key")
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o077) == 0
    key = load_key(path)
    assert len(key) == 32 and key != load_key(write_key_file(tmp_path / "second.key"))
    with pytest.raises(WarpdError, match="already exists"):
        write_key_file(path)
    assert load_key(write_key_file(path, force=True)) != key


@pytest.mark.parametrize("content,mode,message", [
    (None, 0o600, "does not exist"),
    ("", 0o600, "is empty"),
    ("  \n", 0o600, "is empty"),
    ("not hex at all", 0o600, "as hex"),
    ("ab" * (MIN_KEY_BYTES - 1), 0o600, "at least 32"),
    ("ab" * 32, 0o644, "accessible to other users"),
    ("ab" * 32, 0o640, "accessible to other users"),
])
def test_bad_key_files_are_clear_errors(tmp_path, content, mode, message):
    path = tmp_path / "k.key"
    if content is not None:
        path.write_text(content)
        os.chmod(path, mode)
    with pytest.raises(WarpdError, match=message) as info:
        load_key(path)
    assert info.value.hint
    with pytest.raises(WarpdError, match="no signing key file"):
        load_key("")


def test_keygen_command(run_warpd, tmp_path):
    path = tmp_path / "robot.key"
    proc = run_warpd("keygen", str(path))
    assert proc.returncode == 0 and str(path) in proc.stdout, proc.stderr
    assert len(load_key(path)) == 32
    again = run_warpd("keygen", str(path))
    assert again.returncode == 2 and "already exists" in again.stderr and "hint: pass --force" in again.stderr
    assert run_warpd("keygen", "--force", str(path)).returncode == 0


def test_graphs_get_a_key_only_where_both_ends_run_here(tmp_path):
    from warpd_ros.graph import load_graph
    from warpd_ros.keygen import default_key_file, provide_graph_keys

    assert default_key_file() == "~/.config/warpd/policy_signing.key"
    key = tmp_path / "graph.key"
    hil = load_graph("hil")
    both = [("warpd_controller", "signing_key_file", str(key)), ("warpd_planner", "signing_key_file", str(key))]
    assert provide_graph_keys(hil, both[:1], say=lambda _: None) == []  # the planner uses another key
    assert not key.exists()
    said = []
    assert provide_graph_keys(hil, both, say=said.append) == [key] and len(load_key(key)) == 32
    assert "created policy signing key" in said[0]
    assert provide_graph_keys(hil, both, say=said.append) == []  # never replaces an existing key
    assert provide_graph_keys(load_graph("sim"), say=said.append) == []  # sim: no keys configured


@pytest.mark.ros
@pytest.mark.once  # start-up refusals of our own key handling: distro-independent
def test_nodes_refuse_to_start_without_a_usable_key(tmp_path):
    from conftest import run_module

    proc = run_module("warpd_ros.nodes.controller", "--ros-args", "-p", "require_signature:=true", timeout=30)
    assert proc.returncode == 1 and "signatures are required but no signing key" in proc.stderr, proc.stderr
    leaked = tmp_path / "leaked.key"
    leaked.write_text("ab" * 32)
    leaked.chmod(0o644)
    for module in ("warpd_ros.nodes.controller", "warpd_ros.nodes.planner"):
        proc = run_module(module, "--ros-args", "-p", f"signing_key_file:={leaked}", timeout=60)
        assert proc.returncode == 1 and "accessible to other users" in proc.stderr, (module, proc.stderr)
        assert "hint: chmod 600" in proc.stderr
