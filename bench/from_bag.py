"""From a rosbag to the robot at full size (issue 15): record -> import -> train -> deploy, every step the
`warpd` command line a user runs, then deployment episodes scored without a simulator.

Per robot (the Franka Panda task with velocity commands, and with position commands; reach_around too on
request):
1. record: warpd_sim driven by the scripted expert through ROS (config/record_sim.yaml: the expert answers
   each joint state, the sim steps in lockstep with it and executes each command within the deployed
   controller's limits) while `warpd record-bag` writes an MCAP bag of
   JointState, commands, the goal PoseStamped and EpisodeEvents;
2. `warpd import-bag` (goal, episode events, the command interface, the time held at the goal; one step
   per command, paired with the newest joint state stamped before it arrived);
3. `warpd train --config config/train_from_bag.yaml` (full size, or the steps given);
4. `warpd bringup hil` against the driver emulator with warpd_episodes: one episode per unseen seed from
   that seed's start posture and goal (the emulator's ~/reset), success = the effector point within 3 cm
   of the goal by forward kinematics before the task's time limit, mode from the effector's path.
The emulator runs on two joint models (--joint-models): the robot's own MuJoCo model (`task:<robot>`,
the dynamics the demonstrations were recorded with, pillar included), and the generic first-order one
(no pillar), which stands for a robot whose joints answer differently from the recording's. The
in-process column runs the same checkpoint in the sim task itself, re-planning every 16 steps.

Resumable: runs/bench_from_bag/<task>/ keeps the bag, dataset and checkpoint (--fresh starts over), and each
deployment's and the in-process episodes' results (results_<joint model>.json, in_process.json): with
--reuse-results a run renders them instead of deploying again, so robots run in separate processes (two
cores, one robot each) still land in one table.

    .venv/bin/python -m bench.from_bag                                    # the Panda, both interfaces
    .venv/bin/python -m bench.from_bag --tasks reach_around --episodes 60 --eval-episodes 30
    .venv/bin/python -m bench.from_bag --quick --out /tmp/from_bag.md      # minutes: tiny training
    .venv/bin/python -m bench.from_bag --joint-models robot_model          # skip the first-order rows
    .venv/bin/python -m bench.from_bag --reuse-results                     # the table from the saved results
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from bench.report import image_lines, machine_info, publish, pyplot, save_figure, verdict
from warpd_core.commands.argtypes import name_list
from warpd_core.robot_contract import read_checkpoint_contract
from warpd_ros.testing.from_bag import (FIRST_ORDER, ROBOT_MODEL, TINY_TRAINING, EpisodeResult, evaluate_on_emulator,
                                        import_recording, record, robot_for, train)

SECTION = "from_bag"
WORK = Path("runs/bench_from_bag")
GOAL = 0.90
EVAL_SEED0 = 10000  # unseen: the recording uses seeds 0, 1, ...


def run_robot(task: str, args) -> dict:
    robot = robot_for(task)
    work = WORK / task
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "run" / "checkpoint.safetensors"
    row = {"task": task, "interface": robot.interface, "joints": len(robot.joints)}
    if not (work / "bag" / "metadata.yaml").exists():
        print(f"[{task}] recording {args.episodes} expert episodes through ROS", flush=True)
        began = time.monotonic()
        record(robot, work / "bag", args.episodes, timeout=args.episodes * 15 + 120)
        row["record_s"] = time.monotonic() - began
    if not (work / "dataset" / "dataset.json").exists():
        print(f"[{task}] import-bag", flush=True)
        (work / "import.txt").write_text(import_recording(robot, work / "bag", work / "dataset"))
    row["import"] = (work / "import.txt").read_text()
    if not checkpoint.exists():
        print(f"[{task}] training ({'tiny' if args.quick else 'full' if not args.steps else args.steps})", flush=True)
        overrides = dict(TINY_TRAINING) if args.quick else {}
        if args.steps:
            overrides.update({"stage1.steps": args.steps[0], "stage2.steps": args.steps[1]})
        began = time.monotonic()
        checkpoint = train(work / "dataset", work / "run", overrides)
        (work / "train_s.txt").write_text(f"{time.monotonic() - began:.1f}")
    row["train_s"] = float((work / "train_s.txt").read_text())
    row["contract"] = read_checkpoint_contract(checkpoint)
    seeds = range(EVAL_SEED0, EVAL_SEED0 + args.eval_episodes)
    saved = work / "in_process.json"
    if args.reuse_results and _saved_for(saved, checkpoint, seeds):
        row["sim"] = json.loads(saved.read_text())["success"]
    else:
        row["sim"] = in_process(task, checkpoint, seeds)
        saved.write_text(json.dumps({**_stamp(checkpoint, seeds), "success": row["sim"]}))
    rows = []
    for joint_model in args.joint_models:
        saved = work / f"results_{joint_model}.json"
        if args.reuse_results and _saved_for(saved, checkpoint, seeds):
            results = [EpisodeResult(**r) for r in json.loads(saved.read_text())["episodes"]]
            print(f"[{task}] {joint_model}: {sum(r.success for r in results)}/{len(results)} (saved results)", flush=True)
        else:
            print(f"[{task}] deploying on the driver emulator ({joint_model} joints): {len(seeds)} episodes", flush=True)
            results = evaluate_on_emulator(
                robot, checkpoint.resolve(), work, seeds, joint_model=joint_model,
                progress=lambda r: print(f"  seed {r.seed}: {'SUCCESS' if r.success else 'timeout'}"
                                         f" {r.mode or '-'} {r.seconds:.2f} s", flush=True))
            saved.write_text(json.dumps({**_stamp(checkpoint, seeds),
                                         "episodes": [dataclasses.asdict(r) for r in results]}))
        rows.append({**row, "joint_model": joint_model, "results": results})
    return rows


def _stamp(checkpoint: Path, seeds) -> dict:
    """What saved results were measured with: reused only for the same checkpoint file and seeds."""
    stat = checkpoint.stat()
    return {"checkpoint_mtime_ns": stat.st_mtime_ns, "checkpoint_bytes": stat.st_size, "seeds": list(seeds)}


def _saved_for(path: Path, checkpoint: Path, seeds) -> bool:
    if not path.exists():
        return False
    saved = json.loads(path.read_text())
    return all(saved.get(k) == v for k, v in _stamp(checkpoint, seeds).items())


def in_process(task: str, checkpoint: Path, seeds) -> float:
    """Success of the same checkpoint in the sim task itself, in-process, on the same seeds (re-planning every 16
    steps, as the graph's 0.32 s at 50 Hz; each action within the deployed controller's limits): tells what
    the policy learned from what the deployment added."""
    from warpd_core.eval.runner import run_episode
    from warpd_core.policies.warpd.planner import PlannerFactory
    from warpd_core.tasks import make_task

    env, factory = make_task(task), PlannerFactory(checkpoint, "rosbag")
    execution = robot_for(task).execution(env.spec.control_dt)
    wins = [run_episode(env, factory, seed, replan_every=16, execution=execution)[0].success for seed in seeds]
    print(f"[{task}] in-process sim: {sum(wins)}/{len(wins)}", flush=True)
    return sum(wins) / len(wins)


def _counts(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def markdown(rows: list[dict], args, picture) -> str:
    lines = ["## From a rosbag to the robot (record, import-bag, train, bringup hil)", "",
             f"`python -m bench.from_bag {' '.join(sys.argv[1:])}`".strip().replace(" `", "`") + f" on {machine_info()}",
             "",
             "Every step is the `warpd` command a user runs: the scripted expert drives warpd_sim through ROS while "
             "`warpd record-bag` records an MCAP bag (JointState, commands, the goal PoseStamped, EpisodeEvents), the sim "
             "executing each command within the limits the deployed controller applies (config/sim_panda.yaml's); "
             "`warpd import-bag` turns it into a dataset; `warpd train --config config/train_from_bag.yaml` trains; "
             "`warpd bringup hil` deploys it against the driver emulator with warpd_episodes scoring each episode by "
             "forward kinematics (effector within 3 cm of the goal before the task's time limit; mode from the "
             "effector's path). Deployment seeds are unseen (from 10000). The emulator's joints are either the "
             "robot's own MuJoCo model (`joint_model: task:<robot>`: the dynamics the demonstrations were recorded "
             "with, pillar included) or the generic first-order model (`first_order`: a lag and a P position loop, "
             "no pillar), which stands for a robot whose joints answer differently from the recording's.",
             "",
             "| robot | interface | emulator joints | demonstrations imported | training | deployment episodes | "
             f"success | modes | goal ≥ {GOAL:.0%} | in-process sim, same checkpoint, seeds and command limits |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        res = row["results"]
        ok = [r for r in res if r.success]
        rate = len(ok) / len(res) if res else 0.0
        modes = Counter(r.mode or "none" for r in ok)
        mode_text = ", ".join(f"{m} {100 * c / max(len(ok), 1):.0f}%" for m, c in sorted(modes.items())) or "-"
        joints = "robot's MuJoCo model" if row["joint_model"] == ROBOT_MODEL else "first-order"
        lines.append(f"| {row['task']} ({row['joints']} joints) | {row['interface']} | {joints} | "
                     f"{_counts(row['import'], 'episodes')} | {row['train_s'] / 60:.1f} min | {len(res)} | "
                     f"{100 * rate:.0f}% | {mode_text} | {verdict(rate >= GOAL)}"
                     + ("" if rate >= GOAL else f" by {100 * (GOAL - rate):.0f} pts") + f" | {100 * row['sim']:.0f}% |")
    lines += ["", "Robot contracts the checkpoints carry (what planner and controller compare before commanding):"]
    lines += [f"- {row['task']}: joints {', '.join(row['contract'].joint_names)}; {row['contract'].command_interface}; "
              f"{row['contract'].control_rate_hz:g} Hz; task features {', '.join(row['contract'].task_feature_names)} "
              f"in `{row['contract'].task_frame}`" for row in rows if row["joint_model"] == rows[0]["joint_model"]]
    if args.reuse_results:
        lines += ["", "Rendered with --reuse-results from the results each robot's own `python -m bench.from_bag "
                      "--tasks <robot>` run saved (the two robots ran at the same time, one process each, on this "
                      "machine's two cores: the training times are wall time with both training at once)."]
    if args.quick:
        lines += ["", "--quick: tiny training; the success figures say nothing about the method."]
    return "\n".join(lines + image_lines("deployment success and episode times", picture))


def draw(rows: list[dict]):
    def plot(path: Path) -> Path:
        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        joints = ["robot model" if r["joint_model"] == ROBOT_MODEL else "first-order" for r in rows]
        names = [f"{r['task'].replace('panda_reach_around', 'Panda').replace('_position', '')}\n{r['interface']}\n{j}"
                 for r, j in zip(rows, joints)]
        rates = [100 * sum(x.success for x in r["results"]) / max(len(r["results"]), 1) for r in rows]
        axes[0].bar(names, rates, color="tab:green")
        axes[0].axhline(100 * GOAL, color="k", linestyle="--", linewidth=1, label=f"goal {GOAL:.0%}")
        axes[0].set_ylim(0, 105)
        axes[0].set_ylabel("deployment success (%)")
        axes[0].legend(loc="lower right")
        for r, name in zip(rows, names):
            times = [x.seconds for x in r["results"] if x.success]
            axes[1].hist(times, bins=15, alpha=0.6, label=name.replace("\n", ", "))
        axes[1].set_xlabel("time to success on the emulator (s)")
        axes[1].set_ylabel("episodes")
        axes[1].legend(fontsize=7)
        return save_figure(fig, path)
    return plot


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--tasks", type=name_list, default=("panda_reach_around", "panda_reach_around_position"),
                        help="robots to run (default panda_reach_around,panda_reach_around_position; reach_around too)")
    parser.add_argument("--episodes", type=int, default=500, help="expert episodes to record per robot (500)")
    parser.add_argument("--eval-episodes", type=int, default=50, help="deployment episodes per robot (50)")
    parser.add_argument("--steps", type=int, nargs=2, metavar=("STAGE1", "STAGE2"),
                        help="training steps per stage instead of the config's")
    parser.add_argument("--joint-models", type=name_list, default=(ROBOT_MODEL, FIRST_ORDER),
                        help=f"the emulator's joint models to deploy on: {ROBOT_MODEL} (the robot's MuJoCo model, "
                             f"task:<robot>) and/or {FIRST_ORDER} (default both)")
    parser.add_argument("--quick", action="store_true", help="4 episodes, tiny training, 3 deployment episodes")
    parser.add_argument("--fresh", action="store_true", help="record, import and train again")
    parser.add_argument("--reuse-results", action="store_true",
                        help="render saved deployment and in-process results of the same checkpoint and seeds "
                             "instead of running them again")
    parser.add_argument("--out", type=Path, help="write the section here instead of BENCHMARKS.md (no plot)")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.eval_episodes = min(args.episodes, 4), min(args.eval_episodes, 3)
        global WORK
        WORK = WORK.with_name(WORK.name + "_quick")
    rows = [row for task in args.tasks for row in run_robot(task, args)]
    publish(SECTION, args.out, lambda picture: markdown(rows, args, picture), draw(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
