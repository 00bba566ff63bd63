"""The GPU benchmark runs only on the device, but its command must load and explain itself everywhere."""

import subprocess
import sys


def test_bench_command_loads_and_lists_its_options():
    done = subprocess.run([sys.executable, "-m", "iamflow.bench", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--random-weights" in done.stdout and "time to first frame" in done.stdout
    assert "--fail-on-recompile" in done.stdout


def test_app_bench_drives_the_app_and_the_session_on_the_embedded_model(tmp_path):
    """``--app`` on the CPU preset: the page's add_scene through gradio_client (in a process of its own), with the
    live view read as a page reads it, gets every frame of the scene; the same scene through StorySession alone is
    reported beside it."""
    import json
    import os

    out = tmp_path / "app.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-m", "iamflow.bench", "--app", "--preset", "storyworld", "--scenes", "1",
                           "--scene-seconds", "1", "--sample-stacks", "--out", str(out)], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    (app,), (alone,) = report["app"], report["session"]
    assert report["mode"] == "app" and report["preset"] == "storyworld"
    assert app["chunks"] == 2  # 1 s at 16 fps: two chunks of the embedded model
    assert app["frames_received"] == app["video_frames"] > 0  # every frame of the scene reached the page
    assert 0 < app["first_frame_seconds"] <= app["turn_seconds"] and app["video_fps_received"] > 0
    assert alone["first_frame_seconds"] > 0 and alone["video_fps_received"] > 0
    assert len(report["app_first_frame_minus_session_first_frame_seconds"]) == 1
    operations = report["operations"]  # the story's bundle, loaded in a second tab, then Undo
    assert set(operations) == {"bundle_seconds", "load_seconds", "undo_seconds"} and min(operations.values()) > 0
    # where the seconds to the first frame went: every step in order on one clock, adding up to the client's wait
    path = app["first_frame_path"]
    steps = [seconds for step, seconds in path.items() if step != "total" and not step.startswith("  of which")]
    parts = [seconds for step, seconds in path.items() if step.startswith("  of which")]
    assert len(steps) == 4 and min(steps) >= 0
    assert abs(sum(steps) - path["total"]) < 1e-6 and abs(path["total"] - app["first_frame_seconds"]) < 1e-6
    # the wait before the scene starts, split: to the server, the queue, the story made, the worker's hand-off
    assert len(parts) == 4 and min(parts) >= 0 and abs(sum(parts) - steps[0]) < 1e-6
    assert app["server_cpu_seconds"] > 0
    # --sample-stacks: every chunk's steps, in order, and what the server's threads were doing
    timeline = app["timeline"]
    assert len(timeline["message queued"]) == len(timeline["page received"]) >= 2
    assert len(timeline["frame sent"]) == len(timeline["frame received"]) == app["video_frames"]
    assert all(s <= r for s, r in zip(timeline["frame sent"], timeline["frame received"]))
    threads = report["server_threads"]
    assert "iamflow-device-worker-main" in threads["stacks"] and threads["loop_lag_max_s"] is not None


def test_segment_stages_times_the_apps_video_stages_for_noise_and_a_picture():
    """``--segment-stages``: the H.264 encode and Gradio's probe and mux of one chunk, for noise (what random Wan
    weights decode to) and for a picture panned across the frame; noise makes the larger segment."""
    import json
    import os

    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-m", "iamflow.bench", "--segment-stages"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    noise, picture = report["noise"], report["panned picture"]
    assert noise["segment_bytes"] > 10 * picture["segment_bytes"] > 0
    assert min(noise["h264_encode_s"], noise["gradio_probe_mux_s"], picture["h264_encode_s"],
               picture["gradio_probe_mux_s"]) > 0


def test_app_bench_types_the_next_prompt_and_the_app_prepares_the_switch(tmp_path):
    """``--typed-prompts``: before the second Add scene the client types the prompt into the box (its input event)
    and pauses, as a person does; the app prepares that switch in the pause and the scene starts from it."""
    import json
    import os

    out = tmp_path / "app.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-m", "iamflow.bench", "--app", "--preset", "storyworld", "--scenes", "2",
                           "--scene-seconds", "1", "--typed-prompts", "--app-only", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["typed_prompts"] is True
    first, second = report["app"]
    assert not first["switch_prepared"] and second["switch_prepared"]
    assert second["frames_received"] == second["video_frames"] > 0


def test_the_session_run_says_whether_the_story_s_segments_were_written(tmp_path, monkeypatch):
    """The session benchmark reports the segments the story wrote beside the loop, or why they failed (a machine
    without ffmpeg measures a loop without that work, and the result says so)."""
    from iamflow.bench import _segments_written
    from iamflow.config import load_config
    from iamflow.session import Runtime, StorySession

    runtime = Runtime.load(load_config(preset="storyworld"))
    told = StorySession(runtime, video_dir=tmp_path / "told")
    for _ in told.add_scene("A man in a red shirt walks along the beach.", chunks=2, seed=0):
        pass
    assert _segments_written(told) == (2, None)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg-here"))
    without = StorySession(runtime, video_dir=tmp_path / "without")
    for _ in without.add_scene("A man in a red shirt walks along the beach.", chunks=1, seed=0):
        pass
    written, error = _segments_written(without)
    assert written is None and "no-ffmpeg-here" in error
