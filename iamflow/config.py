"""Typed configuration: presets, YAML files and command-line overrides, validated with messages a user can act on.

A config is a tree of dataclasses. It is built from a preset, then a YAML file is laid over it, then
``section.key=value`` overrides. Every key is checked: an unknown key names the allowed ones, a bad value
names the key, what was given and what is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config value a user gave is wrong; the message says which key and what to change."""


# --- names and limits the whole project shares; each is spelled here and imported everywhere else ---------------

WAN_PRESET = "wan2.1-t2v-1.3b"  # the Wan2.1-T2V-1.3B architecture, with real weights
EMBEDDED_PRESET = "storyworld"  # the embedded CPU model and its shipped weights
TINY_PRESET = "tiny"  # random weights, the Wan architecture in miniature, for tests and smoke runs
RULES_BACKEND = "rules"  # the agent's embedded backend: spaCy noun phrases + MiniLM matching
LLM_BACKEND = "llm"  # a local causal LM lists the characters (a bad answer falls back to rules)
AGENT_BACKENDS = (RULES_BACKEND, LLM_BACKEND)
MEMORY_POLICIES = ("none", "sink", "nam", "iam", "nam-prompt")  # iamflow.memory.policies implements each
TRANSITIONS = ("recache", "soft", "none", "cut")  # iamflow.memory.policies implements each
MAX_PROMPT_CHARS = 4000  # a scene prompt (app, batch modes, StorySession), after its whitespace is tidied
# what the entity agent reads on its own (python -m iamflow.agent, its evaluation): a whole script page may be one
# prompt there; a scene prompt reaches it only after the scene's own limit above
MAX_AGENT_PROMPT_CHARS = 100_000
MAX_SCENE_SECONDS = 120.0  # a scene of a set length (a live one is capped by video.live_max_seconds)
MAX_SEED = 2**63 - 1  # a scene's seed: what torch's generator takes


@dataclass
class ModelConfig:
    """Shape of the causal Wan2.1 DiT. Everything the model builds is derived from these numbers."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_layers: int = 30
    num_heads: int = 12
    patch_size: tuple[int, int, int] = (1, 2, 2)
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    text_len: int = 512
    freq_dim: int = 256
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def validate(self, where: str) -> None:
        if self.dim % self.num_heads:
            raise ConfigError(f"{where}.dim ({self.dim}) must be divisible by {where}.num_heads ({self.num_heads})")
        if self.head_dim % 2 or self.head_dim < 6:
            raise ConfigError(f"{where}: head dim dim/num_heads = {self.head_dim} must be even and at least 6")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ConfigError(f"{where}.patch_size must be three positive integers (got {self.patch_size})")


@dataclass
class VideoConfig:
    """Pixel and latent geometry of the video."""

    height: int = 480
    width: int = 832
    fps: int = 16
    temporal_compression: int = 4
    spatial_compression: int = 8
    live_max_seconds: float = 60.0  # a live scene ("until the next prompt") ends by itself at this length

    @property
    def latent_height(self) -> int:
        return self.height // self.spatial_compression

    @property
    def latent_width(self) -> int:
        return self.width // self.spatial_compression

    def validate(self, where: str) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if value <= 0 or value % (self.spatial_compression * 2):
                raise ConfigError(
                    f"{where}.{name} must be a positive multiple of {self.spatial_compression * 2} (got {value})"
                )
        if not 0 < self.live_max_seconds <= 3600:
            raise ConfigError(f"{where}.live_max_seconds must be above 0 and at most 3600 (got {self.live_max_seconds})")


@dataclass
class SamplerConfig:
    """Few-step flow-matching sampler (Self-Forcing style)."""

    denoising_step_list: list[int] = field(default_factory=lambda: [1000, 750, 500, 250])
    shift: float = 5.0
    num_train_timesteps: int = 1000
    warp_denoising_step: bool = True
    context_noise: int = 0
    # how a step goes on to the next sigma: "fresh" noise (Self-Forcing's sampler, for few-step distilled
    # weights) or the step's own "predicted" noise (an Euler step of the flow ODE, for undistilled weights)
    renoise: str = "fresh"
    # "mixed": the noise is sqrt(1 - f) * the predicted noise + sqrt(f) * fresh noise, f = ``renoise_fresh``
    # (the fresh share of its variance; 1 = "fresh", 0 = "predicted")
    renoise_fresh: float = 0.5
    # classifier-free guidance: v = v(empty prompt) + scale * (v(prompt) - v(empty prompt)) on the first
    # ``guidance_steps`` denoising steps (null: all); 1.0 = off (one model pass a step). Each guided step costs
    # a second pass; weights must have been trained with the empty prompt (storyworld: --text-dropout).
    guidance_scale: float = 1.0
    guidance_steps: int | None = None
    # context guidance: v += (scale - 1) * (v(prompt) - v(prompt, the chunk alone)) on the first
    # ``context_guidance_steps`` steps (null: all); the second pass sees no cache (no memory, sink or window), so
    # the step leans harder on what the context shows: a character's look, kept when the prompt does not say it.
    # 1.0 = off. Each such step costs a pass over the chunk's own tokens; a chunk with no context skips it.
    context_guidance_scale: float = 1.0
    context_guidance_steps: int | None = None
    # in a story session, context guidance only on the first ``context_guidance_chunks`` chunks of a scene (null:
    # all of them); the chunks after it see the scene's own first chunks in their window
    context_guidance_chunks: int | None = None

    RENOISE = ("fresh", "predicted", "mixed")

    @property
    def guided_steps(self) -> int:
        """How many of the first denoising steps are guided (0 when guidance is off)."""
        if self.guidance_scale == 1.0:
            return 0
        return len(self.denoising_step_list) if self.guidance_steps is None else self.guidance_steps

    @property
    def context_guided_steps(self) -> int:
        """How many of the first denoising steps get context guidance (0 when it is off)."""
        if self.context_guidance_scale == 1.0:
            return 0
        steps = self.context_guidance_steps
        return len(self.denoising_step_list) if steps is None else steps

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.renoise", self.renoise, self.RENOISE)
        if not 0.0 <= self.renoise_fresh <= 1.0:
            raise ConfigError(f"{where}.renoise_fresh must be between 0 and 1 (got {self.renoise_fresh})")
        if not self.guidance_scale >= 1.0:
            raise ConfigError(f"{where}.guidance_scale must be >= 1 (1 = no guidance; got {self.guidance_scale})")
        if self.guidance_steps is not None and not 1 <= self.guidance_steps <= len(self.denoising_step_list):
            raise ConfigError(
                f"{where}.guidance_steps must be between 1 and the number of denoising steps "
                f"({len(self.denoising_step_list)}), or null for all (got {self.guidance_steps})"
            )
        if not self.context_guidance_scale >= 1.0:
            raise ConfigError(
                f"{where}.context_guidance_scale must be >= 1 (1 = off; got {self.context_guidance_scale})"
            )
        steps = self.context_guidance_steps
        if steps is not None and not 1 <= steps <= len(self.denoising_step_list):
            raise ConfigError(
                f"{where}.context_guidance_steps must be between 1 and the number of denoising steps "
                f"({len(self.denoising_step_list)}), or null for all (got {steps})"
            )
        if self.context_guidance_chunks is not None and not self.context_guidance_chunks >= 1:
            raise ConfigError(
                f"{where}.context_guidance_chunks must be >= 1, or null for every chunk of a scene "
                f"(got {self.context_guidance_chunks})"
            )
        steps = self.denoising_step_list
        if not steps or any(not 0 < s <= self.num_train_timesteps for s in steps):
            raise ConfigError(
                f"{where}.denoising_step_list must hold timesteps in (0, {self.num_train_timesteps}] (got {steps})"
            )
        if any(a <= b for a, b in zip(steps, steps[1:])):
            raise ConfigError(f"{where}.denoising_step_list must be strictly decreasing (got {steps})")
        if self.shift <= 0:
            raise ConfigError(f"{where}.shift must be positive (got {self.shift})")


@dataclass
class CacheConfig:
    """Chunking and the three regions of the self-attention KV cache, in latent frames."""

    frames_per_chunk: int = 3
    sink_frames: int = 3
    local_window_frames: int = 9
    max_memory_frames: int = 3

    def validate(self, where: str) -> None:
        fpc = self.frames_per_chunk
        if fpc < 1:
            raise ConfigError(f"{where}.frames_per_chunk must be at least 1 (got {fpc})")
        if self.sink_frames not in (0, fpc):
            raise ConfigError(
                f"{where}.sink_frames must be 0 (no sink) or frames_per_chunk={fpc} (got {self.sink_frames})"
            )
        if self.local_window_frames < fpc or self.local_window_frames % fpc:
            raise ConfigError(
                f"{where}.local_window_frames must be a positive multiple of frames_per_chunk={fpc} "
                f"(got {self.local_window_frames})"
            )
        if self.max_memory_frames < 0:
            raise ConfigError(f"{where}.max_memory_frames must be 0 or more (got {self.max_memory_frames})")


@dataclass
class MemoryConfig:
    """Memory-bank and scene-transition policies."""

    policy: str = "iam"
    transition: str = "recache"
    recache_sink: bool = True  # the re-cache rewrites the sink under the new prompt too (else keeps it)
    save_dir: str = ""
    score_layers: list[int] = field(default_factory=lambda: [0, 1, 2])

    POLICIES = MEMORY_POLICIES
    TRANSITIONS = TRANSITIONS

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.policy", self.policy, self.POLICIES)
        _check_choice(f"{where}.transition", self.transition, self.TRANSITIONS)


@dataclass
class AgentConfig:
    backend: str = RULES_BACKEND
    llm_model_path: str = ""
    enrich_prompts: bool = False

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.backend", self.backend, AGENT_BACKENDS)
        if self.backend == LLM_BACKEND and not self.llm_model_path:
            logger.info("agent.backend=llm without agent.llm_model_path: the bundled SmolLM2 model is used")


@dataclass
class WeightsConfig:
    """Where real weights live on this machine. Empty means: not configured."""

    generator_ckpt: str = ""
    generator_key: str = "auto"
    lora_ckpt: str = ""
    lora_rank: int = 256
    lora_alpha: int = 256
    text_encoder_path: str = ""
    tokenizer_path: str = ""
    vae_path: str = ""
    # a TAEHV decoder file for Wan2.1 latents (taew2_1.pth or .safetensors), read when codec.decoder=tiny
    tiny_decoder_path: str = ""

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.generator_key", self.generator_key, ("auto", "generator", "generator_ema"))
        if self.lora_rank < 1 or self.lora_alpha <= 0:
            raise ConfigError(f"{where}.lora_rank and lora_alpha must be positive (got {self.lora_rank}, {self.lora_alpha})")


@dataclass
class CodecConfig:
    """Which decoder turns the Wan preset's latents into video: the Wan VAE, or the tiny TAEHV one (faster, rougher)."""

    decoder: str = "wan"
    # how the Wan VAE decoder runs its causal 3-D convolutions: "3d" as diffusers does (cuDNN's 3-D convolution), or
    # "2d": one 2-D convolution per temporal tap, summed, channels-last (the same sums in another order: equal
    # within rounding); "auto": the faster of the two where it was measured (docs/performance.md): "2d" for an eager
    # decoder on a GPU, "3d" for a compiled one (inductor fuses around it) and on a CPU
    wan_convolutions: str = "auto"

    DECODERS = ("wan", "tiny")
    CONVOLUTIONS = ("auto", "3d", "2d")

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.decoder", self.decoder, self.DECODERS)
        _check_choice(f"{where}.wan_convolutions", self.wan_convolutions, self.CONVOLUTIONS)


def is_device_name(name: str) -> bool:
    """``cpu``, ``cuda`` or ``cuda:N``: a device ``runtime.devices`` and the app's ``--devices`` take."""
    return name in ("cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())


@dataclass
class RuntimeConfig:
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    # on a GPU: torch.compile the DiT blocks and run every shape a story repeats once while loading
    compile: bool = True
    # on a GPU: torch.compile the Wan VAE's decoder too (docs/performance.md has what it gains)
    compile_decoder: bool = False
    # FP8 linears in the DiT blocks (torchao, dynamic per-row scaling of activations and weights; a Hopper or
    # newer GPU); off: bf16 exactly as before
    fp8: bool = False
    # on a GPU: each cached pass a story repeats is recorded once as a CUDA graph and replayed (the host queues one
    # graph instead of a pass's kernels; the same bits as without); docs/performance.md has what it gains
    cuda_graphs: bool = False
    # where the umT5 text encoder lives: "auto" (the runtime device), "cuda", "cpu", or "offload" (weights on the
    # host, streamed to the GPU layer by layer for each prompt; ~11 GB less GPU memory, slower prompts)
    text_encoder_device: str = "auto"
    # two devices split a story's work: the DiT and its KV cache on the first, the decoder and the text encoder
    # (text_encoder_device auto or cuda) on the second, each chunk decoded there while the first denoises the next;
    # e.g. [cuda:0, cuda:1]. One entry is the same as runtime.device; empty: runtime.device. When both are set,
    # devices wins.
    devices: list[str] = field(default_factory=list)
    # on a GPU: cuDNN times its convolution algorithms once per shape and keeps the fastest (per thread); off: its
    # heuristic choice, the same on every thread and run (the decoder's frames are then reproducible bit for bit)
    cudnn_benchmark: bool = True

    TEXT_ENCODER_DEVICES = ("auto", "cuda", "cpu", "offload")

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"))
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"{where}.device must be auto, cpu, cuda or cuda:N (got {self.device!r})")
        _check_choice(f"{where}.text_encoder_device", self.text_encoder_device, self.TEXT_ENCODER_DEVICES)
        if len(self.devices) > 2:
            raise ConfigError(f"{where}.devices takes one or two devices, e.g. [cuda:0, cuda:1] (got {self.devices})")
        for name in self.devices:
            if not is_device_name(name):
                raise ConfigError(f"{where}.devices: each device must be cpu, cuda or cuda:N (got {name!r})")


@dataclass
class Config:
    preset: str = WAN_PRESET
    model: ModelConfig = field(default_factory=ModelConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def tokens_per_frame(self) -> int:
        """Tokens one latent frame becomes after patching (1560 for 832x480 Wan)."""
        _, ph, pw = self.model.patch_size
        return (self.video.latent_height // ph) * (self.video.latent_width // pw)

    def validate(self) -> "Config":
        _check_choice("preset", self.preset, tuple(PRESETS))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate(f.name)
        self._validate_decoder()
        return self

    def _validate_decoder(self) -> None:
        if self.codec.decoder != "tiny":
            return
        if self.preset != WAN_PRESET:
            raise ConfigError(
                f"codec.decoder=tiny decodes Wan2.1 latents, so it needs preset {WAN_PRESET} (got preset "
                f"{self.preset}, which has its own codec); set codec.decoder=wan"
            )
        if not self.weights.tiny_decoder_path:
            raise ConfigError(
                "codec.decoder=tiny needs weights.tiny_decoder_path: the local TAEHV decoder file for Wan2.1 "
                "(e.g. --override weights.tiny_decoder_path=/path/to/taew2_1.pth, or .safetensors)"
            )

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


def _check_choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))} (got {value!r})")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


# --- presets ---------------------------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # Wan2.1-T2V-1.3B: 30 layers, dim 1536, 12 heads of 128; 832x480 gives 60x104 latents, 1560 tokens a frame.
    WAN_PRESET: {},
    # A tiny random-weight config of the same architecture, for tests and CPU smoke runs.
    TINY_PRESET: {
        "model": {"dim": 48, "ffn_dim": 96, "num_layers": 2, "num_heads": 4, "in_channels": 4, "out_channels": 4,
                  "text_dim": 384, "text_len": 16, "freq_dim": 16},
        "video": {"height": 32, "width": 48},
        "runtime": {"dtype": "float32"},
    },
    # The embedded storyworld model: shapes are set by iamflow/storyworld (its model card lists them).
    EMBEDDED_PRESET: {
        "model": {"dim": 256, "ffn_dim": 1024, "num_layers": 8, "num_heads": 4, "in_channels": 16, "out_channels": 16,
                  "text_dim": 384, "text_len": 64, "freq_dim": 64},
        "video": {"height": 64, "width": 64, "spatial_compression": 4},
        # the small model is not distilled to four steps: eight unshifted steps, ending at sigma 0.125; the first
        # four guided against the empty prompt (trained with --text-dropout) and, in a scene that only brings
        # characters back, against the chunk alone (context guidance); docs/storyworld.md has the numbers
        "sampler": {"denoising_step_list": [1000, 875, 750, 625, 500, 375, 250, 125], "shift": 1.0,
                    "guidance_scale": 2.0, "guidance_steps": 4,
                    "context_guidance_scale": 3.0, "context_guidance_steps": 4},
        "runtime": {"dtype": "float32", "device": "cpu"},
    },
}


def register_preset(name: str, values: dict[str, Any]) -> None:
    """Presets of other parts of the project (the embedded model) register themselves here."""
    PRESETS[name] = values


# --- building from dicts, files and overrides ------------------------------------------------------------


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise a ConfigError naming the key."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                return value.lower() in ("true", "1", "yes", "on")
            raise TypeError
        if annotation in (int, float):
            if isinstance(value, bool):
                raise TypeError
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise TypeError
            return annotation(value)
        if annotation is str:
            if value is None:
                return ""
            if isinstance(value, (dict, list)):
                raise TypeError
            return str(value)
        if origin in (list, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.strip("[]()").split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            item_type = args[0] if args else Any
            items = [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
            if origin is tuple:
                if len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
                    raise ConfigError(f"{key} must have {len(args)} values (got {len(items)})")
                return tuple(items)
            return items
        if origin in (typing.Union, types.UnionType):
            others = [a for a in args if a is not type(None)]
            if type(None) in args and len(others) == 1:  # Optional[X]: null / none, else an X
                if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "")):
                    return None
                return _coerce(key, value, others[0])
            return value
    except ConfigError:
        raise
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be {getattr(annotation, '__name__', annotation)} (got {value!r})") from None
    return value


def _apply(obj: Any, values: Mapping[str, Any], prefix: str) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a mapping of keys to values (got {values!r})")
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {full!r}{hint} (allowed under {prefix or 'top level'}: {', '.join(names)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.")
        else:
            setattr(obj, key, _coerce(full, value, hints[key]))


def parse_override(text: str) -> tuple[list[str], Any]:
    """One command-line ``section.key=value`` string: the key path and the value, read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. cache.max_memory_frames=3)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """Command-line ``section.key=value`` strings as one nested dict of typed values (a later string wins).

    The strings are a user interface: they are read here, once, where they come in; everything after this
    passes the dict."""
    tree: dict[str, Any] = {}
    for text in texts:
        keys, value = parse_override(text)
        nested: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            nested = {k: nested}
        tree = merge_overrides(tree, nested)
    return tree


def merge_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, section by section: {"cache": {"a": 1}} + {"cache": {"b": 2}} keeps both."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> Config:
    """Preset, then YAML file, then overrides; validated. The preset may also come from the file's ``preset``.

    ``overrides`` is a nested dict of typed values ({"cache": {"max_memory_frames": 3}}), checked key by key as
    the file is; a list of command-line ``section.key=value`` strings is read with ``parse_overrides`` first."""
    file_values: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            file_values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
        if not isinstance(file_values, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    name = preset or file_values.get("preset") or WAN_PRESET
    if name not in PRESETS:
        _check_choice("preset", name, tuple(PRESETS))
    config = Config(preset=name)
    _apply(config, PRESETS[name], "")
    _apply(config, {k: v for k, v in file_values.items() if k != "preset"}, "")
    if isinstance(overrides, str):  # one command-line string, not a sequence of its characters
        overrides = [overrides]
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    _apply(config, dict(overrides or {}), "")
    return config.validate()
