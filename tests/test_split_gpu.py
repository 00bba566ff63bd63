"""GPU checks of runtime.devices (run on the lent GPU machine with `pytest -m gpu tests/test_split_gpu.py`, never in
CI): the DiT on cuda:0, decoder and text encoder on cuda:1 (cuda:0 again when only one GPU is visible: the decode
thread, its streams and the hand-over still run), against the same story on one device."""

import numpy as np
import pytest
import torch

from iamflow.config import load_config
from iamflow.runtime import build_runtime
from iamflow.session import StorySession

pytestmark = pytest.mark.gpu

PROMPTS = ["A man in a red jacket walks in a park.", "The man sits on a bench.", "A woman in green walks to him."]


def second_device() -> str:
    return "cuda:1" if torch.cuda.device_count() > 1 else "cuda:0"


def _story(runtime, prompts=PROMPTS, seconds=3):
    session = StorySession(runtime)
    session.overlap_decode = True  # as one GPU runs it; the split always overlaps
    frames = []
    for seed, prompt in enumerate(prompts):
        frames += [e.frames for e in session.add_scene(prompt, seconds=seconds, seed=seed)]
    return session, frames


def _compare(split, frames, one, expected, same_kernels: bool):
    assert split.ops == one.ops and len(frames) == len(expected)
    # the DiT runs on cuda:0 in both: its latents are the same bits
    assert all(torch.equal(a, b) for a, b in zip(split.latents, one.latents))
    if same_kernels:
        assert all(np.array_equal(a, b) for a, b in zip(frames, expected))
    else:  # a decoder on another GPU may pick other convolution kernels (cudnn.benchmark): bf16 rounding only
        diff = max(np.abs(a.astype(np.int16) - b.astype(np.int16)).max() for a, b in zip(frames, expected))
        assert diff <= 8, diff


def test_split_tiny_wan_vae_equals_one_gpu():
    """The tiny preset in bf16 (a random Wan VAE: the causal decoder whose state crosses chunks), three scenes."""
    overrides = {"runtime": {"device": "cuda:0", "dtype": "bfloat16"}}
    one_runtime = build_runtime(load_config(preset="tiny", overrides=overrides))
    one_runtime.text_encoder.model.to("cuda:0")  # the split's text encoder is on a GPU: the same kernels here
    split_runtime = build_runtime(load_config(preset="tiny", overrides={
        "runtime": {**overrides["runtime"], "devices": ["cuda:0", second_device()]}}))
    assert split_runtime.split and split_runtime.codec.device == torch.device(second_device())
    one, expected = _story(one_runtime)
    split, frames = _story(split_runtime)
    _compare(split, frames, one, expected, same_kernels=second_device() == "cuda:0")


def test_split_storyworld_equals_one_gpu():
    """The embedded model (everything on the GPU in float32), a stop mid-scene, an undo and a next scene."""
    def steps(runtime):
        session, frames = _story(runtime, PROMPTS[:2])
        events = []
        for event in session.add_scene(PROMPTS[2], seconds=6, seed=7):
            events.append(event)
            if event.chunk_index == 1:
                session.stop()
        frames += [e.frames for e in events]
        session.undo_last_scene()
        frames += [e.frames for e in session.add_scene(PROMPTS[2], seconds=3, seed=8)]
        return session, frames

    one, expected = steps(build_runtime(load_config(preset="storyworld", overrides=["runtime.device=cuda:0"])))
    split, frames = steps(build_runtime(load_config(
        preset="storyworld", overrides=[f"runtime.devices=[cuda:0, {second_device()}]"])))
    _compare(split, frames, one, expected, same_kernels=second_device() == "cuda:0")
    assert np.array_equal(split.story_frames(), one.story_frames()) or second_device() != "cuda:0"
