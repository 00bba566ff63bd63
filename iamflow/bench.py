"""Benchmark of the generator on a GPU: speed, latency, memory and the fraction of the roofline reached.

    python -m iamflow.bench --preset wan2.1-t2v-1.3b --random-weights --out bench.json

Speed does not depend on weight values, so the full Wan2.1-1.3B shapes run with random weights: 832x480,
3 latent frames a chunk, 4 denoising steps + 1 commit pass, the memory region filled (memory active).
Video frames are counted 4 per latent frame (the codec's temporal factor), as the stream delivers them.

Reported: DiT-only FPS, end-to-end FPS with the streaming VAE decode, time to first frame after a scene
prompt (first scene, and at a scene switch with re-cache), chunk time early vs late in a long story, peak
GPU memory, and the bf16 matmul and attention ceilings measured in the same run with the fraction reached.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from iamflow.config import (EMBEDDED_PRESET, WAN_PRESET, CodecConfig, Config, ConfigError, RuntimeConfig, load_config,
                            merge_overrides, parse_overrides)
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel

logger = logging.getLogger("iamflow.bench")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# --- ceilings measured on this card ---------------------------------------------------------------------


def matmul_ceiling(m: int, k: int, n: int, dtype=torch.bfloat16) -> float:
    a = torch.randn(m, k, device="cuda", dtype=dtype)
    b = torch.randn(k, n, device="cuda", dtype=dtype)
    seconds = timed(lambda: [a @ b for _ in range(20)], repeats=5) / 20
    return 2 * m * k * n / seconds / 1e12


def attention_ceiling(q_len: int, k_len: int, heads: int, head_dim: int, dtype=torch.bfloat16) -> float:
    q = torch.randn(1, heads, q_len, head_dim, device="cuda", dtype=dtype)
    k = torch.randn(1, heads, k_len, head_dim, device="cuda", dtype=dtype)
    v = torch.randn_like(k)
    seconds = timed(lambda: [F.scaled_dot_product_attention(q, k, v) for _ in range(10)], repeats=5) / 10
    return 4 * q_len * k_len * heads * head_dim / seconds / 1e12


@dataclass
class PassFlops:
    matmul: float
    attention: float


def chunk_flops(cfg: Config, visible_frames: int) -> PassFlops:
    """FLOPs of one forward pass of one chunk (the cross-attention K/V are cached per prompt)."""
    m = cfg.model
    lq = cfg.cache.frames_per_chunk * cfg.tokens_per_frame
    lk = visible_frames * cfg.tokens_per_frame
    per_layer = 2 * lq * m.dim * m.dim * 6 + 2 * 2 * lq * m.dim * m.ffn_dim  # self q,k,v,o + cross q,o + ffn
    patch = 2 * lq * m.dim * (m.in_channels + m.out_channels) * 4
    attention = 4 * lq * (lk + m.text_len) * m.dim
    return PassFlops(matmul=m.num_layers * per_layer + patch, attention=m.num_layers * attention)


# --- the run ----------------------------------------------------------------------------------------------


def build_engine(cfg: Config, dtype: torch.dtype, compile_blocks: bool) -> Engine:
    with torch.device("cuda"):
        model = CausalWanModel(cfg.model)
    model.to_inference_dtype(dtype)
    if compile_blocks:
        model.compile_blocks()
    return Engine(model, cfg)


def fill_memory(engine: Engine, cache, text, generator) -> None:
    frames = engine.config.cache.max_memory_frames
    if not frames:
        return
    latents = engine.noise(generator, frames)
    engine.write_memory(cache, text, latents, frame_positions=list(range(frames)))


def time_chunks(engine: Engine, text, generator, cache, offset: int, count: int, uncond=None) -> tuple[list[float], int]:
    """Seconds of each of ``count`` chunks generated from ``offset`` on; returns them and the new offset."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        list(engine.generate(text, 1, generator, uncond=uncond, cache=cache, frame_offset=offset))
        _sync()
        times.append(time.perf_counter() - start)
        offset += engine.frames_per_chunk
    return times, offset


def run(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config, preset=args.preset, overrides=args.overrides)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = True
    device_name = torch.cuda.get_device_name()
    logger.info("bench on %s, torch %s, preset %s", device_name, torch.__version__, cfg.preset)

    engine = build_engine(cfg, dtype, args.compile)
    m = cfg.model
    generator = torch.Generator(device="cuda").manual_seed(0)
    context = torch.randn(1, m.text_len, m.text_dim, device="cuda", generator=generator)
    text = engine.encode_text(context)
    # guided sampling (sampler.guidance_scale > 1) runs a second pass against an empty prompt's conditioning
    uncond = engine.encode_text(torch.zeros_like(context)) if cfg.sampler.guided_steps else None
    fpc = cfg.cache.frames_per_chunk
    video_frames_per_chunk = fpc * cfg.video.temporal_compression

    # warm up every cache state (sink write, ring filling, full ring), compile if asked
    cache = engine.new_cache()
    fill_memory(engine, cache, text, generator)
    offset = 0
    for _ in range(args.warmup_chunks):
        list(engine.generate(text, 1, generator, uncond=uncond, cache=cache, frame_offset=offset))
        offset += fpc
    _sync()
    torch.cuda.reset_peak_memory_stats()

    # DiT only, steady state (ring full, memory active)
    chunk_times, offset = time_chunks(engine, text, generator, cache, offset, args.chunks, uncond)
    dit_chunk = statistics.median(chunk_times)
    visible = cache.visible_frames
    flops = chunk_flops(cfg, visible)
    passes = len(engine.sampler) + 1

    result: dict = {
        "card": device_name,
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "host": platform.node(),
        "preset": cfg.preset,
        "resolution": f"{cfg.video.width}x{cfg.video.height}",
        "dtype": args.dtype,
        "compiled": args.compile,
        "frames_per_chunk": fpc,
        "passes_per_chunk": passes,
        "visible_frames": visible,
        "tokens_per_frame": cfg.tokens_per_frame,
        "dit_chunk_seconds": dit_chunk,
        "dit_fps": video_frames_per_chunk / dit_chunk,
        "chunk_tflop": {"matmul": passes * flops.matmul / 1e12, "attention": passes * flops.attention / 1e12},
    }

    # ceilings of this card, at the model's shapes
    lq = fpc * cfg.tokens_per_frame
    result["ceilings_tflops"] = {
        "matmul_bf16_8192": matmul_ceiling(8192, 8192, 8192),
        "matmul_bf16_wan_ffn": matmul_ceiling(lq, m.dim, m.ffn_dim),
        "attention_sdpa": attention_ceiling(lq, visible * cfg.tokens_per_frame, m.num_heads, m.head_dim),
    }
    ceil = result["ceilings_tflops"]
    roof_seconds = passes * (flops.matmul / (ceil["matmul_bf16_wan_ffn"] * 1e12) + flops.attention / (ceil["attention_sdpa"] * 1e12))
    result["roofline_chunk_seconds"] = roof_seconds
    result["roofline_fraction"] = roof_seconds / dit_chunk
    result["achieved_tflops"] = passes * (flops.matmul + flops.attention) / dit_chunk / 1e12

    # what a scene switch re-caches: the kept window's latents and the story's first chunk (the sink)
    window = engine.noise(generator, cfg.cache.local_window_frames - fpc)
    sink = engine.noise(generator, fpc)

    # end to end with the streaming VAE decode
    if args.vae:
        codec = build_vae(dtype)
        decoder = codec.stream_decoder()
        e2e_times, first = [], True
        for i in range(args.chunks):
            start = time.perf_counter()
            (latents,) = engine.generate(text, 1, generator, uncond=uncond, cache=cache, frame_offset=offset)
            frames = decoder.decode(latents.to(dtype))
            _sync()
            e2e_times.append(time.perf_counter() - start)
            offset += fpc
            if first:
                first = False
                e2e_times.pop()  # the decoder's first call has no causal history yet
        e2e_chunk = statistics.median(e2e_times)
        result["e2e_chunk_seconds"] = e2e_chunk
        result["e2e_fps"] = video_frames_per_chunk / e2e_chunk
        result["decoded_frames_per_chunk"] = int(frames.shape[2])

        # time to first frame: a new scene prompt arrives -> its first decoded frames are ready
        def first_scene():
            c = engine.new_cache()
            (lat,) = engine.generate(text, 1, generator, uncond=uncond, cache=c, frame_offset=0)
            codec.stream_decoder().decode(lat.to(dtype))

        def switch_scene():
            new_text = engine.encode_text(context.flip(1))
            engine.recache(cache, new_text, window, offset - window.shape[2], sink)
            x0 = engine.denoise_chunk(cache, new_text, offset, generator, uncond=uncond)
            decoder.decode(x0.to(dtype))
            engine.commit_chunk(cache, new_text, x0, offset)

        encode_prompt = build_text_encoder(dtype) if args.text_encoder else None
        text_seconds = timed(encode_prompt, repeats=5) if encode_prompt else 0.0
        result["text_encoder_seconds"] = text_seconds
        result["ttff_first_scene_seconds"] = text_seconds + timed(first_scene, repeats=5)
        result["ttff_scene_switch_seconds"] = text_seconds + timed(switch_scene, repeats=5)

    # scene switch: re-cache of the kept window under the new prompt, with the sink (the default) and without
    result["recache_seconds"] = timed(lambda: engine.recache(cache, text, window, offset - window.shape[2], sink), repeats=5)
    result["recache_window_only_seconds"] = timed(lambda: engine.recache(cache, text, window, offset - window.shape[2]),
                                                  repeats=5)

    # long story: chunk time early vs late
    if args.long_chunks:
        c = engine.new_cache()
        fill_memory(engine, c, text, generator)
        times, off = time_chunks(engine, text, generator, c, 0, args.long_chunks, uncond)
        window = max(5, args.long_chunks // 10)
        result["long_story"] = {
            "chunks": args.long_chunks,
            "latent_frames": off,
            "early_chunk_seconds": statistics.median(times[5 : 5 + window]),
            "late_chunk_seconds": statistics.median(times[-window:]),
        }

    result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def build_text_encoder(dtype: torch.dtype):
    """umT5-XXL's encoder shape with random weights; returns a function encoding one 512-token prompt."""
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(
        vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
        feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, relative_attention_max_distance=128,
    )
    with torch.device("cuda"):
        encoder = UMT5EncoderModel(config).to(dtype).eval()
    ids = torch.randint(0, config.vocab_size, (1, 512), device="cuda")
    mask = torch.zeros(1, 512, dtype=torch.long, device="cuda")
    mask[:, :120] = 1  # a typical scene prompt is about 120 tokens; Wan pads to 512

    @torch.no_grad()
    def encode():
        return encoder(input_ids=ids, attention_mask=mask).last_hidden_state

    return encode


def build_vae(dtype: torch.dtype):
    from diffusers import AutoencoderKLWan

    from iamflow.engine.codec import WanVAECodec

    with torch.device("cuda"):
        vae = AutoencoderKLWan()  # the Wan2.1 VAE shape, random weights
    return WanVAECodec(vae.to(dtype).eval())


# --- the StorySession loop (what the app runs) -----------------------------------------------------------

STORY = [
    "A young man in a denim jacket walks through a park at sunset.",
    "The protagonist sits on a bench and reads a letter.",
    "Another woman approaches him and they talk.",
    "The man stands up and walks away along the river.",
]


# what later scenes add to the story's four prompts, so that a long story brings new prompts to the agent and the
# text encoder scene after scene, as a person's story does (a repeated prompt would be a cache hit)
STORY_LATER = ["It starts to rain.", "Night falls.", "The wind picks up.", "Snow begins to fall.",
               "The sun comes out.", "Fog rolls in.", "Birds fly overhead.", "Leaves blow across the path.",
               "The street lamps flicker on.", "A bell rings in the distance."]


def story_prompts(scenes: int) -> list[str]:
    """The bench story's prompts: the four of ``STORY``, then the same four with a change of weather or light
    (``STORY_LATER``), every prompt of the story new up to 44 scenes."""
    return [STORY[i % len(STORY)] + ("" if i < len(STORY) else " " + STORY_LATER[(i // len(STORY) - 1) %
                                                                               len(STORY_LATER)])
            for i in range(scenes)]


def _kept(scenes: list[dict], *keys: str) -> list[dict]:
    """Each scene's figures named by ``keys``: what a story told again is compared on."""
    return [{k: scene[k] for k in keys} for scene in scenes]


def session_run(args: argparse.Namespace) -> dict:
    """Time a story told through ``StorySession`` on the Wan preset with random weights, as a viewer receives it:
    the real rules agent, the random-weight umT5 at its real shape, the memory policy and transition of the
    config, the streaming decoder. Per scene: first frame after ``add_scene``, the chunk intervals, the video
    frames per second received, and where the time of the switch and of a chunk goes."""
    from iamflow.engine.streams import StageTimer
    from iamflow.runtime import build_runtime
    from iamflow.session import StorySession

    runtime_settings = {"compile": args.compile, "fp8": args.fp8, "compile_decoder": args.compile_decoder,
                        "text_encoder_device": args.text_encoder_device, "cuda_graphs": args.cuda_graphs}
    if args.devices:  # e.g. cuda:0,cuda:1: the DiT on the first, decoder and text encoder on the second
        runtime_settings["devices"] = _device_list(args.devices)
    cfg = load_config(args.config, preset=args.preset,
                      overrides=merge_overrides(args.overrides, {"runtime": runtime_settings,
                                                                 "codec": {"wan_convolutions": args.wan_convolutions}}))
    torch.backends.cuda.matmul.allow_tf32 = True
    from torch._dynamo.utils import counters

    started = time.perf_counter()
    runtime = build_runtime(cfg, random_weights=True)
    load_seconds = time.perf_counter() - started
    if args.decoder == "tiny":
        from iamflow.engine.tiny_decoder import build_random_tiny_codec

        runtime.codec = build_random_tiny_codec(runtime.codec.device, runtime.engine.model.dtype)
        runtime.warm_up()
    gpus = sorted({d for d in (runtime.device, runtime.codec.device) if d.type == "cuda"}, key=str)
    text_encoder_gib = sum(p.numel() * p.element_size() for p in runtime.text_encoder.model.parameters()
                           if p.device.type == "cuda") / 2**30
    _sync()
    for gpu in gpus:
        torch.cuda.synchronize(gpu)
        torch.cuda.reset_peak_memory_stats(gpu)
    graphs_before = counters["stats"]["unique_graphs"]

    def new_session(early: bool = not args.whole_first_chunk) -> StorySession:
        made = StorySession(runtime)
        made.timer = StageTimer(runtime.device)
        if args.overlap is not None:
            made.overlap_decode = args.overlap
        made.first_frames_early = early  # as the app's stories: a scene's first frames before the rest of its chunk
        return made

    session = new_session()
    video_per_chunk = cfg.cache.frames_per_chunk * cfg.video.temporal_compression
    prompts = story_prompts(args.scenes)
    if args.fail_on_recompile:
        # a compiled region the warm-up did not cover stops the story with Dynamo's reason, instead of running eager
        # in front of the viewer (the runtime's stance) without a word
        torch.compiler.set_stance("fail_on_recompile")
    if args.sync_debug:  # every host wait inside the story is reported with where it came from
        import traceback
        import warnings

        def show(message, category, filename, lineno, file=None, line=None):
            stack = "".join(line for line in traceback.format_stack()[:-2] if "/iamflow/" in line or "diffusers" in line)
            logger.warning("host waits for the GPU: %s\n%s", message, stack[-1500:])

        warnings.showwarning = show
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")

    import psutil

    process = psutil.Process()  # (the host's resident memory after each scene)

    def tell(session: StorySession, prepare: bool = False) -> list[dict]:
        scenes = []
        for index, prompt in enumerate(prompts):
            prepared_seconds = None
            if prepare and index:  # the switch's device work done while the prompt was typed (not on the clock)
                clock = time.perf_counter()
                session.prepare_switch(prompt, seed=index)
                for gpu in gpus:
                    torch.cuda.synchronize(gpu)
                prepared_seconds = time.perf_counter() - clock
            for gpu in gpus:  # the DiT's and the decoder's
                torch.cuda.synchronize(gpu)
            session.timer.take()
            clock = time.perf_counter()
            arrivals, frames, first_frame = [], 0, None
            for event in session.add_scene(prompt, seconds=args.scene_seconds, seed=index):
                if first_frame is None:
                    first_frame = time.perf_counter() - clock
                if not event.partial:  # (a chunk's intervals count its whole chunk)
                    arrivals.append(time.perf_counter() - clock)
                frames += len(event.frames)
            stages: dict[str, list[float]] = {}
            host: dict[str, list[float]] = {}
            for name, host_seconds, device_seconds in session.timer.take():
                stages.setdefault(name, []).append(device_seconds if device_seconds is not None else host_seconds)
                host.setdefault(name, []).append(host_seconds)
            intervals = [b - a for a, b in zip(arrivals, arrivals[1:])]
            steady = intervals[1:] or intervals
            scenes.append({
                "prompt": prompt,
                "chunks": len(arrivals),
                "video_frames": frames,
                "first_frame_seconds": first_frame,
                "first_chunk_whole_seconds": arrivals[0],
                "prepare_switch_seconds": prepared_seconds,
                "scene_fps": frames / arrivals[-1],
                "steady_fps": video_per_chunk / statistics.median(steady) if steady else None,
                "chunk_p50_seconds": statistics.median(intervals) if intervals else None,
                "chunk_p99_seconds": _percentile(intervals, 99) if intervals else None,
                "chunk_intervals_seconds": intervals,
                "stage_seconds_first_chunk": {k: v[0] for k, v in stages.items()},
                "stage_seconds_per_chunk_median": {k: statistics.median(v) for k, v in stages.items() if len(v) > 1},
                "stage_host_seconds_first_chunk": {k: v[0] for k, v in host.items()},
                "stage_host_seconds_per_chunk_median": {k: statistics.median(v) for k, v in host.items() if len(v) > 1},
                # the device memory after the scene (held between scenes) and the peak so far (since the story's
                # start, umT5 included): whether either grows with the scenes told
                "gpu_memory_held_gib": {str(gpu): torch.cuda.memory_allocated(gpu) / 2**30 for gpu in gpus},
                "peak_gpu_memory_so_far_gib": {str(gpu): torch.cuda.max_memory_allocated(gpu) / 2**30 for gpu in gpus},
                # and the host's: this process's resident memory, and what the story holds of it in its chunks'
                # tensors and archived frames (the rest waits in files in the story's folder)
                "host_rss_mib": process.memory_info().rss / 2**20,
                "story_host_bytes": _story_host_bytes(session),
            })
            logger.info("scene %d: first frame %.3f s, %.1f fps received", index, arrivals[0], scenes[-1]["scene_fps"])
        return scenes

    scenes = tell(session)
    torch.cuda.set_sync_debug_mode(0)
    graphs_after = counters["stats"]["unique_graphs"]
    segments_written, segment_error = _segments_written(session)
    result = {
        "mode": "session",
        "card": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "preset": cfg.preset,
        "resolution": f"{cfg.video.width}x{cfg.video.height}",
        "memory_policy": session.settings.memory_policy,
        "transition": session.settings.transition,
        "agent": session.settings.agent_backend,
        "compiled": args.compile,
        "fp8": args.fp8,
        "cuda_graphs": runtime.engine.cuda_graphs,
        "decoder": args.decoder,
        "wan_convolutions": getattr(runtime.codec, "convolutions", None),
        "compiled_decoder": args.compile_decoder,
        "overlap_decode": session.overlap_decode,
        "first_frames_early": session.first_frames_early,
        "text_encoder_device": args.text_encoder_device,
        "devices": {"dit": str(runtime.device), "decoder": str(runtime.codec.device),
                    "text_encoder": str(runtime.text_encoder.device), "decode_thread": runtime.split},
        "load_seconds": load_seconds,
        "compile_warm_up_seconds": getattr(runtime.engine, "compile_seconds", 0.0),
        "graphs_compiled_during_story": graphs_after - graphs_before,
        "scenes": scenes,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_gpu_memory_gib_per_device": {str(gpu): torch.cuda.max_memory_allocated(gpu) / 2**30 for gpu in gpus},
        "text_encoder_gpu_gib": text_encoder_gib,
        # the story's H.264 segments are written beside the loop, as in the app: a run where they failed (no
        # ffmpeg) measured a loop without that work
        "segments_written": segments_written,
        "segment_error": segment_error,
    }
    result["peak_gpu_memory_without_text_encoder_gib"] = result["peak_gpu_memory_gib"] - text_encoder_gib
    # the whole story: does a chunk cost the same at its end as at its start (switches left out)
    steady_story = [i for scene in scenes for i in scene["chunk_intervals_seconds"][1:]]
    if len(steady_story) >= 10:
        tenth = max(5, len(steady_story) // 10)
        early, late = statistics.median(steady_story[:tenth]), statistics.median(steady_story[-tenth:])
        result["story"] = {
            "video_seconds": sum(scene["video_frames"] for scene in scenes) / cfg.video.fps,
            "chunks": sum(scene["chunks"] for scene in scenes),
            "early_chunk_seconds": early, "late_chunk_seconds": late, "late_over_early": late / early,
            "chunk_p50_seconds": statistics.median(steady_story),
            "chunk_p99_seconds": _percentile(steady_story, 99),
            "first_frame_at_switch_seconds_max": max(scene["first_frame_seconds"] for scene in scenes[1:]),
        }
    if args.wan_convolutions_also and hasattr(runtime.codec, "use_convolutions"):
        # the same story again with the Wan VAE decoder's convolutions the other way, the first story's device
        # memory given back first (its cache), the decoder warmed (compiled) again the way the runtime does it
        import gc

        other = "2d" if runtime.codec.convolutions == "3d" else "3d"
        session.reset()
        gc.collect()
        torch.compiler.set_stance("default")
        runtime.codec.use_convolutions(other)
        clock = time.perf_counter()
        runtime.warm_up()
        warm_seconds = time.perf_counter() - clock
        if args.compile or args.compile_decoder:
            torch.compiler.set_stance("eager_on_recompile")
        for gpu in gpus:
            torch.cuda.synchronize(gpu)
            torch.cuda.reset_peak_memory_stats(gpu)
        graphs = counters["stats"]["unique_graphs"]
        told = tell(new_session())
        result["wan_convolutions_" + other] = {
            "decoder_warm_up_seconds": warm_seconds,
            "graphs_compiled_during_story": counters["stats"]["unique_graphs"] - graphs,
            "peak_gpu_memory_without_text_encoder_gib": torch.cuda.max_memory_allocated() / 2**30 - text_encoder_gib,
            "scenes": _kept(told, "first_frame_seconds", "first_chunk_whole_seconds", "scene_fps", "steady_fps",
                            "chunk_p50_seconds", "chunk_p99_seconds", "chunk_intervals_seconds",
                            "stage_seconds_first_chunk", "stage_seconds_per_chunk_median", "gpu_memory_held_gib",
                            "peak_gpu_memory_so_far_gib"),
        }
    if args.first_chunk_ahead:  # the same story again, the second chunk queued before the first is handed out
        again = new_session()
        again.first_chunk_alone = False
        result["first_chunk_ahead"] = _kept(tell(again), "first_frame_seconds", "scene_fps", "steady_fps",
                                            "chunk_p50_seconds", "chunk_p99_seconds", "chunk_intervals_seconds")
    if args.prepare_switch:  # the same story again, each switch prepared before its Add scene (as while typing)
        again = new_session()
        result["prepared_switch"] = _kept(tell(again, prepare=True), "first_frame_seconds", "first_chunk_whole_seconds",
                                          "prepare_switch_seconds", "scene_fps", "stage_seconds_first_chunk")
        result["prepared_switch_first_chunk_ahead"] = sorted(again.first_chunks_prepared)
    if args.whole_first_chunk_also:  # the same story again, the other way of handing out a scene's first chunk
        again = new_session(early=not session.first_frames_early)
        result["first_frames_early_" + str(again.first_frames_early).lower()] = _kept(
            tell(again), "first_frame_seconds", "first_chunk_whole_seconds", "scene_fps", "steady_fps",
            "chunk_p50_seconds", "chunk_p99_seconds", "stage_seconds_first_chunk")
    if args.overlap_also:  # the same story again with the decode overlap the other way (serial: no pipeline to fill)
        again = new_session()
        again.overlap_decode = not session.overlap_decode
        result["overlap_decode_" + str(again.overlap_decode).lower()] = _kept(
            tell(again), "first_frame_seconds", "first_chunk_whole_seconds", "scene_fps", "steady_fps",
            "chunk_p50_seconds", "chunk_p99_seconds", "chunk_intervals_seconds")
    if args.cuda_graphs_also:  # the same story again with the passes' CUDA graphs the other way (same process)
        engine = runtime.engine
        engine.cuda_graphs = not engine.cuda_graphs
        name = "cuda_graphs_" + str(engine.cuda_graphs).lower()
        result[name] = tell(new_session())
        if args.prepare_switch:
            result[name + "_prepared_switch"] = tell(new_session(), prepare=True)
        if args.first_chunk_ahead:
            again = new_session()
            again.first_chunk_alone = False
            result[name + "_first_chunk_ahead"] = tell(again)
        result[name + "_graphs_compiled_during_story"] = counters["stats"]["unique_graphs"] - graphs_after
        engine.cuda_graphs = not engine.cuda_graphs
    if args.long_scene_seconds:
        clock, arrivals = time.perf_counter(), []
        for event in session.add_scene(STORY[0], seconds=args.long_scene_seconds, seed=99):
            if not event.partial:
                arrivals.append(time.perf_counter() - clock)
        intervals = [b - a for a, b in zip(arrivals, arrivals[1:])]
        tenth = max(5, len(intervals) // 10)
        result["long_scene"] = {
            "seconds_of_video": args.long_scene_seconds, "chunks": len(arrivals),
            "early_chunk_seconds": statistics.median(intervals[1 : 1 + tenth]),
            "late_chunk_seconds": statistics.median(intervals[-tenth:]),
            "wall_seconds": arrivals[-1],
        }
        result["long_scene"]["late_over_early"] = (result["long_scene"]["late_chunk_seconds"]
                                                   / result["long_scene"]["early_chunk_seconds"])
    return result


def decoder_run(args: argparse.Namespace) -> dict:
    """One chunk's streaming decode (3 latent frames -> 12 video frames at 832x480), median of repeats, for each
    way of running the Wan VAE, and the tiny decoder; the largest difference from the plain decode is reported."""
    from iamflow.engine.tiny_decoder import build_random_tiny_codec

    cfg = load_config(args.config, preset=args.preset, overrides=args.overrides)
    dtype = torch.bfloat16
    generator = torch.Generator(device="cuda").manual_seed(0)
    latents = torch.randn(1, 16, 3, cfg.video.latent_height, cfg.video.latent_width, device="cuda", generator=generator)
    result: dict = {"mode": "decoders", "card": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": datetime.date.today().isoformat(), "chunk_seconds": {}, "max_abs_difference": {}}

    def measure(name, codec):
        decoder = codec.stream_decoder()
        decoder.decode(latents.to(dtype))  # the video's first chunk
        outputs = []

        def step():
            outputs.append(decoder.decode(latents.to(dtype)))

        result["chunk_seconds"][name] = timed(step, repeats=5, warmup=2)
        return outputs[-1]

    codec = build_vae(dtype)
    plain = measure("wan_vae", codec)

    def latent_frames(name):
        """The same chunk decoded one latent frame per call: seconds of each call (its 4 video frames)."""
        decoder = codec.stream_decoder()
        decoder.decode(latents.to(dtype))
        samples = [[] for _ in range(latents.shape[2])]
        for repeat in range(6):
            for i in range(latents.shape[2]):
                _sync()
                start = time.perf_counter()
                decoder.decode(latents[:, :, i : i + 1].to(dtype))
                _sync()
                if repeat:
                    samples[i].append(time.perf_counter() - start)
        result.setdefault("latent_frame_seconds", {})[name] = [statistics.median(x) for x in samples]

    latent_frames("wan_vae")

    def variant(name, prepare):
        try:
            prepare()
            started = time.perf_counter()
            result["max_abs_difference"][name] = (measure(name, codec) - plain).abs().max().item()
            result["first_call_seconds_" + name] = time.perf_counter() - started
        except Exception as err:  # noqa: BLE001 - reported; the other rows stand
            result[name + "_error"] = f"{type(err).__name__}: {str(err)[:300]}"
        logger.info("%s", result)

    def channels_last(fmt):
        for module in codec.vae.modules():
            if isinstance(module, torch.nn.Conv3d):
                module.to(memory_format=fmt)

    variant("wan_vae_cudnn_benchmark", lambda: setattr(torch.backends.cudnn, "benchmark", True))
    variant("wan_vae_channels_last", lambda: channels_last(torch.channels_last_3d))
    channels_last(torch.contiguous_format)
    variant("wan_vae_compiled", lambda: codec.vae.decoder.compile(dynamic=False))
    latent_frames("wan_vae_compiled")
    variant("wan_vae_compiled_channels_last", lambda: channels_last(torch.channels_last_3d))
    channels_last(torch.contiguous_format)
    measure("tiny", build_random_tiny_codec(torch.device("cuda"), dtype))
    return result


def decoder_convs_run(args: argparse.Namespace) -> dict:
    """The Wan VAE decoder's causal 3-D convolutions at the preset's shapes, as diffusers runs them (cuDNN's 3-D
    convolution, contiguous and channels-last-3d) and as one 2-D convolution per temporal tap
    (``causal_conv3d_as_2d``): seconds, TFLOP/s and count of each distinct call in a steady latent frame's decode;
    then a whole chunk's streaming decode each way, eager and compiled, with its difference from the plain decode."""
    import copy

    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    from iamflow.engine.codec import causal_conv3d_as_2d, use_2d_convolutions

    cfg = load_config(args.config, preset=args.preset, overrides=args.overrides)
    dtype = torch.bfloat16
    torch.backends.cudnn.benchmark = True
    generator = torch.Generator(device="cuda").manual_seed(0)
    latents = torch.randn(1, 16, 3, cfg.video.latent_height, cfg.video.latent_width, device="cuda", generator=generator)
    codec = build_vae(dtype)
    result: dict = {"mode": "decoder-convs", "card": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": datetime.date.today().isoformat(), "calls": [], "chunk_seconds": {},
                    "max_abs_difference": {}}
    # the calls of one steady latent frame (after a first chunk), with their inputs
    seen: dict = {}

    def record(module, inputs):
        x, cache_x = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        key = (module.in_channels, module.out_channels, tuple(module.kernel_size), tuple(x.shape),
               None if cache_x is None else tuple(cache_x.shape))
        seen.setdefault(key, [module, x.clone(), None if cache_x is None else cache_x.clone(), 0])[3] += 1

    decoder = codec.stream_decoder()
    decoder.decode(latents.to(dtype))
    hooks = [m.register_forward_pre_hook(record) for m in codec.vae.decoder.modules() if isinstance(m, WanCausalConv3d)]
    decoder.decode(latents[:, :, :1].to(dtype))
    for hook in hooks:
        hook.remove()
    totals = {"conv3d": 0.0, "conv3d_channels_last": 0.0, "taps_2d": 0.0}
    flop_total = 0
    for (cin, cout, kernel, shape, cache_shape), (module, x, cache_x, count) in seen.items():
        t_out = shape[2]  # (the causal padding, cached frames then zeros, makes up the kernel's reach)
        flop = 2 * cin * cout * kernel[0] * kernel[1] * kernel[2] * t_out * shape[3] * shape[4]
        row = {"in": cin, "out": cout, "kernel": kernel, "input": shape, "cache": cache_shape, "count": count,
               "tflop": flop / 1e12, "seconds": {}, "tflops": {}}
        last = x.contiguous(memory_format=torch.channels_last_3d)
        last_cache = None if cache_x is None else cache_x.contiguous(memory_format=torch.channels_last_3d)
        reference = module.forward(x, cache_x)
        ways = {"conv3d": lambda: module.forward(x, cache_x),
                "conv3d_channels_last": lambda: module.forward(last, last_cache),
                "taps_2d": lambda: causal_conv3d_as_2d(module, last, last_cache)}
        for name, fn in ways.items():
            try:
                if name == "conv3d_channels_last":
                    module.to(memory_format=torch.channels_last_3d)
                seconds = timed(fn, repeats=10, warmup=3)
                row["seconds"][name], row["tflops"][name] = seconds, flop / seconds / 1e12
                row.setdefault("max_abs_difference", {})[name] = (fn().float() - reference.float()).abs().max().item()
                totals[name] += seconds * count
            except Exception as err:  # noqa: BLE001 - reported; the other ways stand
                row.setdefault("errors", {})[name] = f"{type(err).__name__}: {str(err)[:200]}"
            finally:
                module.to(memory_format=torch.contiguous_format)
        flop_total += flop * count
        result["calls"].append(row)
    result["latent_frame_conv_seconds"] = totals
    result["latent_frame_conv_tflop"] = flop_total / 1e12

    plain = codec.stream_decoder()
    plain.decode(latents.to(dtype))
    reference = plain.decode(latents.to(dtype))

    def chunk(name, vae):
        variant = type(codec)(vae)
        stream = variant.stream_decoder()
        stream.decode(latents.to(dtype))
        outputs = []
        started = time.perf_counter()
        result["chunk_seconds"][name] = timed(lambda: outputs.append(stream.decode(latents.to(dtype))), repeats=5)
        result.setdefault("first_calls_seconds", {})[name] = time.perf_counter() - started
        result["max_abs_difference"][name] = (outputs[0].float() - reference.float()).abs().max().item()
        logger.info("%s: %.4f s a chunk", name, result["chunk_seconds"][name])

    def profile(name, vae):
        """The decode's device time by kernel (one chunk), the largest first."""
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        stream = type(codec)(vae).stream_decoder()
        stream.decode(latents.to(dtype))
        stream.decode(latents.to(dtype))
        _sync()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            stream.decode(latents.to(dtype))
            _sync()
        rows = sorted(prof.key_averages(), key=lambda e: e.device_time_total, reverse=True)
        result.setdefault("kernels_ms", {})[name] = {
            "total": sum(e.device_time_total for e in rows) / 1e3,
            "top": [[e.key[:90], e.count, round(e.device_time_total / 1e3, 3)] for e in rows[:14]]}

    # (way, 2-D taps or 3-D, compiled): diffusers' module; the operator with 2-D taps; the operator with cuDNN's
    # 3-D convolution, channels-last
    for name, op, taps, compiled in [("conv3d", False, False, False), ("taps_2d", True, True, False),
                                     ("conv3d_compiled", False, False, True), ("taps_2d_compiled", True, True, True),
                                     ("conv3d_channels_last_op_compiled", True, False, True)]:
        vae = copy.deepcopy(codec.vae)
        use_2d_convolutions(vae, op, taps=taps)
        if compiled:
            vae.decoder.compile(dynamic=False)
        try:
            chunk(name, vae)
            if compiled:
                profile(name, vae)
        except Exception as err:  # noqa: BLE001 - reported; the other rows stand
            result[name + "_error"] = f"{type(err).__name__}: {str(err)[:300]}"
        del vae
        torch.cuda.empty_cache()
    return result


def _sdpa_backends() -> dict:
    """The SDPA backends ``--sdpa`` and ``--attention-backends`` choose among, by name."""
    from torch.nn.attention import SDPBackend

    return {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def attention_backends_run(args: argparse.Namespace) -> dict:
    """The DiT's attention calls at the Wan preset's shapes, timed under each SDPA backend torch offers here.

    Shapes as the model makes them: queries a transposed view of [B, L, heads, D], keys and values a slice of the
    cache's [B, heads, tokens, D]. Rows: a denoising pass's self-attention (one chunk against the visible window),
    the same with the window not yet full, the text cross-attention, and a batched re-cache's block-causal calls
    (sink + window, each chunk against the keys before it). Each backend's output is compared with the default's.
    """
    from torch.nn.attention import sdpa_kernel

    cfg = load_config(args.config, preset=args.preset, overrides=args.overrides)
    m, tpf, fpc = cfg.model, cfg.tokens_per_frame, cfg.cache.frames_per_chunk
    heads, head_dim, lq = m.num_heads, m.head_dim, fpc * tpf
    generator = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=generator)

    visible = 15 * tpf
    cache_k, cache_v = rand(1, heads, visible, head_dim), rand(1, heads, visible, head_dim)
    q = rand(1, lq, heads, head_dim).transpose(1, 2)
    text_k, text_v = rand(1, heads, m.text_len, head_dim), rand(1, heads, m.text_len, head_dim)
    recache_q = rand(1, 4 * lq, heads, head_dim).transpose(1, 2)  # sink + a window of 3 chunks, written at once
    prefix = visible - 4 * lq  # the memory frames before the write

    def recache():
        outs = []
        for c in range(4):
            end = prefix + (c + 1) * lq
            outs.append(F.scaled_dot_product_attention(recache_q[:, :, c * lq : (c + 1) * lq], cache_k[:, :, :end],
                                                       cache_v[:, :, :end]))
        return torch.cat(outs, dim=2)

    calls = {
        "denoise_self_attention_15_frames": (lambda: F.scaled_dot_product_attention(q, cache_k, cache_v),
                                             4 * lq * visible * heads * head_dim),
        "denoise_self_attention_9_frames": (lambda: F.scaled_dot_product_attention(q, cache_k[:, :, : 9 * tpf],
                                                                                   cache_v[:, :, : 9 * tpf]),
                                            4 * lq * 9 * tpf * heads * head_dim),
        "cross_attention": (lambda: F.scaled_dot_product_attention(q, text_k, text_v),
                            4 * lq * m.text_len * heads * head_dim),
        "recache_block_causal_4_chunks": (recache, sum(4 * lq * (prefix + (c + 1) * lq) * heads * head_dim
                                                       for c in range(4))),
    }
    backends = {"default": None, **_sdpa_backends()}
    result: dict = {"mode": "attention-backends", "card": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": datetime.date.today().isoformat(), "seconds": {}, "tflops": {},
                    "max_abs_difference_from_default": {}, "errors": {}}
    reference = {name: fn() for name, (fn, _) in calls.items()}
    for backend_name, backend in backends.items():
        for name, (fn, flop) in calls.items():
            key = f"{backend_name}/{name}"
            try:
                if backend is None:
                    seconds, out = timed(fn, repeats=20, warmup=3), fn()
                else:
                    with sdpa_kernel(backend):
                        seconds, out = timed(fn, repeats=20, warmup=3), fn()
            except Exception as err:  # noqa: BLE001 - a backend that cannot take the shape is reported, not fatal
                result["errors"][key] = f"{type(err).__name__}: {str(err)[:200]}"
                continue
            result["seconds"][key] = seconds
            result["tflops"][key] = flop / seconds / 1e12
            result["max_abs_difference_from_default"][key] = (out.float() - reference[name].float()).abs().max().item()
    # per denoising pass: 30 layers of self- and cross-attention
    for backend_name in backends:
        keys = [f"{backend_name}/denoise_self_attention_15_frames", f"{backend_name}/cross_attention"]
        if all(k in result["seconds"] for k in keys):
            result.setdefault("attention_seconds_per_pass", {})[backend_name] = m.num_layers * sum(
                result["seconds"][k] for k in keys)
    return result


def text_encoder_run(args: argparse.Namespace) -> dict:
    """Each umT5 placement (runtime.text_encoder_device): the seconds to encode one new prompt and the GPU memory
    the encoder holds, random weights at the real shape."""
    from iamflow.runtime import _umt5

    result: dict = {"mode": "text_encoders", "card": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": datetime.date.today().isoformat(), "placements": {}}
    for place in ("cuda", "offload", "cpu"):
        placed = merge_overrides(args.overrides, {"runtime": {"text_encoder_device": place}})
        cfg = load_config(args.config, preset=args.preset, overrides=placed)
        _sync()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        encoder = _umt5(cfg, torch.device("cuda"), torch.bfloat16, random_weights=True)
        load_seconds = time.perf_counter() - started
        held = torch.cuda.memory_allocated() - before
        _sync()
        torch.cuda.reset_peak_memory_stats()  # the build's transient memory (random weights drawn on the GPU) aside
        prompts = iter(f"{STORY[i % len(STORY)]} Take {i}." for i in range(100))
        seconds = timed(lambda: encoder.encode([next(prompts)]).to("cuda"), repeats=3, warmup=1)
        result["placements"][place] = {
            "encode_seconds": seconds, "gpu_memory_held_gib": held / 2**30,
            "gpu_peak_while_encoding_gib": (torch.cuda.max_memory_allocated() - before) / 2**30,  # held + transient
            "build_seconds": load_seconds,
        }
        logger.info("text encoder on %s: %.3f s a prompt", place, seconds)
        del encoder
        torch.cuda.empty_cache()
    return result


def fp8_run(args: argparse.Namespace) -> dict:
    """FP8 linears (``runtime.fp8``) against bf16 on the same chunk of a steady cache (memory written, window full):
    the relative error of the chunk's clean latents and the seconds of a chunk (4 denoising passes + commit), eager
    and compiled, both models in the same run. Weights are random (the same for both), so the error says how far
    FP8 moves this computation, not how a trained model's video changes."""
    from iamflow.runtime import to_fp8

    cfg = load_config(args.config, preset=args.preset, overrides=args.overrides)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    bf16 = build_engine(cfg, torch.bfloat16, compile_blocks=False)
    fp8 = build_engine(cfg, torch.bfloat16, compile_blocks=False)
    fp8.model.load_state_dict(bf16.model.state_dict())
    to_fp8(fp8.model)
    m, fpc = cfg.model, cfg.cache.frames_per_chunk
    generator = torch.Generator(device="cuda").manual_seed(0)
    context = torch.randn(1, m.text_len, m.text_dim, device="cuda", generator=generator)
    text = bf16.encode_text(context)
    cache = bf16.new_cache()
    fill_memory(bf16, cache, text, generator)
    offset = 0
    for _ in range(args.warmup_chunks):
        list(bf16.generate(text, 1, generator, cache=cache, frame_offset=offset))
        offset += fpc
    result: dict = {"mode": "fp8", "card": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "date": datetime.date.today().isoformat(), "preset": cfg.preset,
                    "resolution": f"{cfg.video.width}x{cfg.video.height}"}

    def chunk(engine):  # one chunk's denoising on the same context: the slot it writes is rewritten by each call
        return engine.denoise_chunk(cache, text, offset, torch.Generator(device="cuda").manual_seed(7)).float()

    reference, quantised = chunk(bf16), chunk(fp8)
    again = chunk(bf16)
    result["relative_l2_error"] = ((quantised - reference).norm() / reference.norm()).item()
    result["max_abs_error"] = (quantised - reference).abs().max().item()
    result["bf16_repeat_relative_l2"] = ((again - reference).norm() / reference.norm()).item()

    def seconds_per_chunk(engine, label):
        nonlocal offset
        times, offset = time_chunks(engine, text, generator, cache, offset, args.chunks)
        result[f"chunk_seconds_{label}"] = statistics.median(times)
        logger.info("%s: %.3f s a chunk", label, result[f"chunk_seconds_{label}"])

    seconds_per_chunk(bf16, "bf16_eager")
    seconds_per_chunk(fp8, "fp8_eager")
    if args.compile:
        for engine, label in ((bf16, "bf16_compiled"), (fp8, "fp8_compiled")):
            started = time.perf_counter()
            engine.model.compile_blocks()
            try:
                list(engine.generate(text, 2, generator, cache=cache, frame_offset=offset))
                offset += 2 * fpc
                _sync()
                result[f"compile_seconds_{label}"] = time.perf_counter() - started
                seconds_per_chunk(engine, label)
            except Exception as err:  # noqa: BLE001 - reported; the eager rows stand
                result[f"{label}_error"] = f"{type(err).__name__}: {str(err)[:300]}"
    result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def app_run(args: argparse.Namespace) -> dict:
    """The app as a person runs it: the Gradio server in this process on the preset (random weights for Wan),
    driven through ``gradio_client`` like a browser session, its live view read as an ``<img>`` reads it. Per scene:
    seconds from Add scene to the first frame on the page, the frames received a second, and the whole turn (with
    the story view at its end). Then the same scenes through ``StorySession`` alone on the same runtime, so the app's
    own cost shows beside it."""
    import socket
    import tempfile


    from iamflow.runtime import build_runtime
    from iamflow.session import StorySession
    from ui import launch_kwargs
    from ui.callbacks import AppOptions, StoryController
    from ui.layout import build_blocks

    wan = args.preset == WAN_PRESET
    runtime_settings: dict = {"compile": args.compile, "compile_decoder": args.compile_decoder} if wan else {}
    if args.devices:
        runtime_settings["devices"] = _device_list(args.devices)
    cfg = load_config(args.config, preset=args.preset,
                      overrides=merge_overrides(args.overrides, {"runtime": runtime_settings}))

    def load_runtime(name: str):
        runtime = build_runtime(cfg, random_weights=wan)
        if args.decoder == "tiny":
            from iamflow.engine.tiny_decoder import build_random_tiny_codec

            runtime.codec = build_random_tiny_codec(runtime.codec.device, runtime.engine.model.dtype)
            runtime.warm_up()
        return runtime

    options = AppOptions(default_preset=cfg.preset, presets={cfg.preset: cfg},
                         data_dir=Path(tempfile.mkdtemp(prefix="iamflow-bench-app-")), max_live_sessions=2,
                         max_sessions_per_client=2, idle_drop_s=3600, idle_release_s=3600, sweep_every_s=3600)
    marks = _mark_first_frame_path()
    sampler = _StackSampler() if args.sample_stacks else None
    if sampler is not None:
        sampler.start()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    controller = StoryController(options, load_runtime=load_runtime)
    demo = build_blocks(controller)
    demo.queue(default_concurrency_limit=None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs(controller))
    started = time.perf_counter()
    runtime = controller.worker.runtime(cfg.preset)
    load_seconds = time.perf_counter() - started
    prompts = story_prompts(args.scenes)
    result: dict = {"mode": "app", "card": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    "torch": torch.__version__, "date": datetime.date.today().isoformat(), "preset": cfg.preset,
                    "decoder": args.decoder, "compiled": args.compile, "load_seconds": load_seconds,
                    "scene_seconds": args.scene_seconds, "app": [], "session": []}
    result["devices"] = {"dit": str(runtime.device), "decoder": str(runtime.codec.device), "decode_thread": runtime.split}
    result["switch_interval_s"] = sys.getswitchinterval()
    try:
        # the page's side runs in a process of its own, as a browser does (a client thread here would share the
        # interpreter with the server and the generation loop, and its clock would read their turns as its own)
        command = [sys.executable, "-m", "iamflow.bench", "--app-client", f"http://127.0.0.1:{port}/",
                   "--scenes", str(args.scenes), "--scene-seconds", str(args.scene_seconds)]
        command += ["--client-no-download"] if args.client_no_download else []
        command += ["--typed-prompts"] if args.typed_prompts else []
        result["typed_prompts"] = args.typed_prompts
        result["client_downloads_files"] = not args.client_no_download
        # the client's log goes to a file: a pipe nobody reads fills up and stops the client mid-story
        client_log = tempfile.TemporaryFile("w+")
        page = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=client_log, text=True)
        import psutil

        server = psutil.Process()
        rss_start, entry = server.memory_info().rss, None
        cpu_mark = _cpu_seconds(server)
        for line in page.stdout:  # a line a scene as it ends, then the story operations
            received = json.loads(line)
            if "operations" in received:
                result["operations"] = received["operations"]
                break
            entry = entry or controller.sessions.find(received["session_hash"])
            index, scene = len(result["app"]), received["scene"]
            arrivals, frames = scene["frame_arrivals"], entry.session.scenes[index].num_frames
            result["app"].append({
                "first_frame_seconds": arrivals[0] if arrivals else None, "frames_received": len(arrivals),
                "video_frames": frames, "chunks": entry.session.scenes[index].num_chunks,
                "switch_prepared": index in entry.session.switches_prepared,
                "first_chunk_prepared": index in entry.session.first_chunks_prepared,
                "first_frame_path": _first_frame_path(marks, scene["submitted"], scene["first_arrival"]),
                "video_fps_received": len(arrivals) / arrivals[-1] if arrivals else 0.0,
                "turn_seconds": scene["turn_seconds"],
                "server_rss_mib": server.memory_info().rss / 2**20,
                # the server's CPU seconds since the last scene's line (this turn, and the page's requests after it)
                "server_cpu_seconds": _cpu_seconds(server) - cpu_mark,
            })
            if args.sample_stacks:  # every step of every chunk, seconds from Add scene (the client's submit)
                start, end = scene["submitted"], scene["last_arrival"]
                result["app"][-1]["timeline"] = {
                    step: [round(t - start, 4) for t in times if start <= t <= end] for step, times in marks.items()}
                result["app"][-1]["timeline"]["page received"] = [round(t - start, 4) for t in scene["arrivals"]]
                result["app"][-1]["timeline"]["frame received"] = [round(t, 4) for t in arrivals]
                result["app"][-1]["submitted_monotonic"] = start
            cpu_mark = _cpu_seconds(server)
            logger.info("app scene %d: first frame %.3f s, %.1f fps received, turn %.2f s", index,
                        result["app"][-1]["first_frame_seconds"] or -1, result["app"][-1]["video_fps_received"],
                        scene["turn_seconds"])
            if index + 1 == args.scenes:
                page.stdin.write("next\n")  # the client goes on to Undo, the bundle and loading it
                page.stdin.flush()
        else:
            page.wait(timeout=60)
            client_log.seek(0)
            raise RuntimeError(f"the app's client failed: {client_log.read().strip()[-2000:]}")
        paths = [a["first_frame_path"] for a in result["app"] if a["first_frame_path"]]
        if paths:  # the median of each step over the scenes: where the seconds to the first frame go
            result["first_frame_path_median"] = {
                step: statistics.median(p[step] for p in paths) for step in paths[0]}
        turns = [a["turn_seconds"] for a in result["app"]]
        if len(turns) >= 20:
            result["turn_first10_mean_s"], result["turn_last10_mean_s"] = statistics.mean(turns[:10]), statistics.mean(turns[-10:])
            result["last10_over_first10"] = result["turn_last10_mean_s"] / result["turn_first10_mean_s"]
            result["turn_server_cpu_seconds"] = _ratio_of_means([a["server_cpu_seconds"] for a in result["app"]])
        result["server_rss_growth_mib"] = (server.memory_info().rss - rss_start) / 2**20
        if sampler is not None:
            result["server_threads"] = sampler.stop()
        page.communicate("done\n", timeout=60)

        def session_alone() -> list[dict]:
            session, out = StorySession(runtime), []
            session.first_frames_early = True  # as the app's stories
            for index, prompt in enumerate(prompts):
                clock, arrivals, frames = time.perf_counter(), [], 0
                for event in session.add_scene(prompt, seconds=args.scene_seconds, seed=index):
                    arrivals.append(time.perf_counter() - clock)
                    frames += len(event.frames)
                out.append({"first_frame_seconds": arrivals[0], "video_fps_received": frames / arrivals[-1]})
            return out

        if not args.app_only:
            result["session"] = controller.worker.call(session_alone)
        result["app_first_frame_minus_session_first_frame_seconds"] = [
            a["first_frame_seconds"] - b["first_frame_seconds"] for a, b in zip(result["app"], result["session"])]
    finally:
        controller.close()
        demo.close()
    return result


def _mark_first_frame_path() -> dict[str, list[float]]:
    """Note (``time.monotonic()``, one clock for the server and the page's client process) when each step between
    Add scene and the page's first frame happens in this process: the story's scene starting on the device worker,
    handing out each chunk, and the live view sending each frame (after its JPEG encoding); and when Gradio queues
    each update of the page's panels. The functions are wrapped, not changed."""
    import functools

    from gradio.queueing import Queue

    from iamflow.session import StorySession
    from ui.callbacks import StoryController
    from ui.live_feed import LiveFeed
    from ui.sessions import SessionRegistry

    marks: dict[str, list[float]] = {"scene started": [], "chunk handed out": [], "frame sent": [],
                                     "message queued": [], "validated": [], "handler entered": [],
                                     "story ready": []}
    add_scene, parts, send_message = StorySession.add_scene, LiveFeed.parts, Queue.send_message
    validate, handler, ensure = StoryController.validate_scene, StoryController.add_scene, \
        SessionRegistry.ensure_session

    @functools.wraps(validate)
    def timed_validate(self, *args, **kwargs):
        marks["validated"].append(time.monotonic())  # the request reached the server (its validator runs first)
        return validate(self, *args, **kwargs)

    @functools.wraps(handler)
    def timed_handler(self, *args, **kwargs):
        marks["handler entered"].append(time.monotonic())  # the queue handed the event to its handler
        yield from handler(self, *args, **kwargs)

    @functools.wraps(ensure)
    def timed_ensure(self, *args, **kwargs):
        try:
            return ensure(self, *args, **kwargs)
        finally:
            marks["story ready"].append(time.monotonic())  # the tab's story exists (made on the worker if new)

    @functools.wraps(add_scene)
    def timed_add_scene(self, *args, **kwargs):
        marks["scene started"].append(time.monotonic())
        for event in add_scene(self, *args, **kwargs):
            marks["chunk handed out"].append(time.monotonic())
            yield event

    @functools.wraps(parts)
    async def timed_parts(self, *args, **kwargs):
        async for part in parts(self, *args, **kwargs):
            marks["frame sent"].append(time.monotonic())
            yield part

    @functools.wraps(send_message)
    def timed_send_message(self, event, message):
        if getattr(message, "msg", None) in ("process_generating", "process_streaming"):
            marks["message queued"].append(time.monotonic())  # put on the session's SSE queue, on the loop thread
        return send_message(self, event, message)

    StorySession.add_scene, LiveFeed.parts, Queue.send_message = timed_add_scene, timed_parts, timed_send_message
    StoryController.validate_scene, StoryController.add_scene = timed_validate, timed_handler
    SessionRegistry.ensure_session = timed_ensure
    return marks


class _StackSampler:
    """What each thread of this process is doing, sampled every ``interval`` seconds on a thread of its own (the
    innermost frames of each Python stack, counted per thread name), and how late the server's event loop runs a
    callback handed to it (its lag): the loop is found on its first ``send_message``."""

    def __init__(self, interval: float = 0.01, depth: int = 6):
        import threading

        self.interval, self.depth = interval, depth
        self.counts: dict[str, dict[str, int]] = {}
        self.lags: list[tuple[float, float]] = []  # (monotonic when asked, seconds late)
        self.stalls: list[tuple[float, float, dict]] = []  # (monotonic, seconds this sampler woke late, where others were)
        self.loop = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-stack-sampler", daemon=True)

    def start(self) -> None:
        import functools

        from gradio.queueing import Queue

        send_message, sampler = Queue.send_message, self

        @functools.wraps(send_message)
        def find_loop(queue, event, message):
            if sampler.loop is None:
                import asyncio

                try:
                    sampler.loop = asyncio.get_running_loop()
                except RuntimeError:
                    pass
            return send_message(queue, event, message)

        Queue.send_message = find_loop
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=5)
        lags = [lag for _, lag in self.lags]
        top = {name: dict(sorted(c.items(), key=lambda kv: -kv[1])[:12]) for name, c in self.counts.items()}
        return {"interval_s": self.interval, "stacks": top, "loop_lag_max_s": max(lags, default=None),
                "loop_lag_p99_s": _percentile(lags, 99) if lags else None,
                "loop_lags_over_50ms": [(at, lag) for at, lag in self.lags if lag > 0.05],
                "sampler_woke_late_over_50ms": self.stalls}

    def _run(self) -> None:
        import threading

        me = threading.get_ident()
        asked: list[float] = []
        due = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            late, due = time.monotonic() - due, time.monotonic() + self.interval
            names = {t.ident: t.name for t in threading.enumerate()}
            if late > 0.05:  # this thread could not run (the interpreter's lock held, or no CPU): who ran meanwhile
                where = {}
                for ident, frame in sys._current_frames().items():
                    if ident != me and names.get(ident, "").startswith(("iamflow-device-worker", "AnyIO", "segments")):
                        where[names[ident]] = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}:{frame.f_lineno}"
                self.stalls.append((time.monotonic(), late, where))
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                where = []
                while frame is not None and len(where) < self.depth:
                    code = frame.f_code
                    where.append(f"{Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}")
                    frame = frame.f_back
                name = names.get(ident, str(ident))
                name = "anyio worker" if name.startswith("AnyIO worker") else name
                per = self.counts.setdefault(name, {})
                key = " < ".join(where)
                per[key] = per.get(key, 0) + 1
            if self.loop is not None and not asked:  # one probe at a time: its lateness is the loop's lag
                at = time.monotonic()
                asked.append(at)

                def answered(at=at):
                    self.lags.append((at, time.monotonic() - at))
                    asked.clear()

                try:
                    self.loop.call_soon_threadsafe(answered)
                except RuntimeError:  # the loop has closed
                    self.loop = None


def _first_frame_path(marks: dict[str, list[float]], submitted: float, arrived: float | None) -> dict | None:
    """Seconds from Add scene (the client's submit) to each step of the scene's first frame on the page, and the
    steps' own lengths; None when a mark is missing."""
    if arrived is None:
        return None
    at = {}
    for step in ("validated", "handler entered", "story ready", "scene started", "chunk handed out", "frame sent"):
        after = [t for t in marks[step] if submitted <= t <= arrived]
        if not after:
            return None
        at[step] = after[0]
    return {
        "to scene started (queue, settings, story on the worker)": at["scene started"] - submitted,
        "  of which: submit to the server's validator (client, HTTP, queue join)": at["validated"] - submitted,
        "  of which: validator to the handler (the queue)": at["handler entered"] - at["validated"],
        "  of which: handler to the story ready (settings, a new story made on the worker)":
            at["story ready"] - at["handler entered"],
        "  of which: story ready to the scene started (device worker hand-off)": at["scene started"] - at["story ready"],
        "scene started to first chunk (agent, text, memory, re-cache, denoise, decode)":
            at["chunk handed out"] - at["scene started"],
        "first chunk to its first frame sent (JPEG encode, hand-off)": at["frame sent"] - at["chunk handed out"],
        "frame sent to the page's client": arrived - at["frame sent"],
        "total": arrived - submitted,
    }


def segment_stages_run(args: argparse.Namespace) -> dict:
    """Per-chunk video stages on this host, for noise (what random Wan weights decode to) and for a picture panned
    across the frame (closer to what a trained model makes): the story segment's H.264 encode, then Gradio's probe
    and mux of it (``Video.stream_output``: what streaming the segment through a ``gr.Video`` adds, the app's live
    player before its live view). One 12-frame 832x480 chunk, median of 5 after one."""
    import asyncio

    import gradio as gr
    import numpy as np
    from PIL import Image

    from iamflow.video import write_video

    rng = np.random.default_rng(0)
    picture = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "docs/img/app-three-scenes.png")
                         .convert("RGB").resize((1100, 640)))
    contents = {"noise": rng.integers(0, 256, (12, 480, 832, 3), dtype=np.uint8),
                "panned picture": np.stack([picture[8 * t: 8 * t + 480, 10 * t: 10 * t + 832] for t in range(12)])}
    result: dict = {"mode": "segment stages", "date": datetime.date.today().isoformat(), "host": platform.node()}
    work = Path(tempfile.mkdtemp(prefix="iamflow-segments-"))
    for name, frames in contents.items():
        video, stream_id, rows = gr.Video(streaming=True), f"bench/{name.replace(' ', '-')}/1/playlist.m3u8", []
        for index in range(6):
            started = time.perf_counter()
            path = write_video(frames, work / f"{name.replace(' ', '-')}-{index}.ts", 16, scale=1)
            encoded = time.perf_counter() - started
            started = time.perf_counter()
            asyncio.run(video.stream_output(str(path), stream_id, index == 0))
            rows.append((encoded, time.perf_counter() - started, path.stat().st_size))
        rows = rows[1:]  # the first of each: start-up
        result[name] = {"segment_bytes": int(statistics.median(r[2] for r in rows)),
                        "h264_encode_s": statistics.median(r[0] for r in rows),
                        "gradio_probe_mux_s": statistics.median(r[1] for r in rows)}
    shutil.rmtree(work, ignore_errors=True)
    return result


def _as_they_come(job, clock: float, poll_s: float = 0.01):
    """``(seconds since clock, time.monotonic(), outputs)`` for each update of a gradio_client ``job`` as it arrives,
    to within ``poll_s``. (Iterating the job itself reads late: its ``__next__`` sleeps while holding the lock the
    thread that receives the server's messages needs, so that thread waits and the updates come in bursts.)"""
    seen = 0
    while True:
        done = job.done()
        outputs = job.outputs()  # (takes the lock only to read the list)
        now, at = time.perf_counter() - clock, time.monotonic()
        for update in outputs[seen:]:
            yield now, at, update
        seen = len(outputs)
        if done:
            return
        time.sleep(poll_s)


class _LiveViewReader:
    """The page's live view, read as an ``<img>`` reads it, on a thread: when each frame arrives
    (``time.monotonic()``) and which scene it belongs to. Unpaced (``?paced=0``): frames come as they are made, so
    their rate is the story's own, not the playback's."""

    def __init__(self, url: str, path: str, read_part):
        import http.client
        import threading
        from urllib.parse import urlsplit

        self._read_part = read_part  # (imported by the caller before the clock starts: importing ``ui`` takes
        # seconds, which the first scene's first frame would otherwise wait for in this thread)

        where = urlsplit(url)
        self.frames: list[tuple[float, int]] = []  # (monotonic, scene index)
        self._connection = http.client.HTTPConnection(where.hostname, where.port, timeout=3600)
        self._connection.request("GET", "/" + path.lstrip("/") + "?paced=0")
        self._response = self._connection.getresponse()
        if self._response.status != 200:
            raise RuntimeError(f"the live view answered {self._response.status}")
        self._thread = threading.Thread(target=self._read, name="bench-live-view", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while (part := self._read_part(self._response.fp)) is not None:
                self.frames.append((time.monotonic(), int(part[0]["x-scene"])))
        except (OSError, ValueError):  # closed at the end
            pass

    def scene_frames(self, index: int, settle_s: float = 0.5, at_most_s: float = 10.0) -> list[float]:
        """Arrival times of scene ``index``'s frames, once none has come for ``settle_s``."""
        deadline, count = time.monotonic() + at_most_s, -1
        while time.monotonic() < deadline and count != len(self.frames):
            count = len(self.frames)
            time.sleep(settle_s)
        return [at for at, scene in list(self.frames) if scene == index]

    def close(self) -> None:
        self._connection.close()


TYPING_PAUSE_S = 1.0  # --typed-prompts: after the prompt box's last input event, before Add scene


def app_client(url: str, scenes: int, scene_seconds: float, download_files: bool = True, typed: bool = False) -> None:
    """The page's side of ``--app``: add ``scenes`` scenes through gradio_client, with the live view read as a page
    reads it, noting when each frame arrives (seconds from Add scene); then time Prepare story bundle, loading that
    bundle in a second tab and Undo (last, so a one-scene story still has a bundle). Prints one JSON line a scene and
    one for the story operations, then stays (its story kept) until a line comes in. ``typed``: before each later
    scene the prompt is typed into the box first (its input event, then a pause of ``TYPING_PAUSE_S``), as a person
    does, so the app prepares the switch before Add scene."""
    import re

    from gradio_client import Client, handle_file

    from ui.live_feed import read_part  # the live view's parser, loaded now: not on the first scene's clock

    def bundle_file(output):  # a path, an update holding one, or (files not downloaded) the server's file data
        output = output.get("value", output) if isinstance(output, dict) else output
        return output["path"] if isinstance(output, dict) else output

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line a request otherwise
    prompts = story_prompts(scenes)
    client = Client(url, verbose=False, download_files=download_files)
    other = live = None
    try:
        # a page sends queued events before its first Add scene: its load event, and the prompt box's typing event
        # (which does nothing before the first scene); so does this client, off the clock, so that the first
        # scene's seconds are not those of the client's first request through the queue
        client.predict(prompts[0], 0, api_name="/prepare_scene")
        for index, prompt in enumerate(prompts):
            if typed and index:  # the box's input event returns after the app's pause in typing; then Enter
                client.predict(prompt, index, api_name="/prepare_scene")  # (the seed field: this scene's)
                time.sleep(TYPING_PAUSE_S)
            clock, submitted = time.perf_counter(), time.monotonic()  # (monotonic: the server's clock too)
            job = client.submit(prompt=prompt, seconds=scene_seconds, seed=index, api_name="/add_scene")
            updates = []
            for update in _as_they_come(job, clock):
                updates.append(update)
                shown = re.search(r'<img src="([^"]+)"', str(update[2][0]))
                if live is None and shown:  # the page's <img> connects as soon as it is shown
                    live = _LiveViewReader(url, shown.group(1), read_part)
            job.result()
            if live is None:
                raise RuntimeError("no update showed the live view")
            arrivals = live.scene_frames(index)
            print(json.dumps({"session_hash": client.session_hash, "scene": {
                "frame_arrivals": [at - submitted for at in arrivals], "submitted": submitted,
                "first_arrival": arrivals[0] if arrivals else None, "turn_seconds": time.perf_counter() - clock,
                "arrivals": [at for _, at, _ in updates], "last_arrival": updates[-1][1] if updates else submitted,
            }}), flush=True)
        operations: dict = {}
        sys.stdin.readline()  # the server has read the last scene
        clock = time.perf_counter()
        bundle = bundle_file(client.predict(api_name="/story_bundle"))
        operations["bundle_seconds"] = time.perf_counter() - clock
        other = Client(url, verbose=False)
        clock = time.perf_counter()
        other.predict(handle_file(str(bundle)), api_name="/load_story")
        operations["load_seconds"] = time.perf_counter() - clock
        clock = time.perf_counter()
        client.predict(api_name="/undo")
        operations["undo_seconds"] = time.perf_counter() - clock
        print(json.dumps({"session_hash": client.session_hash, "operations": operations}), flush=True)
        sys.stdin.readline()  # the server reads the story's scenes before the client leaves (and its story goes)
    finally:
        client.close()
        for closing in (other, live):
            if closing is not None:
                closing.close()


# --- a long story on the CPU (embedded model): does a turn cost the same at scene 200 as at scene 1? -----------
LONG_STORY = [
    "A man in a red shirt walks along the beach.",
    "The man waves at a woman in a yellow dress.",
    "Later, the man runs through a snowy field.",
    "The woman in yellow walks in the park with an orange dog.",
    "He jumps in the desert.",
    "The dog sits in the room.",
]


def _cpu_seconds(process) -> float:
    """CPU seconds ``process`` (a psutil.Process) has used, its threads and its finished ffmpeg runs included: what a
    turn costs, whatever else the machine runs beside it (wall-clock turns on a shared CPU also count the others)."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _ratio_of_means(values: list[float]) -> dict:
    return {"first10_mean": statistics.mean(values[:10]), "last10_mean": statistics.mean(values[-10:]),
            "last10_over_first10": statistics.mean(values[-10:]) / statistics.mean(values[:10])}


def long_story_run(args) -> dict:
    """A storyworld story of ``--scenes`` scenes of ``--scene-seconds`` through StorySession, on the CPU. A turn is
    one scene plus what the app's refresh does (join the segments into the story mp4, the mapping, the panels'
    snapshots). Reports the turn times (first and last 10), the time of a turn beyond making its frames (denoise,
    commit and decode), host RSS growth, and undo and load at the end."""
    import tempfile

    import psutil

    from iamflow.config import load_config
    from iamflow.engine.streams import StageTimer
    from iamflow.session import Runtime, StorySession

    torch.set_num_threads(max(1, args.threads))
    runtime = Runtime.load(load_config(preset=EMBEDDED_PRESET))
    process = psutil.Process()
    work = Path(tempfile.mkdtemp(prefix="iamflow-long-story-"))
    session = StorySession(runtime, video_dir=work / "video")
    session.timer = StageTimer(torch.device("cpu"))
    frame_stages = {"denoise", "commit", "decode"}
    # every stage of the model's own work at a turn (the switch's re-cache, the prompt's encoding, memory)
    model_stages = frame_stages | {"re-cache", "text encoding", "memory retrieval and write", "memory scoring"}
    turns, beyond, beyond_model, rss, cpu, stage_turns = [], [], [], [], [], []
    rss_start = process.memory_info().rss
    for index in range(args.scenes):
        started, cpu_started = time.perf_counter(), _cpu_seconds(process)
        for _ in session.add_scene(LONG_STORY[index % len(LONG_STORY)], seconds=args.scene_seconds, seed=index):
            pass
        refresh_started = time.perf_counter()
        view = work / f"story-{index % 2}"  # the app's refresh: the story mp4, mapping.json, the panels
        view.mkdir(exist_ok=True)
        session.video.join(view / "story.mp4")
        (view / "mapping.json").write_text(json.dumps(session.mapping()))
        session.memory_view(), session.memory_snapshot(), session.registry_snapshot()
        turn = time.perf_counter() - started
        stages = session.timer.take()
        frames = sum(host for name, host, _ in stages if name in frame_stages)
        per_stage = {}
        for name, host, _ in stages:
            per_stage[name] = per_stage.get(name, 0.0) + host
        per_stage["refresh (join, mapping, panels)"] = time.perf_counter() - refresh_started
        stage_turns.append(per_stage)
        turns.append(turn)
        cpu.append(_cpu_seconds(process) - cpu_started)
        beyond.append(turn - frames)
        beyond_model.append(turn - sum(host for name, host, _ in stages if name in model_stages))
        rss.append(process.memory_info().rss)
        if index % 10 == 9:
            logger.info("scene %d: turn %.2f s, beyond frames %.2f s, RSS %.0f MiB", index + 1, turn, turn - frames,
                        rss[-1] / 2**20)
    session._settle()
    chunk_files = sum(p.stat().st_size for p in session.latents.files() + session.chunk_queries.files())
    chunks_in_ram = session.latents.held_bytes() + session.chunk_queries.held_bytes()
    archive_in_ram = sum(r.latent is not None or r.thumbnail is not None for r in session.bank.archive.values())
    started = time.perf_counter()
    saved = session.save(work / "saved")
    save_s = time.perf_counter() - started
    started = time.perf_counter()
    session.undo_last_scene()
    undo_s = time.perf_counter() - started
    for _ in session.add_scene(LONG_STORY[0], seconds=args.scene_seconds, seed=args.scenes - 1):
        pass  # (the rest of undo's work is done when the next scene rebuilds the cache and the decoder)
    undo_and_redo = time.perf_counter() - started
    started = time.perf_counter()
    loaded = StorySession.load(saved, runtime, video_dir=work / "loaded")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in loaded.add_scene(LONG_STORY[1], seconds=args.scene_seconds, seed=12345):
        pass
    first_scene_after_load = time.perf_counter() - started
    first, last = turns[: min(10, len(turns))], turns[-min(10, len(turns)):]
    return {
        "mode": "long story (CPU, storyworld)", "scenes": args.scenes, "scene_seconds": args.scene_seconds,
        "threads": torch.get_num_threads(), "video_frames": session.num_video_frames, "chunks": len(session.latents),
        "turn_first10_mean_s": statistics.mean(first), "turn_last10_mean_s": statistics.mean(last),
        "last10_over_first10": statistics.mean(last) / statistics.mean(first),
        "turn_cpu_seconds": _ratio_of_means(cpu) if len(cpu) >= 20 else None,
        "beyond_frames_first10_mean_s": statistics.mean(beyond[: len(first)]),
        "beyond_frames_last10_mean_s": statistics.mean(beyond[-len(last):]), "beyond_frames_max_s": max(beyond),
        "beyond_model_first10_mean_s": statistics.mean(beyond_model[: len(first)]),
        "beyond_model_last10_mean_s": statistics.mean(beyond_model[-len(last):]),
        "beyond_model_max_s": max(beyond_model),
        "rss_growth_after_scene_10_mib": (rss[-1] - rss[min(9, len(rss) - 1)]) / 2**20,
        "rss_growth_mib": (rss[-1] - rss_start) / 2**20, "chunk_files_mib": chunk_files / 2**20,
        "chunks_in_ram_mib": chunks_in_ram / 2**20, "archived_frames": len(session.bank.archive),
        "archived_frames_in_ram": archive_in_ram, "save_s": save_s,
        "undo_s": undo_s, "undo_then_next_scene_s": undo_and_redo,
        "load_s": load_s, "first_scene_after_load_s": first_scene_after_load,
        "replayed_ops_after_load": getattr(loaded, "replayed_ops", None),
        "decoded_latent_frames_after_load": loaded.decoded_latent_frames,
        "segments_mib": sum(p.stat().st_size for p in (work / "video").glob("*.ts")) / 2**20,
        "turns_s": [round(t, 3) for t in turns],
        # each stage's host seconds a turn, first 10 and last 10 turns: which part, if any, grows with the story
        "stage_seconds": {name: [round(statistics.mean(t.get(name, 0.0) for t in part), 4)
                                 for part in (stage_turns[: len(first)], stage_turns[-len(last):])]
                          for name in sorted({n for t in stage_turns for n in t})},
    }


def _segments_written(session) -> tuple[int | None, str | None]:
    """How many of the story's video segments were written, or (None, why not) when one failed."""
    from iamflow.video import VideoError

    try:
        return len(session.video.segments()) if session.video is not None else 0, None
    except VideoError as err:
        logger.warning("the story's segments were not written, so this run left that work out: %s", err)
        return None, str(err)


def _story_host_bytes(session) -> dict:
    """Bytes of RAM a session's story holds in its chunks' latents and queries and its archived frames."""
    def held(store) -> int:
        if hasattr(store, "held_bytes"):
            return store.held_bytes()
        return sum(t.numel() * t.element_size() for t in store)

    def nbytes(value) -> int:
        if value is None:
            return 0
        return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else value.nbytes

    records = session.bank.archive.values()
    return {"latents": held(session.latents), "queries": held(session.chunk_queries),
            "archive": sum(nbytes(r.latent) + nbytes(r.thumbnail) + nbytes(r.queries) for r in records),
            "archived_frames": len(records)}


def _device_list(text: str) -> list[str]:
    """``--devices cuda:0,cuda:1`` as runtime.devices."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=WAN_PRESET)
    parser.add_argument("--config", default=None)
    parser.add_argument("--override", action="append", default=[], help="section.key=value")
    parser.add_argument("--random-weights", action="store_true", help="required: speed does not depend on weights")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer blocks")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--warmup-chunks", type=int, default=6)
    parser.add_argument("--long-chunks", type=int, default=0)
    parser.add_argument("--no-vae", dest="vae", action="store_false")
    parser.add_argument("--no-text-encoder", dest="text_encoder", action="store_false")
    parser.add_argument("--sdpa", default="auto", choices=["auto", "cudnn", "flash", "efficient"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--session", action="store_true",
                        help="time the StorySession loop (what the app runs) instead of the engine loop")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--scene-seconds", type=float, default=6.0)
    parser.add_argument("--long-scene-seconds", type=float, default=0.0,
                        help="after the story, one scene this long: its early and late chunk times")
    parser.add_argument("--long-story", action="store_true",
                        help="CPU, embedded model: a story of --scenes scenes of --scene-seconds through StorySession; "
                             "turn time first vs last 10, RSS growth, undo and load at the end")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (--long-story)")
    parser.add_argument("--fp8", action="store_true", help="FP8 linears (runtime.fp8)")
    parser.add_argument("--decoder", default=CodecConfig.decoder, choices=CodecConfig.DECODERS)
    parser.add_argument("--compile-decoder", action="store_true", help="torch.compile the Wan VAE decoder")
    parser.add_argument("--wan-convolutions", default=CodecConfig.wan_convolutions, choices=CodecConfig.CONVOLUTIONS,
                        help="codec.wan_convolutions: the Wan VAE decoder's causal convolutions as 3-D or as 2-D per tap "
                             "(auto: 2-D for an eager decoder on a GPU, 3-D compiled)")
    parser.add_argument("--wan-convolutions-also", action="store_true",
                        help="--session: the same story again with the Wan VAE decoder's convolutions the other way")
    parser.add_argument("--overlap", dest="overlap", action="store_true", default=None,
                        help="decode each chunk while the next is made, also on one device (default: with two devices)")
    parser.add_argument("--no-overlap", dest="overlap", action="store_false",
                        help="decode each chunk before the next is made (the loop's serial order; default on one device)")
    parser.add_argument("--text-encoder-device", default=RuntimeConfig.text_encoder_device,
                        choices=RuntimeConfig.TEXT_ENCODER_DEVICES)
    parser.add_argument("--devices", default="", metavar="DIT,DECODER",
                        help="--session, --app: runtime.devices, e.g. cuda:0,cuda:1 (cuda:0,cuda:0: the decode thread on one GPU)")
    parser.add_argument("--first-chunk-ahead", action="store_true",
                        help="tell the story a second time queuing each scene's second chunk before its first is handed out")
    parser.add_argument("--whole-first-chunk", action="store_true",
                        help="hand a scene's first chunk out whole (StorySession's default), not its first frames "
                             "before the rest (the app's)")
    parser.add_argument("--whole-first-chunk-also", action="store_true",
                        help="--session: the same story again with the other way of handing out a first chunk")
    parser.add_argument("--prepare-switch", action="store_true",
                        help="tell the story a second time preparing each switch before its scene (StorySession."
                             "prepare_switch, what the app does while the next prompt is typed)")
    parser.add_argument("--overlap-also", action="store_true",
                        help="--session: the same story again with the decode overlap the other way (on one GPU the "
                             "overlap fills a pipeline after each scene's first chunk: its p99 interval)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="record each cached pass a story repeats as a CUDA graph and replay it (runtime.cuda_graphs)")
    parser.add_argument("--cuda-graphs-also", action="store_true",
                        help="--session: tell the same story again with the CUDA graphs the other way (and, with "
                             "--prepare-switch / --first-chunk-ahead, those variants too)")
    parser.add_argument("--sync-debug", action="store_true", help="report every host wait for the GPU in the story")
    parser.add_argument("--fail-on-recompile", action="store_true",
                        help="--session: stop at a compiled region the warm-up missed, with the guard that failed")
    parser.add_argument("--decoders", action="store_true",
                        help="time the Wan VAE's streaming decode of a chunk as it is, with cudnn.benchmark, "
                             "channels-last and compiled, and the tiny decoder")
    parser.add_argument("--decoder-convs", action="store_true",
                        help="time the Wan VAE decoder's causal 3-D convolutions as 3-D and as 2-D convolutions per "
                             "temporal tap, call by call and a whole chunk's decode")
    parser.add_argument("--app", action="store_true",
                        help="the app in this process driven through gradio_client, its live view read as a page reads it: "
                             "seconds to the first frame, frames received a second"
                             " (runs on a CPU too with --preset storyworld)")
    parser.add_argument("--switch-interval", type=float, default=0.0, metavar="SECONDS",
                        help="--app: Python's thread switch interval in the server's process (sys.setswitchinterval)")
    parser.add_argument("--client-no-download", action="store_true",
                        help="--app: the page's client takes each update as it comes, without fetching its files")
    parser.add_argument("--sample-stacks", action="store_true",
                        help="--app: every step of every chunk on one clock, the server's event-loop lag, and what "
                             "each server thread was doing (sampled every 10 ms)")
    parser.add_argument("--typed-prompts", action="store_true",
                        help="--app: the client types each later prompt into the box and pauses before Add scene, as a "
                             "person does (the app prepares the switch in that pause)")
    parser.add_argument("--app-only", action="store_true", help="--app without the same scenes through StorySession alone")
    parser.add_argument("--app-client", default=None, metavar="URL", help=argparse.SUPPRESS)  # --app's page side
    parser.add_argument("--segment-stages", action="store_true",
                        help="per-chunk video stages on this host: the story segment's H.264 encode, and Gradio's probe and "
                             "mux of it (what a streamed gr.Video adds; the live view no longer uses one), for noise and "
                             "for a panned picture")
    parser.add_argument("--fp8-check", action="store_true",
                        help="FP8 against bf16 on one chunk: relative error, and chunk seconds eager (and with --compile)")
    parser.add_argument("--attention-backends", action="store_true",
                        help="time the DiT's attention calls under each SDPA backend (no model)")
    parser.add_argument("--text-encoders", action="store_true",
                        help="time one prompt's encoding and the GPU memory for each umT5 placement")
    args = parser.parse_args(argv)
    try:  # the command line's section.key=value strings, read once
        args.overrides = parse_overrides(args.override)
    except ConfigError as err:
        parser.error(f"--override: {err}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.app_client:
        app_client(args.app_client, args.scenes, args.scene_seconds, download_files=not args.client_no_download,
                   typed=args.typed_prompts)
        return
    if args.long_story:
        result = long_story_run(args)  # the embedded model on the CPU
    elif args.segment_stages:
        result = segment_stages_run(args)  # no model: the host's ffmpeg and Gradio
    elif args.app and args.preset == EMBEDDED_PRESET:
        result = app_run(args)  # the embedded model: a CPU is enough
    elif not torch.cuda.is_available():
        parser.error("the benchmark needs a CUDA GPU")
    elif not args.random_weights:
        parser.error("pass --random-weights: the benchmark measures speed with random weights of the preset's shape")
    elif args.app:
        result = app_run(args)
    elif args.session:
        result = session_run(args)
    elif args.decoders:
        result = decoder_run(args)
    elif args.decoder_convs:
        result = decoder_convs_run(args)
    elif args.attention_backends:
        result = attention_backends_run(args)
    elif args.text_encoders:
        result = text_encoder_run(args)
    elif args.fp8_check:
        result = fp8_run(args)
    elif args.sdpa == "auto":
        result = run(args)
    else:
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel(_sdpa_backends()[args.sdpa]):
            result = run(args)
        result["sdpa_backend"] = args.sdpa
    text = json.dumps(result, indent=2)
    print(text)  # the JSON result is the command's output
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
