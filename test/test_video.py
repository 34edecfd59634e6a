"""Videos of episodes (warpd_core.eval.video): rendered offscreen after the run, from a record.

A short scripted-expert record of reach_around stands in for what `warpd demo` hears. Rendering
needs an offscreen OpenGL: OSMesa (libosmesa6) on a machine without a display; without it the
rendering tests skip, saying so, and the error the user would get is tested instead.
"""
import ctypes.util
import os
from dataclasses import replace

import numpy as np
import pytest

from warpd_core.errors import WarpdError
from warpd_core.eval import video
from warpd_core.eval.video import EpisodeRecord, PushMark

HEADLESS = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
needs_gl = pytest.mark.skipif(
    HEADLESS and os.environ.get("MUJOCO_GL", "osmesa") == "osmesa" and ctypes.util.find_library("OSMesa") is None,
    reason="offscreen rendering needs libOSMesa: sudo apt-get install libosmesa6")

W, H, FPS = 240, 180, 10.0


@pytest.fixture(scope="module")
def record():
    """1.5 s of the scripted expert round the near side, no perturbations."""
    [episode] = video.record_rollout("reach_around", [3], modes=["near"], max_seconds=1.5)
    return episode


@pytest.fixture(scope="module")
def renderer():
    if HEADLESS and ctypes.util.find_library("OSMesa") is None and os.environ.get("MUJOCO_GL", "osmesa") == "osmesa":
        pytest.skip("offscreen rendering needs libOSMesa: sudo apt-get install libosmesa6")
    r = video.EpisodeRenderer("reach_around", W, H)
    yield r
    r.close()


def test_rollout_record_holds_what_a_video_shows(record):
    assert record.task == "reach_around" and record.seed == 3 and record.source == "scripted expert"
    assert record.q.shape == (len(record.t), 3) and record.t[0] == 0.0
    assert record.t[-1] == pytest.approx(1.5) and record.outcome is None  # cut off before success
    assert record.features and record.features[0].shape == (2,)  # the goal


@needs_gl
def test_gif_has_the_expected_frames_and_size(record, tmp_path):
    from PIL import Image

    path = tmp_path / "clip.gif"
    info = video.write_video([record], path, fps=FPS, width=W, height=H, progress=False)
    assert info.frames == video.count_frames([record], FPS) == 16  # 0.0, 0.1, ... 1.5 s
    with Image.open(path) as gif:
        assert gif.size == (W, H) and gif.n_frames == info.frames and gif.info["loop"] == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert durations[0] == 100 and durations[-1] == 100 + 1000 * video.END_HOLD_S  # the outcome stays up
    assert info.seconds == pytest.approx(1.6 + video.END_HOLD_S)


@needs_gl
def test_push_arrow_is_drawn_in_the_scene(record, renderer):
    t = 1.0
    quiet = renderer.frame(record, t)
    pushed = renderer.frame(replace(record, pushes=[PushMark(0.9, "link3", 15.0, 0.15, (0.0, 15.0, 0.0))]), t)
    assert quiet.shape == (H, W, 3)
    changed = np.any(quiet != pushed, axis=2)
    scene = changed[: H - 40]  # above the caption band
    assert scene.sum() > 150, "the arrow is missing"
    orange = (pushed[..., 0] > 200) & (pushed[..., 1] > 60) & (pushed[..., 1] < 170) & (pushed[..., 2] < 80)
    assert (orange & changed).sum() > 50
    later = renderer.frame(replace(record, pushes=[PushMark(0.2, "link3", 15.0, 0.15, (0.0, 15.0, 0.0))]), t)
    assert np.array_equal(np.asarray(later)[: H - 40], quiet[: H - 40])  # an old push is no longer drawn


@needs_gl
def test_push_direction_is_read_off_the_motion_when_only_the_magnitude_is_known(record, renderer):
    push = PushMark(1.0, "finger", 10.0, 0.15)  # what a ROS EpisodeEvent tells: no direction
    renderer._prepare(replace(record, pushes=[push]))
    direction = renderer._push_dirs[0]
    assert np.linalg.norm(direction) == pytest.approx(1.0) and direction[2] == 0.0


@needs_gl
def test_policy_swap_flashes_an_outline(record, renderer):
    t = 1.0
    quiet = renderer.frame(record, t)
    swapped = renderer.frame(replace(record, swaps=[0.95]), t)
    border = np.zeros((H, W), bool)
    border[:3], border[-3:], border[:, :3], border[:, -3:] = True, True, True, True
    changed = np.any(quiet != swapped, axis=2)
    assert changed[border].mean() > 0.9  # the outline goes all round
    assert (swapped[border][:, 2] > 200).mean() > 0.9  # cyan
    later = renderer.frame(replace(record, swaps=[0.5]), t)
    assert np.array_equal(later[: H - 40], quiet[: H - 40])  # a flash is brief (the caption counts swaps)


@needs_gl
def test_trail_and_goal_follow_the_record(record, renderer):
    early, late = renderer.frame(record, 0.1), renderer.frame(record, 1.4)
    trail = lambda img: ((img[..., 0] > 200) & (img[..., 1] > 140) & (img[..., 1] < 210) & (img[..., 2] < 80)).sum()
    assert trail(late) > trail(early) + 30  # the fingertip's path grows
    moved = replace(record, features_t=[0.0], features=[record.features[0] + np.array([0.0, 0.08])])
    assert not np.array_equal(renderer.frame(moved, 0.1), early)  # the goal is drawn where the record says


def test_the_last_frame_is_the_end_of_the_episode():
    t = np.arange(98) * 0.02  # 0 .. 1.94 s: not a multiple of the frame period
    episode = EpisodeRecord("reach_around", t, np.zeros((len(t), 3)), outcome="success", end_t=1.94)
    times = video.frame_times(episode, FPS)
    assert len(times) == 21 and times[-2] == pytest.approx(1.9) and times[-1] == 1.94  # the outcome is shown


@pytest.mark.parametrize("name, words", [("clip.avi", "must end in .gif or .mp4"),
                                         ("missing/clip.gif", "does not exist"),
                                         ("clip", "must end in .gif or .mp4")])
def test_bad_video_path_is_a_clear_error_before_rendering(tmp_path, name, words):
    with pytest.raises(WarpdError, match=words):
        video.write_video([], tmp_path / name)


@needs_gl
def test_mp4_where_an_encoder_is_installed(record, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg, which is not a pinned dependency")
    import imageio.v2 as imageio

    path = tmp_path / "clip.mp4"
    info = video.write_video([record], path, fps=FPS, width=W, height=H, progress=False)
    with imageio.get_reader(path) as reader:
        assert reader.get_meta_data()["size"] == (W, H)
        assert sum(1 for _ in reader) == info.frames + round(video.END_HOLD_S * FPS)  # the held end repeats


def test_mp4_without_an_encoder_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "_have_mp4_encoder", lambda: False)
    with pytest.raises(WarpdError, match="imageio-ffmpeg") as err:
        video.check_video_path(tmp_path / "clip.mp4")
    assert "pip install imageio-ffmpeg" in err.value.hint


def test_missing_osmesa_names_the_fix(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(WarpdError, match="OSMesa") as err:
        video.ensure_offscreen_gl()
    assert "apt-get install libosmesa6" in err.value.hint


def test_osmesa_is_chosen_without_a_display(monkeypatch):
    if ctypes.util.find_library("OSMesa") is None:
        pytest.skip("needs libOSMesa: sudo apt-get install libosmesa6")
    for name in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert video.ensure_offscreen_gl() == "osmesa" and os.environ["MUJOCO_GL"] == "osmesa"
    import mujoco.gl_context

    assert "osmesa" in mujoco.gl_context.GLContext.__module__


def test_heard_pushes_get_their_exact_force_from_the_perturbation_schedule():
    spec = "config/perturbations.yaml"
    exact = video.record_rollout("reach_around", [1, 4, 8, 3], level=0.5, spec_path=spec, max_seconds=2.0)
    heard = [replace(e, pushes=[replace(p, force=None) for p in e.pushes]) for e in exact]  # as from ROS
    heard[0].pushes = heard[0].pushes[1:]  # listening began after the first push
    heard[1].pushes[0].requested = True  # a push by hand is not in the schedule
    total = sum(len(e.pushes) for e in heard)
    assert total >= 3
    assert video.attach_push_forces(heard, spec, 0.5) == total - 1
    assert heard[1].pushes[0].force is None
    for e, h in zip(exact, heard):
        for p in h.pushes:
            if p.force is not None:
                assert any(np.allclose(p.force, q.force) and p.t == q.t for q in e.pushes)
    assert video.attach_push_forces(heard, spec, 1.0) == 0  # another level: other magnitudes, no match


def test_push_text_of_an_episode_event_parses():
    push = video.parse_push("push 14.2 N on link3 for 0.15 s (requested via ~/perturb)", 3.0)
    assert push == PushMark(3.0, "link3", 14.2, 0.15, requested=True)
    assert not video.parse_push("push 9.5 N on finger for 0.15 s", 1.0).requested
    assert video.parse_push("target shifted by 0.040 m", 3.0) is None


def test_an_empty_record_is_a_clear_error(tmp_path):
    with pytest.raises(WarpdError, match="nothing to render"):
        video.write_video([], tmp_path / "clip.gif")
    with pytest.raises(ValueError):
        EpisodeRecord("reach_around", [], np.zeros((0, 3)))
