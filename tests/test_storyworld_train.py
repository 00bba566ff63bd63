"""Training data of the storyworld model: where the characters are in latent cells, and the figure-weighted loss."""

import numpy as np
import torch
import torch.nn.functional as F

from iamflow.config import load_config
from iamflow.engine.sampler import FlowSampler
from iamflow.storyworld.data import CHUNK_FRAMES, TEMPORAL_FACTOR, LatentStories, render_story_video, sample_batch
from iamflow.storyworld.stories import story_from_seed
from iamflow.storyworld.train import dit_batch, weighted_mse
from iamflow.storyworld.world import background


def latent_frame_pixels(video: np.ndarray, k: int) -> np.ndarray:
    """The video frames latent frame ``k`` covers (the first latent frame is the first video frame alone)."""
    return video[:1] if k == 0 else video[1 + TEMPORAL_FACTOR * (k - 1) : 1 + TEMPORAL_FACTOR * k]


def test_figure_cells_are_the_latent_cells_characters_cover():
    story = story_from_seed(5)
    chunks = [2, 3] + [1] * (len(story.scenes) - 2)
    v = render_story_video(story, chunks)
    assert v.figures.shape == (CHUNK_FRAMES * sum(chunks), 16, 16) and v.figures.dtype == bool
    scene_of_frame = np.repeat(v.chunk_scene, CHUNK_FRAMES)
    for k in range(len(v.figures)):
        pixels = latent_frame_pixels(v.video, k)
        drawn = (pixels != background(story.scenes[scene_of_frame[k]].location)).any(-1).any(0)  # [64, 64]
        blocks = drawn.reshape(16, 4, 16, 4).any(axis=(1, 3))
        assert blocks.any(), f"latent frame {k} shows a character"
        assert not (blocks & ~v.figures[k]).any(), "every cell a character covers counts"
        near = np.pad(blocks, 1)
        near = np.stack([near[dy : dy + 16, dx : dx + 16] for dy in range(3) for dx in range(3)]).any(0)
        assert np.array_equal(v.figures[k], near), "and so do its neighbours, nothing else"
        assert v.figures[k].mean() < 0.5, "the background is most of a frame"


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
    current = b["index"][:, -CHUNK_FRAMES:]
    assert torch.equal(weight[:, 0] == 5.0, data.figures[current])
    # all weights one: plain MSE; a larger figure weight moves the loss toward the figure cells' error
    pred = target + torch.randn_like(target)
    assert torch.allclose(weighted_mse(pred, target, torch.ones_like(weight)), F.mse_loss(pred, target))
    err = torch.zeros_like(target)
    err[weight.expand_as(target) == 5.0] = 1.0  # error only where a character is
    share = (weight == 5.0).float().mean().item()
    assert abs(weighted_mse(target + err, target, torch.ones_like(weight)).item() - share) < 1e-5
    assert weighted_mse(target + err, target, weight).item() > 2 * share
