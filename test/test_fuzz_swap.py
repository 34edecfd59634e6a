"""Fuzzing the policy-swap path (cases from warpd_ros/testing/fuzz.py, Hypothesis, fixed seeds):

- 10,000+ malformed PolicyWeights through the controller's own admission function: every one refused
  with a reason the case allows, no other exception, the running policy unchanged;
- a few hundred, then the same again as one burst, over real DDS to a real controller process that
  requires signatures: all refused (by reason, from its diagnostics), the active policy unchanged, and
  every command it published finite and within its limits.
"""
import time

import pytest

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.testing.fuzz import ALL_KINDS, DDS_REASONS, KNOWN_REASONS, LAST_ID, dds_fuzz, dds_ok, fuzz

CI_CASES = 10_000


@pytest.mark.once  # in-process admission (no DDS): the same Python on every distro
def test_ten_thousand_malformed_policies_are_all_refused_for_a_known_reason():
    start = time.monotonic()
    stats = fuzz(CI_CASES, seed_value=20261126)
    seconds = time.monotonic() - start
    print(f"fuzzed {stats.cases} PolicyWeights in {seconds:.1f} s: {stats.rejected} refused, "
          f"{stats.accepted} accepted, {stats.crashes} crashes, {stats.wrong_reason} wrong reasons; "
          f"reasons {dict(stats.reasons)}")
    assert stats.cases >= CI_CASES
    assert stats.failures == [], stats.failures
    assert stats.rejected == stats.cases and stats.ok()
    assert set(stats.kinds) == set(ALL_KINDS) - {"combined"}  # every kind of fault ran (combined ones too)
    assert set(stats.reasons) == KNOWN_REASONS  # and each known reason was seen refusing something


# ------------------------------------------------------------------------------- over real DDS

PER_KIND = 20  # x 16 kinds = 320 messages paced, then the same 320 as one burst


@pytest.mark.ros
@pytest.mark.slow
def test_malformed_policies_over_dds_never_reach_the_robot(tmp_path):
    result = dds_fuzz(PER_KIND, tmp_path)
    print(f"DDS fuzz: {result}")
    sent = PER_KIND * len(ALL_KINDS)
    assert result["accepted"] == 0  # nothing malformed was accepted
    assert result["paced_refused"] >= 0.95 * sent  # paced messages are read (and refused), bar a rare stall
    assert result["burst_refused"] >= 1  # the burst was read too (keep-last 1: most of it is superseded)
    assert result["active_policy_ids"] == [LAST_ID] and result["final_active_policy_id"] == LAST_ID
    assert result["final_mode"] == Mode.RUN  # still running the signed policy
    assert set(result["reasons"]) <= DDS_REASONS, result["reasons"]  # no internal_error either
    assert len(result["reasons"]) >= 10  # signed malformed messages were refused for their content
    assert result["commands"] > 100 and result["nonfinite_commands"] == 0 and result["commands_beyond_limits"] == 0
    assert result["running_policy_share"] > 0.9, "the commands were not the running policy's"
    assert dds_ok(result)
