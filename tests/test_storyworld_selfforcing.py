"""The self-forcing stage on a tiny DiT on the CPU: the student rolls out stories through the engine's cache and the
iam memory bank, learns from a distribution-matching loss against a frozen teacher, and its pieces resume."""

import copy
import math

import pytest
import torch

from iamflow.config import load_config
from iamflow.engine.model import CausalWanModel
from iamflow.engine.text_encoder import MiniLMTextEncoder
from iamflow.storyworld.codec import StoryworldCodec
from iamflow.storyworld.model import ASSETS, load_codec_state
from iamflow.storyworld.selfforcing import SelfForcing, Settings, context_sequence, rollout
from iamflow.storyworld.stories import memory_story

TINY = {"model": {"dim": 32, "ffn_dim": 64, "num_layers": 2, "num_heads": 2, "freq_dim": 16},
        "sampler": {"denoising_step_list": [1000, 500], "guidance_steps": 1, "context_guidance_steps": 1}}


@pytest.fixture(scope="module")
def parts():
    config = load_config(preset="storyworld", overrides=TINY)
    codec = StoryworldCodec()
    load_codec_state(codec, ASSETS / "codec.safetensors")
    encoder = MiniLMTextEncoder(config.model.text_len)
    torch.manual_seed(0)
    teacher = CausalWanModel(config.model)
    return config, codec, encoder, teacher


def stage(parts, **settings) -> SelfForcing:
    config, codec, encoder, teacher = parts
    models = [copy.deepcopy(teacher) for _ in range(3)]
    values = {"batch": 2, "max_scenes": 3, "chunks_per_scene": 2, "lr": 1e-3, "fake_lr": 1e-3, **settings}
    return SelfForcing(config, models[0], models[1], models[2], codec, encoder.encode, Settings(**values), first_seed=40)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, model) -> float:
    return max((before[k] - v).abs().max().item() for k, v in model.state_dict().items())


def test_two_steps_train_the_student_and_the_fake_score_not_the_teacher(parts, tmp_path):
    sf = stage(parts)
    student, teacher, fake = snapshot(sf.student), snapshot(sf.teacher), snapshot(sf.fake)
    records = [sf.step(), sf.step()]
    for record in records:
        for key in ("dmd", "regression", "fake", "grad_norm"):
            assert math.isfinite(record[key]), (key, record)
        assert record["dmd"] > 0 and record["regression"] > 0 and record["fake"] > 0
    assert changed(student, sf.student) > 1e-5, "the student learns"
    assert changed(fake, sf.fake) > 1e-5, "the fake score learns"
    assert changed(teacher, sf.teacher) == 0.0, "the teacher stays as it was"
    assert all(not p.requires_grad for p in sf.teacher.parameters())
    assert sf.state["step"] == 2 and sf.state["sequences_seen"] == 4 and len(sf.state["losses"]) == 2

    # a piece: saved, then resumed by a fresh stage from the same starting weights
    sf.save(tmp_path)
    saved_seed, saved_student = sf.state["next_seed"], snapshot(sf.student)
    again = stage(parts)
    assert again.resume(tmp_path)
    assert again.state["step"] == 2 and again.state["sequences_seen"] == 4 and again.state["next_seed"] == saved_seed
    assert changed(saved_student, again.student) < 2e-3  # shards are float16
    assert again.student_opt.state_dict()["state"], "the optimizer's moments come back"
    record = again.step()
    assert record["step"] == 3 and again.state["sequences_seen"] == 6 and again.state["next_seed"] > saved_seed
    assert len(again.state["losses"]) == 3
    assert not stage(parts).resume(tmp_path / "empty"), "a folder without a piece starts fresh"
    # a piece brought back from the GPU as its weights and state alone (the moments stay behind)
    (tmp_path / "optim.pt").unlink()
    bare = stage(parts)
    assert bare.resume(tmp_path) and bare.state["step"] == 2
    assert changed(saved_student, bare.student) < 2e-3 and not bare.student_opt.state_dict()["state"]
    assert bare.step()["step"] == 3


def test_rollout_runs_through_the_cache_and_the_memory_bank(parts):
    """A later chunk is denoised against the cache of the student's own earlier chunks: change only what the first
    scene's prompt says and the second scene's chunks change too, with the same noise. Scene 3 gets memory
    frames from the iam bank (archived as chunks leave the window)."""
    config, _, encoder, _ = parts
    sf = stage(parts)
    story = memory_story(5, "plain")
    prompts = [scene.prompt for scene in story.scenes[:3]]
    features = [encoder.encode([p]) for p in prompts]
    other = [encoder.encode(["A robot painted teal jumps in the snowy field."])] + features[1:]

    def run(feats):
        with torch.no_grad():
            return rollout(sf.engine, [story], feats, sf.engine.encode_text(encoder.encode([""])), 2,
                           torch.Generator().manual_seed(3))

    first, same, changed_first = run(features), run(features), run(other)
    assert len(first) == 6 and [c.scene for c in first] == [0, 0, 1, 1, 2, 2]
    for a, b in zip(first, same):
        assert torch.equal(a.sample, b.sample)  # the rollout is deterministic given the noise
    assert (first[0].sample - changed_first[0].sample).abs().max() > 1e-3
    for g in (2, 3):  # scene 2 reads scene 1's frames from its cache (re-cached sink and window)
        assert (first[g].sample - changed_first[g].sample).abs().max() > 1e-4, g
    assert first[4].memory is not None and first[4].memory.shape[2] >= 1
    assert (first[4].memory_positions < 4 * config.cache.frames_per_chunk).all()
    clean = [c.sample for c in first]
    context, positions, visible, n = context_sequence(first[4], clean)
    memory = first[4].memory.shape[2]
    assert n == memory + 3 * 3 and context.shape[2] == n  # memory, sink, window chunks 2 and 3
    assert positions[0, memory:].tolist() == [0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert not visible[0, :memory, memory:].any() and visible[0, -1].all()


def three_scenes(parts, *policies: str):
    """Memory story 5's first three scenes, two chunks each, rolled out with each of ``policies`` from the same
    noise; and what a rollout of them needs (stage, story, features, the empty prompt's conditioning)."""
    _, _, encoder, _ = parts
    sf = stage(parts)
    story = memory_story(5, "plain")
    features = [encoder.encode([scene.prompt]) for scene in story.scenes[:3]]
    uncond = sf.engine.encode_text(encoder.encode([""]))
    with torch.no_grad():
        runs = [rollout(sf.engine, [story], features, uncond, 2, torch.Generator().manual_seed(3), policy=p)
                for p in policies]
    return runs, (sf, story, features, uncond)


def test_a_sink_rollout_keeps_no_memory_frames_and_steps_draw_their_policy(parts):
    """The ``sink`` policy rolls out as a story told without memory frames: the same noise gives the same chunks
    as ``iam`` until iam's first memory frames, then other ones. A stage given both draws one a step."""
    (iam, sink), (sf, story, features, uncond) = three_scenes(parts, "iam", "sink")
    assert all(c.memory is None for c in sink)
    first_memory = next(g for g, c in enumerate(iam) if c.memory is not None)
    for g in range(first_memory):
        assert torch.equal(iam[g].sample, sink[g].sample), g
    assert (iam[first_memory].sample - sink[first_memory].sample).abs().max() > 1e-4
    with pytest.raises(ValueError, match="iam, sink, nam"):
        rollout(sf.engine, [story], features, uncond, 2, torch.Generator().manual_seed(3), policy="nam-prompt")
    with pytest.raises(ValueError, match="choose among iam, sink, nam"):
        Settings(policies=("iam", "memflow"))
    mixed = stage(parts, policies=("iam", "sink", "nam"))
    drawn = {mixed.step()["policy"] for _ in range(4)}
    assert drawn <= {"iam", "sink", "nam"} and len(mixed.state["losses"]) == 4
    assert stage(parts).step()["policy"] == "iam", "the default stays the iam policy"


def test_a_nam_rollout_remembers_every_third_chunk_as_memflow_does(parts):
    """With ``nam`` the rollout keeps MemFlow's bank in the cache: chunk 0's first frame is recorded as committed
    and is memory from chunk 1 on, chunk 3's from chunk 4 on (the bank holds up to its size); until chunk 0's record
    enters, the chunks are those of a story without memory frames."""
    (nam, sink), _ = three_scenes(parts, "nam", "sink")
    fpc = parts[0].cache.frames_per_chunk
    assert nam[0].memory is None and torch.allclose(nam[0].sample, sink[0].sample, atol=1e-6)
    for g in (1, 2, 3):
        assert nam[g].memory.shape[2] == 1 and nam[g].memory_positions.tolist() == [[0]]
        assert torch.equal(nam[g].memory[:, :, 0], nam[0].sample[:, :, 0])  # the record: chunk 0's first frame
    assert nam[4].memory_positions.tolist() == [[0, 3 * fpc]] and nam[5].memory.shape[2] == 2
    assert (nam[1].sample - sink[1].sample).abs().max() > 1e-4, "the memory frame changes what the chunk makes"
    clean = [c.sample for c in nam]
    context, positions, visible, n = context_sequence(nam[4], clean)
    assert n == 2 + 3 * 3 and positions[0, :2].tolist() == [0, 3 * fpc]


def test_last_step_carries_the_gradient(parts):
    sf = stage(parts)
    story = memory_story(5, "plain")
    _, _, encoder, _ = parts
    features = [encoder.encode([scene.prompt]) for scene in story.scenes[:2]]
    chunks = rollout(sf.engine, [story], features, sf.engine.encode_text(encoder.encode([""])), 1,
                     torch.Generator().manual_seed(0))
    assert all(c.sample.requires_grad for c in chunks)
    chunks[1].sample.square().mean().backward()
    grads = [p.grad for p in sf.student.parameters() if p.grad is not None]
    assert grads and any(g.abs().max() > 0 for g in grads)


def test_the_average_of_the_student_follows_its_steps_and_resumes(parts, tmp_path):
    sf = stage(parts, ema=0.75)
    start = snapshot(sf.student)
    assert changed(start, sf.ema) == 0.0, "the average starts at the student's weights"
    sf.step()
    student = snapshot(sf.student)
    for name, averaged in sf.ema.state_dict().items():  # one step: 0.75 of the start, 0.25 of the student
        assert torch.allclose(averaged, 0.75 * start[name] + 0.25 * student[name], atol=1e-6), name
    assert changed(student, sf.ema) > 0 and all(not p.requires_grad for p in sf.ema.parameters())
    sf.save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "ema").glob("dit-*.safetensors"))
    again = stage(parts, ema=0.75)
    assert again.resume(tmp_path)
    assert changed(snapshot(sf.ema), again.ema) < 2e-3  # shards are float16
    # a piece saved without an average starts its average from the student it resumes
    plain = tmp_path / "plain"
    stage(parts).save(plain)
    fresh = stage(parts, ema=0.75)
    assert fresh.resume(plain) and changed(snapshot(fresh.student), fresh.ema) == 0.0
    assert stage(parts).ema is None, "no average unless asked for"
    with pytest.raises(ValueError, match="decay"):
        stage(parts, ema=1.0)
