"""The page in a real browser (Playwright driving Debian's Chromium) against the app in-process.

One story told the way a person would: a first scene, a second that refers back to "the man", a scene
stopped half-way, another scene, Undo, then a reload of the page and Load story from the downloaded bundle.
Screenshots of every step go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from ui import create_app, launch_kwargs

PRESET = os.environ.get("IAMFLOW_APP_TEST_PRESET", "storyworld")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
SCENE_TIMEOUT_MS = 120_000

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    demo, controller = create_app(preset=PRESET, data_dir=tmp_path_factory.mktemp("app-data"))
    demo.queue(default_concurrency_limit=None)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs(controller))
    controller.worker.runtime(PRESET)
    yield f"http://127.0.0.1:{port}/"
    controller.close()
    demo.close()


@pytest.fixture(scope="module")
def browser_context():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="iamflow-chromium-"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 1100}, accept_downloads=True,
        )
        yield context
        context.close()


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def set_seconds(page: Page, seconds: float) -> None:
    box = page.locator("#scene-seconds input[type=number]")
    box.fill(str(seconds))
    box.press("Enter")


def add_scene(page: Page, prompt: str, seconds: float = 3.0) -> None:
    set_seconds(page, seconds)
    page.locator("#scene-prompt textarea").fill(prompt)
    page.locator("#add-scene").click()


def wait_for_story(page: Page, scenes: int) -> None:
    label = f"{scenes} scene{'s' if scenes != 1 else ''} ·"
    expect(page.locator("#story-summary")).to_contain_text(label, timeout=SCENE_TIMEOUT_MS)


def story_duration(page: Page) -> float:
    page.wait_for_function(
        "() => { const v = document.querySelector('#story-video video'); return v && v.readyState >= 1 && v.duration > 0 }",
        timeout=SCENE_TIMEOUT_MS,
    )
    return page.evaluate("() => document.querySelector('#story-video video').duration")


def timeline_count(page: Page) -> int:
    """Rows of the timeline (the grid's row count includes its header row)."""
    return int(page.locator("#timeline [role=grid]").get_attribute("aria-rowcount")) - 1


def registry_ids(page: Page) -> list[str]:
    return page.locator("#entity-registry tr[data-entity-id]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-entity-id'))")


def test_a_story_told_in_the_browser(app_url, browser_context, tmp_path):
    page = browser_context.new_page()
    page.goto(app_url)
    expect(page.locator("#scene-prompt textarea")).to_be_visible(timeout=60_000)
    for element in ("scene-prompt", "add-scene", "live-video", "story-video", "entity-registry", "memory-frames",
                    "stop", "undo", "new-story", "download-mp4", "download-mapping"):
        expect(page.locator(f"#{element}")).to_have_count(1)

    # 1. The first scene: the live view shows frames as chunks arrive (it changes while the scene plays); the man
    # appears in the Entities panel.
    add_scene(page, "A young man in a red jacket walks along the beach.")
    live_pictures = []
    for _ in range(2):  # two different pictures, in turn, in the live view's <img>
        page.wait_for_function(
            "(seen) => { const img = document.querySelector('#live-video img');"
            " if (!img || !img.complete || img.naturalWidth === 0) return false;"
            " const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;"
            " c.getContext('2d').drawImage(img, 0, 0); return !seen.includes(c.toDataURL()); }",
            arg=live_pictures, timeout=SCENE_TIMEOUT_MS, polling=20)
        live_pictures.append(page.evaluate(
            "() => { const img = document.querySelector('#live-video img'); const c = document.createElement('canvas');"
            " c.width = img.naturalWidth; c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0);"
            " return c.toDataURL(); }"))
    expect(page.locator("#entity-registry")).to_contain_text("man_1", timeout=SCENE_TIMEOUT_MS)
    shot(page, "01-first-scene-live")
    wait_for_story(page, 1)
    first_duration = story_duration(page)
    shot(page, "02-first-scene-done")

    # 2. A scene that refers back: the story grows, the man keeps his id, memory frames are shown.
    add_scene(page, "The man stops and looks at the sea.")
    wait_for_story(page, 2)
    page.wait_for_function(f"() => document.querySelector('#story-video video')?.duration > {first_duration + 1}",
                           timeout=SCENE_TIMEOUT_MS)
    assert registry_ids(page) == ["1"]
    expect(page.locator("#entity-registry tr[data-entity-id='1']")).to_contain_text("1, 2")
    expect(page.locator("#memory-frames img").first).to_be_visible(timeout=SCENE_TIMEOUT_MS)
    assert page.locator("#memory-frames img").count() >= 1
    shot(page, "03-second-scene-memory")

    # 3. Stop half-way through a long scene; the scene keeps what was made; then the story goes on.
    add_scene(page, "The man runs along the water for a long time.", seconds=12)
    expect(page.locator("#progress textarea, #progress input")).to_have_value(re.compile(r"chunk [12] of"),
                                                                            timeout=SCENE_TIMEOUT_MS)
    page.locator("#stop").click()
    wait_for_story(page, 3)
    expect(page.locator("#timeline")).to_contain_text("stopped early")
    shot(page, "04-stopped-mid-scene")
    add_scene(page, "The man sits down on the sand and rests.")
    wait_for_story(page, 4)
    assert timeline_count(page) == 4
    shot(page, "05-scene-after-stop")

    # 4. Undo takes the last scene away.
    page.locator("#undo").click()
    wait_for_story(page, 3)
    assert timeline_count(page) == 3
    expect(page.locator("#timeline")).not_to_contain_text("rests")
    expect(page.locator("#progress textarea, #progress input")).to_have_value("")  # no stale "done" line
    expect(page.locator("#live-video img")).to_have_count(0)  # nor the undone scene in the live view
    shot(page, "06-after-undo")

    page.locator("#prepare-bundle").click()  # the bundle is made when asked for
    expect(page.locator("#download-bundle")).to_be_enabled(timeout=120_000)
    with page.expect_download() as download_info:
        page.locator("#download-bundle").click()
    bundle = tmp_path / "story.zip"
    download_info.value.save_as(bundle)
    with page.expect_download() as download_info:
        page.locator("#download-mp4").click()
    assert download_info.value.suggested_filename.endswith(".mp4")

    # 5. Reload the page: a fresh story; Load story brings the saved one back.
    page.reload()
    expect(page.locator("#story-summary")).to_contain_text("Empty story", timeout=60_000)
    with page.expect_file_chooser() as chooser:
        page.locator("#load-story").click()
    chooser.value.set_files(str(bundle))
    wait_for_story(page, 3)
    assert registry_ids(page) == ["1"]
    assert timeline_count(page) == 3
    story_duration(page)
    shot(page, "07-reloaded-and-loaded")
    page.close()


def test_prompts_are_checked_and_shown_as_text(app_url, browser_context):
    page = browser_context.new_page()
    page.goto(app_url)
    expect(page.locator("#scene-prompt textarea")).to_be_visible(timeout=60_000)
    page.locator("#add-scene").click()
    expect(page.locator("#scene-prompt")).to_contain_text("empty", timeout=10_000)
    assert "Empty story" in page.locator("#story-summary").inner_text()

    add_scene(page, "A woman called <b>Ann</b> <img src=x onerror=window.pwned=1> waves.", seconds=1.5)
    wait_for_story(page, 1)
    expect(page.locator("#timeline")).to_contain_text("<b>Ann</b>")
    assert page.locator("#entity-registry b:not(.iam-name), #entity-registry img, #timeline img").count() == 0
    assert page.evaluate("() => window.pwned === undefined")
    shot(page, "08-markup-as-text")
    page.close()


def test_names_from_a_file_show_as_text_in_the_error_popup(app_url, browser_context, tmp_path):
    import zipfile

    crafted = tmp_path / "crafted.zip"
    with zipfile.ZipFile(crafted, "w") as archive:
        archive.writestr("../<a id=planted href=https://example.com>click</a><img id=planted-img src=x>.pt", b"x")
    page = browser_context.new_page()
    page.goto(app_url)
    expect(page.locator("#scene-prompt textarea")).to_be_visible(timeout=60_000)
    with page.expect_file_chooser() as chooser:
        page.locator("#load-story").click()
    chooser.value.set_files(str(crafted))
    expect(page.get_by_text("unsafe path").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("<a id=planted").first).to_be_visible()  # the name, shown as typed
    assert page.locator("#planted, #planted-img").count() == 0
    shot(page, "09-file-names-as-text")
    page.close()
