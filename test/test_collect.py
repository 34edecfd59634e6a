"""`warpd collect`: real reach_around rollouts, the printed statistics, and resumption after
SIGINT/SIGTERM that loses no finished episode and ends bit-identical to an uninterrupted run."""
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO, run_module
from warpd_core.data import Dataset
from warpd_core.tasks import make_task
from warpd_ros.cli import main as warpd_main

pytestmark = pytest.mark.once  # warpd collect: data collection, no ROS node involved

EPISODES = 40
SEED = 7


def collect_args(out, *extra):
    return ("collect", "--episodes", str(EPISODES), "--seed", str(SEED), "--flush-every", "1000", "--out", str(out),
            *extra)


def test_collect_records_expert_rollouts_and_prints_success_and_modes(tmp_path, run_warpd):
    out = tmp_path / "demos"
    proc = run_warpd("collect", "--episodes", "4", "--seed", "0", "--flush-every", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "collected 4 new episodes of reach_around (seeds 0..3)" in proc.stdout
    assert "success: 4/4 (100.0%)" in proc.stdout
    modes = re.search(r"modes: +(\w+) (\d) \((\d+\.\d)%\), (\w+) (\d) \((\d+\.\d)%\)", proc.stdout)
    assert modes and {modes[1], modes[4]} == {"near", "far"} and int(modes[2]) + int(modes[5]) == 4
    assert f"dataset: {out}" in proc.stdout and "4/4" in proc.stderr  # the progress bar
    dataset = Dataset.open(out)
    assert dataset.num_episodes == 4 and len(dataset.shards) == 2
    assert dataset.info.obs_names == make_task("reach_around").spec.obs_names
    task = make_task("reach_around")
    for i, (obs, act, record) in enumerate(dataset):
        assert (record.episode_index, record.seed, record.task, record.success) == (i, i, "reach_around", True)
        assert record.mode == record.metadata["intended_mode"] and record.expert == "reach_around_scripted_v1"
        assert record.length == len(obs) == len(act) > 10
        assert np.array_equal(obs[0], task.reset(i))  # the observation before the first action
    rerun = run_warpd("collect", "--episodes", "4", "--seed", "0", "--out", str(out))
    assert rerun.returncode == 0 and "collected 0 new episodes" in rerun.stdout
    assert Dataset.open(out).num_episodes == 4


def test_unknown_task_and_mismatched_resume_are_clear_errors(tmp_path, capsys):
    assert warpd_main(["collect", "--task", "reach_aroud", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "error: unknown task 'reach_aroud'" in err and "did you mean reach_around" in err
    assert warpd_main(["collect", "--episodes", "1", "--out", str(tmp_path / "b")]) == 0
    assert warpd_main(["collect", "--episodes", "2", "--seed", "5", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "holds episodes collected with --seed 0 and default mode probabilities, this run uses --seed 5" in err
    assert warpd_main(["collect", "--mode-probs", "near=0.5,side=0.5", "--out", str(tmp_path / "c")]) == 2
    assert "--mode-probs: mode_probs must be non-negative over ('near', 'far')" in capsys.readouterr().err


def test_mode_probs_and_successful_only(tmp_path, capsys):
    out = tmp_path / "skewed"
    args = ["collect", "--episodes", "12", "--mode-probs", "near=1,far=0", "--successful-only", "--out", str(out)]
    assert warpd_main(args) == 0
    assert "modes:   near 12 (100.0%)" in capsys.readouterr().out
    assert {r.metadata["collect"]["mode_probs"]["near"] for r in Dataset.open(out).episodes} == {1.0}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "demos"
    proc = run_module("warpd_ros.cli", *collect_args(out))
    assert proc.returncode == 0, proc.stderr
    return Dataset.open(out)


def progress(stderr: bytes) -> int:
    """Episodes the progress bar has reported finished so far."""
    return max((int(n) for n in re.findall(rb"(\d+)/%d" % EPISODES, stderr)), default=0)


def interrupt(args, signum, after: int):
    """Start `warpd *args`, send `signum` once the bar shows `after` finished episodes."""
    proc = subprocess.Popen([sys.executable, "-m", "warpd_ros.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks = []
    pump = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")), daemon=True)
    pump.start()
    deadline = time.monotonic() + 60
    while progress(b"".join(chunks)) < after:
        assert proc.poll() is None, "collect ended before it could be interrupted: " + b"".join(chunks).decode()
        assert time.monotonic() < deadline, "no progress reported"
        time.sleep(0.002)
    reported = progress(b"".join(chunks))
    proc.send_signal(signum)
    proc.wait(timeout=60)
    pump.join(timeout=10)
    return proc.returncode, reported, proc.stdout.read().decode(), b"".join(chunks).decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_collect_keeps_every_finished_episode_and_resumes_exactly(tmp_path, uninterrupted, signum):
    out = tmp_path / "demos"
    status, reported, stdout, stderr = interrupt(collect_args(out), signum, after=3)
    assert status == 128 + signum, stderr
    saved = re.search(rf"interrupted by {signum.name}: saved all (\d+) finished episodes", stderr)
    assert saved, stderr
    partial = Dataset.open(out)
    assert reported <= partial.num_episodes == int(saved[1]) < EPISODES  # only the signal handler flushed them
    assert [r.episode_index for r in partial.episodes] == list(range(partial.num_episodes))
    assert f"dataset: {out} ({partial.num_episodes} episodes" in stdout

    resumed = run_module("warpd_ros.cli", *collect_args(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"collected {EPISODES - partial.num_episodes} new episodes" in resumed.stdout
    complete = Dataset.open(out)
    assert len(complete.shards) == 2 and complete.episodes == uninterrupted.episodes
    assert np.array_equal(complete.observations, uninterrupted.observations)
    assert np.array_equal(complete.actions, uninterrupted.actions)
    assert np.array_equal(complete.episode_index, uninterrupted.episode_index)


def test_hold_steps_keep_demonstrating_after_success(tmp_path, run_warpd):
    plain, held = tmp_path / "plain", tmp_path / "held"
    assert run_warpd("collect", "--episodes", "3", "--out", str(plain)).returncode == 0
    assert run_warpd("collect", "--episodes", "3", "--hold-steps", "12", "--out", str(held)).returncode == 0
    for (obs_p, act_p, rec_p), (obs_h, act_h, rec_h) in zip(Dataset.open(plain), Dataset.open(held)):
        assert rec_h.success and rec_h.metadata["steps_to_success"] == rec_p.length
        assert rec_h.length == rec_p.length + 12
        assert np.array_equal(obs_h[: rec_p.length], obs_p)  # the same episode, extended
        from warpd_core.tasks.reach_around import fingertip_xy

        assert np.linalg.norm(fingertip_xy(obs_h[-1, :3]) - obs_h[-1, 6:8]) < 0.03  # it stayed at the goal
    proc = run_warpd("collect", "--episodes", "4", "--out", str(held))  # resuming with other settings
    assert proc.returncode == 2 and "hold_steps" in proc.stderr


def test_perturbed_demonstrations_record_true_observations_and_the_commanded_actions(tmp_path, capsys):
    out, plain = tmp_path / "perturbed", tmp_path / "plain"
    spec = REPO / "config" / "perturbations.yaml"  # evaluation's: with observation noise and delay as well
    assert warpd_main(["collect", "--episodes", "8", "--perturbations", str(spec), "--out", str(out)]) == 0
    assert "success: 8/8 (100.0%)" in capsys.readouterr().out
    assert warpd_main(["collect", "--episodes", "8", "--out", str(plain)]) == 0
    task, levels, shifted, differs = make_task("reach_around"), [], 0, 0
    for (obs, act, record), (obs_p, _, _) in zip(Dataset.open(out), Dataset.open(plain)):
        levels.append(record.perturbation)
        assert record.metadata["collect"]["perturbations"]["push"]["force"] == 20.0
        assert np.array_equal(obs[0], task.reset(record.seed))  # true observations: no noise, even at the start
        expert = task.expert(rng=np.random.default_rng([record.seed, 1]))
        commanded = np.stack([expert(o) for o in obs]).astype(np.float32)
        assert np.allclose(act, commanded, atol=1e-6)  # each row: what the expert commanded from that row
        goal_jumps = np.linalg.norm(np.diff(obs[:, 6:8], axis=0), axis=1)
        assert np.count_nonzero(goal_jumps) <= 1  # the goal moved at most once (the target shift)
        shifted += np.count_nonzero(goal_jumps) == 1
        differs += len(obs) != len(obs_p) or not np.allclose(obs, obs_p)
    assert len(set(levels)) == 8 and all(0 < level < 1 for level in levels)  # a level of its own each
    assert shifted >= 4 and differs == 8  # the perturbations acted: moved goals, other paths

    assert warpd_main(["collect", "--episodes", "8", "--perturbations", str(spec), "--out", str(out)]) == 0
    assert "collected 0 new episodes" in capsys.readouterr().out  # resumes with the same spec
    assert warpd_main(["collect", "--episodes", "9", "--out", str(out)]) == 2
    assert "perturbations up to level 1, this run uses --seed 0 and default mode probabilities" in \
        capsys.readouterr().err
