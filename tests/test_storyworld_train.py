"""Training data of the storyworld model: where the characters are in latent cells, and the figure-weighted loss."""

import numpy as np
import torch
import torch.nn.functional as F

from iamflow.config import load_config
from iamflow.engine.model import CausalWanModel
from iamflow.engine.sampler import FlowSampler
from iamflow.storyworld.data import (
    CHUNK_FRAMES,
    FIGURE,
    TEMPORAL_FACTOR,
    TRAIT,
    LatentStories,
    frame_mask_to_tokens,
    render_story_video,
    sample_batch,
)
from iamflow.storyworld.stories import story_from_seed
from iamflow.storyworld.train import dit_batch, own_context, weighted_mse
from iamflow.storyworld.world import World, background


def latent_frame_pixels(video: np.ndarray, k: int) -> np.ndarray:
    """The video frames latent frame ``k`` covers (the first latent frame is the first video frame alone)."""
    return video[:1] if k == 0 else video[1 + TEMPORAL_FACTOR * (k - 1) : 1 + TEMPORAL_FACTOR * k]


def dilate(blocks: np.ndarray) -> np.ndarray:
    padded = np.pad(blocks, 1)
    return np.stack([padded[dy : dy + 16, dx : dx + 16] for dy in range(3) for dx in range(3)]).any(0)


def test_figure_cells_are_the_latent_cells_characters_and_traits_cover():
    story = story_from_seed(5)
    assert {story.character(c).trait for c in story.scenes[0].char_ids} - {"plain"}, "a trait is drawn"
    chunks = [2, 3] + [1] * (len(story.scenes) - 2)
    v = render_story_video(story, chunks)
    assert v.figures.shape == (CHUNK_FRAMES * sum(chunks), 16, 16) and v.figures.dtype == np.uint8
    scene_of_frame = np.repeat(v.chunk_scene, CHUNK_FRAMES)
    for k in range(len(v.figures)):
        pixels = latent_frame_pixels(v.video, k)
        drawn = (pixels != background(story.scenes[scene_of_frame[k]].location)).any(-1)  # [n, 64, 64]
        ink = drawn & (pixels == np.array(World.INK, dtype=np.uint8)).all(-1)
        blocks, ink_blocks = (m.any(0).reshape(16, 4, 16, 4).any(axis=(1, 3)) for m in (drawn, ink))
        assert blocks.any(), f"latent frame {k} shows a character"
        # every cell a character covers counts, and so do its neighbours, nothing else; the trait's likewise
        assert np.array_equal(v.figures[k] >= FIGURE, dilate(blocks))
        assert np.array_equal(v.figures[k] == TRAIT, dilate(ink_blocks))
        assert (v.figures[k] >= FIGURE).mean() < 0.5, "the background is most of a frame"
    assert (v.figures == TRAIT).any()


def latent_stories(seeds) -> LatentStories:
    """Rendered stories (two chunks a scene) with random latents and text features in place of encoded ones."""
    videos = [render_story_video(story, [2] * len(story.scenes)) for story in map(story_from_seed, seeds)]
    starts = np.cumsum([0] + [len(v.figures) for v in videos[:-1]])
    scene_starts = np.cumsum([0] + [len(v.prompts) for v in videos[:-1]])
    frames = sum(len(v.figures) for v in videos)
    return LatentStories(
        torch.randn(frames, 16, 16, 16), torch.randn(sum(len(v.prompts) for v in videos), 64, 384), starts,
        np.array([len(v.chunk_scene) for v in videos]), [v.chunk_scene for v in videos], scene_starts,
        [v.scene_chars for v in videos], torch.from_numpy(np.concatenate([v.figures for v in videos])))


def current_scene_casts(data: LatentStories, batch: dict) -> list[int]:
    """How many characters the scene of each sequence's current chunk shows."""
    casts = []
    for first in batch["index"][:, -CHUNK_FRAMES].tolist():
        s = int(np.searchsorted(data.story_start, first, side="right") - 1)
        scene = data.chunk_scene[s][(first - data.story_start[s]) // CHUNK_FRAMES]
        casts.append(len(data.scene_chars[s][scene]))
    return casts


def test_crowd_share_draws_scenes_with_three_characters():
    data = latent_stories(range(40))
    plain = current_scene_casts(data, sample_batch(data, np.random.default_rng(1), 400))
    crowded = current_scene_casts(data, sample_batch(data, np.random.default_rng(1), 400, crowd_share=0.5))
    assert plain.count(3) < 0.25 * len(plain)
    assert crowded.count(3) > plain.count(3) + 0.3 * len(crowded)
    with_crowds = [s for s in range(200) if any(len(scene.characters) == 3 for scene in story_from_seed(s).scenes)]
    data = latent_stories(with_crowds[:10])
    assert set(current_scene_casts(data, sample_batch(data, np.random.default_rng(2), 100, crowd_share=1.0))) == {3}


def test_figure_weighted_loss_weighs_the_current_chunks_figure_cells():
    config = load_config(preset="storyworld")
    data = latent_stories((1, 2))
    sampler = FlowSampler(config.sampler)
    rng = np.random.default_rng(0)
    x, t, text, positions, mask, target, weight = dit_batch(data, rng, 8, sampler, config.tokens_per_frame, "cpu",
                                                            figure_weight=5.0)
    assert weight.shape == (8, 1, CHUNK_FRAMES, 16, 16)
    assert set(weight.unique().tolist()) == {1.0, 5.0}
    # the weighted cells are those of the current chunk's frames: same draw again, read the frame indices
    b = sample_batch(data, np.random.default_rng(0), 8)
    current = data.figures[b["index"][:, -CHUNK_FRAMES:]]
    assert torch.equal(weight[:, 0] == 5.0, current >= FIGURE)
    *_, weight_traits = dit_batch(data, np.random.default_rng(0), 8, sampler, config.tokens_per_frame, "cpu",
                                  figure_weight=5.0, trait_weight=9.0)
    assert torch.equal(weight_traits[:, 0] == 9.0, current == TRAIT) and (current == TRAIT).any()
    assert torch.equal(weight_traits[:, 0] == 5.0, current == FIGURE)
    # all weights one: plain MSE; a larger figure weight moves the loss toward the figure cells' error
    pred = target + torch.randn_like(target)
    assert torch.allclose(weighted_mse(pred, target, torch.ones_like(weight)), F.mse_loss(pred, target))
    err = torch.zeros_like(target)
    err[weight.expand_as(target) == 5.0] = 1.0  # error only where a character is
    share = (weight == 5.0).float().mean().item()
    assert abs(weighted_mse(target + err, target, torch.ones_like(weight)).item() - share) < 1e-5
    assert weighted_mse(target + err, target, weight).item() > 2 * share


def test_copy_trait_weight_falls_on_traits_the_context_shows():
    """A sequence is ``copyable`` when every character of its current scene shows in a context frame; the copy
    weight goes to the trait cells of those sequences only (a first appearance's trait cannot be copied)."""
    config = load_config(preset="storyworld")
    data = latent_stories(range(30))
    b = sample_batch(data, np.random.default_rng(3), 300, switch_share=0.5)
    for row in range(300):
        first = int(b["index"][row, -CHUNK_FRAMES])
        s = int(np.searchsorted(data.story_start, first, side="right") - 1)
        chunk_scene, casts = data.chunk_scene[s], data.scene_chars[s]
        context = b["index"][row, :-CHUNK_FRAMES]
        scenes = {int(chunk_scene[(f - data.story_start[s]) // CHUNK_FRAMES]) for f in context.tolist() if f >= 0}
        seen = {c for scene in scenes for c in casts[scene]}
        current = casts[chunk_scene[(first - data.story_start[s]) // CHUNK_FRAMES]]
        assert bool(b["copyable"][row]) == all(c in seen for c in current)
        if (first - data.story_start[s]) // CHUNK_FRAMES == 0:
            assert not b["copyable"][row], "a story's first chunk has no context"
    assert 0.2 < b["copyable"].float().mean() < 0.95
    sampler = FlowSampler(config.sampler)
    *_, weight = dit_batch(data, np.random.default_rng(3), 300, sampler, config.tokens_per_frame, "cpu",
                           switch_share=0.5, copy_trait_weight=10.0)
    current = data.figures[b["index"][:, -CHUNK_FRAMES:]]
    copy = b["copyable"][:, None, None, None] & (current == TRAIT)
    assert copy.any() and ((current == TRAIT) & ~copy).any()
    assert torch.equal(weight[:, 0] == 10.0, copy)
    assert bool((weight[:, 0][~copy] == 1.0).all())


def test_own_context_replaces_the_chosen_contexts_by_the_models_prediction():
    """The context of the chosen sequences becomes x_t - sigma * v: from almost no noise that is the context
    itself; from more noise it is the model's guess. The current chunk and the other sequences stay as they were."""
    config = load_config(preset="tiny")
    torch.manual_seed(0)
    model = CausalWanModel(config.model).eval()
    data = latent_stories(range(10, 16))
    sampler = FlowSampler(config.sampler)
    x, t, text, positions, mask, _, _ = dit_batch(data, np.random.default_rng(1), 6, sampler,
                                                  config.tokens_per_frame, "cpu")
    frames = x.shape[2]  # the storyworld sequence, with the tiny model's latents
    x = torch.randn(6, config.model.in_channels, frames, config.video.latent_height, config.video.latent_width)
    causal = torch.ones(frames, frames, dtype=torch.bool).tril()
    mask = frame_mask_to_tokens(causal.expand(6, frames, frames), config.tokens_per_frame)
    text = torch.randn(6, config.model.text_len, config.model.text_dim)
    steps = config.sampler.num_train_timesteps
    assert torch.equal(own_context(model, x, t, text, positions, mask, 0.0, 0.4, steps), x)
    near = own_context(model, x, t, text, positions, mask, 1.0, 1e-4, steps)
    assert torch.allclose(near, x, atol=1e-2)
    far = own_context(model, x, t, text, positions, mask, 1.0, 0.9, steps)
    assert torch.equal(far[:, :, -CHUNK_FRAMES:], x[:, :, -CHUNK_FRAMES:])
    assert (far[:, :, :-CHUNK_FRAMES] - x[:, :, :-CHUNK_FRAMES]).abs().mean() > 0.1
    torch.manual_seed(1)  # chooses sequences 1, 2 and 4 of the six
    half = own_context(model, x, t, text, positions, mask, 0.5, 0.9, steps)
    kept = [torch.equal(half[b], x[b]) for b in range(6)]
    assert kept == [True, False, False, True, False, True], kept
