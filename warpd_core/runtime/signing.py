"""Authenticated policies: an HMAC-SHA256 tag over everything a controller acts on.

The policy-swap topic is an actuator interface: whoever can publish on it can move the robot. A
planner that holds the shared key signs each policy (:func:`sign_policy`); a controller that holds
the same key accepts only policies whose tag verifies (:class:`PolicyVerifier`). The key is read
from a file whose path is a node parameter (:func:`load_key`), never from a message.

What the tag covers (:func:`policy_digest_input`): every field of a GeneratedPolicy — planner_id,
policy_id, task, stamp, valid_for, command_interface, joint_names, the architecture (layer sizes and both
activations), the four normalisation arrays, the weights and the latent — in a fixed order, each
one length-prefixed, so no byte can be moved from one field into its neighbour without changing
the tag (e.g. planner "ab" + task "c" and planner "a" + task "bc" sign differently). Arrays are
hashed as little-endian float32 bytes, bit for bit (NaN payloads included). The stamp is signed
as integer nanoseconds and valid_for as integer nanoseconds rounded like the message conversion
does, so a policy signed before ``policy_to_msg`` verifies after ``msg_to_policy``. The one
message field not covered is ``header.frame_id``, which nothing reads.

A tag proves who made a policy, not that it is fresh: replays are refused by the controller's
per-planner policy_id order and its stamp window (``max_policy_age_s``), both of which work only
because policy_id and stamp are inside the tag.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from warpd_core.errors import PolicyValidationError, WarpdError
from warpd_core.runtime.policy_spec import GeneratedPolicy

TAG_BYTES = 32  # HMAC-SHA256
KEY_BYTES = 32  # what `warpd keygen` writes
MIN_KEY_BYTES = 32  # RFC 2104: a key shorter than the hash output weakens the MAC
DOMAIN = b"warpd-policy-hmac-sha256-v1"  # a tag made for anything else can never verify here
REASON_UNSIGNED, REASON_BAD_SIGNATURE = "unsigned", "bad_signature"
KEYGEN_HINT = "create one with `warpd keygen {path}` and give the same file to the planner and the controller"

_LENGTH = struct.Struct("<Q")


def _field(data: bytes | memoryview) -> Iterator[bytes | memoryview]:
    yield _LENGTH.pack(len(data))
    yield data


def _text(value: str) -> bytes:
    return str(value).encode("utf-8", "surrogatepass")


def _integer(value) -> bytes:
    """Decimal ASCII: canonical for any Python int, so no range can make encoding fail."""
    return str(int(value)).encode()


def _duration_ns(seconds: float) -> bytes:
    """valid_for as whole nanoseconds (how the message carries it); non-finite values as text, so
    they can be signed (and then refused by validation) rather than crash the encoder."""
    seconds = float(seconds)
    return _integer(round(seconds * 1e9)) if math.isfinite(seconds) else repr(seconds).encode()


def _floats(values: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(values, dtype="<f4")).cast("B")


def policy_digest_input(policy: GeneratedPolicy) -> Iterator[bytes | memoryview]:
    """The canonical byte encoding the tag is computed over, as chunks (no copy of the weights)."""
    arch = policy.architecture
    yield DOMAIN
    for chunk in (_text(policy.planner_id), _integer(policy.policy_id), _text(policy.task),
                  _integer(policy.stamp_ns), _duration_ns(policy.valid_for_s), _text(policy.command_interface)):
        yield from _field(chunk)
    for names in (tuple(_text(n) for n in policy.joint_names), tuple(_integer(s) for s in arch.layer_sizes)):
        yield _LENGTH.pack(len(names))
        for name in names:
            yield from _field(name)
    yield from _field(_text(arch.activation))
    yield from _field(_text(arch.output_activation))
    for name in ("obs_mean", "obs_std", "action_mean", "action_std", "weights", "latent"):
        yield from _field(_floats(getattr(policy, name)))


def policy_tag(policy: GeneratedPolicy, key: bytes) -> bytes:
    """HMAC-SHA256 of the policy under `key` (ignores the policy's own auth_tag)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for chunk in policy_digest_input(policy):
        mac.update(chunk)
    return mac.digest()


def sign_policy(policy: GeneratedPolicy, key: bytes) -> GeneratedPolicy:
    """Set `policy.auth_tag` to its tag under `key`; returns the policy. Sign last: any later change
    to a covered field makes the tag fail."""
    policy.auth_tag = policy_tag(policy, key)
    return policy


class PolicyVerifier:
    """What a controller does with auth tags.

    - key None (no key configured): tags are ignored; `required` is refused at construction.
    - key set, required: an unsigned policy is refused ("unsigned"), a tag that does not verify is
      refused ("bad_signature").
    - key set, not required: unsigned policies pass (the topic is not authenticated), but a tag that
      is present must verify — a wrong tag means a tampered message or a planner with another key,
      and either is worth refusing and counting rather than running.
    Tags are compared in constant time (hmac.compare_digest).
    """

    def __init__(self, key: bytes | None, required: bool = False):
        if required and key is None:
            raise WarpdError("signatures are required but no signing key is configured",
                             "set signing_key_file (or set require_signature to false)")
        self.key = key
        self.required = required

    def check(self, policy: GeneratedPolicy) -> None:
        """Raise PolicyValidationError("unsigned" | "bad_signature") unless `policy` passes."""
        tag = policy.auth_tag
        if not tag:
            if self.required:
                raise PolicyValidationError(REASON_UNSIGNED, "policy carries no auth_tag and signatures are required")
            return
        if self.key is None:
            return
        if not hmac.compare_digest(tag, policy_tag(policy, self.key)):
            raise PolicyValidationError(
                REASON_BAD_SIGNATURE, f"auth_tag ({len(tag)} bytes) does not verify with this controller's key",
                "the planner and the controller must read the same signing_key_file")


# ---------------------------------------------------------------------------------- key files

def key_path(path: str | os.PathLike) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def load_key(path: str | os.PathLike) -> bytes:
    """The key in `path`: hex text (what `warpd keygen` writes), at least MIN_KEY_BYTES bytes.

    Refused with a WarpdError that says what to do: an empty path, a missing or unreadable file, a
    file that group or other users may read or write (like ssh, a shared secret in a world-readable
    file is treated as already leaked), not hex, or too short.
    """
    if not str(path).strip():
        raise WarpdError("no signing key file given", KEYGEN_HINT.format(path="PATH"))
    p = key_path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="ascii")
    except FileNotFoundError:
        raise WarpdError(f"signing key file {p} does not exist", KEYGEN_HINT.format(path=p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WarpdError(f"cannot read signing key file {p}: {exc}", KEYGEN_HINT.format(path=p)) from None
    if not stat.S_ISREG(mode):
        raise WarpdError(f"signing key file {p} is not a regular file")
    if os.name == "posix" and mode & 0o077:
        raise WarpdError(f"signing key file {p} is accessible to other users (mode {stat.S_IMODE(mode):04o})",
                         f"chmod 600 {p}; if others could read it, make a new key with `warpd keygen --force {p}`")
    text = text.strip()
    if not text:
        raise WarpdError(f"signing key file {p} is empty", KEYGEN_HINT.format(path=p))
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise WarpdError(f"signing key file {p} must hold the key as hex digits", KEYGEN_HINT.format(path=p)) from None
    if len(key) < MIN_KEY_BYTES:
        raise WarpdError(f"signing key in {p} has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed",
                         f"make a new one with `warpd keygen --force {p}`")
    return key


def write_key_file(path: str | os.PathLike, force: bool = False) -> Path:
    """Write a fresh random key (KEY_BYTES from the OS CSPRNG, as hex) to `path`, mode 0600.

    Missing parent directories are created (mode 0700). An existing file is kept unless `force`;
    with `force` it is replaced atomically, so a reader never sees half a key.
    """
    p = key_path(path)
    if p.exists() and not force:
        raise WarpdError(f"{p} already exists; not overwriting a key",
                         "pass --force to replace it (planners and controllers using the old key must get the new one)")
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
