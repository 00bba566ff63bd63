"""GPU checks of runtime.devices (run on the lent GPU machine with `pytest -m gpu tests/test_split_gpu.py`, never in
CI): the DiT on cuda:0, decoder and text encoder on cuda:1 (cuda:0 again when only one GPU is visible: the decode
thread, its streams and the hand-over still run), against the same story on one device."""

import threading

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


# cuDNN keeps the convolution algorithms it timed per thread (and uses them whatever the setting later): the split's
# decode thread could time and keep other algorithms than the one-GPU runtime's thread. Its heuristic choice is the
# same on every thread, so both runtimes are built without timing, and each story is told on a thread of its own:
# the test's thread may hold algorithms that earlier tests in this process timed for the same shapes.
NO_TIMING = "runtime.cudnn_benchmark=false"


def _on_a_new_thread(fn, *args):
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except BaseException as error:  # raised again on the test's thread
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _story(runtime, prompts=PROMPTS, seconds=3):
    def tell():
        session = StorySession(runtime)
        session.overlap_decode = True  # as one GPU runs it; the split always overlaps
        frames = []
        for seed, prompt in enumerate(prompts):
            frames += [e.frames for e in session.add_scene(prompt, seconds=seconds, seed=seed)]
        return session, frames

    return _on_a_new_thread(tell)


def _compare(split, frames, one, expected, same_kernels: bool):
    assert split.ops == one.ops and len(frames) == len(expected)
    # the DiT runs on cuda:0 in both: its latents are the same bits
    assert all(torch.equal(a, b) for a, b in zip(split.latents, one.latents))
    # the largest difference of a frame value and the chunks that differ, for the failure message
    diffs = [int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) for a, b in zip(frames, expected)]
    differing = [i for i, d in enumerate(diffs) if d]
    if same_kernels:
        assert not differing, f"frames differ in chunks {differing} by up to {max(diffs)} of 255"
    else:  # a decoder on another GPU may pick other convolution kernels: bf16 rounding only
        assert max(diffs) <= 8, f"frames differ in chunks {differing} by up to {max(diffs)} of 255"


def test_split_tiny_wan_vae_equals_one_gpu():
    """The tiny preset in bf16 (a random Wan VAE: the causal decoder whose state crosses chunks), three scenes."""
    overrides = {"runtime": {"device": "cuda:0", "dtype": "bfloat16", "cudnn_benchmark": False}}
    one_runtime = build_runtime(load_config(preset="tiny", overrides=overrides))
    one_runtime.text_encoder.to("cuda:0")  # the split's text encoder is on a GPU: the same kernels here (a copy: the
    # agent keeps its CPU MiniLM)
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

        def go_on():
            events = []
            for event in session.add_scene(PROMPTS[2], seconds=6, seed=7):
                events.append(event)
                if event.chunk_index == 1:
                    session.stop()
            more = [e.frames for e in events]
            session.undo_last_scene()
            return more + [e.frames for e in session.add_scene(PROMPTS[2], seconds=3, seed=8)]

        return session, frames + _on_a_new_thread(go_on)

    one, expected = steps(build_runtime(load_config(preset="storyworld",
                                                    overrides=["runtime.device=cuda:0", NO_TIMING])))
    split, frames = steps(build_runtime(load_config(
        preset="storyworld", overrides=[f"runtime.devices=[cuda:0, {second_device()}]", NO_TIMING])))
    _compare(split, frames, one, expected, same_kernels=second_device() == "cuda:0")
    assert np.array_equal(split.story_frames(), one.story_frames()) or second_device() != "cuda:0"


def test_decode_stage_waits_for_each_chunk_and_keeps_it_alive_on_gpu():
    """Chunks whose latents come out of long work on the DiT's stream, freed by the host at once and their memory
    overwritten by the next work: the decode stage (hand-over after the chunk's event, the decoder's state on one
    stream) decodes exactly what a serial decode on the host gives, and a failing chunk raises where it is read."""
    from iamflow.engine.streams import DecodeError

    runtime = build_runtime(load_config(preset="tiny", overrides={
        "runtime": {"dtype": "bfloat16", "devices": ["cuda:0", second_device()]}}))
    channels, height, width = runtime.engine.latent_shape
    mix = torch.randn(4096, 4096, device="cuda:0") / 64

    def chunk(i: int) -> torch.Tensor:  # [1, C, 3, h, w] after a few milliseconds of work on the DiT's stream
        x = torch.randn(64, 4096, device="cuda:0", generator=torch.Generator("cuda:0").manual_seed(i))
        for _ in range(200):
            x = torch.tanh(x @ mix)
        return x.flatten()[: channels * 3 * height * width].view(1, channels, 3, height, width).contiguous()

    serial_decoder = runtime.codec.stream_decoder()
    expected = [runtime.decode_frames(serial_decoder, chunk(i)) for i in range(8)]
    decoder, jobs, frames = runtime.codec.stream_decoder(), [], []
    for i in range(8):
        jobs.append(runtime.decode_to_host(decoder, chunk(i)))
        torch.full((64, 4096), float("nan"), device="cuda:0").mul_(2)  # would land in a chunk freed too early
        if len(jobs) > 1:
            frames.append(jobs.pop(0).wait().numpy().copy())
    frames += [job.wait().numpy().copy() for job in jobs]
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected))
    wrong = torch.zeros(1, channels + 1, 3, height, width, device="cuda:0")
    with pytest.raises(DecodeError, match="decoding a chunk on cuda"):
        runtime.decode_to_host(runtime.codec.stream_decoder(), wrong).wait()
    runtime.close()
