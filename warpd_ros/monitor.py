"""A listener for a running warpd graph: what happened, as a summary and a picture.

Subscribes to joint states, episode events, controller status and the policy-swap topic, keeps
the history, and at the end prints episodes, success rate, swaps accepted/rejected and loop
timing, and draws joint trajectories with swap instants, perturbations and episode outcomes.
Used by `warpd demo`; runs against any graph (sim or HIL) that uses the warpd topics.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from warpd_core.runtime.command_pipeline import Mode



@dataclass
class Record:
    t0: float = field(default_factory=time.monotonic)
    joint_names: tuple[str, ...] = ()
    joint_t: list[float] = field(default_factory=list)
    joint_q: list[np.ndarray] = field(default_factory=list)
    policy_t: list[float] = field(default_factory=list)  # arrival of each PolicyWeights
    events: list[tuple[float, int, object]] = field(default_factory=list)  # (t, event type, msg)
    features_t: list[float] = field(default_factory=list)  # TASK_FEATURES (the goal), on every change
    features: list[np.ndarray] = field(default_factory=list)
    swap_t: list[float] = field(default_factory=list)  # when ControllerStatus.active_policy_id changed
    status: object = None  # the latest ControllerStatus
    status_count: int = 0
    modes_seen: dict[Mode, int] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.t0


class Monitor:
    """Attach to `node`; call `summary()` and `plot(path)` when done."""

    def __init__(self, node):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import qos, topics
        from warpd_ros.msg import ControllerStatus, EpisodeEvent, PolicyWeights

        self.record = Record()
        node.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, qos.SENSOR_QOS)
        node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos.EVENTS_QOS)
        node.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_features, qos.TASK_FEATURES_QOS)
        node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, self._on_status, qos.STATUS_QOS)
        node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, self._on_policy, qos.policy_swap_qos(depth=10))

    def reset(self) -> None:
        """Forget everything recorded so far (start-up), keeping the latest controller status."""
        status = self.record.status
        self.record = Record()
        self.record.status = status

    def _on_joints(self, msg) -> None:
        r = self.record
        if not r.joint_names:
            r.joint_names = tuple(msg.name)
        if tuple(msg.name) == r.joint_names and len(msg.position) == len(msg.name):
            r.joint_t.append(r.now())
            r.joint_q.append(np.asarray(msg.position, dtype=np.float64))

    def _on_features(self, msg) -> None:
        self.record.features_t.append(self.record.now())
        self.record.features.append(np.asarray(msg.data, dtype=np.float64))

    def _on_event(self, msg) -> None:
        self.record.events.append((self.record.now(), int(msg.event), msg))

    def _on_status(self, msg) -> None:
        from warpd_ros.modes import status_mode

        r = self.record
        if r.status is not None and msg.has_active_policy and msg.active_policy_id != r.status.active_policy_id:
            r.swap_t.append(r.now())
        r.status, r.status_count = msg, r.status_count + 1
        mode = status_mode(msg)
        r.modes_seen[mode] = r.modes_seen.get(mode, 0) + 1

    def _on_policy(self, msg) -> None:
        self.record.policy_t.append(self.record.now())
        del msg  # only the arrival time matters here; the controller validates the content

    # ---- reporting ----------------------------------------------------------------------------
    def episodes(self) -> list[dict]:
        from warpd_ros.msg import EpisodeEvent

        done = []
        for t, kind, msg in self.record.events:
            if kind in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT):
                done.append({"t": t, "episode": msg.episode, "seed": msg.seed, "success": kind == EpisodeEvent.SUCCESS,
                             "mode": msg.mode or "-", "time": msg.episode_time, "distance": msg.distance})
        return done

    def summary(self) -> dict:
        from warpd_ros.msg import ControllerStatus, EpisodeEvent

        r, episodes = self.record, self.episodes()
        status = r.status
        out = {
            "episodes": len(episodes),
            "successes": sum(e["success"] for e in episodes),
            "modes": {},
            "perturbations": sum(1 for _, kind, _ in r.events if kind == EpisodeEvent.PERTURBATION),
            "policies_seen": len(r.policy_t),
            "status_messages": r.status_count,
            "hold_share": r.modes_seen.get(Mode.HOLD, 0) / max(1, r.status_count),
        }
        for e in episodes:
            if e["success"]:
                out["modes"][e["mode"]] = out["modes"].get(e["mode"], 0) + 1
        if status is not None:
            out.update(swaps_accepted=status.swaps_accepted, swaps_rejected=status.swaps_rejected,
                       last_rejection=status.last_rejection_reason, target_rate_hz=status.target_rate_hz,
                       loop_rate_hz=status.loop_rate_hz, period_error_p50_us=status.period_error_p50 * 1e6,
                       period_error_p99_us=status.period_error_p99 * 1e6,
                       period_error_max_us=status.period_error_max * 1e6, missed_ticks=status.missed_ticks)
        return out

    def print_report(self, out=print) -> dict:
        s = self.summary()
        out(f"episodes finished: {s['episodes']}, successful: {s['successes']} "
            f"({100 * s['successes'] / max(1, s['episodes']):.0f}%), modes: "
            + (", ".join(f"{m} {n}" for m, n in sorted(s["modes"].items())) or "-"))
        for e in self.episodes():
            out(f"  episode {e['episode']:>3} seed {e['seed']:>5}: {'SUCCESS' if e['success'] else 'timeout'} "
                f"after {e['time']:.2f} s, mode {e['mode']}, final distance {e['distance'] * 100:.1f} cm")
        out(f"perturbations applied: {s['perturbations']}; policies published: {s['policies_seen']}")
        if "swaps_accepted" in s:
            out(f"controller: swaps accepted {s['swaps_accepted']}, rejected {s['swaps_rejected']}"
                + (f" (last: {s['last_rejection']})" if s["last_rejection"] else "")
                + f"; loop {s['loop_rate_hz']:.0f}/{s['target_rate_hz']:.0f} Hz, period error p50 "
                  f"{s['period_error_p50_us']:.0f} µs, p99 {s['period_error_p99_us']:.0f} µs, max "
                  f"{s['period_error_max_us']:.0f} µs, missed ticks {s['missed_ticks']}; HOLD in "
                  f"{100 * s['hold_share']:.0f}% of status reports")
        else:
            out("controller: no status received")
        return s

    def plot(self, path, title: str = "warpd sim demo") -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from warpd_ros.msg import EpisodeEvent

        r = self.record
        names = r.joint_names or ("joint",)
        fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.2 * len(names) + 0.6), sharex=True, squeeze=False)
        q = np.array(r.joint_q) if r.joint_q else np.zeros((0, len(names)))
        colours = {EpisodeEvent.SUCCESS: "tab:green", EpisodeEvent.TIMEOUT: "tab:red",
                   EpisodeEvent.PERTURBATION: "tab:orange", EpisodeEvent.RESET: "0.6"}
        for i, (ax, name) in enumerate(zip(axes[:, 0], names)):
            if len(q):
                ax.plot(r.joint_t, q[:, i], lw=1.0, color="tab:blue")
            for t in r.policy_t:
                ax.axvline(t, color="0.85", lw=0.5, zorder=0)
            for t, kind, _ in r.events:
                ax.axvline(t, color=colours.get(kind, "k"), lw=1.2 if kind != EpisodeEvent.RESET else 0.8,
                           ls="-" if kind != EpisodeEvent.RESET else ":")
            ax.set_ylabel(f"{name} [rad]")
            ax.grid(True, alpha=0.3)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="tab:blue", label="joint position"),
                   Line2D([], [], color="0.85", label="policy swap"),
                   Line2D([], [], color="tab:orange", label="perturbation"),
                   Line2D([], [], color="tab:green", label="success"),
                   Line2D([], [], color="tab:red", label="timeout"),
                   Line2D([], [], color="0.6", ls=":", label="episode reset")]
        axes[0, 0].legend(handles=handles, loc="upper right", fontsize=7, ncol=3)
        s = self.summary()
        axes[0, 0].set_title(f"{title}: {s['successes']}/{s['episodes']} episodes successful, "
                             f"{s['policies_seen']} policies, {s['perturbations']} perturbations", fontsize=10)
        axes[-1, 0].set_xlabel("time since start [s]")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    # ---- video --------------------------------------------------------------------------------
    def video_record(self) -> list:
        """The episodes heard, as warpd_core.eval.video EpisodeRecords: one per episode from its
        RESET (or the first joint state) to its SUCCESS/TIMEOUT (or the next RESET, or the end)."""
        from warpd_core.eval.video import EpisodeRecord, parse_push
        from warpd_ros.msg import EpisodeEvent

        r = self.record
        if not r.joint_q:
            return []
        t, q = np.asarray(r.joint_t), np.asarray(r.joint_q)
        resets = [(et, msg) for et, kind, msg in r.events if kind == EpisodeEvent.RESET]
        ends = {msg.episode: (et, kind, msg) for et, kind, msg in r.events
                if kind in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT)}
        first_reset = resets[0][0] if resets else float("inf")
        early = [end for end in ends.values() if end[0] < first_reset]  # ran before listening began
        starts = [(et, msg, msg.episode) for et, msg in resets]
        if early or not resets:
            starts.insert(0, (float(t[0]), None, early[0][2].episode if early else None))
        task_name = next((msg.task for _, _, msg in r.events if msg.task), "reach_around")
        episodes = []
        for k, (start, reset, number) in enumerate(starts):
            following = starts[k + 1][0] if k + 1 < len(starts) else float(t[-1])
            end = ends.get(number)
            stop = end[0] if end is not None and start <= end[0] <= following + 1e-6 else following
            inside = (t >= start) & (t <= stop)
            if inside.sum() < 2:
                continue
            about = end[2] if end is not None else reset
            events = [(et, kind, msg) for et, kind, msg in r.events if start <= et <= stop]
            pushes = [p for et, kind, msg in events if kind == EpisodeEvent.PERTURBATION
                      for p in [parse_push(msg.detail, et)] if p is not None]
            labels = [(et, "target shifted") for et, kind, msg in events
                      if kind == EpisodeEvent.PERTURBATION and msg.detail.startswith("target shifted")]
            ft = np.asarray(r.features_t)
            # the goal as last heard before the episode (its RESET and features race), then its changes
            keep = [i for i in range(len(ft)) if ft[i] < start][-1:] + [i for i in range(len(ft)) if start <= ft[i] <= stop]
            episodes.append(EpisodeRecord(
                task=about.task if about is not None and about.task else task_name,
                t=t[inside], q=q[inside], seed=int(about.seed) if about is not None else None,
                episode=int(number) if number is not None else None, joint_names=r.joint_names,
                features_t=[float(ft[i]) for i in keep], features=[r.features[i] for i in keep],
                pushes=pushes, labels=labels, swaps=[s for s in r.swap_t if start <= s <= stop],
                outcome=None if end is None else ("success" if end[1] == EpisodeEvent.SUCCESS else "timeout"),
                mode=(end[2].mode or None) if end is not None else None,
                end_t=stop if end is not None else None, source="policy"))
        return episodes

    def write_video(self, path, perturbations: tuple | None = None, progress: bool = True):
        """Render what was heard to `path` (after the graph stopped: rendering never slows the loop).
        `perturbations` (spec file, level), as the sim had them, give pushes their exact direction."""
        from warpd_core.eval.video import attach_push_forces, write_video

        episodes = self.video_record()
        if perturbations is not None:
            attach_push_forces(episodes, *perturbations)
        return write_video(episodes, path, progress=progress)


def sim_perturbations(config, level: float) -> tuple | None:
    """(perturbation spec file, level) of the sim graph's warpd_sim as `config` (None: the default
    config/sim.yaml) sets it up, or None if it has no readable spec."""
    from warpd_ros.graph import default_config, read_params_file
    from warpd_ros.ros_env import resolve_package_file

    params = read_params_file(config if config is not None else default_config("sim")).get("warpd_sim", {})
    spec = resolve_package_file(params.get("perturbation_spec", "config/perturbations.yaml"))
    return (spec, level) if spec.is_file() else None
