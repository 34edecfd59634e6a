"""`warpd plot-demos`: draw a dataset's demonstrations so its modes can be seen at a glance.

A WARPD dataset is only useful if it covers every way of solving the task, so each episode's
path (the task's `plot_xy`, e.g. the reach_around fingertip) is coloured by its mode label, with
start and end marked and failed episodes dashed. Datasets whose task is not in the registry
(rosbag imports, say) are drawn in their first two observation dimensions.
"""
from __future__ import annotations

import argparse

from warpd_core.commands.argtypes import positive_int
from warpd_core.errors import WarpdError

HELP = "plot a dataset's demonstrations coloured by mode, with start/end points and the task's scenery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory (from warpd collect or warpd import-bag)")
    parser.add_argument("--out", default="demos.png",
                        help="image to write; its suffix picks the format (default demos.png)")
    parser.add_argument("--max-episodes", type=positive_int, default=200, metavar="N",
                        help="draw at most the first N episodes, to keep the plot readable (default 200)")


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from warpd_core.data import Dataset, stats
    from warpd_core.eval.plots import draw_path, legend, mode_colours

    dataset = Dataset.open(args.dataset)
    if not dataset.num_episodes:
        raise WarpdError(f"{args.dataset} holds no episodes yet", "collect some with `warpd collect` first")
    episodes = [dataset.episode(i) for i in range(min(args.max_episodes, dataset.num_episodes))]
    records = [record for _, _, record in episodes]
    counts = stats.mode_counts(records)
    colours = mode_colours(counts, stats.NO_MODE)
    projector = _Projector(dataset.info)
    fig, ax = plt.subplots(figsize=(7, 7))
    for obs, _, record in episodes:
        draw_path(ax, projector.xy(record.task, obs), colours[stats.mode_label(record.mode)], record.success is False)
    projector.draw_scenery(ax, [obs for obs, _, _ in episodes])
    legend(ax, counts, colours, failures=any(r.success is False for r in records))
    ax.set_title(f"{', '.join(dataset.info.tasks)}: {len(episodes)} of {dataset.num_episodes} demonstrations, "
                 f"by mode\n{stats.success_line(records)}", fontsize=10)
    projector.label_axes(ax)
    fig.savefig(args.out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"{dataset.num_episodes} episodes of {', '.join(dataset.info.tasks)} ({len(episodes)} drawn)")
    print(stats.success_line(dataset.episodes))
    print(stats.modes_line(dataset.episodes))
    print(f"plot: {args.out}")
    return 0


class _Projector:
    """Episode -> 2-D path: the registry task's plot_xy when the dataset's task is known, else obs[:, :2]."""

    def __init__(self, info):
        self.info = info
        self._tasks: dict[str, object] = {}  # task name -> task, or None when it cannot be built here

    def xy(self, task_name: str, obs):
        if task_name not in self._tasks:
            self._tasks[task_name] = self._make(task_name)
        task = self._tasks[task_name]
        if task is not None:
            return task.plot_xy(obs)
        if obs.shape[1] < 2:
            raise WarpdError(f"cannot plot task {task_name!r}: it is not in the registry and has a single "
                             "observation dimension", "plot-demos needs a known task or 2+ observation dims")
        return obs[:, :2]

    def _make(self, name: str):
        from warpd_core.tasks import make_task, task_names

        if name not in task_names():
            return None
        try:
            task = make_task(name)
        except (WarpdError, ImportError):  # e.g. a task whose simulator is not installed here
            return None
        return task if tuple(task.spec.obs_names) == self.info.obs_names else None

    @property
    def uses_tasks(self) -> bool:
        return any(task is not None for task in self._tasks.values())

    def draw_scenery(self, ax, observations) -> None:
        """The goals (when the observation has goal_x/goal_y) and, for reach_around, the pillar."""
        from warpd_core.eval.plots import draw_goals, draw_pillar

        if self._tasks.get("reach_around") is not None:
            draw_pillar(ax)
        names = self.info.obs_names
        if self.uses_tasks and {"goal_x", "goal_y"} <= set(names):
            draw_goals(ax, [obs[-1, [names.index("goal_x"), names.index("goal_y")]] for obs in observations])

    def label_axes(self, ax) -> None:
        if self.uses_tasks:
            ax.set_xlabel("x [m]")
            ax.set_ylabel("y [m]")
            ax.set_aspect("equal", adjustable="datalim")
        else:
            ax.set_xlabel(self.info.obs_names[0])
            ax.set_ylabel(self.info.obs_names[1])
        ax.grid(True, alpha=0.3)
