"""A scene switch prepared while the next prompt is typed (``StorySession.prepare_switch``): the switch to that
prompt then skips its text encoding, memory write, re-cache and (with the same seed) its first chunk's denoising,
and the story is the same, bit for bit, as one told without preparing; a draft that is not what comes next changes
nothing. Real embedded model, CPU."""

import numpy as np
import pytest
import torch

from iamflow.config import load_config
from iamflow.session import Runtime, StorySession

PROMPTS = [  # the man comes back in the last scene: its switch brings his frames back into memory
    "A man in a red shirt walks along the beach.",
    "An orange dog runs through a snowy field.",
    "A woman in a yellow dress sits in the room.",
    "The woman walks in the desert.",
    "The man in red walks in the park.",
]
OTHER = "A green robot jumps on the city street at night."


@pytest.fixture(scope="module")
def runtime():
    return Runtime.load(load_config(preset="storyworld"))


def scene(session, index, chunks=2):
    return [e.frames for e in session.add_scene(PROMPTS[index], chunks=chunks, seed=10 + index)]


def told(session):
    return {"latents": [t.clone() for t in session.latents], "ops": [dict(op) for op in session.ops],
            "registry": session.registry_snapshot(), "memory": session.memory_snapshot()}


def assert_same(a, b):
    assert len(a["latents"]) == len(b["latents"])
    for x, y in zip(a["latents"], b["latents"]):
        assert torch.equal(x, y)
    assert a["ops"] == b["ops"] and a["registry"] == b["registry"] and a["memory"] == b["memory"]


@pytest.fixture(scope="module")
def reference(runtime):
    session = StorySession(runtime)
    frames = [scene(session, i) for i in range(len(PROMPTS))]
    return told(session), frames


def test_a_prepared_switch_skips_its_cache_work_and_tells_the_same_story(runtime, reference, monkeypatch):
    expected, expected_frames = reference
    calls = {"recache": 0, "write_memory": 0, "denoise_chunk": 0}
    engine = runtime.engine
    for name in calls:  # counted, not changed
        real = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda *a, _real=real, _name=name, **k: (
            calls.__setitem__(_name, calls[_name] + 1), _real(*a, **k))[1])

    def count(work):
        before = dict(calls)
        result = work()
        return result, {name: calls[name] - before[name] for name in calls}

    unprepared = StorySession(runtime)
    _, plain = count(lambda: [scene(unprepared, i) for i in range(len(PROMPTS))])

    session = StorySession(runtime)
    first, in_scenes = count(lambda: scene(session, 0))
    frames, in_prepare = [first], dict.fromkeys(calls, 0)
    for index in range(1, len(PROMPTS)):
        done, work = count(lambda: session.prepare_switch(PROMPTS[index], seed=10 + index))  # (scene's seed)
        assert done and work["recache"] == 1 and work["denoise_chunk"] == 1
        in_prepare = {name: in_prepare[name] + work[name] for name in work}
        made, work = count(lambda: scene(session, index))
        frames.append(made)
        assert work["recache"] == 0  # the switch found its re-cache done
        assert work["denoise_chunk"] == 1  # and its first chunk denoised: only the second is left
        in_scenes = {name: in_scenes[name] + work[name] for name in work}
    assert in_prepare["write_memory"] >= 1  # (memory was written ahead too)
    assert session.switches_prepared == set(range(1, len(PROMPTS))) and not unprepared.switches_prepared
    # what the unprepared story did at its switches, the prepared one did ahead of them, and nothing twice
    assert {name: in_scenes[name] + in_prepare[name] for name in calls} == plain
    assert_same(told(session), expected)
    assert_same(told(unprepared), expected)
    for got, want in zip(frames, expected_frames):
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))


def test_a_draft_that_is_not_the_next_scene_changes_nothing(runtime, reference, tmp_path):
    expected, _ = reference
    session = StorySession(runtime)
    scene(session, 0)
    assert session.prepare_switch(OTHER)
    scene(session, 1)  # another prompt: the cache is put back first
    assert session.prepare_switch(PROMPTS[2]) and session.prepare_switch(OTHER)  # a newer draft replaces one
    scene(session, 2)
    scene(session, 3)
    assert session.switches_prepared == set()  # the drafts were not the scenes added
    assert session.prepare_switch(OTHER)
    session.save(tmp_path / "story")  # a story saved with a draft prepared is the story, no draft
    loaded = StorySession.load(tmp_path / "story", runtime)
    scene(session, 4)
    scene(loaded, 4)
    assert_same(told(session), expected)
    assert_same(told(loaded), expected)

    undone = StorySession(runtime)
    scene(undone, 0)
    assert undone.prepare_switch(PROMPTS[1])
    undone.undo_last_scene()  # the draft goes with the cache; the story goes on as if it never was
    assert not undone.prepare_switch(PROMPTS[1])  # (no scene to switch from)
    for index in range(len(PROMPTS)):
        scene(undone, index)
    assert_same(told(undone), expected)
    prepared = StorySession(runtime)
    scene(prepared, 0)
    assert prepared.prepare_switch(PROMPTS[1])
    scene(prepared, 1)
    assert prepared.switches_prepared == {1}
    prepared.undo_last_scene()
    scene(prepared, 1)  # the same scene again, nothing prepared this time: its index is not counted twice
    assert prepared.switches_prepared == set()


def test_nothing_is_prepared_while_a_scene_runs_or_before_the_first(runtime):
    session = StorySession(runtime)
    assert not session.prepare_switch(PROMPTS[0])
    events = session.add_scene(PROMPTS[0], chunks=2, seed=1)
    next(events)
    assert not session.prepare_switch(PROMPTS[1])  # a running scene is switched with request_switch instead
    list(events)
    assert session.prepare_switch(PROMPTS[1]) and session._prepared_chunk is not None
    session.drop_cache()  # (between turns: the K/V goes, and the chunk prepared on it with it)
    assert session._prepared_chunk is None and session.cache is None
    assert session.prepare_switch(PROMPTS[1])
    with pytest.raises(ValueError):
        session.prepare_switch("   ")


def test_a_prepared_first_chunk_is_used_only_with_its_seed(runtime, reference):
    """Prepared with no seed: a random one, which the scene added with no seed takes (the story is then the one
    told with that seed). Prepared with another seed than the scene's: the chunk is denoised again, same story."""
    expected, expected_frames = reference
    session = StorySession(runtime)
    scene(session, 0)
    assert session.prepare_switch(PROMPTS[1])
    drawn = session._prepared_chunk.seed
    made = [e.frames for e in session.add_scene(PROMPTS[1], chunks=2)]
    assert session.scenes[1].seed == drawn and session.switches_prepared == {1}
    plain = StorySession(runtime)
    scene(plain, 0)
    same = [e.frames for e in plain.add_scene(PROMPTS[1], chunks=2, seed=drawn)]
    assert_same(told(session), told(plain))
    np.testing.assert_array_equal(np.concatenate(made), np.concatenate(same))

    other = StorySession(runtime)
    scene(other, 0)
    assert other.prepare_switch(PROMPTS[1], seed=12345)  # the scene below has seed 11
    scene(other, 1)
    assert other.switches_prepared == {1}  # its cache work was used, its chunk not
    for index in range(2, len(PROMPTS)):
        scene(other, index)
    assert_same(told(other), expected)
