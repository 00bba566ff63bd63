"""Memory and transition policies (iamflow/memory/policies.py) on the tiny random-weight model: the cut
transition (the rule that chooses it, the flushed window, jumped positions, replay after undo and load) and
MemFlow's narrative memory bank, chunk by chunk."""

import numpy as np
import pytest
import torch

from iamflow.memory.policies import scene_transition
from iamflow.session import StorySession, StorySettings

MAN = "A young man in a red jacket walks through a sunny park."
CUT = "Cut to the beach: the man waves at the camera."
BACK = "The man sits down."


@pytest.fixture(scope="module")
def runtime(tiny_runtime):
    return tiny_runtime


def frames_of(events):
    return np.concatenate([e.frames for e in events])


def test_the_prompt_or_the_setting_chooses_a_cut():
    assert scene_transition("recache", "Cut to the beach.") == "cut"
    assert scene_transition("soft", "  smash cut to a busy street at night") == "cut"
    assert scene_transition("recache", "CUT BACK TO the park, where the dog sleeps.") == "cut"
    assert scene_transition("recache", "The chef cuts to the chase and serves.") == "recache"
    assert scene_transition("recache", "A haircut to remember.") == "recache"
    assert scene_transition("cut", "The man waves.") == "cut"  # the user forces it
    # a new place cuts only when the story asks for it (auto_cut), never on an unknown place
    assert scene_transition("recache", "The man walks.", "beach", "park") == "recache"
    assert scene_transition("recache", "The man walks.", "beach", "park", auto_cut=True) == "cut"
    assert scene_transition("recache", "The man walks.", "the park", "The Park", auto_cut=True) == "recache"
    assert scene_transition("recache", "The man walks.", "", "park", auto_cut=True) == "recache"


def test_auto_cut_reads_the_location_from_the_agent(runtime):
    session = StorySession(runtime, StorySettings(auto_cut=True))
    list(session.add_scene(MAN, chunks=2, seed=1))
    list(session.add_scene("The man walks along the beach.", chunks=1, seed=2))
    list(session.add_scene("The man sits on the beach.", chunks=1, seed=3))
    assert [s.transition for s in session.scenes] == ["", "cut", "recache"]


def test_a_cut_flushes_the_window_keeps_sink_and_memory_and_jumps_positions(runtime):
    session = StorySession(runtime, StorySettings(memory_policy="iam", max_memory_frames=3))
    list(session.add_scene(MAN, chunks=5, seed=1))
    ring = session.cache.ring_slots
    memory_before = session.cache.memory_count
    assert memory_before > 0 and session.cache.local_filled_frames == ring * session.frames_per_chunk
    list(session.add_scene(CUT, chunks=1, seed=2))
    scene = session.scenes[1]
    assert scene.transition == "cut" and scene.position_shift == ring * session.frames_per_chunk
    ops = [op["op"] for op in session.ops[scene.ops_start:]]
    assert "cut" in ops and "recache" not in ops
    # the new shot's one chunk is all the window holds; the sink and the memory are still there
    assert session.cache.local_filled_frames == session.frames_per_chunk
    assert session.cache.sink_filled and session.cache.memory_count > 0
    commit = session.ops[-1] if session.ops[-1]["op"] == "commit" else next(
        op for op in reversed(session.ops) if op["op"] == "commit")
    assert commit["position"] == 5 * session.frames_per_chunk + scene.position_shift


def test_a_cut_is_not_a_recache(runtime):
    def story(transition):
        session = StorySession(runtime, StorySettings(transition=transition))
        list(session.add_scene(MAN, chunks=4, seed=1))
        return frames_of(session.add_scene("The man waves on the beach.", chunks=2, seed=2))

    assert not np.array_equal(story("cut"), story("recache"))


def test_after_a_cut_undo_and_load_continue_identically(runtime, tmp_path):
    session = StorySession(runtime, StorySettings(memory_policy="iam", max_memory_frames=2))
    list(session.add_scene(MAN, chunks=4, seed=1))
    list(session.add_scene(CUT, chunks=2, seed=2))
    session.save(tmp_path / "story")
    list(session.add_scene("The man runs.", chunks=1, seed=9))
    session.undo_last_scene()  # the cache is rebuilt from the log: the cut and the jumped positions replayed
    expected = frames_of(session.add_scene(BACK, chunks=2, seed=3))
    assert session.scenes[2].transition == "recache" and session.scenes[2].position_shift > 0
    recache = next(op for op in session.ops[session.scenes[2].ops_start:] if op["op"] == "recache")
    assert recache["chunks"][0] >= session.scenes[1].first_chunk  # the window holds the new shot only

    loaded = StorySession.load(tmp_path / "story", runtime)
    assert loaded.scenes[1].transition == "cut"
    assert np.array_equal(frames_of(loaded.add_scene(BACK, chunks=2, seed=3)), expected)


def test_nam_is_memflows_bank_chunk_by_chunk(runtime):
    """MemFlow's rule: the first frame of every third chunk, K/V as its commit wrote them, appended while the bank
    (3 frames) has room; then at every chunk per layer the best 2 by text-key score, then the newest."""
    session = StorySession(runtime, StorySettings(memory_policy="nam", max_memory_frames=3))
    size, fpc = 3, session.frames_per_chunk
    committed = {}  # recording chunk -> (K, V) of its first frame as committed, [layers, B, heads, T, D]
    expected: list[list[int]] | None = None  # per layer, recording chunks in the bank
    recording = None  # the last recording chunk, its K/V read at the next event (a scene's first chunk is handed out
    # before its commit pass runs; a ring slot keeps what the commit wrote until the ring comes round again)
    for event in session.add_scene(MAN, chunks=13, seed=4):
        g = event.chunk_index
        cache, tpf = session.cache, session.cache.tokens_per_frame
        if recording is not None:  # the first frame of the last recording chunk, as its commit wrote it
            start = cache.sink_start if recording == 0 else cache.local_start + ((recording - 1) % cache.ring_slots) * fpc
            committed[recording] = (cache.keys[:, :, :, start * tpf:(start + 1) * tpf].clone(),
                                    cache.values[:, :, :, start * tpf:(start + 1) * tpf].clone())
            recording = None
        text = [k for k, _ in session._scene_condition(0)[0].kv]  # per layer [B, heads, text_len, D]
        layers = len(text)
        # the bank as MemFlow makes it at the start of chunk g, from the records of the chunks before it
        records = [c for c in range(g) if c % 3 == 0]
        if expected is None:
            expected = [[] for _ in range(layers)]
        if len(records) <= size:
            expected = [list(records) for _ in range(layers)]
        else:
            for layer in range(layers):
                def score(chunk):  # MemFlow: text keys as queries on the frame's keys, averaged over everything
                    k = committed[chunk][0][layer][0].float()  # [heads, T, D]
                    q = text[layer][0].float()  # [heads, text_len, D]
                    return float((q @ k.transpose(1, 2) / k.shape[-1] ** 0.5).mean())
                bank = expected[layer]
                best = sorted(range(size), key=lambda i: -score(bank[i]))[: size - 1]
                expected[layer] = [bank[i] for i in best] + [records[-1]]
        # what the cache holds: the visible memory slots of every layer
        assert cache.memory_count == min(len(records), size), g
        slots = range(cache.max_memory_frames - cache.memory_count, cache.max_memory_frames)
        for layer in range(layers):
            held = [(cache.keys[layer, :, :, s * tpf:(s + 1) * tpf], cache.values[layer, :, :, s * tpf:(s + 1) * tpf])
                    for s in slots]
            want = [committed[c] for c in expected[layer]]
            for k, v in [(k[layer], v[layer]) for k, v in want]:
                match = next((i for i, (hk, hv) in enumerate(held) if torch.equal(hk, k) and torch.equal(hv, v)), None)
                assert match is not None, f"chunk {g}, layer {layer}: a bank frame is not as first committed"
                held.pop(match)
        if g % 3 == 0:  # a recording chunk (the sink for chunk 0, else its ring slot)
            recording = g
    assert len({tuple(e) for e in expected}) >= 1 and len([c for c in range(13) if c % 3 == 0]) > size
    assert session.bank.active and all(k in session.bank.archive for k in session.bank.active)
