"""StorySession on the tiny random-weight model: continuation, stop, undo, save/load, dropped K/V, the memory
bank's archive/eviction/retrieval, every policy and transition, and a playable export."""

import json
import subprocess

import numpy as np
import pytest
import torch

from iamflow.runtime import Runtime
from iamflow.session import StorySession, StorySettings

from helpers import stop_after_chunk_1

MAN = "A young man in a red jacket walks through a sunny park."
DOG = "A small brown dog runs along the beach at noon."
BACK = "The man waves at the camera."


@pytest.fixture(scope="module")
def runtime(tiny_runtime):
    return tiny_runtime


def run(session, prompt, seconds=3.0, seed=0):
    return list(session.add_scene(prompt, seconds=seconds, seed=seed))


def test_scenes_continue_one_story(runtime):
    session = StorySession(runtime)
    first = run(session, MAN, seed=1)
    assert [e.chunk_index for e in first] == [0, 1, 2, 3] and first[-1].done
    assert first[0].frames.shape == (9, 32, 48, 3) and first[1].frames.shape[0] == 12  # 4t-3, then 4t
    second = run(session, "The man sits on a bench.", seed=2)
    assert second[0].first_frame == 9 + 3 * 12
    assert len(session.story_frames()) == 9 + 7 * 12
    assert session.scenes[1].first_chunk == 4 and session.scenes[1].first_frame == 45
    man_ids = {e["global_id"] for e in session.scenes[0].entities}
    assert man_ids and man_ids & set(session.scenes[1].entity_ids), "the man keeps his id"


def test_same_seed_same_frames(runtime):
    a, b = StorySession(runtime), StorySession(runtime)
    fa = [e.frames for e in run(a, MAN, seed=7)]
    fb = [e.frames for e in run(b, MAN, seed=7)]
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    fc = [e.frames for e in run(StorySession(runtime), MAN, seed=8)]
    assert not np.array_equal(fa[-1], fc[-1])


def _three_scene_reference(runtime, settings=None):
    session = StorySession(runtime, settings)
    run(session, MAN, seed=1)
    run(session, DOG, seconds=4.5, seed=2)
    run(session, BACK, seed=3)
    return session


@pytest.fixture(scope="module")
def reference(runtime):
    return _three_scene_reference(runtime)


def test_save_load_continues_identically(runtime, reference, tmp_path):
    session = StorySession(runtime)
    run(session, MAN, seed=1)
    run(session, DOG, seconds=4.5, seed=2)
    session.save(tmp_path / "story")
    del session
    loaded = StorySession.load(tmp_path / "story", runtime)
    assert [s.prompt for s in loaded.scenes] == [MAN, DOG]
    run(loaded, BACK, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(loaded.latents, reference.latents))
    assert np.array_equal(loaded.story_frames(), reference.story_frames())
    assert loaded.mapping() == reference.mapping()


def test_dropped_cache_continues_identically(runtime, reference):
    session = StorySession(runtime)
    run(session, MAN, seed=1)
    session.drop_cache()
    run(session, DOG, seconds=4.5, seed=2)
    session.drop_cache()
    run(session, BACK, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(session.latents, reference.latents))


@pytest.mark.parametrize("recache_sink", [True, False])
def test_rebuilding_the_cache_replays_the_current_scene_not_the_story(runtime, recache_sink):
    """A dropped K/V is rebuilt from the operations since the last re-cache (plus the memory write in force, and
    the first commit when the sink was kept): a long story costs no more to resume than a short one, and the next
    scene is the same."""
    def story(session):
        for seed in range(4):
            run(session, MAN if seed % 2 else DOG, seconds=1.5, seed=seed)
        run(session, MAN, seed=1)

    runtime.config.memory.recache_sink = recache_sink
    try:
        session = StorySession(runtime)
        story(session)
        ops_before = len(session.ops)
        session.drop_cache()
        again = run(session, BACK, seed=3)
        scene = session.scenes[-2]
        assert session.replayed_ops <= ops_before - scene.ops_start + 2 < ops_before / 2
        uninterrupted = StorySession(runtime)
        story(uninterrupted)
        expected = run(uninterrupted, BACK, seed=3)
    finally:
        runtime.config.memory.recache_sink = True
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(again, expected))
    assert all(torch.equal(a, b) for a, b in zip(session.latents, uninterrupted.latents))


def test_undo_then_redo_is_identical(runtime, reference):
    session = StorySession(runtime)
    run(session, MAN, seed=1)
    run(session, DOG, seconds=4.5, seed=2)
    archived, active = list(session.bank.archive), list(session.bank.active)
    run(session, "A robot dances in the rain.", seed=9)
    assert list(session.bank.archive) != archived  # the robot's scene archived frames (earlier scenes' too)
    session.undo_last_scene()
    assert list(session.bank.archive) == archived and session.bank.active == active
    assert len(session.scenes) == 2 and len(session.latents) == reference.scenes[2].first_chunk
    assert len(session.agent.prompts) == 2
    run(session, BACK, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(session.latents, reference.latents))
    assert session.mapping()["global_registry"] == reference.mapping()["global_registry"]


def test_stop_mid_scene_then_continue(runtime):
    session = StorySession(runtime)
    run(session, MAN, seed=1)
    events = stop_after_chunk_1(session, DOG)
    assert len(events) == 2 and session.scenes[1].stopped and session.scenes[1].chunks_done == 2
    frames_before = len(session.story_frames())
    after = run(session, BACK, seed=3)
    assert after[0].first_frame == frames_before
    assert len(session.story_frames()) == frames_before + 4 * 12
    assert len(session.scenes) == 3


def test_overlapped_decode_equals_serial_decode(runtime, reference):
    """Decoding chunk n while chunk n+1 is made (the GPU's order: a decode stream beside the DiT) hands out the same
    events, frames, latents, cache log and memory as decoding each chunk before the next one is made."""
    session = StorySession(runtime)
    session.overlap_decode = True
    events = run(session, MAN, seed=1) + run(session, DOG, seconds=4.5, seed=2) + run(session, BACK, seed=3)
    serial = StorySession(runtime)
    expected = run(serial, MAN, seed=1) + run(serial, DOG, seconds=4.5, seed=2) + run(serial, BACK, seed=3)
    assert [(e.scene_index, e.chunk_index, e.first_frame, e.done) for e in events] == \
        [(e.scene_index, e.chunk_index, e.first_frame, e.done) for e in expected]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(events, expected))
    assert [[m["key"] for m in e.memory] for e in events] == [[m["key"] for m in e.memory] for e in expected]
    assert [e.registry for e in events] == [e.registry for e in expected]
    assert all(torch.equal(a, b) for a, b in zip(session.latents, reference.latents))
    assert session.ops == reference.ops and session.mapping() == reference.mapping()


def test_overlapped_stop_keeps_the_chunk_in_flight(runtime):
    """With the decode overlapped, Stop after chunk 1 ends the scene with chunk 2, which was already being made;
    every chunk made is handed out and the story continues from it."""
    session = StorySession(runtime)
    session.overlap_decode = True
    run(session, MAN, seed=1)
    events = stop_after_chunk_1(session, DOG)
    assert [e.chunk_index for e in events] == [0, 1, 2]
    assert session.scenes[1].stopped and session.scenes[1].chunks_done == 3
    assert len(session.story_frames()) == sum(len(e.frames) for e in events) + 9 + 3 * 12
    after = run(session, BACK, seed=3)
    assert after[0].first_frame == 9 + 3 * 12 + 3 * 12


def _chunks(events):
    """(scene, chunk) -> its frames, the parts of a chunk handed out in two events joined."""
    joined = {}
    for e in events:
        key = (e.scene_index, e.chunk_index)
        joined[key] = np.concatenate([joined[key], e.frames]) if key in joined else e.frames
    return joined


@pytest.mark.parametrize("overlap", [False, True])
def test_first_frames_early_is_the_same_story(runtime, reference, overlap):
    """With ``first_frames_early`` (the app's stories), a scene's first chunk comes in two events: the frames of its
    first latent frame (one frame at the story's start, then 4), then the rest. Joined, they are the frames of the
    chunk handed out whole, bit for bit, and the story (latents, cache log, segments) is the same."""
    session = StorySession(runtime)
    session.overlap_decode, session.first_frames_early = overlap, True
    events = run(session, MAN, seed=1) + run(session, DOG, seconds=4.5, seed=2) + run(session, BACK, seed=3)
    whole = StorySession(runtime)
    expected = run(whole, MAN, seed=1) + run(whole, DOG, seconds=4.5, seed=2) + run(whole, BACK, seed=3)
    partial = [e for e in events if e.partial]
    assert [(e.scene_index, e.chunk_index, len(e.frames)) for e in partial] == [(0, 0, 1), (1, 0, 4), (2, 0, 4)]
    assert all(not e.done and e.segment.result() is None for e in partial)
    after = [events[events.index(e) + 1] for e in partial]  # the rest of the chunk, at once after its first frames
    assert [(e.scene_index, e.chunk_index, e.partial) for e in after] == [(0, 0, False), (1, 0, False), (2, 0, False)]
    assert [e.first_frame for e in after] == [e.first_frame + len(e.frames) for e in partial]
    assert [(e.scene_index, e.chunk_index, e.first_frame, e.done) for e in events if not e.partial][1:] == \
        [(e.scene_index, e.chunk_index, e.first_frame + (1 if e.scene_index == 0 else 4) * (e.chunk_index == 0), e.done)
         for e in expected][1:]
    got, want = _chunks(events), _chunks(expected)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    assert all(torch.equal(a, b) for a, b in zip(session.latents, reference.latents))
    assert session.ops == reference.ops and session.mapping() == reference.mapping()
    assert np.array_equal(session.story_frames(), whole.story_frames())


def test_first_frames_early_then_stop_keeps_the_chunk_whole(runtime):
    """A viewer who leaves after a scene's first frames (the partial event) leaves the first chunk whole in the
    story: its latents, all its frames and its segment; the story continues from it."""
    session = StorySession(runtime)
    session.first_frames_early = True
    run(session, MAN, seed=1)
    events = session.add_scene(DOG, seconds=6.0, seed=2)
    first = next(events)
    assert first.partial and len(first.frames) == 4
    events.close()
    scene = session.scenes[-1]
    assert scene.stopped and scene.chunks_done == 1 and len(session.latents) == 5
    assert scene.num_frames == 12 and session.num_video_frames == 9 + 3 * 12 + 12
    assert len(session.story_frames()) == session.num_video_frames
    after = run(session, BACK, seed=3)
    assert after[0].partial and after[0].first_frame == session.scenes[1].first_frame + 12


def test_retrieval_brings_back_the_character(runtime, tmp_path):
    session = StorySession(runtime, StorySettings(memory_policy="iam", max_memory_frames=2), save_dir=tmp_path / "archive")
    run(session, MAN, seed=1)
    man = set(session.scenes[0].entity_ids)
    run(session, DOG, seconds=6, seed=2)  # 8 chunks: the man's frames leave the window
    assert len(session.bank.active) <= 2
    assert all(set(session.bank.archive[k].entity_ids).isdisjoint(man) for k in session.bank.active), \
        "during the dog's scene the memory holds the dog"
    events = run(session, BACK, seed=3)
    active = [session.bank.archive[k] for k in session.bank.active]
    assert any(set(r.entity_ids) & man for r in active), "the man's frames are back when the prompt names him"
    assert any(set(m["entity_ids"]) & man for m in events[0].memory) and events[0].memory[0]["thumbnail"] is not None
    files = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert files and all(name.startswith("p") and "_c" in name and "_f" in name and name.endswith(".pt") for name in files)
    assert set(files) == {f"{k}.pt" for k in session.bank.archive}
    saved = torch.load(tmp_path / "archive" / files[0], weights_only=False)
    assert saved["latent"].shape == session.latents[0][0, :, 0].shape and "k" not in saved and "v" not in saved
    mapping = session.mapping()
    assert set(mapping["frame_active_memory"]) <= set(mapping["frame_archive"])


@pytest.mark.parametrize("policy", ["none", "sink", "nam", "iam"])
@pytest.mark.parametrize("transition", ["recache", "soft", "none"])
def test_every_policy_and_transition_runs(runtime, policy, transition):
    session = StorySession(runtime, StorySettings(memory_policy=policy, transition=transition, max_memory_frames=3))
    run(session, MAN, seconds=4.5, seed=1)
    run(session, BACK, seconds=3, seed=2)
    assert session.cache.memory_count <= 3
    if policy in ("none", "sink"):
        assert not session.bank.archive and session.cache.memory_count == 0
    else:
        assert session.bank.archive
    assert (session.cache.sink_frames == 0) == (policy == "none")
    ops = {op["op"] for op in session.ops}
    assert ("recache" in ops) == (transition == "recache")
    blended = [op for op in session.ops if op["text"][0] == "blend"]
    assert bool(blended) == (transition == "soft")


@pytest.mark.parametrize("recache_sink", [True, False])
def test_recache_rewrites_the_sink_under_the_new_prompt(runtime, recache_sink):
    """Every context frame under the current prompt (what the storyworld model is trained on); the sink too,
    unless memory.recache_sink is off."""
    runtime.config.memory.recache_sink = recache_sink
    try:
        session = StorySession(runtime, StorySettings(memory_policy="sink"))
        run(session, MAN, seconds=3, seed=1)
        run(session, DOG, seconds=1.5, seed=2)
    finally:
        runtime.config.memory.recache_sink = True
    (op,) = [op for op in session.ops if op["op"] == "recache"]
    assert ("sink" in op) == recache_sink
    engine, cache = session.engine, session.cache
    expected = engine.new_cache(max_memory_frames=0)
    prompt_scene = 1 if recache_sink else 0
    engine.commit_chunk(expected, session._text(["scene", prompt_scene]), session.latents[0].to(engine.device), 0)
    tpf = runtime.config.tokens_per_frame
    sink = slice(cache.sink_start * tpf, (cache.sink_start + cache.sink_frames) * tpf)
    for layer in range(len(cache.keys)):
        assert torch.equal(cache.keys[layer][:, :, sink], expected.keys[layer][:, :, sink])
        assert torch.equal(cache.values[layer][:, :, sink], expected.values[layer][:, :, sink])


def test_context_guidance_only_where_no_newcomer_comes(runtime):
    """sampler.context_guidance_scale applies to a later scene whose prompt brings back known characters and
    introduces none; the first scene and a scene with a newcomer are sampled without it (one pass a step).
    sampler.context_guidance_chunks limits it to a scene's first chunks."""
    engine, sampler = runtime.engine, runtime.config.sampler
    assert engine.sampler.cfg is sampler
    forward, denoise = engine.model.forward, engine.denoise_chunk

    def passes_per_chunk(first_chunks):
        passes, per_chunk = [0], []

        def count(*args, **kwargs):
            passes[0] += 1
            return forward(*args, **kwargs)

        def denoise_counted(*args, **kwargs):
            before = passes[0]
            out = denoise(*args, **kwargs)
            per_chunk[-1].append(passes[0] - before)
            return out

        sampler.context_guidance_scale, sampler.context_guidance_steps = 2.0, 2
        sampler.context_guidance_chunks = first_chunks
        engine.model.forward, engine.denoise_chunk = count, denoise_counted
        try:
            session = StorySession(runtime, StorySettings(memory_policy="iam"))
            for prompt in (MAN, BACK, "Another woman approaches him."):
                per_chunk.append([])
                run(session, prompt, seconds=1.5, seed=1)
        finally:
            engine.model.forward, engine.denoise_chunk = forward, denoise
            sampler.context_guidance_scale, sampler.context_guidance_steps = 1.0, None
            sampler.context_guidance_chunks = None
        assert [s.returning_only for s in session.scenes] == [False, True, False]
        assert [[e["is_new"] for e in s.entities] for s in session.scenes][1:] == [[False], [True, False]]
        return per_chunk

    steps = len(engine.sampler)
    assert passes_per_chunk(None) == [[steps] * 2, [steps + 2] * 2, [steps] * 2]
    assert passes_per_chunk(1) == [[steps] * 2, [steps + 2, steps], [steps] * 2]


def test_bad_input_is_refused_before_anything_changes(runtime):
    session = StorySession(runtime)
    with pytest.raises(ValueError, match="empty"):
        session.add_scene("   ")
    with pytest.raises(ValueError, match="too long"):
        session.add_scene("word " * 2000)
    with pytest.raises(ValueError, match="between 0 and"):
        session.add_scene(MAN, seconds=0)
    with pytest.raises(ValueError, match="no scene to undo"):
        session.undo_last_scene()
    with pytest.raises(ValueError, match="memory policy"):
        StorySession(runtime, StorySettings(memory_policy="best"))
    assert not session.scenes and not session.latents


def test_export_is_playable_h264(runtime, reference, tmp_path):
    out = reference.export(tmp_path / "story.mp4")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames,r_frame_rate,pix_fmt", "-of", "json", str(out["mp4"])],
        capture_output=True, text=True, check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p" and stream["r_frame_rate"] == "16/1"
    assert int(stream["nb_read_frames"]) == len(reference.story_frames())
    mapping = json.loads(out["mapping"].read_text())
    assert {"global_registry", "frame_archive", "frame_active_memory"} <= set(mapping)


def _state(session):
    return ([s.prompt for s in session.scenes], len(session.latents), len(session.chunk_frame_counts),
            len(session.video), len(session.ops),
            len(session.bank.archive), list(session.bank.active), session.registry_snapshot(), session.mapping())


def test_a_scene_that_fails_part_way_is_removed_whole(runtime):
    session = StorySession(runtime)
    run(session, MAN, seed=1)
    before = _state(session)
    events = session.add_scene(DOG, seconds=6.0, seed=2)
    next(events), next(events)
    with pytest.raises(OSError, match="No space left"):  # the consumer could not write the chunk it was handed
        events.throw(OSError("No space left on device"))
    assert _state(session) == before
    # the story goes on as if the failed scene had never been tried
    again = StorySession(runtime)
    run(again, MAN, seed=1)
    run(again, BACK, seed=3)
    run(session, BACK, seed=3)
    assert np.array_equal(session.story_frames(), again.story_frames())


def test_a_scene_whose_consumer_leaves_is_kept_and_marked_stopped(runtime):
    session = StorySession(runtime)
    events = session.add_scene(MAN, seconds=6.0, seed=1)
    next(events)
    events.close()
    scene = session.scenes[-1]
    assert scene.stopped and scene.chunks_done == 1 and len(session.latents) == 1
    assert session.num_video_frames == scene.num_frames


@pytest.mark.parametrize("seed", [10**20, -5, 2**63, 1.5, "abc", float("nan")])
def test_a_seed_the_generator_cannot_take_is_refused_before_anything_changes(runtime, seed):
    session = StorySession(runtime)
    with pytest.raises(ValueError, match=r"seed must be a whole number between 0 and 9223372036854775807"):
        session.add_scene(MAN, seed=seed)
    assert not session.scenes and not session.registry_snapshot() and not session.agent.prompts
    run(session, MAN, seed=2**63 - 1)  # the largest seed works
    assert session.scenes[0].seed == 2**63 - 1


def test_prompts_are_normalised_before_the_agent_sees_them(runtime):
    from iamflow.session import validate_prompt

    assert validate_prompt("The man\x00 walks") == "The man walks"
    assert validate_prompt("A \u202edlog\u202c wo\u200bman\x1b waves") == "A dlog woman waves"
    assert validate_prompt("Cafe\u0301") == "Caf\u00e9"  # NFC
    with pytest.raises(ValueError, match="empty"):
        validate_prompt("\u200b\x00 \u202e")
    session = StorySession(runtime)
    run(session, "A man\x00 in a red jacket walks\u202e.", seed=1)
    assert session.scenes[0].prompt == "A man in a red jacket walks."
    assert any(r["name"].startswith("man") for r in session.registry_snapshot().values())


def test_a_long_story_keeps_only_a_few_prompts_encoded(runtime):
    """A scene's text conditioning (a Wan prompt's K/V is ~94 MB of the device) is kept for the last few scenes and
    prompts only; what an undo or a rebuilt cache needs again is made again from the prompt, the same bits."""
    prompts = [MAN, DOG, BACK, "A woman in a green coat reads on a bench.", "The dog jumps into the sea."]

    def tell(keep_all: bool) -> StorySession:
        runtime._kv_cache.clear()
        runtime.KV_CACHE_SIZE = 100 if keep_all else Runtime.KV_CACHE_SIZE
        session = StorySession(runtime)
        session.SCENE_TEXTS_KEPT = 100 if keep_all else StorySession.SCENE_TEXTS_KEPT
        for seed, prompt in enumerate(prompts):
            run(session, prompt, seconds=1.5, seed=seed)
            assert keep_all or (len(session._scene_text) <= 2 and len(runtime._kv_cache) <= 2)
        session.undo_last_scene()
        session.drop_cache()
        run(session, prompts[-1], seconds=1.5, seed=len(prompts) - 1)
        return session

    try:
        bounded, kept = tell(False), tell(True)
    finally:
        del runtime.KV_CACHE_SIZE
    assert len(bounded.latents) == len(kept.latents)
    assert all(torch.equal(a, b) for a, b in zip(bounded.latents, kept.latents))
