"""`warpd train` / `sample` / `rollout` end to end on a tiny configuration, plus DDP, resume and
reproducibility. Tiny means seconds: real training runs live in bench/."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, run_module, tiny_warpd_config
from warpd_core.policies.warpd.checkpoint import read_metadata
from warpd_core.runtime.policy_file import load_policy

pytestmark = [pytest.mark.slow, pytest.mark.once]  # distro-independent (torch, data, rosbags): run in the first pass only

TINY = tiny_warpd_config({"task": "reach_around", "episodes": 6, "seed": 0, "horizon": 4},
                         stage1={"steps": 40, "batch_size": 32, "log_every": 5, "checkpoint_every": 10},
                         stage2={"steps": 40, "batch_size": 64, "log_every": 5, "checkpoint_every": 10}, sample_steps=4)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("warpd_data")
    proc = run_module("warpd_ros.cli", "collect", "--episodes", "6", "--out", str(root / "data"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return root / "data"


def write_config(tmp_path, tiny_data, name, **changes):
    config = json.loads(json.dumps(TINY))
    config["data"]["path"] = str(tiny_data)
    config["output"] = str(tmp_path / name)
    for section, values in changes.items():
        config[section].update(values)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def warpd(*args, timeout=300):
    return run_module("warpd_ros.cli", *args, timeout=timeout)


def test_train_sample_rollout(tmp_path, tiny_data):
    config = write_config(tmp_path, tiny_data, "run")
    proc = warpd("train", "--config", str(config), "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "run"
    checkpoint = out / "checkpoint.safetensors"
    meta = read_metadata(checkpoint)
    assert meta["task_names"] == ["reach_around"] and meta["architecture"]["layer_sizes"] == [8, 16, 16, 3]
    assert checkpoint.stat().st_size < 20 * 1024 * 1024
    header = (out / "losses_stage1.csv").read_text().splitlines()
    assert header[0] == "step,total,bc,tf,ro,kl,seconds" and len(header) == 1 + 40 // 5 + 1  # + the last step
    assert (out / "losses.png").stat().st_size > 10_000 and (out / "losses_stage2.csv").exists()

    policy_file = tmp_path / "p.safetensors"
    proc = warpd("sample", "--checkpoint", str(checkpoint), "--episode-seed", "3", "--out", str(policy_file))
    assert proc.returncode == 0, proc.stderr
    policy = load_policy(policy_file)
    assert policy.architecture.layer_sizes == (8, 16, 16, 3) and policy.task == "reach_around"

    plot = tmp_path / "rollouts.png"
    proc = warpd("rollout", "--checkpoint", str(checkpoint), "--episodes", "2", "--replan-every", "8",
                 "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    assert "reach_around: " in proc.stdout and "/2 successful" in proc.stdout
    assert plot.stat().st_size > 10_000


def test_same_config_and_seed_reproduce_the_checkpoint(tmp_path, tiny_data):
    hashes = []
    for name in ("a", "b"):
        assert warpd("train", "--config", str(write_config(tmp_path, tiny_data, name)), "--quiet").returncode == 0
        hashes.append(read_metadata(tmp_path / name / "checkpoint.safetensors")["sha256"])
    assert hashes[0] == hashes[1]


def _state_stage(path) -> int | None:
    """The stage a training state file was saved in, or None while there is none (or it is being replaced)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["warpd_train_state"])["stage"]
    except Exception:
        return None


# killed in stage 1, and in stage 2 with the cosine schedule and the moving average (kept in the optimiser's
# state; 0.999 remembers longer than the 600 steps, so a lost average would show): the resumed run ends with the checkpoint an uninterrupted one writes, to the byte
KILLS = {"stage1": (1, {"stage1": {"steps": 400, "checkpoint_every": 20}}),
         "stage2_ema_cosine": (2, {"stage2": {"steps": 600, "checkpoint_every": 20, "lr_schedule": "cosine",
                                              "ema_decay": 0.999}})}


@pytest.mark.parametrize("where", list(KILLS))
def test_killed_training_resumes_to_the_same_checkpoint(tmp_path, tiny_data, where):
    stage, slow = KILLS[where]
    reference = write_config(tmp_path, tiny_data, "ref", **slow)
    assert warpd("train", "--config", str(reference), "--quiet").returncode == 0
    config = write_config(tmp_path, tiny_data, "killed", **slow)
    state = tmp_path / "killed" / "train_state.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "warpd_ros.cli", "train", "--config", str(config), "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _state_stage(state) != stage and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _state_stage(state) == stage and not (tmp_path / "killed" / "checkpoint.safetensors").exists()
    resumed = warpd("train", "--config", str(config))
    assert resumed.returncode == 0 and f"resuming at stage {stage}" in resumed.stdout
    assert (read_metadata(tmp_path / "killed" / "checkpoint.safetensors")["sha256"]
            == read_metadata(tmp_path / "ref" / "checkpoint.safetensors")["sha256"])


def test_two_ddp_replicas_stay_identical(tmp_path, tiny_data):
    config = write_config(tmp_path, tiny_data, "ddp", stage1={"steps": 5, "checkpoint_every": 100})
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "test/ddp_replicas.py", str(config), str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["first_loss"] != ranks[1]["first_loss"]  # each replica trained on its own batches...
    assert ranks[0]["digest"] == ranks[1]["digest"]  # ...and DDP kept their weights identical


@pytest.mark.parametrize("text, message", [
    ("stage1: {steps: many}", "stage1: steps must be like 4000"),
    ("stage3: {}", "unknown key(s) ['stage3']"),
    ("policy: {hidden: [64, -1]}", "policy: hidden must be like (64, 64)"),
    ("[1, 2]", "expected a mapping at the top level"),
    ("data: {perturbations: nope.yaml}", "data.perturbations: cannot read perturbation spec nope.yaml"),
])
def test_bad_configs_get_clear_errors(yaml_file, text, message):
    proc = warpd("train", "--config", str(yaml_file(text)))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_config_and_bad_override(tmp_path):
    proc = warpd("train", "--config", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "cannot read training config" in proc.stderr
    proc = warpd("train", "--set", "stage1.steps")
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr


def test_perturbed_demonstrations_are_collected_for_training_and_never_mixed_up(tmp_path, tiny_data):
    demos = str(REPO / "config" / "perturbations_demos.yaml")
    config = write_config(tmp_path, tiny_data, "mixed_up", data={"perturbations": demos})
    proc = warpd("train", "--config", str(config))  # the existing dataset is unperturbed
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"the dataset at {tiny_data} holds unperturbed demonstrations, but data.perturbations is {demos}" in \
        proc.stderr

    fresh = tmp_path / "perturbed_data"
    config = write_config(tmp_path, tiny_data, "perturbed", data={"perturbations": demos},
                          stage1={"steps": 2, "checkpoint_every": 2}, stage2={"steps": 2, "checkpoint_every": 2})
    proc = warpd("train", "--config", str(config), "--set", f"data.path={fresh}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"no dataset at {fresh}: collecting 6 expert episodes of reach_around first" in proc.stdout
    from warpd_core.data import Dataset

    levels = [r.perturbation for r in Dataset.open(fresh).episodes]
    assert len(levels) == 6 and all(0 < level < 1 for level in levels)
    assert read_metadata(tmp_path / "perturbed" / "checkpoint.safetensors")["config"]["data"]["perturbations"] == demos
