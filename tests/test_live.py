"""Live mode on the embedded storyworld model, through StorySession: a scene that runs until the next prompt (with
its cap), and a prompt that switches the story at the next chunk boundary."""

import threading

import numpy as np
import pytest
import torch

from iamflow.config import load_config
from iamflow.session import LIVE, NoSceneRunning, Runtime, StorySession

MAN = "A young man in a red jacket walks along the beach."
NEXT = "The man sits down on a bench."
LIVE_CAP_SECONDS = 3.0
CAP_CHUNKS = 4  # the most chunks of 12 frames at 16 fps that fit in 3 s
NEXT_SECONDS = 0.75  # one chunk: the next scene only has to show that the story goes on from the right place


@pytest.fixture(scope="module")
def runtime():
    return Runtime.load(load_config(preset="storyworld", overrides=[f"video.live_max_seconds={LIVE_CAP_SECONDS}"]))


@pytest.fixture(scope="module")
def reference_2(runtime):
    return reference(runtime, chunks=2)


def reference(runtime, chunks: int) -> StorySession:
    """A fixed scene of ``chunks`` chunks followed by the next scene, with the seeds the live runs use."""
    session = StorySession(runtime)
    list(session.add_scene(MAN, chunks=chunks, seed=1))
    list(session.add_scene(NEXT, seconds=NEXT_SECONDS, seed=2))
    return session


def live_then_switch(session: StorySession, after: int) -> list:
    """A live scene whose viewer types the next prompt once chunk ``after`` has arrived; the events received."""
    events = []
    for event in session.add_scene(MAN, seconds=LIVE, seed=1):
        events.append(event)
        if event.scene_index == 0 and event.chunk_index == after:
            assert session.request_switch(NEXT, seconds=NEXT_SECONDS, seed=2) == 1
    return events


def assert_same_story(session: StorySession, expected: StorySession) -> None:
    assert len(session.latents) == len(expected.latents)
    assert all(torch.equal(a, b) for a, b in zip(session.latents, expected.latents))
    assert np.array_equal(session.story_frames(), expected.story_frames())
    assert session.ops == expected.ops
    assert session.mapping() == expected.mapping()


def test_a_live_scene_switched_after_k_chunks_equals_a_fixed_scene_of_k_chunks(runtime, reference_2):
    session = StorySession(runtime)
    events = live_then_switch(session, after=1)
    # the switch lands at the next chunk boundary: the live scene keeps its 2 chunks, the next scene follows
    assert [(e.scene_index, e.chunk_index) for e in events][:3] == [(0, 0), (0, 1), (1, 0)]
    assert all(e.live for e in events if e.scene_index == 0) and not any(e.live for e in events if e.scene_index == 1)
    live, after = session.scenes
    assert live.live and live.switched and not live.stopped
    assert live.chunks_done == live.num_chunks == 2
    assert live.seconds == pytest.approx(live.num_frames / session.fps)
    assert after.first_chunk == 2 and after.first_frame == live.num_frames and after.chunks_done == after.num_chunks
    assert_same_story(session, reference_2)


def test_a_live_scene_ends_by_itself_at_its_cap(runtime):
    session = StorySession(runtime)
    events = list(session.add_scene(MAN, seconds=LIVE, seed=1))
    scene = session.scenes[0]
    cap = CAP_CHUNKS
    assert len(events) == cap and events[-1].done and events[-1].num_chunks == cap
    assert scene.live and not scene.switched and not scene.stopped and scene.chunks_done == scene.num_chunks == cap
    assert scene.seconds == pytest.approx(scene.num_frames / session.fps) and scene.seconds <= LIVE_CAP_SECONDS
    # nothing is running now: a switch is refused with what to do instead, and the story goes on as usual
    with pytest.raises(NoSceneRunning, match="add the scene instead"):
        session.request_switch(NEXT)
    assert len(list(session.add_scene(NEXT, seconds=NEXT_SECONDS, seed=2))) == session.scenes[1].num_chunks


def test_a_switch_asked_for_from_another_thread_never_loses_the_prompt_or_a_chunk(runtime):
    session = StorySession(runtime)
    first_chunk, answers = threading.Event(), []

    def viewer():  # another thread types the next prompt while the scene streams
        first_chunk.wait(timeout=300)
        answers.append(session.request_switch(NEXT, seconds=NEXT_SECONDS, seed=2))

    thread = threading.Thread(target=viewer)
    thread.start()
    events = []
    for event in session.add_scene(MAN, seconds=LIVE, seed=1):
        events.append(event)
        first_chunk.set()
        if (event.scene_index, event.chunk_index) == (0, 2):
            thread.join(timeout=300)  # (on a busy machine the viewer is slow: the scene must not reach its cap first)
    thread.join()
    assert answers == [1]
    live = session.scenes[0]
    assert [s.prompt for s in session.scenes] == [MAN, NEXT]
    assert 1 <= live.chunks_done <= CAP_CHUNKS
    # every chunk made was handed out, and the story is the fixed story of as many chunks
    assert len(events) == len(session.latents) == live.chunks_done + session.scenes[1].chunks_done
    assert sum(len(e.frames) for e in events) == session.num_video_frames
    assert_same_story(session, reference(runtime, chunks=live.chunks_done))


def test_switch_requests_are_checked_and_stop_withdraws_the_ones_not_started(runtime):
    session = StorySession(runtime)
    events = session.add_scene(MAN, seconds=LIVE, seed=1)
    next(events)
    with pytest.raises(ValueError, match="empty"):
        session.request_switch("   ")
    with pytest.raises(ValueError, match="between 0 and 120 seconds, or 'live'"):
        session.request_switch(NEXT, seconds="forever")
    with pytest.raises(ValueError, match="seed must be a whole number"):
        session.request_switch(NEXT, seed=-1)
    assert session.request_switch(NEXT, seed=2) == 1
    assert session.request_switch("A dog runs on the beach.", seed=3) == 2  # a second one waits its turn
    assert session.pending_switches == [NEXT, "A dog runs on the beach."]
    assert session.stop() == [NEXT, "A dog runs on the beach."]
    rest = list(events)
    assert len(session.scenes) == 1 and session.scenes[0].stopped and not rest
    assert session.scenes[0].chunks_done == session.scenes[0].num_chunks == 1


def test_undo_of_a_live_scene_and_save_load_continue_identically(runtime, reference_2, tmp_path):
    expected = reference_2
    session = StorySession(runtime)
    live_then_switch(session, after=1)
    session.undo_last_scene()  # the scene that came after the switch goes; the live one stays as recorded
    assert [s.prompt for s in session.scenes] == [MAN] and session.scenes[0].live
    assert len(session.latents) == 2
    list(session.add_scene(NEXT, seconds=NEXT_SECONDS, seed=2))
    assert_same_story(session, expected)

    session.save(tmp_path / "story")
    loaded = StorySession.load(tmp_path / "story", runtime)
    assert [(s.live, s.switched, s.num_chunks, s.seconds) for s in loaded.scenes] == \
        [(s.live, s.switched, s.num_chunks, s.seconds) for s in session.scenes]
    assert np.array_equal(loaded.story_frames(), session.story_frames())

    loaded.undo_last_scene()
    loaded.undo_last_scene()  # the live scene itself: the story is empty again
    assert not loaded.scenes and not loaded.latents and not loaded.ops
    live_then_switch(loaded, after=1)
    assert_same_story(loaded, expected)


def test_bad_live_settings_are_refused_with_what_to_change(runtime):
    from iamflow.config import ConfigError

    with pytest.raises(ConfigError, match=r"video.live_max_seconds must be above 0 and at most 3600 \(got 0.0\)"):
        load_config(preset="storyworld", overrides=["video.live_max_seconds=0"])
    session = StorySession(runtime)
    with pytest.raises(ValueError, match="between 0 and 120 seconds, or 'live' \\(until the next prompt\\)"):
        session.add_scene(MAN, seconds="forever")
    assert not session.scenes
