"""Drawing trajectories by mode: shared by `warpd plot-demos` (datasets) and `warpd rollout`.

One colour per mode name (sorted, so a mode keeps its colour from plot to plot), start and end
marked, failures dashed, and the task's scenery (for reach_around: the pillar and the goals).
"""
from __future__ import annotations

MODE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
NO_MODE_COLOUR = "tab:gray"


def mode_colours(modes, no_mode: str) -> dict[str, str]:
    named = sorted(m for m in modes if m != no_mode)
    return {m: MODE_COLOURS[k % len(MODE_COLOURS)] for k, m in enumerate(named)} | {no_mode: NO_MODE_COLOUR}


def draw_path(ax, xy, colour: str, failed: bool) -> None:
    ax.plot(xy[:, 0], xy[:, 1], color=colour, alpha=0.55, linewidth=1.0, linestyle="--" if failed else "-")
    for point, marker in ((xy[0], "o"), (xy[-1], "s")):
        ax.plot(*point, marker=marker, markersize=4, color=colour, markeredgecolor="black", markeredgewidth=0.4,
                zorder=3)


def draw_pillar(ax) -> None:
    from matplotlib.patches import Circle

    from warpd_core.tasks.reach_around import PILLAR_CLEARANCE, PILLAR_XY

    ax.add_patch(Circle(PILLAR_XY, PILLAR_CLEARANCE, color="0.35", alpha=0.6, label="pillar (+ finger)"))


def draw_goals(ax, goals) -> None:
    ax.scatter(*zip(*goals), marker="*", s=90, color="gold", edgecolor="black", linewidth=0.5, zorder=1.5,
               label="goal")


def legend(ax, counts: dict[str, int], colours: dict[str, str], failures: bool) -> None:
    from matplotlib.lines import Line2D

    total = sum(counts.values())
    handles = [Line2D([], [], color=colours[m], linewidth=2, label=f"{m}: {n} ({100 * n / total:.0f}%)")
               for m, n in counts.items()]
    handles += [Line2D([], [], color="0.3", marker="o", linestyle="", label="start"),
                Line2D([], [], color="0.3", marker="s", linestyle="", label="end")]
    if failures:
        handles.append(Line2D([], [], color="0.3", linestyle="--", label="failed"))
    scenery, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + scenery, loc="best", fontsize=8, framealpha=0.9)


def plot_rollouts(task, episodes, path, title: str) -> None:
    """episodes: (true observations (T, obs_dim), mode or None, success) per rollout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [mode or "none" for _, mode, _ in episodes]
    counts = {m: labels.count(m) for m in sorted(set(labels))}
    colours = mode_colours(counts, "none")
    fig, ax = plt.subplots(figsize=(7, 7))
    for (obs, _, success), label in zip(episodes, labels):
        draw_path(ax, task.plot_xy(obs), colours[label], failed=not success)
    if task.spec.name == "reach_around":
        draw_pillar(ax)
    names = task.spec.obs_names
    if {"goal_x", "goal_y"} <= set(names):
        draw_goals(ax, [obs[-1, [names.index("goal_x"), names.index("goal_y")]] for obs, _, _ in episodes])
    legend(ax, counts, colours, failures=any(not s for _, _, s in episodes))
    ax.set_title(f"{title}\nsuccess: {sum(s for _, _, s in episodes)}/{len(episodes)}", fontsize=10)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
