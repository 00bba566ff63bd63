"""The runtime: the loaded models of a preset (the DiT, its codec, its text encoder) on the right device and dtype,
shared by every story of the process, and the builders that make it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import numpy as np
import torch

from iamflow.config import (EMBEDDED_PRESET, RULES_BACKEND, TINY_PRESET, WAN_PRESET, Config, ConfigError,
                            load_config)
from iamflow.engine.codec import to_uint8, to_uint8_tensor
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel, TextConditioning
from iamflow.engine.streams import DecodeStage, DeviceStreams
from iamflow.memory.bank import text_keys

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(config: Config) -> torch.device:
    """The DiT's device: the first of ``runtime.devices`` when that is set (it wins over runtime.device), else
    ``runtime.device``."""
    return resolve_devices(config)[0]


def resolve_devices(config: Config) -> tuple[torch.device, torch.device | None]:
    """(the DiT's device, the decode device or None): ``runtime.devices`` when set (it wins over runtime.device;
    two entries split the work), else ``runtime.device`` alone. A device that is not here is a ConfigError."""
    names = config.runtime.devices
    if not names:
        return device_here(config.runtime.device, "runtime.device"), None
    devices = [device_here(name, "runtime.devices") for name in names]  # (one or two: checked by the config)
    return devices[0], (devices[1] if len(devices) == 2 else None)


def device_here(wanted: str, key: str) -> torch.device:
    """The device ``wanted`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) as set in ``key``; one that this machine does
    not have is a ConfigError naming ``key`` and what to write instead."""
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{key} names {wanted} but no CUDA device is available here; use {key} cpu instead")
        index = int(wanted[5:]) if wanted.startswith("cuda:") else 0
        if index >= count:
            raise ConfigError(f"{key} names {wanted} but this machine has {count} CUDA device"
                              f"{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1}); list only those")
        return torch.device("cuda", index)
    return torch.device(wanted)


def resolve_dtype(config: Config, device: torch.device) -> torch.dtype:
    if config.runtime.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[config.runtime.dtype]


class Runtime:
    """The loaded models, shared by every story of the process. ``lock`` serialises device work.

    With two ``runtime.devices`` the DiT and its KV cache are on the first, the codec and the text encoder on the
    second, and ``decode_stage`` (a thread fed through a bounded queue) decodes each chunk there while the host
    queues the next one on the first. One device: no thread, ``decode_stage`` is None."""

    # prompts kept encoded: every layer's cross-attention K/V for the few in use (a Wan prompt's is ~94 MB of the
    # DiT's device: 30 layers x 512 tokens), the text encoder's output for many (its own cache: a prompt's positions
    # only, ~0.3 MB for a Wan prompt of 40 tokens), the memory scorer's keys (a few KB) for more; so the device memory
    # a story's prompts hold stays the same however many scenes it has
    KV_CACHE_SIZE = 2
    KEY_CACHE_SIZE = 128

    def __init__(self, config: Config, engine: Engine, codec, text_encoder):
        self.config = config
        self.engine = engine
        self.codec = codec
        self.text_encoder = text_encoder
        self.lock = threading.RLock()
        self.streams = DeviceStreams(engine.device)
        self.decode_stage: DecodeStage | None = None
        if len(config.runtime.devices) == 2:
            self.decode_stage = DecodeStage(engine.device, codec.device, self._decode_uint8)
        self._kv_cache: dict[str, tuple[TextConditioning, int]] = {}
        self._cache_lock = threading.Lock()
        self._key_cache: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def close(self) -> None:
        """End the decode thread (two devices) once the chunks queued are decoded."""
        if self.decode_stage is not None:
            self.decode_stage.close()

    @classmethod
    def load(cls, config: Config | None = None) -> "Runtime":
        return build_runtime(config or load_config(preset=EMBEDDED_PRESET))

    def encode(self, text: str) -> tuple[TextConditioning, int]:
        """A prompt -> (its cross-attention K/V for every layer, number of real tokens). Cached: the K/V of the last
        ``KV_CACHE_SIZE`` prompts asked for; the text encoder keeps its output of many more (the K/V of one of those
        is made again from it, the same bits, without running the text encoder)."""
        with self._cache_lock:  # (the caches are shared by the stories of the process; held for bookkeeping only)
            found = self._kv_cache.pop(text, None)
            if found is not None:
                self._kv_cache[text] = found  # (the most recent last)
                return found
        context, lengths = self.text_encoder.encode_with_lengths([text], device=self.device)  # [1, text_len, dim]
        found = (self.engine.encode_text(context), lengths[0])
        with self._cache_lock:
            self._kv_cache[text] = found
            while len(self._kv_cache) > self.KV_CACHE_SIZE:
                self._kv_cache.pop(next(iter(self._kv_cache)))
        return found

    def text_keys(self, text: str, layers: list[int]) -> torch.Tensor:
        """The memory scorer's keys of a prompt on the host, [layers, heads, D]; cached (made once, the host then
        scores frames without reading from the device)."""
        key = (text, tuple(layers))
        if key not in self._key_cache:
            condition, length = self.encode(text)
            self._key_cache[key] = text_keys(condition.kv, layers, length)
            if len(self._key_cache) > self.KEY_CACHE_SIZE:  # a few KB each
                self._key_cache.pop(next(iter(self._key_cache)))
        return self._key_cache[key]

    def warm_up(self) -> None:
        """What a first scene would otherwise pay in front of the viewer: the agent's models loaded, the decoder's
        kernels chosen (a chunk decoded and thrown away)."""
        from iamflow.agent import models

        started = time.perf_counter()
        if self.config.agent.backend == RULES_BACKEND:
            models.spacy_pipeline()
            models.sentence_encoder()
            from iamflow.agent import EntityAgent

            # a throwaway agent reads two prompts: the parser's, the encoder's and the noun classifier's first calls
            # (prototypes, lazily built caches) happen here, not in the first scene's first frame
            agent = EntityAgent(backend=RULES_BACKEND)
            agent.observe("A young man in a grey wool coat walks his dog through a park at sunset.")
            agent.observe("The man sits on a bench and a woman in a red dress approaches him.")
        compiled_decoder = self.config.runtime.compile_decoder and hasattr(self.codec, "vae")
        if compiled_decoder:
            logger.info("compiling the Wan VAE decoder (once per process; about a minute and a half)")
            torch.compiler.set_stance("default")
            self.codec.vae.decoder.compile(dynamic=False)
        channels, height, width = self.engine.latent_shape
        latents = torch.zeros(1, channels, self.config.cache.frames_per_chunk, height, width, device=self.device)
        # A compiled decoder goes through a story's opening twice, each time with a fresh decoder: Dynamo may give up
        # on the decoder's whole forward partway through the first (torch 2.11 on an H100 does) and compile its
        # pieces one by one from then on; the second opening compiles the pieces' variants for a decoder that has
        # seen nothing yet, which a story's first frame (and a replay after undo or load) would otherwise meet
        # uncompiled, in front of the viewer (0.2 s of the first frame; `bench --fail-on-recompile` found it).
        openings = 2 if compiled_decoder else 1
        for _ in range(openings):
            decoder = self.codec.stream_decoder()
            if self.decode_stage is None and self.streams.cuda:
                # the way a story decodes on one GPU (on the decode stream, frames copied to pinned host memory, a
                # first chunk in two parts where the app hands its first frames out early, then a continuing chunk):
                # that stream's memory and the pinned buffers are set aside now, not during a first scene (0.2 s of
                # its first frame when the warm-up decoded on the host's stream only)
                parts = [latents[:, :, :1], latents[:, :, 1:]] \
                    if getattr(decoder, "decodes_in_parts_exactly", False) else [latents]
                for part in parts + [latents]:
                    self.decode_to_host(decoder, part).wait()
            else:
                for _ in range(2):  # the video's first chunk, then a continuing one
                    self.decode_frames(decoder, latents)
        logger.info("agent and decoder warm (%.1f s)", time.perf_counter() - started)

    def decode_frames(self, decoder, latents: torch.Tensor) -> np.ndarray:
        """Decode on the current stream (two devices: on the decode thread, behind the chunks queued) and wait for
        the frames (warm-up, replays, loading)."""
        if self.decode_stage is not None:
            # through the decode thread like every chunk: cuDNN keeps its chosen convolution algorithms per thread,
            # so a decoder's state made on another thread would be computed with other kernels (other bits)
            return self.decode_stage.submit(decoder, latents).wait().numpy()
        return to_uint8(self._decode(decoder, latents))

    def _decode(self, decoder, latents: torch.Tensor) -> torch.Tensor:
        dtype = getattr(self.codec, "dtype", torch.float32)
        return decoder.decode(latents.to(self.codec.device, dtype))  # [1, 3, T, H, W]

    def _decode_uint8(self, decoder, latents: torch.Tensor) -> torch.Tensor:
        return to_uint8_tensor(self._decode(decoder, latents))

    @property
    def split(self) -> bool:
        """The decode runs on a device (and thread) of its own."""
        return self.decode_stage is not None

    def decode_to_host(self, decoder, latents: torch.Tensor, stage=None):
        """Decode on the decode stream and start copying the uint8 frames [T, H, W, 3] to the host: a HostCopy
        (two devices: a DecodeJob of the decode stage; both have ``wait()``). ``stage(name)``: the benchmark's
        timer, entered on the decode stream."""
        if self.decode_stage is not None:
            return self.decode_stage.submit(decoder, latents, stage)
        stage = stage or (lambda name: contextlib.nullcontext())
        streams = self.streams
        with streams.side("decode_stream", latents):
            with stage("decode"):
                frames = to_uint8_tensor(self._decode(decoder, latents))
            with stage("frame copy to host"):
                return streams.to_host(frames, stream="decode_stream")


def build_runtime(config: Config, random_weights: bool = False) -> Runtime:
    """The runtime of ``config.preset``; ``random_weights`` (Wan preset only): its shapes with random weights."""
    if random_weights and config.preset != WAN_PRESET:
        raise ConfigError(f"random weights are for the {WAN_PRESET} preset (the benchmark)")
    if config.runtime.cuda_graphs and (device := resolve_devices(config)[0]).type != "cuda":
        raise ConfigError(f"runtime.cuda_graphs needs the model on a CUDA GPU (it would run on {device}); "
                          "set runtime.cuda_graphs=false")
    builders = {EMBEDDED_PRESET: _storyworld, TINY_PRESET: _tiny, WAN_PRESET: _wan}
    engine, codec, text_encoder = builders[config.preset](config, random_weights) if random_weights else \
        builders[config.preset](config)
    runtime = Runtime(config, engine, codec, text_encoder)
    if engine.device.type == "cuda":
        # the decoder's convolutions: the fastest algorithm per shape, chosen once (per thread: cuDNN keeps its
        # choices in a thread-local cache, consulted even after benchmarking is turned off)
        torch.backends.cudnn.benchmark = config.runtime.cudnn_benchmark
    # on every device: the embedded model's first scene on a CPU otherwise pays for the agent's models and the
    # decoder's first calls (its first frame in the app 0.89 -> 0.47 s on a 2-core CPU, for 0.5 s more loading,
    # which the app does in the background before the first prompt)
    runtime.warm_up()
    if engine.device.type == "cuda":
        if getattr(engine.model, "compiled", False) or (config.runtime.compile_decoder and hasattr(codec, "vae")):
            # everything a story repeats is compiled now; a shape not warmed runs eager rather than compiling
            # in front of the viewer
            torch.compiler.set_stance("eager_on_recompile")
    logger.info("runtime ready: preset %s on %s (%s)%s", config.preset, engine.device, engine.model.dtype,
                f", decoding on {codec.device} in a thread of its own" if runtime.split else "")
    return runtime


def _storyworld(config: Config):
    from iamflow.storyworld.model import load_storyworld

    device, second = resolve_devices(config)
    model, codec, text_encoder, shipped = load_storyworld(device=device)
    if second is not None:  # the decoder and the text encoder on the decode device
        codec.to(second)
        text_encoder.model.to(second)
    # the network's shape is the shipped model's; sampler, memory, agent and cache choices stay the user's
    live_max_seconds = config.video.live_max_seconds  # (not geometry: the user's)
    config.model, config.video = shipped.model, shipped.video
    config.video.live_max_seconds = live_max_seconds
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
    device, second = resolve_devices(config)
    decoder_device = second or device
    codec = WanVAECodec(vae.to(decoder_device), fps=config.video.fps).use_convolutions(
        wan_convolutions(config, decoder_device))
    text_encoder = MiniLMTextEncoder(text_len=m.text_len, device=second or "cpu")
    return Engine(model.to(device), config), codec, text_encoder


def check_weights(config: Config) -> None:
    """Fail early, naming the key to set, when a preset's weights are not where the config says."""
    if config.preset != WAN_PRESET:
        return
    w = config.weights
    decoder_key = "tiny_decoder_path" if config.codec.decoder == "tiny" else "vae_path"  # the Wan VAE only decodes
    missing = [k for k in ("generator_ckpt", "text_encoder_path", decoder_key) if not getattr(w, k)]
    if missing:
        raise ConfigError(
            f"the {WAN_PRESET} preset needs local weights: set "
            + ", ".join(f"weights.{k}" for k in missing)
            + " (e.g. --override weights.generator_ckpt=/path/to/Wan2.1-T2V-1.3B), "
            + f"or use the embedded preset {EMBEDDED_PRESET}"
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

    codec = WanVAECodec.from_pretrained(config.weights.vae_path, device=device, dtype=dtype)
    return codec.use_convolutions(wan_convolutions(config, device))


def wan_convolutions(config: Config, device: torch.device | str) -> str:
    """``codec.wan_convolutions`` for a decoder on ``device``: "auto" is "2d" for an eager decoder on a GPU (an H100
    story, 2026-12-06: decode 0.328 -> 0.278 s a chunk, 19.1 -> 20.5 FPS), "3d" for a compiled one (0.159 s against
    0.176 s a chunk decode on an H200) and on a CPU, where the 2-D form was not measured."""
    choice = config.codec.wan_convolutions
    if choice != "auto":
        return choice
    return "2d" if torch.device(device).type == "cuda" and not config.runtime.compile_decoder else "3d"


def _wan(config: Config, random_weights: bool = False):
    """The Wan2.1-T2V-1.3B runtime from local weights; ``random_weights``: the same shapes with random weights
    (the benchmark: speed does not depend on weight values)."""
    from iamflow.engine.checkpoints import apply_lora, load_generator

    if not random_weights:
        check_weights(config)
    w = config.weights
    device, second = resolve_devices(config)
    dtype = resolve_dtype(config, device)
    started = time.perf_counter()
    if random_weights:
        with torch.device(device):
            model = CausalWanModel(config.model)
    else:
        model = CausalWanModel(config.model)
        load_generator(model, w.generator_ckpt, key=w.generator_key)
        if w.lora_ckpt:
            model = apply_lora(model, w.lora_ckpt, rank=w.lora_rank, alpha=w.lora_alpha)
    model = model.to(device).to_inference_dtype(dtype).eval()
    if config.runtime.fp8:
        to_fp8(model)
    # two devices: the text encoder ("auto": the decode device) and the VAE on the second
    text_encoder = _umt5(config, second or device, dtype, random_weights)
    codec = _wan_vae(config, second or device, dtype, random_weights)
    engine = Engine(model, config)
    logger.info("Wan runtime loaded in %.1f s (DiT on %s, decoder on %s, text encoder: %s)",
                time.perf_counter() - started, device, second or device, config.runtime.text_encoder_device)
    if device.type == "cuda" and config.runtime.compile:
        model.compile_blocks()
        logger.info("compiling the DiT for every pass shape a story uses (once per process; about a minute)")
        context = text_encoder.encode([""]).to(device)
        seconds = engine.warm_up(engine.encode_text(context), score_layers=list(config.memory.score_layers),
                                 recache_sink=config.memory.recache_sink)
        logger.info("the DiT is compiled and warm (%.1f s)", seconds)
        engine.compile_seconds = seconds
    return engine, codec, text_encoder


def to_fp8(model: CausalWanModel) -> CausalWanModel:
    """FP8 linears in the DiT blocks through torchao: activations and weights scaled per row, dynamically.
    The float32 parts (time path, modulations) and everything outside the blocks stay as they are."""
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError as err:
        raise ConfigError("runtime.fp8 needs the torchao package (pip install torchao); or set runtime.fp8=false") from err
    if model.device.type != "cuda":
        raise ConfigError("runtime.fp8 needs a CUDA GPU (Hopper or newer); set runtime.fp8=false")

    def is_bf16_linear(module: torch.nn.Module, name: str) -> bool:
        return isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.bfloat16

    quantize_(model.blocks, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=is_bf16_linear)
    return model


def _umt5(config: Config, device: torch.device, dtype: torch.dtype, random_weights: bool):
    """umT5-XXL placed by ``runtime.text_encoder_device``; random weights (and a stand-in tokenizer) for the bench."""
    from iamflow.engine.text_encoder import UMT5TextEncoder

    place = config.runtime.text_encoder_device
    home = torch.device("cpu") if place in ("cpu", "offload") else device
    if place in ("cuda", "offload") and not torch.cuda.is_available():
        raise ConfigError(f"runtime.text_encoder_device={place} needs a CUDA GPU; use cpu or auto")
    if random_weights:
        from accelerate import init_empty_weights
        from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

        from iamflow.engine.text_encoder import minilm_model_dir

        umt5 = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                          feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                          relative_attention_max_distance=128)
        with init_empty_weights():  # no random initialisation of 5.7 B parameters before they are overwritten
            model = UMT5EncoderModel(umt5)
        # drawn on the GPU when there is one (5.7 B normal draws take the host minutes), then moved home
        draw = device if device.type == "cuda" else home
        model = model.to_empty(device=draw).to(dtype)
        generator = torch.Generator(device=draw).manual_seed(0)
        with torch.no_grad():
            for param in model.parameters():
                param.normal_(0, 0.02, generator=generator)
        model = model.to(home)
        if draw != home:
            torch.cuda.empty_cache()
        # the umT5 tokenizer is not bundled; token counts, not token ids, set the encoder's cost
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_model_dir()))
        encoder = UMT5TextEncoder(model, tokenizer, text_len=config.model.text_len)
    else:
        w = config.weights
        encoder = UMT5TextEncoder.from_pretrained(
            w.text_encoder_path, tokenizer_path=w.tokenizer_path or None, text_len=config.model.text_len,
            device=home, dtype=dtype,
        )
    if place == "offload":
        from accelerate import cpu_offload

        cpu_offload(encoder.model, execution_device=device)
        encoder.execution_device = device
    return encoder


def _wan_vae(config: Config, device: torch.device, dtype: torch.dtype, random_weights: bool):
    from iamflow.engine.codec import WanVAECodec

    if random_weights:
        from diffusers import AutoencoderKLWan

        with torch.device(device):
            vae = AutoencoderKLWan()  # the Wan2.1 VAE's shape
        return WanVAECodec(vae.to(dtype).eval(), fps=config.video.fps).use_convolutions(wan_convolutions(config, device))
    return wan_codec(config, device, dtype)
