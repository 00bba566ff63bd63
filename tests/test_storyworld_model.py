"""The shipped storyworld model: it loads, its codec streams exactly and keeps what the judge reads, its scenes
follow the prompt. (Its speed on one core is reported by ``python -m iamflow.storyworld.evaluate``, not
asserted here: the CPU may be shared.)"""

import re

import numpy as np
import pytest
import torch

from iamflow.config import load_config
from iamflow.engine.codec import to_uint8
from iamflow.engine.engine import Engine
from iamflow.storyworld.data import CompactMiniLM, render_story_video, to_video_tensor
from iamflow.storyworld.metrics import judge_scene
from iamflow.session import Runtime, StorySession, StorySettings
from iamflow.storyworld.model import ASSETS, load_storyworld
from iamflow.storyworld.probe import carried_over, copy_probe, self_probe, with_trait
from iamflow.storyworld.stories import story_from_seed
from iamflow.storyworld.world import Story, World, render_scene


@pytest.fixture(scope="module")
def shipped():
    model, codec, text_encoder, config = load_storyworld()
    return model, codec, text_encoder, config, Engine(model, config)


def test_shipped_weights_load_and_fit_the_budget(shipped):
    model, codec, text_encoder, config, _ = shipped
    assert config.preset == "storyworld" and config.video.latent_height == 16
    assert text_encoder.text_len == config.model.text_len
    assert all(p.isfinite().all() for p in model.parameters())
    files = [p for p in ASSETS.iterdir() if p.is_file()]
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    assert (ASSETS / "MODEL_CARD.md").is_file()


def test_codec_stream_decode_equals_full_decode(shipped):
    codec = shipped[1]
    story = story_from_seed(3)
    video = render_story_video(story, [2, 2] + [1] * (len(story.scenes) - 2)).video  # 9 + 12 + ... frames
    latents = codec.encode(to_video_tensor(video))
    assert latents.shape[1:] == (16, latents.shape[2], 16, 16)
    full = codec.decode(latents)
    stream = codec.stream_decoder()
    pieces = [stream.decode(latents[:, :, i : i + 3]) for i in range(0, latents.shape[2], 3)]
    assert [p.shape[2] for p in pieces[:2]] == [9, 12]
    assert torch.equal(torch.cat(pieces, dim=2), full)
    assert full.shape[2] == video.shape[0]


def test_codec_round_trip_keeps_location_colours_and_traits(shipped):
    codec = shipped[1]
    for seed in (11, 12, 13):
        story = story_from_seed(seed)
        frames = render_scene(story, 0, 45)
        decoded = to_uint8(codec.decode(codec.encode(to_video_tensor(frames))))
        assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 6.0
        result = judge_scene(decoded, (story, 0))
        assert result["location_correct"] and result["count_correct"]
        assert result["colour_accuracy"] == 1.0 and result["kind_accuracy"] == 1.0 and result["trait_accuracy"] == 1.0


def test_training_text_features_equal_the_cpu_encoder(shipped):
    text_encoder = shipped[2]
    folder = ASSETS.parents[1] / ".carry" / "storyworld" / "minilm"
    if not (folder / "minilm.safetensors").is_file():
        from iamflow.storyworld.data import export_compact_minilm

        export_compact_minilm(folder, num_stories=2000)
    compact = CompactMiniLM.load(folder, text_encoder.text_len)
    prompts = [p for seed in range(900, 906) for p in story_from_seed(seed).prompts]
    reference = text_encoder.encode(prompts)
    assert (compact.encode(prompts) - reference).norm() / reference.norm() < 5e-3


def empty_prompt(shipped):
    """The empty prompt's conditioning, for the sampler's guided steps (None when the preset does not guide)."""
    _, _, text_encoder, config, engine = shipped
    return engine.encode_text(text_encoder.encode([""])) if config.sampler.guided_steps else None


@pytest.mark.parametrize("seed", [101, 103])
def test_generated_scene_shows_the_prompted_location_kind_and_colour(shipped, seed):
    _, codec, text_encoder, _, engine = shipped
    story = story_from_seed(seed)
    text = engine.encode_text(text_encoder.encode([story.scenes[0].prompt]))
    latents = torch.cat(list(engine.generate(text, 3, torch.Generator().manual_seed(seed), uncond=empty_prompt(shipped))),
                        dim=2)
    result = judge_scene(to_uint8(codec.decode(latents)), (story, 0))
    assert result["location_correct"], result["location"]
    assert result["count_correct"] and result["colour_accuracy"] == 1.0 and result["kind_accuracy"] == 1.0, result


# Measured with the shipped weights (2026-11-26, 37,600 DiT steps, the preset's sampler): 12 of 12 with iam, 9 of
# 12 without memory (policy none: the re-cached window still shows the character at the switch; 10 of 12 without
# context guidance); two stories of slack for another CPU's arithmetic.
# measured on this 2-core CPU with the shipped weights (2026-12-05): of these 20 stories the second scene kept the
# colour in 19 and the trait its own first scene drew in 17, both in 17; the floor is that measured rate
KEPT_BOTH_AT_LEAST = 17


def two_scene_stories(count: int) -> list[Story]:
    """The first two scenes of the first ``count`` world stories in which one character is in both scenes, alone,
    and the second prompt names it without its colour (a name, a pronoun, "the woman", "the protagonist")."""
    found, seed = [], 0
    while len(found) < count:
        story = story_from_seed(seed)
        first, second = story.scenes[:2]
        if len(first.char_ids) == 1 and second.char_ids == first.char_ids and \
                second.referring[first.char_ids[0]] not in ("colour", "full"):
            found.append(Story(story.characters, [first, second], story.seed))
        seed += 1
    return found


def test_second_scene_keeps_the_colour_and_trait_its_prompt_leaves_out():
    """With the iam memory, over 20 two-scene stories whose second prompt only says "she", a name or "the
    protagonist" (no prompt ever names a trait), the second scene shows the colour the first prompt asked for and
    the trait the model drew in the first scene. By chance one story in eight would keep the colour and one in
    four the trait. (Most first scenes draw no trait, 17 of these 20: then keeping means none appears from nowhere;
    the self probe and the evaluation measure traits drawn.)"""
    runtime = Runtime.load(load_config(preset="storyworld"))
    kept = []
    for story in two_scene_stories(20):
        session = StorySession(runtime, StorySettings(memory_policy="iam"))
        frames = [np.concatenate([e.frames for e in session.add_scene(scene.prompt, seconds=3, seed=story.seed * 10 + j)])
                  for j, scene in enumerate(story.scenes)]
        (char_id,) = story.scenes[0].char_ids
        assert story.character(char_id).colour not in re.findall(r"[a-z]+", story.scenes[1].prompt.lower())
        first = judge_scene(frames[0], (story, 0))["per_character"][char_id]
        second = judge_scene(frames[1], (story, 1))["per_character"][char_id]
        assert first["found"], f"story {story.seed}: the first scene does not show the character"
        kept.append(second["found"] and second["colour"] == story.character(char_id).colour and
                    second["trait"] == first["trait"])
    assert sum(kept) >= KEPT_BOTH_AT_LEAST, f"colour and trait came back in {sum(kept)} of {len(kept)} stories"


def test_copy_probe_lays_out_a_scene_switch_and_reads_the_trait_drawn():
    """The probe's contexts keep their traits through the codec (the judge reads every one back), half of the
    cases show a trait the story does not give the character, and the shipped model copies the context's trait
    well above chance (one in four): 6 of 6 measured on these cases with the preset's sampler (4 of 6 without
    its context guidance); two cases of slack for another CPU's arithmetic."""
    runtime = Runtime.load(load_config(preset="storyworld"))
    result = copy_probe(runtime, cases=6)
    assert result["cases"] == 6 and sum(result["traits_drawn"].values()) == 6
    assert result["context_read_rate"] == 1.0
    assert result["copied"] >= 4, result


def test_copy_probe_swaps_only_the_probed_characters_trait():
    story = next(s for s in map(story_from_seed, range(50_001, 50_100)) if carried_over(s))
    char_id = carried_over(story)
    assert char_id in story.scenes[0].char_ids and story.scenes[1].char_ids == [char_id]
    other = next(t for t in World.TRAITS if t != story.character(char_id).trait)
    swapped = with_trait(story, char_id, other)
    assert swapped.character(char_id).trait == other and swapped.prompts == story.prompts
    assert [c for c in swapped.characters if c.char_id != char_id] == [c for c in story.characters if c.char_id != char_id]


def test_self_probe_keeps_the_trait_the_model_drew_itself():
    """The model draws the first scene, then the switch: every case is counted once, the trait kept is the one
    read in the model's own first scene, and the shipped model keeps it in most cases (kept in 0.82 of 240 cases
    measured on an H200 with the same procedure; 4 of 6 asked here, for another CPU's arithmetic)."""
    runtime = Runtime.load(load_config(preset="storyworld"))
    result = self_probe(runtime, cases=6)
    assert result["cases"] == 6 and sum(result["first_traits"].values()) == 6
    assert result["shown_kept"] <= result["shown"] <= 6 and result["shown_kept"] <= result["kept"]
    assert 0.0 <= result["drawn_rate"] <= 1.0
    assert result["kept"] >= 4, result
