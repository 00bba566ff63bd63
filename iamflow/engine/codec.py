"""Video codecs: pixels <-> normalised latents, and streaming, causal decoding chunk by chunk.

Owns the `VideoCodec` / `StreamDecoder` interface every codec of the engine implements (the embedded
storyworld model ships its own small one), the Wan2.1 VAE through diffusers' `AutoencoderKLWan` (loaded from a
diffusers `vae/` folder or from Wan's original `Wan2.1_VAE.pth` through an explicit key mapping), and the
conversion of decoded video to uint8 frames.

Latent convention (Wan's `WanVAE.encode` and diffusers' `WanPipeline`): z_norm = (z - latents_mean) / latents_std,
per channel, from the VAE config; the DiT works on z_norm.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from iamflow.engine.state_dicts import StateDictMismatchError, check_state_dict, mismatch_message, read_state_dict

logger = logging.getLogger(__name__)

__all__ = [
    "VideoCodec",
    "StreamDecoder",
    "WanVAECodec",
    "WanStreamDecoder",
    "StateDictMismatchError",
    "wan_vae_key_for",
    "to_wan_original_vae_keys",
    "from_wan_original_vae_keys",
    "to_uint8",
]


# --- interface --------------------------------------------------------------------------------------------


class StreamDecoder(ABC):
    """Decodes a latent video chunk by chunk, carrying the causal state across calls.

    The first call turns t latent frames into temporal_factor*(t-1)+1 video frames, every later call into
    temporal_factor*t, and the frames concatenated equal one decode of all the latents.
    """

    # a chunk decoded in parts (its first latent frame, then the rest) gives the same bits as one call: the story
    # may then hand a scene's first frames out before the rest of its first chunk is decoded
    decodes_in_parts_exactly: bool = False

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [B, C, t, h, w] (normalised) -> video frames [B, 3, T', H, W] in [-1, 1]."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the causal state: the next chunk starts a new video."""


class VideoCodec(ABC):
    """Pixels [B, 3, T, H, W] in [-1, 1] <-> normalised latents [B, C, t, h, w]."""

    latent_channels: int
    temporal_factor: int = 4
    spatial_factor: int = 8
    fps: int = 16

    @abstractmethod
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video [B, 3, T, H, W] in [-1, 1], T = 1 + temporal_factor*k -> normalised latents [B, C, 1 + k, h, w]."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """normalised latents [B, C, t, h, w] -> video [B, 3, 1 + temporal_factor*(t-1), H, W] in [-1, 1]."""

    @abstractmethod
    def stream_decoder(self) -> StreamDecoder:
        """A fresh streaming decoder; each one keeps its own causal state."""

    def num_video_frames(self, latent_frames: int) -> int:
        """Video frames that `latent_frames` latent frames decode to (81 for Wan's 21)."""
        return 1 + self.temporal_factor * (latent_frames - 1) if latent_frames > 0 else 0

    def num_latent_frames(self, video_frames: int) -> int:
        if video_frames < 1 or (video_frames - 1) % self.temporal_factor:
            raise ValueError(
                f"a video must have 1 + {self.temporal_factor}*k frames to be encoded (got {video_frames})"
            )
        return 1 + (video_frames - 1) // self.temporal_factor


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """A decoded video [3, T, H, W] or [1, 3, T, H, W] in [-1, 1] -> uint8 frames [T, H, W, 3]."""
    return to_uint8_tensor(video).cpu().numpy()


def to_uint8_tensor(video: torch.Tensor) -> torch.Tensor:
    """``to_uint8`` on the video's own device: uint8 frames [T, H, W, 3] (the GPU converts, the host copies
    a quarter of the bytes)."""
    if video.dim() == 5:
        if video.shape[0] != 1:
            raise ValueError(f"to_uint8 takes one video; got a batch of {video.shape[0]} (index it first)")
        video = video[0]
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"to_uint8 expects [3, T, H, W] or [1, 3, T, H, W] (got {tuple(video.shape)})")
    pixels = ((video.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).contiguous()  # [T, H, W, 3]


# --- checkpoint helpers -----------------------------------------------------------------------------------


# Wan's ResidualBlock is nn.Sequential(RMS_norm, SiLU, CausalConv3d, RMS_norm, SiLU, Dropout, CausalConv3d)
# plus `shortcut`; diffusers names the same tensors norm1 / conv1 / norm2 / conv2 / conv_shortcut.
_RESIDUAL_NAMES = {
    "norm1.": "residual.0.",
    "conv1.": "residual.2.",
    "norm2.": "residual.3.",
    "conv2.": "residual.6.",
    "conv_shortcut.": "shortcut.",
}
_TOP_LEVEL = {
    "quant_conv.": "conv1.",
    "post_quant_conv.": "conv2.",
    "encoder.conv_in.": "encoder.conv1.",
    "decoder.conv_in.": "decoder.conv1.",
    "encoder.norm_out.": "encoder.head.0.",
    "encoder.conv_out.": "encoder.head.2.",
    "decoder.norm_out.": "decoder.head.0.",
    "decoder.conv_out.": "decoder.head.2.",
    "encoder.mid_block.resnets.0.": "encoder.middle.0.",
    "encoder.mid_block.attentions.0.": "encoder.middle.1.",
    "encoder.mid_block.resnets.1.": "encoder.middle.2.",
    "decoder.mid_block.resnets.0.": "decoder.middle.0.",
    "decoder.mid_block.attentions.0.": "decoder.middle.1.",
    "decoder.mid_block.resnets.1.": "decoder.middle.2.",
}
_DOWN = re.compile(r"^encoder\.down_blocks\.(\d+)\.(.+)$")
_UP_RESNET = re.compile(r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")
_UP_SAMPLER = re.compile(r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$")


def _residual_name(rest: str) -> str:
    for ours, wan in _RESIDUAL_NAMES.items():
        if rest.startswith(ours):
            return wan + rest[len(ours):]
    return rest  # attention (norm, to_qkv, proj) and resample (resample.1, time_conv) keep their names


def wan_vae_key_for(key: str, num_res_blocks: int = 2) -> str:
    """Wan's original (`Wan2.1_VAE.pth`) name of a diffusers AutoencoderKLWan key (Wan2.1 layout).

    Wan's decoder is one flat `upsamples` list: per level, num_res_blocks+1 residual blocks then a Resample
    (absent after the last level); diffusers groups the same modules as up_blocks.i.{resnets.j, upsamplers.0}.
    """
    for ours, wan in _TOP_LEVEL.items():
        if key.startswith(ours):
            rest = key[len(ours):]
            return wan + (_residual_name(rest) if (".resnets." in ours) else rest)
    if match := _DOWN.match(key):
        return f"encoder.downsamples.{match.group(1)}.{_residual_name(match.group(2))}"
    level_width = num_res_blocks + 2  # residual blocks + one Resample
    if match := _UP_RESNET.match(key):
        index = int(match.group(1)) * level_width + int(match.group(2))
        return f"decoder.upsamples.{index}.{_residual_name(match.group(3))}"
    if match := _UP_SAMPLER.match(key):
        index = int(match.group(1)) * level_width + num_res_blocks + 1
        return f"decoder.upsamples.{index}.{match.group(2)}"
    raise KeyError(f"no Wan name is known for the VAE key {key!r}")


def to_wan_original_vae_keys(
    state_dict: Mapping[str, torch.Tensor], num_res_blocks: int = 2
) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKLWan state dict renamed to Wan's `Wan2.1_VAE.pth` layout."""
    return {wan_vae_key_for(k, num_res_blocks): v for k, v in state_dict.items()}


def from_wan_original_vae_keys(
    wan_state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], num_res_blocks: int = 2
) -> dict[str, torch.Tensor]:
    """Wan's VAE state dict renamed to diffusers' names; `expected` is the target model's state dict.

    Raises StateDictMismatchError listing every missing, unexpected and wrongly shaped key (Wan's names).
    """
    by_wan_name = {wan_vae_key_for(k, num_res_blocks): k for k in expected}
    wan_expected = {wan_key: expected[key] for wan_key, key in by_wan_name.items()}
    check_state_dict("Wan VAE checkpoint (Wan layout)", wan_state_dict, wan_expected)
    return {by_wan_name[k]: v for k, v in wan_state_dict.items()}


# --- Wan2.1 VAE -------------------------------------------------------------------------------------------


class WanVAECodec(VideoCodec):
    """Wan2.1's causal 3-D VAE (16 latent channels, 4x temporal, 8x spatial) through diffusers AutoencoderKLWan."""

    def __init__(self, vae: Any, fps: int = 16) -> None:
        config = vae.config
        if config.is_residual or config.patch_size is not None:
            raise ValueError("WanVAECodec drives the Wan2.1 VAE; this AutoencoderKLWan config is a Wan2.2 one")
        if len(config.latents_mean) != config.z_dim or len(config.latents_std) != config.z_dim:
            raise ValueError(
                f"the VAE config needs z_dim={config.z_dim} latents_mean and latents_std values "
                f"(got {len(config.latents_mean)} and {len(config.latents_std)})"
            )
        self.vae = vae.eval().requires_grad_(False)
        self.convolutions = "3d"  # the decoder's causal convolutions as diffusers runs them (``use_convolutions``)
        self.latent_channels = config.z_dim
        self.temporal_factor = config.scale_factor_temporal
        self.spatial_factor = config.scale_factor_spatial
        self.fps = fps

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        config: Mapping[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> "WanVAECodec":
        """Load from a diffusers `vae/` folder, a diffusers Wan repo root, or Wan's original `Wan2.1_VAE.pth`.

        `config` (AutoencoderKLWan arguments) describes the architecture of a `.pth`; the default is Wan2.1's.
        `dtype` defaults to bfloat16 on CUDA and float32 on CPU.
        """
        from diffusers import AutoencoderKLWan

        path = Path(path)
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        if path.is_dir() and (path / "vae").is_dir():
            path = path / "vae"
        if path.is_dir():
            vae, info = AutoencoderKLWan.from_pretrained(str(path), torch_dtype=dtype, output_loading_info=True)
            missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
            shapes = [str(m) for m in info.get("mismatched_keys", [])]
            if missing or unexpected or shapes or info.get("error_msgs"):
                raise StateDictMismatchError(
                    mismatch_message(f"VAE checkpoint {path}", missing, unexpected, shapes)
                    + "".join(f"\n  {e}" for e in info.get("error_msgs", []))
                )
        elif path.is_file():
            with torch.device("meta"):
                vae = AutoencoderKLWan(**dict(config or {}))
            wan_state = read_state_dict(path)
            state = from_wan_original_vae_keys(wan_state, vae.state_dict(), vae.config.num_res_blocks)
            vae.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
            on_meta = [name for name, t in [*vae.named_parameters(), *vae.named_buffers()] if t.is_meta]
            if on_meta:
                raise StateDictMismatchError(f"{path} left {len(on_meta)} tensor(s) unset: {', '.join(on_meta[:5])}")
        else:
            raise FileNotFoundError(f"VAE checkpoint {path} does not exist (weights.vae_path)")
        logger.info("Wan VAE loaded from %s, %s on %s", path, dtype, device)
        return cls(vae.to(device))  # already in `dtype`: the folder load and the .pth tensors were cast

    def use_convolutions(self, kind: str) -> "WanVAECodec":
        """``"3d"``: the decoder's causal convolutions as diffusers runs them; ``"2d"``: one 2-D convolution per
        temporal tap (``causal_conv3d_as_2d``; equal within rounding). A compiled decoder compiles again."""
        if kind not in ("3d", "2d"):
            raise ValueError(f"the Wan VAE decoder's convolutions are 3d or 2d (got {kind!r})")
        use_2d_convolutions(self.vae, kind == "2d")
        self.convolutions = kind
        return self

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def to(self, device: torch.device | str) -> "WanVAECodec":
        self.vae.to(device)
        return self

    def offload(self) -> "WanVAECodec":
        return self.to("cpu")

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # made once per device and dtype: a tensor built from a list on a GPU is a copy the host waits for
        key = (like.device, like.dtype)
        stats = getattr(self, "_stats_cache", {})
        if key not in stats:
            shape = (1, self.latent_channels, 1, 1, 1)
            stats[key] = tuple(
                torch.tensor(values, dtype=like.dtype).view(shape).to(like.device)
                for values in (self.vae.config.latents_mean, self.vae.config.latents_std)
            )
            self._stats_cache = stats
        return stats[key]

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw VAE latents -> the DiT's latents: (z - mean) / std per channel."""
        mean, std = self._stats(z)
        return (z - mean) / std

    def denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """The DiT's latents -> raw VAE latents: latents * std + mean per channel."""
        mean, std = self._stats(latents)
        return latents * std + mean

    def _check_latents(self, latents: torch.Tensor) -> None:
        if latents.dim() != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents must be [B, {self.latent_channels}, t, h, w] (got {tuple(latents.shape)})"
            )

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be [B, 3, T, H, W] in [-1, 1] (got {tuple(video.shape)})")
        self.num_latent_frames(video.shape[2])  # the encoder would silently drop frames past 1 + 4k
        video = video.to(device=self.device, dtype=self.dtype)
        z = self.vae.encode(video).latent_dist.mode()  # the posterior mean, as Wan's encode returns mu
        return self.normalize(z)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        # The same frame-by-frame path as streaming, so a streamed video is bit-identical to this one.
        return WanStreamDecoder(self).decode(latents)

    def stream_decoder(self) -> "WanStreamDecoder":
        return WanStreamDecoder(self)


class WanStreamDecoder(StreamDecoder):
    """Chunk-wise decoding with AutoencoderKLWan's causal conv cache kept between chunks.

    diffusers' `_decode` runs the decoder one latent frame at a time over a feature cache (the last
    frames every causal conv saw) that it clears at the end; here the cache lives in this object, so the next
    chunk continues exactly where the previous one stopped. Matches `AutoencoderKLWan.decode` to float rounding
    (its post_quant_conv sees all frames at once) and `WanVAECodec.decode` bit for bit.
    """

    decodes_in_parts_exactly = True  # (one latent frame a call, whatever the chunk)

    def __init__(self, codec: WanVAECodec) -> None:
        self.codec = codec
        self.reset()

    def reset(self) -> None:
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

        # one slot per causal conv of the decoder, filled on the first frame
        convs = sum(isinstance(m, WanCausalConv3d) for m in self.codec.vae.decoder.modules())
        self._feat_cache: list[Any] = [None] * convs
        self._started = False

    @property
    def reach_latent_frames(self) -> int:
        """How many latent frames back the causal state reaches: each causal conv keeps its last (kernel - 1) input
        frames, at the frame rate of its place in the decoder (doubled by each temporal upsampling before it).
        Decoding the last this-many latent frames with a fresh decoder gives the state of one that saw them all."""
        from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResample

        reach, upsamplers = 0.0, []
        for name, module in self.codec.vae.decoder.named_modules():
            if isinstance(module, WanResample) and module.mode == "upsample3d":
                upsamplers.append(name + ".")
            elif isinstance(module, WanCausalConv3d):
                rate = 2 ** sum(not name.startswith(u) for u in upsamplers)  # its own time_conv runs before the doubling
                reach += (module.kernel_size[0] - 1) / rate
        return math.ceil(reach)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.codec._check_latents(latents)
        vae = self.codec.vae
        z = self.codec.denormalize(latents.to(device=self.codec.device, dtype=self.codec.dtype))
        frames = []
        for i in range(z.shape[2]):
            # post_quant_conv is 1x1x1 (stateless) but its kernel rounds differently for different frame counts,
            # so it runs one frame at a time too: any split into chunks then gives the same bits.
            x = vae.post_quant_conv(z[:, :, i : i + 1])
            conv_index = [0]  # the decoder walks its causal convs in order, advancing this index
            first = not self._started
            frames.append(vae.decoder(x, feat_cache=self._feat_cache, feat_idx=conv_index, first_chunk=first))
            # [B, 3, 1 (the video's first frame) or temporal_factor, H, W]
            self._started = True
        return torch.cat(frames, dim=2).clamp(-1.0, 1.0)


# --- the decoder's causal 3-D convolutions, channels-last, as one opaque operator -----------------------------


def causal_conv3d_as_2d(conv: torch.nn.Conv3d, x: torch.Tensor, cache_x: torch.Tensor | None = None) -> torch.Tensor:
    """What ``WanCausalConv3d.forward(x, cache_x)`` computes, as one 2-D convolution per temporal tap, summed.

    A causal k_t x k_h x k_w convolution over [B, C, T, H, W] is, for each output frame t, the sum over taps j of a
    k_h x k_w convolution of input frame t + j (the input left-padded in time with the cached frames, then zeros)
    with the kernel's slice j. The frames of all outputs go through each 2-D convolution as one batch, so a tap is
    one call. Same arithmetic, different summation order: equal to the 3-D convolution within rounding. The frames
    go channels-last (the layout a GPU's 2-D convolutions are fastest in), and so does the output."""
    return _causal_conv(x, cache_x, conv.weight, conv.bias, *_conv_geometry(conv), True)


def _conv_geometry(conv: torch.nn.Conv3d) -> tuple[int, int, int]:
    if conv.stride != (1, 1, 1) or conv.dilation != (1, 1, 1) or conv.groups != 1:
        raise ValueError("the causal convolution operator takes stride-1, undilated, ungrouped convolutions")
    return conv._padding[4], conv._padding[2], conv._padding[0]  # diffusers' (w, w, h, h, 2*t, 0) causal padding


@torch.library.custom_op("iamflow::causal_conv", mutates_args=())
def _causal_conv(x: torch.Tensor, cache_x: torch.Tensor | None, weight: torch.Tensor, bias: torch.Tensor | None,
                 pad_t: int, pad_h: int, pad_w: int, taps: bool) -> torch.Tensor:
    """A causal 3-D convolution of [B, C, T, H, W] (cached frames, then zeros, before the first frame), output
    [B, C_out, T, H', W'] channels-last-3d: by 2-D convolutions per temporal tap (``taps``) or by one 3-D convolution
    on channels-last tensors. One operator to torch.compile, which then keeps its layout and leaves the
    convolution to cuDNN, fusing only what comes before and after."""
    if cache_x is not None and pad_t > 0:
        x = torch.cat([cache_x.to(x.device), x], dim=2)
        pad_t -= cache_x.shape[2]
    x = x.contiguous(memory_format=torch.channels_last_3d)
    if pad_t > 0:
        x = F.pad(x, (0, 0, 0, 0, pad_t, 0))
    if not taps:
        return F.conv3d(x, weight, bias, padding=(0, pad_h, pad_w)).contiguous(memory_format=torch.channels_last_3d)
    b, c, t_in, h, w = x.shape
    kt = weight.shape[2]
    t_out = t_in - kt + 1
    frames = x.permute(0, 2, 1, 3, 4)  # [B, T, C, H, W], channels last: each tap's frames are a view
    out = None
    for j in range(kt):
        tap = frames[:, j : j + t_out].reshape(b * t_out, c, h, w)
        y = F.conv2d(tap, weight[:, :, j], None if j else bias, padding=(pad_h, pad_w))
        out = y if out is None else out.add_(y)
    out = out.reshape(b, t_out, -1, out.shape[-2], out.shape[-1]).permute(0, 2, 1, 3, 4)
    return out.contiguous(memory_format=torch.channels_last_3d)


@_causal_conv.register_fake
def _(x, cache_x, weight, bias, pad_t, pad_h, pad_w, taps):
    b, _, t, h, w = x.shape
    shape = (b, weight.shape[0], t, h + 2 * pad_h - weight.shape[3] + 1, w + 2 * pad_w - weight.shape[4] + 1)
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last_3d)


def use_2d_convolutions(vae: Any, on: bool = True, taps: bool = True) -> int:
    """Run every causal 3-D convolution of ``vae``'s decoder through the ``iamflow::causal_conv`` operator (``on``;
    by 2-D convolutions per temporal tap, or with ``taps`` False by cuDNN's 3-D convolution on channels-last
    tensors), or as diffusers does (off). Returns how many convolutions were switched."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    count = 0
    for module in vae.decoder.modules():
        if isinstance(module, WanCausalConv3d):
            if on:
                geometry = _conv_geometry(module)

                def forward(x, cache_x=None, conv=module, geometry=geometry):
                    return _causal_conv(x, cache_x, conv.weight, conv.bias, *geometry, taps)

                module.forward = forward
                module.to(memory_format=torch.channels_last_3d)
            else:
                module.__dict__.pop("forward", None)
                module.to(memory_format=torch.contiguous_format)
            count += 1
    return count
