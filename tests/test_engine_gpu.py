"""GPU checks of the engine (run on the lent GPU machine with `pytest -m gpu`, never in CI)."""

import pytest
import torch

from iamflow.config import load_config
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_cached_chunks_follow_the_masked_forward_on_gpu(compiled):
    cfg = load_config(preset="tiny", overrides={"cache": {"sink_frames": 3, "local_window_frames": 6, "max_memory_frames": 0}})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = CausalWanModel(cfg.model)
    model.to_inference_dtype(torch.bfloat16)
    if compiled:
        model.compile_blocks()
    engine = Engine(model, cfg)
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim, device="cuda"))
    chunks = list(engine.generate(text, 4, torch.Generator(device="cuda").manual_seed(0)))
    clean = torch.cat(chunks, dim=2)
    cache = engine.new_cache()
    outputs = []
    with torch.no_grad():
        for c in range(4):
            write = cache.next_chunk_write()
            t = torch.zeros(1, 3, device="cuda")
            outputs.append(model(clean[:, :, 3 * c : 3 * c + 3], t, text, frame_offset=3 * c, cache=cache, write=write))
            cache.commit_chunk()
        full = model(clean, torch.zeros(1, 12, device="cuda"), text, frames_per_chunk=3, local_window_frames=6, sink_frames=3)
    cached = torch.cat(outputs, dim=2).float()
    err = (cached - full.float()).abs().max() / full.float().abs().max()
    assert torch.isfinite(clean).all()
    assert err < 2e-2, err  # bf16 rounding only


def _cuda_runtime():
    from iamflow.runtime import build_runtime

    return build_runtime(load_config(preset="tiny", overrides={"runtime": {"device": "cuda", "dtype": "bfloat16"}}))


def _story(runtime, overlap, early=False, seconds=(3, 3, 3)):
    from iamflow.session import StorySession

    session = StorySession(runtime)
    session.overlap_decode, session.first_frames_early = overlap, early
    frames = []
    for seed, (prompt, length) in enumerate(zip(["A man in a red jacket walks in a park.", "The man sits on a bench.",
                                                 "A woman in green walks to him."], seconds)):
        frames += [e.frames for e in session.add_scene(prompt, seconds=length, seed=seed)]
    return session, frames


def test_overlapped_decode_on_a_second_stream_equals_serial_on_gpu():
    """The decode stream beside the DiT and the pinned copies give the frames of the serial loop, bit for bit."""
    import numpy as np

    runtime = _cuda_runtime()
    overlapped, frames = _story(runtime, overlap=True)
    serial, expected = _story(runtime, overlap=False)
    assert len(frames) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected))
    assert all(torch.equal(a, b) for a, b in zip(overlapped.latents, serial.latents))
    assert overlapped.ops == serial.ops


def test_first_frames_early_on_the_decode_stream_give_the_same_story_on_gpu():
    """A scene's first latent frame decoded and handed out alone, then the rest, on the decode stream beside the
    DiT: joined, the frames of the story told with whole chunks, bit for bit, and the same latents."""
    import numpy as np

    runtime = _cuda_runtime()
    early, frames = _story(runtime, overlap=True, early=True)
    whole, expected = _story(runtime, overlap=True)
    assert len(frames) == len(expected) + 3  # one partial event at each scene's start
    assert np.array_equal(np.concatenate(frames), np.concatenate(expected))
    assert all(torch.equal(a, b) for a, b in zip(early.latents, whole.latents))
    assert early.ops == whole.ops


@pytest.mark.parametrize("seconds", [(3, 3, 3), (1, 0.75, 3)])
def test_compiled_session_has_no_recompiles_and_follows_eager_on_gpu(seconds):
    """After the warm-up, a three-scene story (memory writes, re-caches, the scorer's queries captured through
    ``model.capturing`` on the commit passes) needs nothing compiled that the warm-up did not compile (a shape it
    missed stops the story here; the runtime's own stance would run it eager, unseen), also when the first scenes
    are shorter than the window (re-caches of one and two chunks behind the sink); and its first chunk follows the
    eager model within bf16 rounding."""
    eager_runtime = _cuda_runtime()
    eager, _ = _story(eager_runtime, overlap=True, seconds=seconds)
    runtime = _cuda_runtime()
    runtime.engine.model.compile_blocks()
    try:
        text = runtime.encode("")[0]
        runtime.engine.warm_up(text, score_layers=[0, 1])
        torch.compiler.set_stance("fail_on_recompile")
        compiled, _ = _story(runtime, overlap=True, seconds=seconds)
    finally:
        torch.compiler.set_stance("default")
    a, b = compiled.latents[0].float(), eager.latents[0].float()
    assert (a - b).norm() / b.norm() < 3e-2
    assert all(torch.isfinite(x).all() for x in compiled.latents)


@pytest.mark.parametrize("compiled", [False, True])
def test_cuda_graphs_give_the_same_story_on_gpu(compiled):
    """A three-scene story (memory writes, re-caches, the scorer's queries, a window that fills then turns) told
    with each repeated pass replayed from its CUDA graph gives the latents, queries, frames and cache operations of
    the same story told with the passes run directly, bit for bit; and the graphs did the work."""
    import numpy as np

    from iamflow.engine.engine import PassGraphs

    runtime = _cuda_runtime()
    if compiled:
        runtime.engine.model.compile_blocks()
        runtime.engine.warm_up(runtime.encode("")[0], score_layers=[0, 1])
    direct, expected = _story(runtime, overlap=True)
    runtime.engine.cuda_graphs = True
    try:
        graphed, frames = _story(runtime, overlap=True)
    finally:
        runtime.engine.cuda_graphs = False
    graphs = PassGraphs.of(graphed.cache)
    assert len(graphs.graphs) >= 4 and graphs.replays > 3 * len(graphs.graphs)
    assert any(graph.queries for graph in graphs.graphs.values())  # commit passes with the scorer's capture
    assert all(torch.equal(a, b) for a, b in zip(graphed.latents, direct.latents))
    assert all(torch.equal(a, b) for a, b in zip(graphed.chunk_queries, direct.chunk_queries))
    assert graphed.ops == direct.ops
    assert len(frames) == len(expected) and all(np.array_equal(a, b) for a, b in zip(frames, expected))


def test_fp8_linears_follow_bf16_on_gpu():
    """runtime.fp8 turns the blocks' linears to FP8 (torchao); one chunk stays close to bf16; off changes nothing."""
    from iamflow.runtime import to_fp8

    cfg = load_config(preset="tiny", overrides={"model": {"dim": 256, "ffn_dim": 512, "num_heads": 2}})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = CausalWanModel(cfg.model)
    model.to_inference_dtype(torch.bfloat16)
    engine = Engine(model, cfg)
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim, device="cuda"))
    reference = next(engine.generate(text, 1, torch.Generator(device="cuda").manual_seed(0))).float()
    to_fp8(model)
    assert any("Float8" in type(m.weight).__name__ for m in model.blocks.modules() if isinstance(m, torch.nn.Linear))
    fp8 = next(engine.generate(text, 1, torch.Generator(device="cuda").manual_seed(0))).float()
    error = ((fp8 - reference).norm() / reference.norm()).item()
    assert error < 0.1, error
