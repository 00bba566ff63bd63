"""runtime.devices with two entries: the DiT on the first, the decoder and the text encoder on the second, each
chunk decoded by the decode stage's thread while the host queues the next one. On the CPU, [cpu, cpu] runs that
thread beside the DiT (two CPU streams of work); the story must be the one a single device makes, bit for bit."""

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from iamflow.config import ConfigError, load_config
from iamflow.engine.codec import WanVAECodec
from iamflow.engine.streams import DecodeError
from iamflow.runtime import resolve_devices
from iamflow.session import Runtime, StorySession

from helpers import stop_after_chunk_1

MAN = "A young man in a red jacket walks through a sunny park."
DOG = "A small brown dog runs along the beach at noon."
BACK = "The man waves at the camera."
STORY = [(MAN, 3.0, 1), (DOG, 4.5, 2), (BACK, 3.0, 3)]


@pytest.fixture(scope="module")
def one(tiny_runtime):
    return tiny_runtime


@pytest.fixture(scope="module")
def split():
    runtime = Runtime.load(load_config(preset="tiny", overrides=["runtime.devices=[cpu, cpu]"]))
    assert runtime.split and runtime.decode_stage is not None
    return runtime


def run(session, prompt, seconds=3.0, seed=0):
    return list(session.add_scene(prompt, seconds=seconds, seed=seed))


def story(runtime, overlap=None):
    session = StorySession(runtime)
    if overlap is not None:
        session.overlap_decode = overlap
    events = [e for prompt, seconds, seed in STORY for e in run(session, prompt, seconds, seed)]
    return session, events


@pytest.fixture(scope="module")
def reference(one):
    return story(one)


def assert_same_story(session, events, expected_session, expected_events):
    assert [(e.scene_index, e.chunk_index, e.first_frame, e.done) for e in events] == \
        [(e.scene_index, e.chunk_index, e.first_frame, e.done) for e in expected_events]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(events, expected_events))
    assert [[m["key"] for m in e.memory] for e in events] == [[m["key"] for m in e.memory] for e in expected_events]
    assert len(session.latents) == len(expected_session.latents)
    assert all(torch.equal(a, b) for a, b in zip(session.latents, expected_session.latents))
    assert session.ops == expected_session.ops and session.mapping() == expected_session.mapping()
    assert session.chunk_frame_counts == expected_session.chunk_frame_counts
    assert np.array_equal(session.story_frames(), expected_session.story_frames())


def test_runtime_devices_is_checked_with_a_clear_error():
    with pytest.raises(ConfigError, match="one or two devices"):
        load_config(preset="tiny", overrides=["runtime.devices=[cpu, cpu, cpu]"])
    with pytest.raises(ConfigError, match="cpu, cuda or cuda:N"):
        load_config(preset="tiny", overrides=["runtime.devices=[cpu, gpu1]"])
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last visible GPU
    config = load_config(preset="tiny", overrides=[f"runtime.devices=[cpu, {missing}]"])
    with pytest.raises(ConfigError, match=f"names {missing} but"):
        resolve_devices(config)
    # devices wins over device; one entry is one device, no decode thread
    config = load_config(preset="tiny", overrides=["runtime.device=cuda", "runtime.devices=[cpu]"])
    assert resolve_devices(config) == (torch.device("cpu"), None)
    assert resolve_devices(load_config(preset="tiny")) == (torch.device("cpu"), None)


def test_one_device_has_no_decode_thread(one):
    assert not one.split and one.decode_stage is None and not StorySession(one).overlap_decode


def test_split_story_equals_one_device(split, reference):
    """Three scenes (re-cache switches, memory archived and retrieved) decoded on the decode thread: the same
    events, frames, latents, cache log and memory as one device."""
    session, events = story(split)
    assert session.overlap_decode
    assert_same_story(session, events, *reference)


def test_split_stop_undo_and_next_scene_equal_one_device(split, one):
    """Stop mid-scene (the chunk in flight is decoded and kept, as with the overlapped decode of one device), undo a
    scene, and go on: every step equals one device's."""
    def steps(runtime):
        session = StorySession(runtime)
        session.overlap_decode = True
        events = run(session, MAN, seed=1)
        events += stop_after_chunk_1(session, DOG)
        stopped = (session.scenes[1].stopped, session.scenes[1].chunks_done)
        events += run(session, "A robot dances in the rain.", seed=9)
        session.undo_last_scene()
        events += run(session, BACK, seed=3)
        return session, events, stopped

    session, events, stopped = steps(split)
    expected_session, expected_events, expected_stopped = steps(one)
    assert stopped == expected_stopped == (True, 3)
    assert_same_story(session, events, expected_session, expected_events)


def test_split_save_and_load_continue_identically(split, reference, tmp_path):
    session = StorySession(split)
    for prompt, seconds, seed in STORY[:2]:
        run(session, prompt, seconds, seed)
    session.save(tmp_path / "story")
    loaded = StorySession.load(tmp_path / "story", split)
    prompt, seconds, seed = STORY[2]
    after = run(loaded, prompt, seconds, seed)
    assert loaded.decoded_latent_frames > 0  # the decoder's state was rebuilt (on the decode device) first
    expected_session, expected_events = reference
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(after, expected_events[-len(after):]))
    assert all(torch.equal(a, b) for a, b in zip(loaded.latents, expected_session.latents))
    assert np.array_equal(loaded.story_frames(), expected_session.story_frames())
    assert loaded.mapping() == expected_session.mapping()


def test_a_failing_decode_raises_in_the_caller_and_the_scene_goes_whole(split, reference):
    """A decoder that cannot take the DiT's latents (a VAE of 8 latent channels, not the tiny DiT's 4) fails in the decode
    thread: the error reaches the loop's caller as a DecodeError naming the device, the scene is removed whole,
    nothing hangs, and the story goes on as if it had not been asked for."""
    session = StorySession(split)
    run(session, MAN, seed=1)
    scenes, latents, ops = len(session.scenes), len(session.latents), list(session.ops)
    wrong = WanVAECodec(AutoencoderKLWan(
        base_dim=8, z_dim=8, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 8, latents_std=[1.0] * 8,
    ).eval())
    session.decoder = wrong.stream_decoder()
    with pytest.raises(DecodeError, match=r"decoding a chunk on cpu failed: ValueError: latents must be \[B, 8"):
        run(session, DOG, seconds=4.5, seed=2)
    assert (len(session.scenes), len(session.latents), session.ops) == (scenes, latents, ops)
    assert not session._arriving and session.decoder is None
    for prompt, seconds, seed in STORY[1:]:
        run(session, prompt, seconds, seed)
    expected_session, _ = reference
    assert all(torch.equal(a, b) for a, b in zip(session.latents, expected_session.latents))
    assert np.array_equal(session.story_frames(), expected_session.story_frames())


def test_split_storyworld_equals_one_device():
    """The embedded model (its own codec) split over [cpu, cpu]: two scenes, the same frames and latents."""
    one = Runtime.load(load_config(preset="storyworld"))
    split = Runtime.load(load_config(preset="storyworld", overrides=["runtime.devices=[cpu, cpu]"]))
    assert split.split

    def two_scenes(runtime):
        session = StorySession(runtime)
        events = run(session, "A red fox walks through the park.", 3.0, 4)
        events += run(session, "The fox sits by the lake.", 3.0, 5)
        return session, events

    session, events = two_scenes(split)
    expected_session, expected_events = two_scenes(one)
    assert len(events) == len(expected_events) > 2
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(events, expected_events))
    assert all(torch.equal(a, b) for a, b in zip(session.latents, expected_session.latents))
    assert session.ops == expected_session.ops


def test_the_decode_thread_ends_with_its_runtime():
    """A split runtime's decode thread starts with the runtime's warm-up (which decodes on it, as every chunk will)
    and ends when the runtime is closed, or dropped (the thread holds it weakly): a process that builds runtimes does
    not keep their models alive."""
    import gc
    import weakref

    runtime = Runtime.load(load_config(preset="tiny", overrides=["runtime.devices=[cpu, cpu]"]))
    thread = runtime.decode_stage._thread
    assert thread is not None and thread.is_alive()
    session = StorySession(runtime)
    run(session, MAN, seconds=1.5, seed=1)
    assert runtime.decode_stage._thread is thread and thread.is_alive()
    runtime.close()
    assert not thread.is_alive()
    run(session, DOG, seconds=1.5, seed=2)  # a closed runtime's stage starts a new thread when asked again
    thread, dropped = runtime.decode_stage._thread, weakref.ref(runtime)
    del session, runtime
    gc.collect()
    thread.join(timeout=30)
    assert dropped() is None and not thread.is_alive()
