"""Building the runtime of a preset: the DiT, its codec and its text encoder, on the right device and dtype."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from iamflow.config import Config, ConfigError
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(config: Config) -> torch.device:
    wanted = config.runtime.device
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device={wanted} but no CUDA device is available here; use runtime.device=cpu")
    return torch.device(wanted)


def resolve_dtype(config: Config, device: torch.device) -> torch.dtype:
    if config.runtime.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[config.runtime.dtype]


def build_runtime(config: Config):
    from iamflow.session import Runtime

    builders = {"storyworld": _storyworld, "tiny": _tiny, "wan2.1-t2v-1.3b": _wan}
    engine, codec, text_encoder = builders[config.preset](config)
    logger.info("runtime ready: preset %s on %s (%s)", config.preset, engine.device, engine.model.dtype)
    return Runtime(config, engine, codec, text_encoder)


def _storyworld(config: Config):
    from iamflow.storyworld.model import load_storyworld

    model, codec, text_encoder, shipped = load_storyworld(device=resolve_device(config))
    # the network's shape is the shipped model's; sampler, memory, agent and cache choices stay the user's
    config.model, config.video = shipped.model, shipped.video
    config.cache.frames_per_chunk = shipped.cache.frames_per_chunk
    return Engine(model, config), codec, text_encoder


def _tiny(config: Config):
    """Random weights of the tiny shape with a tiny random Wan VAE and the real MiniLM text encoder (tests)."""
    from diffusers import AutoencoderKLWan

    from iamflow.engine.codec import WanVAECodec
    from iamflow.engine.text_encoder import MiniLMTextEncoder

    m = config.model
    if m.text_dim != 384:
        raise ConfigError(f"the tiny preset reads MiniLM features: model.text_dim must be 384 (got {m.text_dim})")
    torch.manual_seed(config.runtime.seed)
    model = CausalWanModel(m).eval()
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=m.in_channels, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
        temperal_downsample=[False, True, True], latents_mean=[0.0] * m.in_channels, latents_std=[1.0] * m.in_channels,
    ).eval()
    device = resolve_device(config)
    codec = WanVAECodec(vae.to(device), fps=config.video.fps)
    return Engine(model.to(device), config), codec, MiniLMTextEncoder(text_len=m.text_len)


def check_weights(config: Config) -> None:
    """Fail early, naming the key to set, when a preset's weights are not where the config says."""
    if config.preset != "wan2.1-t2v-1.3b":
        return
    w = config.weights
    decoder_key = "tiny_decoder_path" if config.codec.decoder == "tiny" else "vae_path"  # the Wan VAE only decodes
    missing = [k for k in ("generator_ckpt", "text_encoder_path", decoder_key) if not getattr(w, k)]
    if missing:
        raise ConfigError(
            "the wan2.1-t2v-1.3b preset needs local weights: set "
            + ", ".join(f"weights.{k}" for k in missing)
            + " (e.g. --override weights.generator_ckpt=/path/to/Wan2.1-T2V-1.3B), or use the embedded preset storyworld"
        )
    for key in ("generator_ckpt", "text_encoder_path", "vae_path", "lora_ckpt", "tiny_decoder_path"):
        value = getattr(w, key)
        if value and not Path(value).exists():
            raise ConfigError(f"weights.{key} points to {value}, which does not exist")


def wan_codec(config: Config, device: torch.device, dtype: torch.dtype):
    """The Wan preset's decoder, as `codec.decoder` says: the Wan VAE (default) or the tiny TAEHV decoder."""
    if config.codec.decoder == "tiny":
        from iamflow.engine.tiny_decoder import TinyDecoderCodec

        path = config.weights.tiny_decoder_path
        return TinyDecoderCodec.from_file(path, device=device, dtype=dtype, fps=config.video.fps)
    from iamflow.engine.codec import WanVAECodec

    return WanVAECodec.from_pretrained(config.weights.vae_path, device=device, dtype=dtype)


def _wan(config: Config):
    from iamflow.engine.checkpoints import apply_lora, load_generator
    from iamflow.engine.text_encoder import UMT5TextEncoder

    check_weights(config)
    w = config.weights
    device = resolve_device(config)
    dtype = resolve_dtype(config, device)
    model = CausalWanModel(config.model)
    load_generator(model, w.generator_ckpt, key=w.generator_key)
    if w.lora_ckpt:
        model = apply_lora(model, w.lora_ckpt, rank=w.lora_rank, alpha=w.lora_alpha)
    model = model.to(device).to_inference_dtype(dtype).eval()
    if device.type == "cuda":
        model.compile_blocks()
    text_encoder = UMT5TextEncoder.from_pretrained(
        w.text_encoder_path, tokenizer_path=w.tokenizer_path or None, text_len=config.model.text_len, device=device, dtype=dtype
    )
    return Engine(model, config), wan_codec(config, device, dtype), text_encoder
