"""`warpd eval` end to end: a tiny sweep to CSV with plots, resuming, and clear errors for bad input."""
import csv
import math

import pytest

from warpd_core.eval.sweep import COLUMNS, paired_difference, wilson_interval
from warpd_ros.cli import main as warpd

pytestmark = pytest.mark.once  # the warpd eval/sweep command line: no ROS node involved

CHECKPOINT = "checkpoints/reach_around/checkpoint.safetensors"
SWEEP = ["eval", "--methods", "expert,warpd", "--levels", "0,1", "--horizons", "16,64", "--seeds", "10000-10001",
         "--workers", "2", "--quiet"]


def _lines(path):
    return path.read_text().splitlines()


def _rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def _key(row):
    return row["method"], row["level"], row["horizon"], row["seed"]


def test_tiny_sweep_writes_every_episode_once_and_resumes(tmp_path, capsys):
    out = tmp_path / "eval"
    assert warpd([*SWEEP, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = out / "episodes.csv"
    rows = _rows(table)
    assert tuple(rows[0]) == COLUMNS
    # the expert does not re-plan: one row per (level, seed), horizon empty; WARPD one per (level, horizon, seed)
    expected = {("expert", lv, "", s) for lv in ("0", "1") for s in ("10000", "10001")}
    expected |= {("warpd", lv, k, s) for lv in ("0", "1") for k in ("16", "64") for s in ("10000", "10001")}
    assert sorted(map(_key, rows)) == sorted(expected)
    for r in rows:
        assert r["task"] == "reach_around" and r["success"] in ("0", "1")
        steps = int(r["steps"])
        if r["success"] == "1":  # an episode ends on success, at task time steps * 0.02 s
            assert math.isclose(float(r["time_to_success"]), steps * 0.02, rel_tol=1e-4)
            assert float(r["final_distance"]) < 0.03 and r["mode"] in ("near", "far")
        else:
            assert r["time_to_success"] == "" and steps == 250
        assert int(r["replans"]) == (0 if r["method"] == "expert" else math.ceil(steps / int(r["horizon"])))
    assert all(r["success"] == "1" for r in rows if r["level"] == "0")  # both always succeed unperturbed
    for plot in ("success_vs_level.png", "success_vs_horizon.png", "success_vs_flops.png", "mode_shares.png"):
        assert (out / plot).stat().st_size > 10_000
    assert "level 0" in printed and "level 1" in printed and "warpd" in printed
    assert (out / "summary.txt").read_text().strip() in printed

    # a rerun finds everything done and leaves the table as it was
    before = table.read_text()
    assert warpd([*SWEEP, "--out", str(out), "--no-plots"]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert table.read_text() == before

    # lose one row and tear the last line (as a kill mid-write would): exactly that row comes back, the same
    lines = _lines(table)
    victim = next(i for i, line in enumerate(lines) if line.startswith("warpd,reach_around,1,64,10001,"))
    kept = lines[:victim] + lines[victim + 1:]
    table.write_text("\n".join(kept) + "\nwarpd,reach_ar")
    assert warpd([*SWEEP, "--out", str(out), "--no-plots"]) == 0
    assert "1 to run" in capsys.readouterr().out
    after = _lines(table)
    assert after[:-1] == kept and after[-1] == lines[victim]


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--methods", "expert", "--levels", "0", "--seeds", "1", "--workers", "1", "--quiet",
            "--no-plots", "--out", str(out)]
    assert warpd(args) == 0
    spec = tmp_path / "perturbations.yaml"
    spec.write_text("push: null\n")
    assert warpd([*args, "--perturbations", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "perturbation" in err and "hint: use a new --out" in err


@pytest.mark.parametrize("args, message", [
    (["--methods", "expert,wrapd"], "unknown method 'wrapd' (did you mean warpd"),
    (["--methods", "warpd", "--checkpoint", "warpd=nowhere/checkpoint.safetensors"], "nowhere/checkpoint.safetensors"),
    (["--methods", "expert", "--checkpoint", "dp=x.safetensors"], "not among the methods"),
    (["--methods", "expert", "--tasks", "reach_arund"], "unknown task 'reach_arund'"),
    (["--methods", f"mine={CHECKPOINT}", "--tasks", "metaworld/push-v3"], "was not trained on"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    assert warpd(["eval", *args, "--seeds", "1", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert message in err and "warpd eval: error:" in err
    assert not (tmp_path / "eval" / "episodes.csv").exists()


def test_a_method_may_carry_its_own_steps_and_sampler():
    from warpd_core.errors import WarpdError
    from warpd_core.eval.methods import registry_from_config

    registry = registry_from_config({"methods": {"fast": {"kind": "dp", "checkpoint": "x", "steps": 4,
                                                          "sampler": "dpm"}}}, "eval.yaml")
    fast = registry["fast"]
    assert (fast.steps, fast.sampler) == (4, "dpm")
    factory = fast.factory("reach_around", steps=10)  # its own steps win over a sweep-wide setting
    assert (factory.steps, factory.sampler) == (4, "dpm")
    for bad in ({"steps": 0}, {"sampler": "euler"}, {"step": 4}):
        with pytest.raises(WarpdError, match="methods.fast"):
            registry_from_config({"methods": {"fast": {"kind": "dp", "checkpoint": "x", **bad}}}, "eval.yaml")


@pytest.mark.parametrize("flag, value", [("--levels", "0,1.5"), ("--levels", "low"), ("--horizons", "16,0"),
                                         ("--seeds", "9-3"), ("--checkpoint", "warpd")])
def test_bad_values_are_usage_errors(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        warpd(["eval", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_wilson_interval_matches_the_textbook_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(21, 21)[1] == 1.0 and wilson_interval(0, 11)[0] == 0.0  # exact at the edges
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)


def test_paired_difference_counts_the_seeds_that_differ_and_gives_the_exact_mcnemar_p():
    a = {seed: True for seed in range(100)}
    b = dict(a)
    assert paired_difference(a, b) == (0, 0, 1.0)  # identical: nothing to tell them apart
    for seed in range(8):
        b[seed] = False  # a solved 8 seeds that b did not
    b[50], a[51] = True, False  # (b[50] was already True; a[51] now fails where b succeeds)
    a_only, b_only, p = paired_difference(a, b)
    assert (a_only, b_only) == (8, 1)
    assert p == pytest.approx(2 * (1 + 9) / 2 ** 9)  # P(<= 1 of 9 fair flips), two-sided: 0.039
    assert paired_difference({1: True}, {2: False}) == (0, 0, 1.0)  # no common seeds
