"""Live mode through the app's API (gradio_client) and in a real browser, against the app in-process with the
embedded model: a live scene, the next prompt submitted while it streams, the story switching at the next chunk."""

from __future__ import annotations

import re
import tempfile
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import expect, sync_playwright

from test_app_api import assert_story_whole, entry_of, start
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, set_seconds, shot, timeline_count
from ui.callbacks import NOTHING_TO_SWITCH

pytestmark = pytest.mark.slow

MAN = "A young man in a red jacket walks along the beach."
NEXT = "The man sits down on a bench."
WAIT_S = 900  # a bound on waiting for chunks on a shared 2-core machine, not a speed requirement


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("app-live-data")
    demo, controller, url = start(data_dir, overrides=["video.live_max_seconds=30"])
    yield {"demo": demo, "controller": controller, "url": url}
    controller.close()
    demo.close()


def wait_for_output(job, pattern: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(re.search(pattern, str(o[1])) for o in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), f"no progress line matched {pattern!r}"
        time.sleep(0.05)


def test_a_prompt_submitted_while_a_live_scene_streams_switches_the_story(server):
    client = Client(server["url"], verbose=False)
    try:
        assert client.predict(prompt=NEXT, api_name="/switch_scene") == NOTHING_TO_SWITCH  # nothing runs yet
        job = client.submit(prompt=MAN, seconds=3.0, seed=1, live=True, api_name="/add_scene")
        wait_for_output(job, r"Scene 1 · live · chunk 2 ·")
        with pytest.raises(AppError, match="empty"):
            client.predict(prompt="  ", api_name="/switch_scene")
        answer = client.predict(prompt=NEXT, seconds=0.75, seed=2, live=False, api_name="/switch_scene")
        assert answer == "Switching to scene 2 at the next chunk…"
        outputs = job.result()  # the same call streams the next scene, then shows the story

        session = entry_of(server["controller"], client).session
        live, after = session.scenes
        assert (live.prompt, after.prompt) == (MAN, NEXT)
        assert live.live and live.switched and not live.stopped and live.chunks_done >= 2
        assert live.num_chunks == live.chunks_done and live.seconds == pytest.approx(live.num_frames / session.fps)
        assert after.chunks_done == after.num_chunks and after.first_frame == live.num_frames
        rows = outputs[4]["data"]
        assert [row[0] for row in rows] == [1, 2]
        assert rows[0][3] == f"{live.chunks_done}/{live.chunks_done}" and rows[0][5] == "live, until the next prompt"
        assert rows[0][2] == round(live.seconds, 2)
        # every chunk made is in the story mp4; the first scene kept the chunks it made before the switch
        assert_story_whole(session, outputs)
        scene_1_chunks = {o[1] for o in job.outputs() if str(o[1]).startswith("Scene 1 · live · chunk")}
        assert len(scene_1_chunks) == live.chunks_done
        assert any(str(o[1]).startswith("Scene 2 · chunk 1 of") for o in job.outputs())
        assert client.predict(prompt=NEXT, api_name="/switch_scene") == NOTHING_TO_SWITCH  # the run is over
    finally:
        client.close()


def test_live_mode_in_the_browser(server):
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="iamflow-chromium-"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 1100},
        )
        try:
            page = context.new_page()
            page.goto(server["url"])
            expect(page.locator("#scene-prompt textarea")).to_be_visible(timeout=60_000)
            progress = page.locator("#progress textarea, #progress input")

            # a live scene: no length to choose, it runs until the next prompt
            page.locator("#scene-live input[type=checkbox]").check()
            page.locator("#scene-prompt textarea").fill(MAN)
            page.locator("#add-scene").click()
            expect(progress).to_have_value(re.compile(r"Scene 1 · live · chunk 2 · .*until the next prompt"),
                                           timeout=WAIT_S * 1000)
            shot(page, "live-01-running")

            # the next prompt, added while it plays (no Stop): the story switches at the next chunk
            page.locator("#scene-live input[type=checkbox]").uncheck()
            set_seconds(page, 1)
            page.locator("#scene-prompt textarea").fill(NEXT)
            page.locator("#add-scene").click()
            shot(page, "live-02-next-prompt-submitted")
            expect(progress).to_have_value(re.compile(r"Switching to scene 2|switching to scene 2|Scene 2 · chunk"),
                                           timeout=WAIT_S * 1000)
            expect(page.locator("#story-summary")).to_contain_text("2 scenes ·", timeout=WAIT_S * 1000)
            assert timeline_count(page) == 2
            expect(page.locator("#timeline")).to_contain_text("live, until the next prompt")
            expect(page.locator("#timeline")).to_contain_text(NEXT)
            shot(page, "live-03-switched")
            page.close()
        finally:
            context.close()
