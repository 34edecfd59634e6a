"""Videos of episodes, rendered offscreen with MuJoCo *after* the run, from a record.

Why from a record: rendering costs milliseconds per frame, which the 1 kHz control loop and the
sim must never pay. A record is what a listener can hear (joint positions over time, the goal,
pushes, policy swaps, the outcome), so the same writer serves `warpd demo --video` (recorded from
ROS topics) and in-process rollouts of experts or policies (`record_rollout`). Each frame sets the
task's joints and goal from the record, runs mj_forward and renders; pushes (arrows), the
effector's path (a trail), swap instants (a flashing outline) and a caption are drawn on top.

Offscreen rendering needs an OpenGL without a display: MUJOCO_GL=osmesa and Debian's libosmesa6.
`ensure_offscreen_gl()` picks that when nothing else is configured and says how to install it.

    python -m warpd_core.eval.video --task reach_around --out docs/reach_around.gif
"""
from __future__ import annotations

import argparse
import ctypes.util
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warpd_core.errors import WarpdError

FORMATS = (".gif", ".mp4")
OSMESA_HINT = "sudo apt-get install libosmesa6   (or run `bash scripts/setup.sh` as root)"
PUSH_SHOWN_S = 0.5  # a push lasts ~0.15 s: keep its arrow up long enough to be seen at 12 fps
SWAP_FLASH_S = 0.12
END_HOLD_S = 0.6  # the last frame of an episode stays up this long, with its outcome
TRAIL_POINTS = 200
ARROW_M_PER_N = 0.015
KEY_COLOURS = [(242, 178, 25), (255, 115, 0), (0, 200, 255), (51, 204, 76), (120, 255, 120), (255, 120, 110),
               (255, 200, 90), (150, 230, 255), (255, 255, 255), (0, 0, 0)]  # kept exact in GIF palettes


@dataclass
class PushMark:
    """A push on `body` (MuJoCo body name) at `t`. `force` (world xyz, N) when known exactly; from
    ROS only the magnitude is known, and the direction is read off the body's motion."""

    t: float
    body: str
    magnitude: float
    duration: float = 0.15
    force: tuple[float, float, float] | None = None
    requested: bool = False  # asked for by hand (the sim's ~/perturb), not drawn by the perturber


@dataclass
class EpisodeRecord:
    """One episode as heard: times in seconds on one clock (any origin), joint positions in
    `task.spec.joint_names` order (or `joint_names` when given), the task features (goal) whenever
    they changed, pushes, policy-swap instants, other labelled instants and the outcome."""

    task: str
    t: np.ndarray  # (T,)
    q: np.ndarray  # (T, n_joints)
    seed: int | None = None
    episode: int | None = None
    joint_names: tuple[str, ...] = ()
    features_t: list[float] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)  # obs entries after positions + velocities
    pushes: list[PushMark] = field(default_factory=list)
    swaps: list[float] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)  # e.g. (t, "target shifted")
    outcome: str | None = None  # "success" | "timeout" | None (cut off by the end of the recording)
    mode: str | None = None  # the way the episode went (near/far), when known
    end_t: float | None = None  # when the outcome was decided
    source: str = ""  # what drove it: "policy", "expert (near)", ...

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        self.q = np.asarray(self.q, dtype=np.float64).reshape(len(self.t), -1)
        if len(self.t) == 0:
            raise ValueError("an episode record needs at least one joint sample")


# ---- offscreen OpenGL ----------------------------------------------------------------------------
def ensure_offscreen_gl() -> str:
    """Choose MuJoCo's GL backend for offscreen frames and return its name.

    MUJOCO_GL as the user set it wins. Without it and without a display, use OSMesa (software,
    always works on a server). mujoco reads MUJOCO_GL once, when `import mujoco` runs, and the
    tasks import mujoco long before a video is made; so besides setting the variable (for child
    processes), an already chosen GLFW context class is replaced by OSMesa's, which is what
    mujoco.Renderer instantiates."""
    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    if not backend and headless:
        os.environ["MUJOCO_GL"] = backend = "osmesa"
    if backend != "osmesa":
        return backend or "glfw"
    if ctypes.util.find_library("OSMesa") is None:
        raise WarpdError("offscreen rendering (MUJOCO_GL=osmesa) needs the OSMesa library, which is not installed",
                         OSMESA_HINT)
    import mujoco.gl_context as gl_context

    if "osmesa" not in getattr(gl_context.GLContext, "__module__", ""):
        try:
            from mujoco.osmesa import GLContext
        except (ImportError, RuntimeError) as exc:
            raise WarpdError(f"cannot use OSMesa for offscreen rendering: {exc}",
                             "unset PYOPENGL_PLATFORM, or set MUJOCO_GL=egl on a machine with a GPU") from exc
        gl_context.GLContext = GLContext
    return backend


def check_video_path(path) -> Path:
    """Fail before any rendering when the video could not be written anyway."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise WarpdError(f"cannot write a video to {path}: the name must end in .gif or .mp4",
                         "e.g. --video warpd_demo.gif")
    if suffix == ".mp4" and not _have_mp4_encoder():
        raise WarpdError(f"writing {path} (MP4) needs an ffmpeg encoder, and imageio-ffmpeg is not installed",
                         ".venv/bin/pip install imageio-ffmpeg   (or write a .gif, which needs nothing)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise WarpdError(f"cannot write a video to {path}: directory {parent} does not exist",
                         f"mkdir -p {parent}")
    if not os.access(parent, os.W_OK):
        raise WarpdError(f"cannot write a video to {path}: directory {parent} is not writable")
    return path


def _have_mp4_encoder() -> bool:
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


# ---- frames ----------------------------------------------------------------------------------------
def frame_times(episode: EpisodeRecord, fps: float) -> np.ndarray:
    """Times (record clock) of the frames of one episode: every 1/fps s from its first sample to
    its end, which is always the last frame (it then stays up END_HOLD_S longer, with the outcome)."""
    start = float(episode.t[0])
    end = max(float(episode.end_t if episode.end_t is not None else episode.t[-1]), start)
    times = start + np.arange(int(np.floor((end - start) * fps + 1e-9)) + 1) / fps
    return times if end - times[-1] < 1e-6 else np.append(times, end)


def count_frames(episodes, fps: float) -> int:
    return sum(len(frame_times(e, fps)) for e in episodes)


class EpisodeRenderer:
    """Renders frames of records of one task: a task instance is the scene, mujoco.Renderer the eye."""

    def __init__(self, task_name: str, width: int = 480, height: int = 360, caption: bool = True):
        ensure_offscreen_gl()
        import mujoco

        from warpd_core.tasks.registry import make_task

        self.mujoco = mujoco
        self.task = make_task(task_name)
        self.task_name, self.width, self.height, self.caption = task_name, width, height, caption
        model = self.task.model
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:  # a GL context that cannot be made: say which backend and what to do
            raise WarpdError(f"MuJoCo cannot render offscreen with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}: {exc}",
                             f"MUJOCO_GL=osmesa with {OSMESA_HINT}") from exc
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        view = self.task.video_camera()
        self.camera.lookat[:] = view["lookat"]
        self.camera.distance, self.camera.azimuth, self.camera.elevation = (
            view["distance"], view["azimuth"], view["elevation"])
        spec = self.task.spec
        self._n = len(spec.joint_names)
        feature_names = spec.obs_names[2 * self._n:]
        self._goal_idx = [feature_names.index(a) for a in ("goal_x", "goal_y", "goal_z") if a in feature_names]
        self._episode_key = None
        self._font = _font(13)

    def close(self) -> None:
        self.renderer.close()
        self.task.close()

    # -- scene state from the record --
    def _prepare(self, episode: EpisodeRecord) -> None:
        """Reset to the episode's seed (its start scene) and precompute the effector's path."""
        if self._episode_key is episode:
            return
        self._episode_key = episode
        self.task.reset(int(episode.seed) if episode.seed is not None else 0)
        model = self.task.model
        names = episode.joint_names or self.task.spec.joint_names
        self._qadr = np.array([model.joint(n).qposadr[0] for n in names])
        # every sample (kinematics only: microseconds each), then a 5-sample mean: joint states from
        # the sim carry its observation noise, which would make the drawn path a zigzag
        trail = np.array([self._pose(episode, t) for t in episode.t])
        if len(trail) >= 5:
            kernel = np.ones(5) / 5
            padded = np.concatenate([trail[:1].repeat(2, 0), trail, trail[-1:].repeat(2, 0)])
            trail = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1)
        self._trail_t, self._trail = episode.t, trail
        self._push_dirs = [self._push_direction(episode, p) for p in episode.pushes]

    def _pose(self, episode: EpisodeRecord, t: float) -> np.ndarray:
        """Set joints and goal as heard at `t` (the last sample at or before it); effector xyz."""
        i = max(0, int(np.searchsorted(episode.t, t, side="right")) - 1)
        data = self.task.data
        data.qpos[self._qadr] = episode.q[i]
        data.qvel[:] = 0.0
        if episode.features and self._goal_idx:
            k = int(np.searchsorted(episode.features_t, t, side="right")) - 1
            features = episode.features[max(k, 0)]
            current = self.task.observe()[2 * self._n:]
            offset = np.zeros(3)
            for axis, j in enumerate(self._goal_idx):
                if j < len(features):
                    offset[axis] = features[j] - current[j]
            if np.any(offset):
                self.task.displace_target(offset)
        self.mujoco.mj_forward(self.task.model, data)
        try:
            return np.asarray(self.task.effector_position(), dtype=np.float64)
        except NotImplementedError:
            return np.full(3, np.nan)

    def _body_pos(self, episode, body: str, t: float) -> np.ndarray:
        self._pose(episode, t)
        return self.task.data.xpos[self.task.model.body(body).id].copy()

    def _push_direction(self, episode: EpisodeRecord, push: PushMark) -> np.ndarray:
        """Unit horizontal direction of a push: given, or how the body moved during it beyond the
        way it was moving before (the controller reacts, but 0.15 s of ~10 N dominates)."""
        if push.force is not None and np.linalg.norm(push.force[:2]) > 0:
            d = np.array(push.force, dtype=np.float64)
        else:
            window = max(push.duration, 0.1)
            before = self._body_pos(episode, push.body, push.t - window)
            at = self._body_pos(episode, push.body, push.t)
            after = self._body_pos(episode, push.body, push.t + window)
            d = (after - at) - (at - before)
        d[2] = 0.0
        norm = np.linalg.norm(d)
        return d / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0])

    # -- one frame --
    def frame(self, episode: EpisodeRecord, t: float, index: int | None = None, total: int | None = None) -> np.ndarray:
        """The (height, width, 3) uint8 image of `episode` at record time `t`."""
        mujoco = self.mujoco
        self._prepare(episode)
        tip = self._pose(episode, t)
        r = self.renderer
        r.update_scene(self.task.data, self.camera)
        r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0  # 6x faster under OSMesa, and clearer
        r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._add_markers(r.scene)
        self._add_trail(r.scene, t, tip)
        pushes = self._add_pushes(r.scene, episode, t)
        image = r.render()
        swapped = any(0 <= t - s < SWAP_FLASH_S for s in episode.swaps)
        return self._decorate(image, episode, t, pushes, swapped)

    def _add_markers(self, scene) -> None:
        """Markers the task names that are not geoms of the model (as drawn anyway) are outlined."""
        mujoco = self.mujoco
        for marker in self.task.scene_markers():
            if marker.name == "goal":  # a translucent halo so the small goal reads at 480x360
                _add_geom(mujoco, scene, mujoco.mjtGeom.mjGEOM_SPHERE, np.array(marker.size) * 0.9,
                          marker.position, (0.2, 0.8, 0.3, 0.25))

    def _add_trail(self, scene, t: float, tip: np.ndarray) -> None:
        mujoco = self.mujoco
        points = self._trail[self._trail_t <= t]
        points = np.concatenate([points, tip[None]]) if np.all(np.isfinite(tip)) else points
        points = points[np.all(np.isfinite(points), axis=1)]
        if len(points) > TRAIL_POINTS:
            points = points[np.linspace(0, len(points) - 1, TRAIL_POINTS).astype(int)]
        for a, b in zip(points[:-1], points[1:]):
            if scene.ngeom >= scene.maxgeom or np.linalg.norm(b - a) < 1e-5:
                continue
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_LINE, np.zeros(3), np.zeros(3), np.zeros(9),
                                np.array([0.95, 0.7, 0.1, 1.0], dtype=np.float32))
            # lines, not capsules: hundreds of capsules make software (OSMesa) rendering 3x slower
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_LINE, 3.0, a, b)
            scene.ngeom += 1

    def _add_pushes(self, scene, episode: EpisodeRecord, t: float) -> list[PushMark]:
        """An arrow onto the pushed body, pointing the way it was pushed, longer for harder pushes."""
        mujoco = self.mujoco
        shown = []
        for push, direction in zip(episode.pushes, self._push_dirs):
            if not 0 <= t - push.t < max(PUSH_SHOWN_S, push.duration):
                continue
            shown.append(push)
            target = self.task.data.xipos[self.task.model.body(push.body).id].copy()  # the force acts at the CoM
            length = float(np.clip(ARROW_M_PER_N * push.magnitude, 0.12, 0.3))
            start = target - direction * (length + 0.01)
            end = target - direction * 0.01
            if scene.ngeom < scene.maxgeom:
                geom = scene.geoms[scene.ngeom]
                mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_ARROW, np.zeros(3), np.zeros(3), np.zeros(9),
                                    np.array([1.0, 0.45, 0.0, 1.0], dtype=np.float32))
                mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_ARROW, 0.012, start, end)
                scene.ngeom += 1
        return shown

    def _decorate(self, image: np.ndarray, episode: EpisodeRecord, t: float, pushes, swapped: bool) -> np.ndarray:
        from PIL import Image, ImageDraw

        img = Image.fromarray(image)
        draw = ImageDraw.Draw(img, "RGBA")
        w, h = img.size
        if self.caption:
            self._caption(draw, episode, t, pushes, swapped, w, h)
        if swapped:  # a policy swap: the whole frame flashes a cyan outline
            for k in range(4):
                draw.rectangle([k, k, w - 1 - k, h - 1 - k], outline=(0, 200, 255, 255))
        return np.asarray(img)

    def _caption(self, draw, episode: EpisodeRecord, t: float, pushes, swapped: bool, w: int, h: int) -> None:
        start = float(episode.t[0])
        ended = episode.end_t is not None and t >= episode.end_t
        head = f"{episode.task}"
        if episode.episode is not None:
            head += f"  episode {episode.episode}"
        if episode.seed is not None:
            head += f"  seed {episode.seed}"
        if episode.source:
            head += f"  ({episode.source})"
        body = f"t = {t - start:5.2f} s"
        if episode.swaps or episode.source == "policy":  # a scripted expert has no policies to swap
            body += f"   swaps {sum(1 for s in episode.swaps if s <= t)}"
        if ended and episode.outcome:  # the mode is known once the episode is over, as in the sim's event
            body += f"   {episode.outcome.upper()}" + (f", mode {episode.mode}" if episode.mode else "")
        draw.rectangle([0, h - 38, w, h], fill=(0, 0, 0, 150))
        draw.text((8, h - 35), head, fill=(255, 255, 255, 255), font=self._font)
        colour = (255, 255, 255, 255)
        if ended and episode.outcome:
            colour = (120, 255, 120, 255) if episode.outcome == "success" else (255, 120, 110, 255)
        draw.text((8, h - 18), body, fill=colour, font=self._font)
        notes = [f"push {p.magnitude:.0f} N on {p.body}" for p in pushes]
        notes += ["policy swap"] if swapped else []
        notes += [text for s, text in episode.labels if 0 <= t - s < PUSH_SHOWN_S]
        for k, note in enumerate(notes[:3]):
            draw.rectangle([6, 6 + 18 * k, 12 + 7 * len(note), 22 + 18 * k], fill=(0, 0, 0, 130))
            draw.text((9, 7 + 18 * k), note, fill=(255, 200, 90, 255) if note.startswith("push") else (150, 230, 255, 255),
                      font=self._font)


def _add_geom(mujoco, scene, kind, size, pos, rgba) -> None:
    if scene.ngeom >= scene.maxgeom:
        return
    mujoco.mjv_initGeom(scene.geoms[scene.ngeom], kind, np.asarray(size, np.float64), np.asarray(pos, np.float64),
                        np.eye(3).reshape(-1), np.asarray(rgba, np.float32))
    scene.ngeom += 1


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


# ---- writing -------------------------------------------------------------------------------------
@dataclass
class VideoInfo:
    path: Path
    frames: int
    seconds: float  # of video
    render_s: float  # wall time spent rendering and encoding


def write_video(episodes, path, fps: float = 12.0, width: int = 480, height: int = 360,
                progress: bool = True, colours: int = 128) -> VideoInfo:
    """Render `episodes` (EpisodeRecords of one task) to `path` (.gif or .mp4), a frame every 1/fps
    s of record time. The path is checked first, so a bad one costs no rendering."""
    path = check_video_path(path)
    episodes = [e for e in episodes if len(e.t)]
    if not episodes:
        raise WarpdError("nothing to render: the record holds no episode with joint states")
    tasks = {e.task for e in episodes}
    if len(tasks) != 1:
        raise WarpdError(f"one video shows one task; the record has {sorted(tasks)}")
    from tqdm import tqdm

    started = time.monotonic()
    renderer = EpisodeRenderer(tasks.pop(), width, height)
    sink = _GifSink(path, colours) if path.suffix.lower() == ".gif" else _Mp4Sink(path, fps)
    frames, seconds = 0, 0.0
    try:
        with tqdm(total=count_frames(episodes, fps), desc=f"rendering {path.name}", unit="frame",
                  disable=not progress, file=sys.stderr, leave=False, mininterval=1.0) as bar:
            for episode in episodes:
                times = frame_times(episode, fps)
                for k, t in enumerate(times):
                    duration = 1.0 / fps + (END_HOLD_S if k == len(times) - 1 else 0.0)
                    sink.add(renderer.frame(episode, float(t)), duration)
                    frames, seconds = frames + 1, seconds + duration
                    bar.update(1)
        sink.close()
    finally:
        renderer.close()
    return VideoInfo(path, frames, seconds, time.monotonic() - started)


class _GifSink:
    """Frames are reduced to one shared palette as they come (a byte a pixel, not three: a 60 s demo
    stays ~100 MB in memory); the palette comes from the first frame plus the marker colours, no
    dithering: small files, no flicker."""

    def __init__(self, path: Path, colours: int):
        self.path, self.colours = path, colours
        self.images, self.durations, self.palette = [], [], None

    def add(self, frame: np.ndarray, duration: float) -> None:
        from PIL import Image

        image = Image.fromarray(frame)
        if self.palette is None:
            self.palette = _palette(image, self.colours)
        self.images.append(image.quantize(palette=self.palette, dither=Image.Dither.NONE))
        self.durations.append(int(round(1000 * duration)))

    def close(self) -> None:
        self.images[0].save(self.path, save_all=True, append_images=self.images[1:], duration=self.durations,
                            loop=0, optimize=True, disposal=1)


class _Mp4Sink:
    """A constant frame rate, streamed to ffmpeg: a held frame is repeated."""

    def __init__(self, path: Path, fps: float):
        import imageio.v2 as imageio

        self.fps = fps
        self.writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=2)

    def add(self, frame: np.ndarray, duration: float) -> None:
        for _ in range(max(1, int(round(duration * self.fps)))):
            self.writer.append_data(frame)

    def close(self) -> None:
        self.writer.close()


def _palette(image, colours: int):
    """A palette for the whole video: the scene's colours, plus entries for the marker colours,
    which cover too few pixels of any one frame to get their own."""
    from PIL import Image

    w, h = image.size
    strip = Image.new("RGB", (w, 2 * h))
    strip.paste(image, (0, 0))
    band = h // len(KEY_COLOURS)
    for k, colour in enumerate(KEY_COLOURS):
        strip.paste(colour, (0, h + k * band, w, h + (k + 1) * band))
    return strip.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)


# ---- records from in-process rollouts ------------------------------------------------------------
def record_rollout(task_name: str, seeds, modes=None, level: float = 0.0, spec_path=None,
                   policy=None, max_seconds: float | None = None) -> list[EpisodeRecord]:
    """Run the scripted expert (or `policy(task, seed) -> obs -> action`) for each seed under the
    perturbation spec at `level`, and record what a video shows. Pushes carry their exact force."""
    from warpd_core.perturb.perturber import Perturber
    from warpd_core.perturb.spec import PerturbationSpec
    from warpd_core.tasks.registry import make_task

    task = make_task(task_name)
    spec = (PerturbationSpec.from_yaml(spec_path) if spec_path else PerturbationSpec.none()).at_level(level)
    modes = list(modes) if modes is not None else [None] * len(list(seeds))
    records = []
    dt = task.spec.control_dt
    n = len(task.spec.joint_names)
    for k, seed in enumerate(seeds):
        perturber = Perturber(task, spec)
        obs = task.reset(seed)
        perturber.reset(seed)
        mode = modes[k % len(modes)] if modes else None
        act = policy(task, seed) if policy is not None else task.expert(mode)
        source = "policy" if policy is not None else "scripted expert"
        ts, qs, feats_t, feats, pushes, labels = [0.0], [obs[:n].copy()], [0.0], [obs[2 * n:].copy()], [], []
        outcome, steps = None, task.spec.max_steps
        if max_seconds is not None:
            steps = min(steps, int(max_seconds / dt))
        for step in range(steps):
            for p in perturber.pushes:
                if p.start_step == step and np.any(p.force):
                    pushes.append(PushMark(step * dt, task.model.body(p.body).name, float(np.linalg.norm(p.force)),
                                           (p.end_step - p.start_step) * dt, tuple(float(v) for v in p.force)))
            if step == perturber.shift_step and perturber.shift is not None and level > 0:
                labels.append((step * dt, "target shifted"))
            perturber.before_step(step)
            result = task.step(perturber.act(act(perturber.observe(obs))))
            obs = result.obs
            ts.append((step + 1) * dt)
            qs.append(obs[:n].copy())
            if not np.allclose(obs[2 * n:], feats[-1]):
                feats_t.append((step + 1) * dt)
                feats.append(obs[2 * n:].copy())
            if result.done:
                outcome = "success" if result.success else "timeout"
                break
        perturber.restore()
        records.append(EpisodeRecord(task_name, np.array(ts), np.array(qs), seed=seed, episode=k,
                                     features_t=feats_t, features=feats, pushes=pushes, labels=labels,
                                     outcome=outcome, mode=task.mode_reached(), end_t=ts[-1], source=source))
    task.close()
    return records


_PUSH_TEXT = re.compile(r"push ([0-9.]+) N on (\S+) for ([0-9.]+) s")


def parse_push(detail: str, t: float) -> PushMark | None:
    """A PushMark from an EpisodeEvent's detail ("push 14.2 N on link3 for 0.15 s"), else None."""
    m = _PUSH_TEXT.search(detail or "")
    return PushMark(t, m[2], float(m[1]), float(m[3]), requested="requested via" in detail) if m else None


def attach_push_forces(episodes, spec_path, level: float) -> int:
    """Give heard pushes their exact force. An event only tells body and magnitude, but the
    perturber draws every push from (spec, level, episode seed) alone, so the same draw here
    yields the forces: heard pushes are matched in order to drawn ones on body and magnitude. One
    without a match (another spec, a push by hand) keeps the direction read off the motion.
    Returns how many pushes got a force."""
    from warpd_core.perturb.perturber import Perturber
    from warpd_core.perturb.spec import PerturbationSpec
    from warpd_core.tasks.registry import make_task

    spec, tasks, attached = PerturbationSpec.from_yaml(spec_path).at_level(level), {}, 0
    for episode in episodes:
        scheduled = [p for p in episode.pushes if not p.requested and p.force is None]
        if episode.seed is None or not scheduled:
            continue
        task = tasks.get(episode.task) or tasks.setdefault(episode.task, make_task(episode.task))
        perturber = Perturber(task, spec)
        task.reset(int(episode.seed))
        perturber.reset(int(episode.seed))
        drawn = [p for p in perturber.pushes if np.any(p.force)]
        perturber.restore()
        cursor = 0  # in order, skipping drawn pushes not heard (listening began mid-episode)
        for heard in scheduled:
            for k in range(cursor, len(drawn)):
                push = drawn[k]
                if (task.model.body(push.body).name == heard.body
                        and abs(float(np.linalg.norm(push.force)) - heard.magnitude) < 0.06):
                    heard.force, cursor = tuple(float(v) for v in push.force), k + 1
                    attached += 1
                    break
    for task in tasks.values():
        task.close()
    return attached


def main(argv=None) -> int:
    """Make a video of scripted-expert episodes (the README's GIFs come from here)."""
    parser = argparse.ArgumentParser(prog="python -m warpd_core.eval.video", description=main.__doc__)
    parser.add_argument("--task", default="reach_around")
    parser.add_argument("--out", type=Path, required=True, help=".gif or .mp4")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="*", default=None, help="expert mode per seed (default: drawn)")
    parser.add_argument("--level", type=float, default=0.5, help="perturbation level (pushes, target shift)")
    parser.add_argument("--spec", type=Path, default=Path("config/perturbations.yaml"))
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--size", type=int, nargs=2, default=(480, 360), metavar=("W", "H"))
    args = parser.parse_args(argv)
    from warpd_core.errors import print_error

    try:
        check_video_path(args.out)
        records = record_rollout(args.task, args.seeds, args.modes, args.level,
                                 args.spec if args.level > 0 else None)
        info = write_video(records, args.out, fps=args.fps, width=args.size[0], height=args.size[1])
    except WarpdError as exc:
        print_error(parser.prog, exc)
        return 1
    print(f"{info.path}: {info.frames} frames, {info.seconds:.1f} s of video, "
          f"{info.path.stat().st_size / 1e6:.2f} MB, rendered in {info.render_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
