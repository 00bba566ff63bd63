"""The app through its API (gradio_client) against the real server, in-process, with the real embedded model.

One story per client: a gradio_client ``Client`` is one browser session, so its turns continue one story.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from gradio_client.utils import Status

from ui import create_app, formatting, launch_kwargs
from ui.live_feed import read_part

PRESET = os.environ.get("IAMFLOW_APP_TEST_PRESET", "storyworld")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: Path, auth=None, **options):
    options.setdefault("max_sessions_per_client", 8)  # every test client is 127.0.0.1; one test checks the limit
    demo, controller = create_app(preset=PRESET, data_dir=data_dir, sweep_every_s=3600, **options)
    demo.queue(default_concurrency_limit=None)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, auth=auth,
                **launch_kwargs(controller))
    controller.worker.runtime(PRESET)  # the model is loaded once, before the clocks of the tests start
    return demo, controller, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("app-data")
    demo, controller, url = start(data_dir)
    yield {"demo": demo, "controller": controller, "url": url, "data_dir": data_dir}
    controller.close()
    demo.close()


def scene(client: Client, prompt: str, seconds: float = 2.0, seed: int = 1):
    return client.predict(prompt=prompt, seconds=seconds, seed=seed, api_name="/add_scene")


def entry_of(controller, client: Client):
    return controller.sessions.find(client.session_hash)


def video_seconds(path: str) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def video_codec(path: str) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
                          "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def file_of(output) -> str:
    """A file output as gradio_client hands it back: a path, or an update dict holding one."""
    if isinstance(output, dict):
        return output.get("video") or output.get("value")
    return output


def story_video_path(outputs) -> str:
    return file_of(outputs[3])  # live, progress, scene entities, then the story player


def video_frames(path: str) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def assert_story_whole(session, outputs, timeline_at: int = 4) -> None:
    """Frames = timeline = mp4: the story's frames, its scenes' frame counts, the timeline rows the page shows and
    the story mp4 it plays all agree."""
    assert session.num_video_frames == sum(s.num_frames for s in session.scenes)
    assert len(session.latents) == sum(s.chunks_done for s in session.scenes)
    assert [row[0] for row in outputs[timeline_at]["data"]] == list(range(1, len(session.scenes) + 1))
    video = story_video_path(outputs) if timeline_at == 4 else file_of(outputs[0])
    assert video_frames(video) == session.num_video_frames


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """While the returned file exists, ffmpeg finds the disk full when it writes a scene's second live segment (a test
    double for the disk; every other file goes to the real ffmpeg)."""
    from iamflow.video import ffmpeg_path

    real, armed = ffmpeg_path(), tmp_path / "armed"
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(f"""#!/bin/sh
for arg in "$@"; do
  case "$arg" in *chunk-*.ts) [ -e {armed} ] && {{ [ -e {armed}.once ] || {{ touch {armed}.once; break; }}; echo "$arg: No space left on device" >&2; exit 1; }};; esac
done
exec {real} "$@"
""")
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))  # the ffmpeg the video writer runs
    return armed


def test_two_turns_continue_one_story(server):
    client = Client(server["url"], verbose=False)
    try:
        first = scene(client, "A young man in a red jacket walks along the beach.", seed=3)
        first_len = video_seconds(story_video_path(first))
        second = scene(client, "The man sits down on a bench.", seed=4)
        second_len = video_seconds(story_video_path(second))
        # the memory panel shows its pictures from PNG files of the story, each named by its content
        pictures = server["controller"]._pictures_dir(entry_of(server["controller"], client))
        shown = [Path(item["image"] if isinstance(item["image"], str) else item["image"]["path"]).name
                 for item in second[6]]
        assert shown and set(shown) <= {p.name for p in pictures.glob("*.png")}, (second[6], list(pictures.iterdir()))

        session = entry_of(server["controller"], client).session
        assert [s.prompt for s in session.scenes] == ["A young man in a red jacket walks along the beach.",
                                                       "The man sits down on a bench."]
        # The second scene starts where the first one ended, and the story video holds both.
        assert session.scenes[1].first_frame == session.scenes[0].num_frames
        assert second_len > first_len + 1.0
        assert video_codec(story_video_path(second)) == "h264"
        # The man of scene 2 is the man of scene 1: one id, seen in both scenes.
        registry = session.registry_snapshot()
        man = [gid for gid, r in registry.items() if r["name"].startswith("man")]
        assert man == ["1"], registry
        assert registry["1"]["prompts"] == [0, 1]
        timeline = second[4]["data"]
        assert [row[0] for row in timeline] == [1, 2]
        assert "man_1" in second[5]  # the Entities panel
        mapping = json.loads(Path(file_of(second[10])).read_text())  # mapping.json download
        assert mapping["global_registry"]["1"]["name"] == "man_1"
    finally:
        client.close()


def live_parts(url: str, path: str, count: int, paced: bool = False) -> list[tuple[float, dict, bytes]]:
    """Read ``count`` frames of a live view's Motion-JPEG stream as a page's ``<img>`` does: (seconds since the
    request, the part's headers, the JPEG)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    started = time.monotonic()
    connection.request("GET", "/" + path.lstrip("/") + ("" if paced else "?paced=0"))
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("multipart/x-mixed-replace")
    parts = []
    try:
        while len(parts) < count:
            part = read_part(response.fp)
            assert part is not None, f"the stream ended after {len(parts)} of {count} frames"
            parts.append((time.monotonic() - started, *part))
    finally:
        connection.close()
    return parts


def live_path(job) -> str:
    """The live view's stream address in the updates an Add scene job sent."""
    import re

    for outputs in job.outputs():
        found = re.search(r'<img src="([^"]+)"', str(outputs[0]))
        if found:
            return found.group(1)
    raise AssertionError("no update showed the live view")


def test_the_live_view_streams_every_frame_of_each_scene_as_it_is_made(server):
    """The page's live view is a Motion-JPEG stream of the story's frames: every frame of each scene, in order,
    with its scene and story frame number, the same pictures as the story video, paced at the video's rate; only
    the story's page has its address, and Undo clears what was not shown yet."""
    import io

    import numpy as np
    from PIL import Image

    from iamflow import video

    client = Client(server["url"], verbose=False)
    try:
        job = client.submit(prompt="A man in a red shirt walks along the beach.", seconds=2.0, seed=7,
                            api_name="/add_scene")
        outputs = job.result()
        path = live_path(job)
        session = entry_of(server["controller"], client).session
        first = session.scenes[0].num_frames
        parts = live_parts(server["url"], path, first)
        assert [(int(h["x-scene"]), int(h["x-frame"])) for _, h, _ in parts] == [(0, i) for i in range(first)]
        shown = np.stack([np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")) for _, _, jpeg in parts])
        story = video.read_video(story_video_path(outputs))  # the same frames, the same display size
        assert shown.shape == story.shape, (shown.shape, story.shape)
        assert np.abs(shown.astype(int) - story.astype(int)).mean() < 6  # (two lossy encodings of one picture)

        # the second scene continues the stream where the first ended; paced, it plays at the video's rate
        job = client.submit(prompt="The man waves at a woman in a yellow dress.", seconds=2.0, seed=8,
                            api_name="/add_scene")
        job.result()
        assert live_path(job) == path  # one address for the story's whole life
        second = session.scenes[1].num_frames
        parts = live_parts(server["url"], path, second, paced=True)
        assert [(int(h["x-scene"]), int(h["x-frame"])) for _, h, _ in parts] == \
            [(1, first + i) for i in range(second)]
        assert parts[-1][0] - parts[0][0] >= (second - 1) / session.fps * 0.95  # never faster than playback

        # another address streams nothing; frames left unshown go with Undo
        with pytest.raises(AssertionError):
            live_parts(server["url"], path[: -4] + "abcd", 1)
        scene(client, "The woman walks along the beach.", seconds=1.0, seed=9)
        client.predict(api_name="/undo")
        scene(client, "The woman runs along the beach.", seconds=1.0, seed=10)
        parts = live_parts(server["url"], path, 1)
        assert (int(parts[0][1]["x-scene"]), int(parts[0][1]["x-frame"])) == (2, first + second)
    finally:
        client.close()


def test_a_pause_in_typing_prepares_the_next_switch(server, monkeypatch):
    """The prompt box's text, once typing pauses, has the device do the next switch's work (text, memory, re-cache):
    the scene added with it then does no re-cache of its own. Nothing is prepared while a scene runs."""
    controller = server["controller"]
    engine = controller.worker.runtime(PRESET).engine
    recaches = []
    recache = engine.recache
    monkeypatch.setattr(engine, "recache", lambda *a, **k: (recaches.append(1), recache(*a, **k))[1])
    client = Client(server["url"], verbose=False)
    try:
        scene(client, "A man in a red shirt walks along the beach.", seconds=1.0, seed=1)
        session = entry_of(controller, client).session
        client.predict("The man waves at a woman in a yellow dress.", api_name="/prepare_scene")
        controller.worker.call(lambda: None)  # (the preparation, queued on the worker, is done)
        assert len(recaches) == 1 and session._prepared_ops
        scene(client, "The man waves at a woman in a yellow dress.", seconds=1.0, seed=2)
        assert len(recaches) == 1 and not session._prepared_ops  # the switch found its re-cache done

        running = client.submit(prompt="The woman runs along the beach.", seconds=6.0, seed=3, api_name="/add_scene")
        deadline = time.monotonic() + 60
        while not entry_of(controller, client).busy:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.predict("The man sits down on the sand.", api_name="/prepare_scene")
        running.result()
        assert not session._prepared_ops  # typed while the scene ran: nothing was prepared
    finally:
        client.close()


def test_second_client_waits_in_the_queue_and_stop_while_queued_stops_it(server, tmp_path):
    first, second = Client(server["url"], verbose=False), Client(server["url"], verbose=False)
    try:
        running = first.submit(prompt="A woman with a yellow umbrella walks in the rain.", seconds=6.0, seed=5,
                               api_name="/add_scene")
        deadline = time.monotonic() + 60
        while running.status().code not in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS):
            assert time.monotonic() < deadline, running.status()
            time.sleep(0.05)
        waiting = second.submit(prompt="A dog runs across a field.", seconds=2.0, seed=6, api_name="/add_scene")
        seen = []
        while not running.done():
            status = waiting.status()
            seen.append((status.code, status.rank))
            if status.code == Status.IN_QUEUE:
                break
            time.sleep(0.05)
        assert (Status.IN_QUEUE, 0) in seen, seen
        # Loading a story into the generating tab is refused and leaves nothing behind.
        with pytest.raises(AppError, match="A scene is being generated"):
            first.predict(handle_file(str(write_bundle(tmp_path / "any.zip", {"prompts.json": ONE_SCENE}))),
                          api_name="/load_story")
        # Stop from the waiting session is a light event, answered while the first scene is generating, and
        # stops the waiting scene before it starts.
        assert second.predict(api_name="/stop") == "Stopped: the scene waiting in the queue will not be generated."
        assert not running.done()
        assert len(running.result()[4]["data"]) == 1
        assert "Stopped before it started" in waiting.result()[1]
        assert second.session_hash not in server["controller"].sessions.keys()  # no story was made for it
        workdir = entry_of(server["controller"], first).workdir
        assert not list(workdir.glob("load*")) and not any((server["data_dir"] / "uploads").iterdir())
        # the next scene of that tab runs as usual
        assert len(scene(second, "A dog runs across a field.")[4]["data"]) == 1
    finally:
        first.close()
        second.close()


def test_closing_a_client_releases_its_session(server):
    controller = server["controller"]
    client = Client(server["url"], verbose=False)
    scene(client, "A robot rolls through a city street.")
    key = client.session_hash
    workdir = controller.sessions.find(key).workdir
    assert workdir.is_dir()
    client.close()
    deadline = time.monotonic() + 20
    while key in controller.sessions.keys() or workdir.exists():
        assert time.monotonic() < deadline, "the session was not released after its client closed"
        time.sleep(0.1)


def test_bad_prompts_are_refused_before_the_queue(server):
    client = Client(server["url"], verbose=False)
    try:
        with pytest.raises(ValidationError, match="empty"):
            scene(client, "   ")
        with pytest.raises(ValidationError, match="too long"):
            scene(client, "a man walks " * 1000)
        with pytest.raises(Exception):  # the length slider itself refuses it
            scene(client, "A man walks.", seconds=500)
        assert client.session_hash not in server["controller"].sessions.keys()
    finally:
        client.close()


def test_stop_mid_scene_keeps_the_story_consistent(server):
    client = Client(server["url"], verbose=False)
    try:
        scene(client, "A man in a green hat walks to the market.")
        job = client.submit(prompt="The man buys apples from an old woman.", seconds=12.0, seed=2,
                            api_name="/add_scene")
        deadline = time.monotonic() + 120
        while not any("chunk 1 of" in str(o[1]) for o in job.outputs()):
            assert time.monotonic() < deadline and not job.done(), "no chunk arrived"
            time.sleep(0.05)
        assert client.predict(api_name="/stop") == "Stopping at the next chunk…"
        outputs = job.result()
        session = entry_of(server["controller"], client).session
        stopped = session.scenes[-1]
        assert stopped.stopped and 0 < stopped.chunks_done < stopped.num_chunks
        assert "stopped after" in outputs[1]
        assert outputs[4]["data"][-1][-1] == "stopped early"
        assert session.story_frames().shape[0] == sum(s.num_frames for s in session.scenes)
        # The story goes on from the stopped scene's last chunk.
        after = scene(client, "The man walks home.")
        assert [row[0] for row in after[4]["data"]] == [1, 2, 3]
        assert session.scenes[2].first_frame == session.scenes[1].first_frame + session.scenes[1].num_frames
    finally:
        client.close()


def test_a_scene_that_fails_part_way_is_removed_whole_and_the_worker_stops(server, full_disk):
    controller = server["controller"]
    client = Client(server["url"], verbose=False)
    try:
        scene(client, "A man in a green hat walks to the market.")
        session = entry_of(controller, client).session
        frames_before, registry_before = session.num_video_frames, session.registry_snapshot()
        full_disk.touch()
        job = client.submit(prompt="A woman with a yellow umbrella buys apples.", seconds=12.0, seed=2,
                            api_name="/add_scene")
        with pytest.raises(AppError, match=r"Scene 2 failed \(.*No space left.*\) and was removed"):
            job.result()
        # The worker was stopped and waited for: nothing more arrives after the error, the story is as before.
        controller.worker.call(lambda: None)
        assert len(session.scenes) == 1 and session.num_video_frames == frames_before
        assert session.registry_snapshot() == registry_before  # the woman is not in the registry
        assert not entry_of(controller, client).busy
        assert_story_whole(session, job.outputs()[-1])
        # Undo is accepted at once and works on the whole story; the story goes on afterwards.
        full_disk.unlink()
        undone = client.predict(api_name="/undo")
        assert not session.scenes and undone[1]["data"] in ([], [[]])
        scene(client, "A man in a green hat walks to the market.")
        after = scene(client, "The man walks home.")
        assert_story_whole(session, after)
    finally:
        client.close()


def test_undo_new_story_and_a_bundle_that_survives_a_restart(server, tmp_path):
    client = Client(server["url"], verbose=False)
    try:
        scene(client, "A girl with a blue scarf plays with a cat.", seed=7)
        two = scene(client, "The girl picks up the cat.", seed=8)
        undone = client.predict(api_name="/undo")
        assert [row[1] for row in undone[1]["data"]] == ["A girl with a blue scarf plays with a cat."]
        assert not file_of(undone[8])  # the bundle is made when asked for, not on every refresh
        bundle = Path(file_of(client.predict(api_name="/story_bundle")))
        assert bundle.suffix == ".zip"
        with zipfile.ZipFile(bundle) as archive:  # the story's video travels with it: its segments and their join
            videos = [i for i in archive.infolist() if i.filename.startswith("video/")]
            assert {"video/chunk-0000.ts", "video/story.ts"} <= {i.filename for i in videos}
            assert all(i.compress_type == zipfile.ZIP_STORED for i in videos)  # (H.264 does not deflate)
            assert archive.getinfo("story.pt").compress_type == zipfile.ZIP_STORED
            chunks = [i for i in archive.infolist() if i.filename.startswith("chunks/")]  # the latents, beside it
            assert {"chunks/latent-0000.bin", "chunks/queries-0000.bin"} <= {i.filename for i in chunks}
            assert all(i.compress_type == zipfile.ZIP_STORED for i in chunks)  # (nor do the latents, much)
        saved = shutil.copy(bundle, tmp_path / "story.zip")
        registry_before = entry_of(server["controller"], client).session.registry_snapshot()
        assert two[5] != undone[2]  # the Entities panel went back to one scene
        empty = client.predict(api_name="/new_story")
        assert empty[1]["data"] in ([], [[]]) or not any(empty[1]["data"])
        assert "Empty story" in empty[9]
    finally:
        client.close()

    # A second server on the same data folder (a restart) loads the bundle; a changed bundle is refused.
    demo, controller, url = start(server["data_dir"])
    try:
        other = Client(url, verbose=False)
        loaded = other.predict(handle_file(str(saved)), api_name="/load_story")
        assert [row[1] for row in loaded[1]["data"]] == ["A girl with a blue scarf plays with a cat."]
        session = controller.sessions.find(other.session_hash).session
        assert session.registry_snapshot() == registry_before
        assert session.video.complete_join() is not None  # shown from the saved join, not joined again
        more = scene(other, "The girl and the cat sleep.", seed=9)
        assert [row[0] for row in more[4]["data"]] == [1, 2]

        tampered = tmp_path / "tampered.zip"
        with zipfile.ZipFile(saved) as src, zipfile.ZipFile(tampered, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                dst.writestr(item, data + b" " if item.filename == "prompts.json" else data)
        with pytest.raises(AppError, match="not saved by this server"):
            other.predict(handle_file(str(tampered)), api_name="/load_story")
        other.close()
    finally:
        controller.close()
        demo.close()


class PeakMemory:
    """The server's (this process's) resident memory, sampled while a call runs."""

    def __init__(self):
        import psutil

        self.process, self.base, self.peak = psutil.Process(), 0, 0
        self._done = threading.Event()

    def __enter__(self):
        self.base = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    @property
    def grew_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def write_bundle(path: Path, members: dict[str, bytes], zeros: dict[str, int] = {}, level: int = 6) -> Path:
    """A zip with these members, plus members of that many zero bytes, streamed (never held in memory)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, size in zeros.items():
            with archive.open(name, "w", force_zip64=True) as handle:
                block = bytes(2**20)
                for _ in range(size // len(block)):
                    handle.write(block)
    return path


FAKE_SIGNATURE = json.dumps({"format": 1, "hmac_sha256": "0" * 64})
ONE_SCENE = json.dumps([{"prompt": "A man walks.", "seed": 1, "seconds": 2.0}])


def test_advanced_settings_make_the_story_and_a_new_story_takes_new_ones(server):
    controller = server["controller"]
    client = Client(server["url"], verbose=False)
    try:
        with pytest.raises(AppError, match="forgetful"):  # (the dropdown itself refuses a policy it does not list)
            client.predict(memory_policy="forgetful", api_name="/new_story")
        assert client.session_hash not in controller.sessions.keys()
        # a value the panel lets through but the story cannot take (a preset with a smaller cache) is named
        with pytest.raises(gr.Error, match="Advanced settings: max memory frames must be between 0 and"):
            controller._settings("iam", "recache", controller.memory_limit() + 1, False, PRESET, "rules")
        # the first scene's settings make the story, the rest of them the preset's defaults
        client.predict(prompt="A cat sleeps in the sun.", seconds=1.0, seed=1, memory_policy="sink",
                       transition="soft", max_memory_frames=1, api_name="/add_scene")
        entry = entry_of(controller, client)
        first = entry.session
        assert first.settings == dataclasses.replace(controller.default_settings(), memory_policy="sink",
                                                     transition="soft", max_memory_frames=1)
        assert first.bank.max_memory_frames == 1
        # New story with the same settings empties this story; other settings make a new story with them
        client.predict(memory_policy="sink", transition="soft", max_memory_frames=1, api_name="/new_story")
        assert entry.session is first and not first.scenes
        client.predict(memory_policy="nam", transition="soft", max_memory_frames=1, api_name="/new_story")
        assert entry.session is not first and entry.session.settings.memory_policy == "nam"
    finally:
        client.close()


def test_a_zip_bomb_is_refused_before_it_is_inflated_and_memory_stays_bounded(server, tmp_path):
    controller, data_dir = server["controller"], server["data_dir"]
    # 1.75 GiB of zeros in an 8 MB upload, with a fake signature (the probe's bomb)
    bomb = write_bundle(tmp_path / "bomb.zip", {"prompts.json": ONE_SCENE, "bundle.sig.json": FAKE_SIGNATURE},
                        zeros={"story.pt": 1792 * 2**20}, level=1)
    # 24 MB that do not compress, in a bundle listing one 2-second scene (far less than that)
    padded = tmp_path / "padded.zip"
    with zipfile.ZipFile(padded, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("prompts.json", ONE_SCENE)
        archive.writestr("bundle.sig.json", FAKE_SIGNATURE)
        archive.writestr("story.pt", os.urandom(24 * 2**20))
    client = Client(server["url"], verbose=False)
    try:
        with PeakMemory() as memory:
            with pytest.raises(AppError, match="damaged: story.pt unpacks to 1879048192 bytes .* far more than"):
                client.predict(handle_file(str(bomb)), api_name="/load_story")
            with pytest.raises(AppError, match=r"damaged: it unpacks to \d+ bytes, more than a story of 1 scene"):
                client.predict(handle_file(str(padded)), api_name="/load_story")
        assert memory.grew_mib < 200, f"the server grew by {memory.grew_mib:.0f} MiB"
        assert client.session_hash not in controller.sessions.keys()  # a refused file takes no place
        assert not any((data_dir / "uploads").iterdir())
        with pytest.raises(AppError) as refused:
            client.predict(handle_file(str(padded)), api_name="/load_story")
        assert "/" not in str(refused.value).replace("'Download story bundle'", "")  # no server path
    finally:
        client.close()


def test_idle_stories_drop_their_cache_then_are_released(server):
    controller = server["controller"]
    client = Client(server["url"], verbose=False)
    try:
        scene(client, "A man with a red kite runs up a hill.")
        entry = entry_of(controller, client)
        assert entry.session.cache is not None
        registry = controller.sessions
        registry.sweep(now=time.monotonic() + registry.idle_drop_s + 1)
        deadline = time.monotonic() + 10
        while not entry.cache_dropped:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert entry.session.cache is None and len(entry.session.latents) > 0  # K/V gone, latents kept
        again = scene(client, "The man lets the kite go.")
        assert [row[0] for row in again[4]["data"]] == [1, 2]
        registry.sweep(now=time.monotonic() + registry.idle_release_s + 1)
        assert client.session_hash not in registry.keys()
    finally:
        client.close()


def test_live_stories_are_capped(server):
    registry = server["controller"].sessions
    clients = []
    old_cap = registry.max_live
    try:
        clients = [Client(server["url"], verbose=False) for _ in range(2)]
        scene(clients[0], "A cat sleeps in the sun.")
        registry.max_live = len(registry)
        with pytest.raises(AppError, match="most stories it can"):
            scene(clients[1], "A dog sleeps in the shade.")
    finally:
        registry.max_live = old_cap
        for client in clients:
            client.close()


def test_calls_without_a_story_take_no_place_and_one_client_cannot_fill_the_server(server):
    registry = server["controller"].sessions
    deadline = time.monotonic() + 60
    while len(registry):  # the stories of earlier tests' closed clients are being released
        assert time.monotonic() < deadline, registry.keys()
        time.sleep(0.1)
    held, old_per_client = 0, registry.max_per_client
    prober = Client(server["url"], verbose=False)
    visitors = []
    try:
        # bare Undo / New story / Stop calls from fresh sessions (no heartbeat needed) make no entry
        for _ in range(registry.max_live + 1):
            prober.reset_session()
            assert prober.predict(api_name="/undo")[1]["data"] in ([], [[]])
            prober.predict(api_name="/new_story")
            assert prober.predict(api_name="/stop") == "Nothing is being generated."
        assert len(registry) == held
        # one client address holds at most max_per_client stories; others are still served
        registry.max_per_client = held + 1
        visitors = [Client(server["url"], verbose=False) for _ in range(2)]
        scene(visitors[0], "A cat sleeps in the sun.")
        with pytest.raises(AppError, match="Your address already holds"):
            scene(visitors[1], "A dog sleeps in the shade.")
        assert visitors[1].session_hash not in registry.keys()
        assert len(registry) == held + 1 < registry.max_live
    finally:
        registry.max_per_client = old_per_client
        for client in [prober, *visitors]:
            client.close()


class Messages(logging.Handler):
    """Log messages of the server, as they are emitted (from any thread)."""

    def __init__(self, logger_name: str):
        super().__init__(logging.INFO)
        self.logger, self.text = logging.getLogger(logger_name), ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"

    def __enter__(self):
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def test_on_an_auth_server_only_the_owner_can_release_a_story(tmp_path):
    import httpx

    demo, controller, url = start(tmp_path / "auth-data", auth=[("ann", "secret")])
    try:
        ann = Client(url, auth=("ann", "secret"), verbose=False)
        scene(ann, "A man with a red kite runs up a hill.")
        key = ann.session_hash
        assert controller.sessions.find(key).owner == "ann"
        # someone without the login opens and drops the heartbeat of ann's session
        with Messages("ui.sessions") as messages:
            with httpx.stream("GET", f"{url}gradio_api/heartbeat/{key}", timeout=10) as response:
                next(response.iter_lines())
            deadline = time.monotonic() + 30
            while "not from the login that owns it" not in messages.text and key in controller.sessions.keys():
                assert time.monotonic() < deadline, "the heartbeat's unload never ran"
                time.sleep(0.05)
        assert key in controller.sessions.keys(), "an unauthenticated request released ann's story"
        more = scene(ann, "The man lets the kite go.")
        assert [row[0] for row in more[4]["data"]] == [1, 2]
        ann.close()  # ann's own tab closing still releases it
        deadline = time.monotonic() + 30
        while key in controller.sessions.keys():
            assert time.monotonic() < deadline, "the owner's closed tab did not release the story"
            time.sleep(0.05)
    finally:
        controller.close()
        demo.close()


def test_names_from_files_are_text_in_error_messages(server, tmp_path):
    crafted = write_bundle(tmp_path / "crafted.zip", {"../<a href=https://example.com>x</a><img src=x>": b"x"})
    client = Client(server["url"], verbose=False)
    try:
        with pytest.raises(AppError) as refused:
            client.predict(handle_file(str(crafted)), api_name="/load_story")
        message = str(refused.value)
        assert "unsafe path" in message and "<a" not in message and "<img" not in message
        assert "&lt;a href=https:" in message  # shown as the text it is
    finally:
        client.close()


def test_memory_pictures_are_written_once_under_a_name_of_their_content(tmp_path):
    """A picture the memory panel shows again is the same file, not rewritten while a page may fetch it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = [{"key": k, "thumbnail": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "entity_ids": []}
              for k in range(2)]
    first = formatting.memory_gallery(frames, {}, tmp_path)
    stamps = {path: os.stat(path).st_mtime_ns for path, _ in first}
    time.sleep(0.01)
    again = formatting.memory_gallery(frames[:1], {}, tmp_path)
    assert again[0][0] == first[0][0] and os.stat(again[0][0]).st_mtime_ns == stamps[first[0][0]]
    assert len(stamps) == 2 and sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(p).name for p in stamps)
    shown = np.asarray(Image.open(first[0][0]))  # the thumbnail scaled up 8x (to 128 px), exactly
    assert shown.shape == (128, 128, 3) and np.array_equal(shown[::8, ::8], frames[0]["thumbnail"])


def test_names_and_prompts_are_text_not_markup():
    registry = {"1": {"name": "<img src=x onerror=alert(1)>", "kind": "person", "aliases": ["<b>bold</b> man"],
                      "attrs": ["red & blue"], "all_attrs": ["red & blue"], "prompts": [0]}}
    html = formatting.registry_html(registry)
    assert "<img" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "red &amp; blue" in html


def test_a_signed_bundle_whose_state_does_not_fit_together_is_called_damaged(server, tmp_path):
    import torch

    from ui import bundles

    story = tmp_path / "story"
    story.mkdir()
    torch.save({"format": 1, "preset": PRESET}, story / "story.pt")  # no settings, no scenes
    (story / "prompts.json").write_text(ONE_SCENE)
    (story / "preset.json").write_text(json.dumps({"preset": PRESET}))
    signed = bundles.pack(story, tmp_path / "signed.zip", server["controller"].bundle_key)
    client = Client(server["url"], verbose=False)
    try:
        with pytest.raises(AppError, match=r"this story file is damaged: its saved state does not fit together "
                                           r"\(missing 'settings'\)"):
            client.predict(handle_file(str(signed)), api_name="/load_story")
        assert client.session_hash not in server["controller"].sessions.keys()
    finally:
        client.close()


def run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_startup_problems_are_explained_with_exit_2(tmp_path):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "bundle.key").write_text("not hex at all")
    result = run_app("--data-dir", str(damaged), "--port", str(free_port()))
    assert result.returncode == 2 and "bundle signing key" in result.stderr and "is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = run_app("--data-dir", str(blocked / "data"), "--port", str(free_port()))
    assert result.returncode == 2 and "cannot be written" in result.stderr and "Traceback" not in result.stderr


def test_a_new_signing_key_is_written_whole(tmp_path):
    from ui import bundles

    key = bundles.load_or_create_key(tmp_path / "bundle.key")
    assert len(key) == 32 and (tmp_path / "bundle.key").stat().st_mode & 0o777 == 0o600
    assert bundles.load_or_create_key(tmp_path / "bundle.key") == key
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.key"]  # no temporary left beside it


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    """The one writer of the agent's mappings, the signing key and the memory pictures."""
    from iamflow.files import write_atomic

    target = tmp_path / "folder" / "mapping.json"
    write_atomic(target, "first")
    write_atomic(target, b"second", sync=True)
    assert target.read_bytes() == b"second" and target.stat().st_mode & 0o777 == 0o600

    class Unwritable:  # a write that fails part-way (here: data the file cannot take)
        pass

    with pytest.raises(TypeError):
        write_atomic(target, Unwritable())
    assert target.read_bytes() == b"second" and [p.name for p in target.parent.iterdir()] == ["mapping.json"]


def test_the_command_line_binds_to_localhost_without_share(server):
    from app import parse_args

    args = parse_args([])
    assert args.host == "127.0.0.1" and args.auth is None
    assert parse_args(["--auth", "ann:secret", "--port", "9000"]).auth == "ann:secret"
    with pytest.raises(SystemExit):
        parse_args(["--auth", "no-colon"])
    kwargs = launch_kwargs(server["controller"])
    assert kwargs["share"] is False and kwargs["run_history"] is False
    for bad in (["--idle-timeout", "0"], ["--idle-timeout", "-5"], ["--idle-timeout", "nan"],
                ["--idle-timeout", "inf"], ["--max-sessions", "4", "--max-sessions-per-client", "5"]):
        with pytest.raises(SystemExit):
            parse_args(bad)

