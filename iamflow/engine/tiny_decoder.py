"""A tiny streaming decoder for Wan2.1 latents: the TAEHV architecture, loading `taew2_1` weights by name.

Owns the network (`TinyDecoderNet`), its codec (`TinyDecoderCodec`, decode only) with the streaming decoder
that carries the causal state from chunk to chunk, the strict weights loader and a random-weight builder at the
real shape for the benchmark.

The architecture is TAEHV's decoder (github.com/madebyollin/taehv), rebuilt here with the same parameter names so
its public `taew2_1.pth` / `taew2_1.safetensors` loads by name. Every layer is a 2-D layer applied to each frame;
time enters in two places only:

* a memory block sees its input frame next to the previous frame's input (zeros before the first frame), so the
  decoder is causal and its whole state is the last input frame of each of its nine memory blocks;
* a temporal grow layer turns each frame into `stride` frames with a 1x1 conv (stride 1, 2, 2: 4x in time).

So t latent frames give 4t frames; the first 3 frames of a video are dropped (TAEHV's `frames_to_trim`), which
is what lines its output up with the Wan VAE's: the first latent frame stands for one video frame, every later one
for 4 (1 + 4(t-1) frames for t latent frames). Within a chunk every frame goes through each layer in one batch.

Latents: TAEHV decodes what the diffusion model works on, i.e. Wan's normalised latents
z_norm = (z - latents_mean) / latents_std (see `iamflow.engine.codec`), with no scale or shift of its own. Its
pixels are in [0, 1]; this codec returns [-1, 1] like every other codec here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iamflow.engine.codec import StreamDecoder, VideoCodec
from iamflow.engine.state_dicts import check_state_dict, read_state_dict

logger = logging.getLogger(__name__)

__all__ = [
    "TinyDecoderConfig",
    "TinyDecoderNet",
    "TinyDecoderCodec",
    "TinyStreamDecoder",
    "read_tiny_decoder_state_dict",
    "build_random_tiny_codec",
]


@dataclass(frozen=True)
class TinyDecoderConfig:
    """Shape of the decoder. The defaults are `taew2_1`'s: Wan2.1's 16 latent channels, widths 256/128/64/64."""

    latent_channels: int = 16
    # channels of the three stages of memory blocks, then of the last conv before the RGB conv
    widths: tuple[int, ...] = (256, 128, 64, 64)
    blocks_per_stage: int = 3  # the layer indices, hence the key names, follow from this: taew2_1 has 3
    # each stage ends with a 2x nearest upsampling (8x in space) and a temporal grow of this stride (4x in time)
    time_strides: tuple[int, ...] = (1, 2, 2)
    image_channels: int = 3

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.time_strides) + 1:
            raise ValueError(
                f"a tiny decoder needs one width per stage plus the last conv's: {len(self.time_strides) + 1} "
                f"widths for {len(self.time_strides)} time strides (got {self.widths})"
            )

    @property
    def temporal_factor(self) -> int:
        return math.prod(self.time_strides)

    @property
    def spatial_factor(self) -> int:
        return 2 ** len(self.time_strides)

    @property
    def frames_to_trim(self) -> int:
        """Decoded frames dropped at the start of a video so the first latent frame gives one frame."""
        return self.temporal_factor - 1


# --- layers -----------------------------------------------------------------------------------------------


def _conv3x3(channels_in: int, channels_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """3 * tanh(x / 3): keeps latents within about +-3 with a smooth knee. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3.0) * 3.0


class MemoryBlock(nn.Module):
    """A residual block whose convs see the frame and the previous frame's input side by side."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # parameter names follow TAEHV's: conv.0 / conv.2 / conv.4 (ReLUs at 1 and 3); `skip` is an identity
        # because the decoder's blocks keep their width, so it has no tensors
        self.conv = nn.Sequential(
            _conv3x3(2 * channels, channels), nn.ReLU(), _conv3x3(channels, channels), nn.ReLU(),
            _conv3x3(channels, channels),
        )
        self.skip = nn.Identity()

    def forward(self, x: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        # x, previous: [N, C, H, W] (frame i and the input of frame i-1)
        return F.relu(self.conv(torch.cat([x, previous], dim=1)) + self.skip(x))


class TemporalGrow(nn.Module):
    """Each frame -> `stride` consecutive frames, through a 1x1 conv to stride*C channels."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels * stride, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = self.conv(x)  # [N, stride*C, H, W]: channel group s is output frame s of the input frame
        if self.stride == 1:
            return x
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # one copy that keeps channels-last: [N, H, W, s, C] -> [N, s, H, W, C] -> [N*s, C, H, W]
            x = x.permute(0, 2, 3, 1).reshape(n, h, w, self.stride, c).permute(0, 3, 1, 2, 4)
            return x.reshape(n * self.stride, h, w, c).permute(0, 3, 1, 2)
        return x.reshape(n * self.stride, c, h, w)


class TinyDecoderNet(nn.Module):
    """TAEHV's decoder as one `decoder` sequence; parameter keys are `decoder.{index}.…` as in `taew2_1`.

    Layer list (index: layer), for widths w0..w3 and 3 blocks a stage:
    0 SoftClamp, 1 conv3x3(latent, w0), 2 ReLU, 3-5 MemoryBlock(w0), 6 Upsample x2, 7 TemporalGrow(w0, 1),
    8 conv3x3(w0, w1, no bias), 9-11 MemoryBlock(w1), 12 Upsample x2, 13 TemporalGrow(w1, 2),
    14 conv3x3(w1, w2, no bias), 15-17 MemoryBlock(w2), 18 Upsample x2, 19 TemporalGrow(w2, 2),
    20 conv3x3(w2, w3, no bias), 21 ReLU, 22 conv3x3(w3, 3).
    """

    def __init__(self, config: TinyDecoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TinyDecoderConfig()
        widths = config.widths
        layers: list[nn.Module] = [SoftClamp(), _conv3x3(config.latent_channels, widths[0]), nn.ReLU()]
        for stage, stride in enumerate(config.time_strides):
            layers += [MemoryBlock(widths[stage]) for _ in range(config.blocks_per_stage)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), TemporalGrow(widths[stage], stride)]
            layers.append(_conv3x3(widths[stage], widths[stage + 1], bias=False))
        layers += [nn.ReLU(), _conv3x3(widths[-1], config.image_channels)]
        self.decoder = nn.Sequential(*layers)
        self.memory_block_indices = [i for i, layer in enumerate(self.decoder) if isinstance(layer, MemoryBlock)]

    def forward(
        self, frames: torch.Tensor, batch: int, memory: list[torch.Tensor | None]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """frames [batch*t, C, h, w] (the latent frames of each video in order) -> ([batch*4t, 3, H, W], memory).

        `memory` holds, per memory block, the last input frame of each video [batch, C, H, W] from the previous
        chunk (None: a new video); the returned list is the same for this chunk's last frame.
        """
        x = frames
        new_memory: list[torch.Tensor] = []
        for layer in self.decoder:
            if isinstance(layer, MemoryBlock):
                last = memory[len(new_memory)]
                x_by_video = x.unflatten(0, (batch, -1))  # [batch, T, C, H, W]
                if last is None:
                    last = torch.zeros_like(x_by_video[:, 0])
                previous = _shift_one_frame(x, x_by_video, last, batch)
                new_memory.append(x_by_video[:, -1].clone(memory_format=_memory_format(x)))
                x = layer(x, previous)
            else:
                x = layer(x)
        return x, new_memory


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _shift_one_frame(x: torch.Tensor, x_by_video: torch.Tensor, last: torch.Tensor, batch: int) -> torch.Tensor:
    """Each frame's previous frame [batch*T, C, H, W]: `last` before frame 0 of each video, then x shifted by one."""
    if batch == 1:  # a 4-D cat keeps the memory format as it is
        return torch.cat([last, x[:-1]], dim=0)
    previous = torch.cat([last.unsqueeze(1), x_by_video[:, :-1]], dim=1).flatten(0, 1)
    return previous.contiguous(memory_format=_memory_format(x))


# --- weights ----------------------------------------------------------------------------------------------


def read_tiny_decoder_state_dict(path: str | Path, net: TinyDecoderNet) -> dict[str, torch.Tensor]:
    """The decoder tensors of a TAEHV weights file (.pth or .safetensors), checked strictly against `net`.

    TAEHV's files hold the encoder too (`encoder.*`): those keys are set aside by name and logged, since this
    codec only decodes. Any other difference (a missing, unexpected or wrongly shaped `decoder.*` key, or a key
    of neither part) raises StateDictMismatchError naming the keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"tiny decoder weights {path} do not exist (weights.tiny_decoder_path: a local taew2_1.pth or "
            "taew2_1.safetensors)"
        )
    state = read_state_dict(path)
    encoder_keys = [key for key in state if key.startswith("encoder.")]
    if encoder_keys:
        logger.info("%s: %d encoder tensors ignored (the tiny codec only decodes)", path, len(encoder_keys))
    decoder_state = {key: value for key, value in state.items() if not key.startswith("encoder.")}
    check_state_dict(f"tiny decoder weights {path}", decoder_state, net.state_dict())
    return decoder_state


# --- codec ------------------------------------------------------------------------------------------------


class TinyDecoderCodec(VideoCodec):
    """Wan2.1 latents (normalised) -> video through the tiny decoder. Decodes only: `encode` raises."""

    def __init__(self, net: TinyDecoderNet, fps: int = 16, channels_last: bool | None = None) -> None:
        """`channels_last` (default: on CUDA) runs the convs on NHWC tensors, cuDNN's fastest at these widths."""
        if channels_last is None:
            channels_last = next(net.parameters()).device.type == "cuda"
        self.channels_last = channels_last
        self.net = _to_memory_format(net.eval().requires_grad_(False), channels_last)
        config = net.config
        self.latent_channels = config.latent_channels
        self.temporal_factor = config.temporal_factor
        self.spatial_factor = config.spatial_factor
        self.fps = fps

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        config: TinyDecoderConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        fps: int = 16,
    ) -> "TinyDecoderCodec":
        """Load a TAEHV weights file (`taew2_1.pth` or `.safetensors`) by name, strictly.

        `dtype` defaults to bfloat16 on CUDA and float32 on CPU; on CUDA the convs run channels-last.
        """
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        with torch.device("meta"):
            net = TinyDecoderNet(config)
        state = read_tiny_decoder_state_dict(path, net)
        net.load_state_dict({key: value.to(dtype) for key, value in state.items()}, strict=True, assign=True)
        logger.info("tiny decoder loaded from %s, %s on %s", path, dtype, device)
        return cls(net.to(device=device, dtype=dtype), fps=fps)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def to(self, device: torch.device | str) -> "TinyDecoderCodec":
        self.net = self.net.to(device)
        return self

    def offload(self) -> "TinyDecoderCodec":
        return self.to("cpu")

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "the tiny codec only decodes (codec.decoder=tiny); encoding video needs the Wan VAE: set codec.decoder=wan"
        )

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        # the streaming path over all frames at once, so a streamed video is bit-identical to this one
        return TinyStreamDecoder(self).decode(latents)

    def stream_decoder(self) -> "TinyStreamDecoder":
        return TinyStreamDecoder(self)


class TinyStreamDecoder(StreamDecoder):
    """Chunk-wise decoding; the state is the last input frame of every memory block, plus whether frames came yet.

    A chunk of t latent frames gives 4t frames; the first chunk of a video drops the first 3 (4(t-1)+1 frames).
    Frames in chunks equal one decode of all the latents bit for bit in float32 on the CPU, where PyTorch's conv
    kernels do not depend on how many frames a call holds; the exception is a single image of under 20480 values,
    which PyTorch sends to another kernel (toy sizes only: one Wan latent frame is 16x60x104 values).
    """

    def __init__(self, codec: TinyDecoderCodec) -> None:
        self.codec = codec
        self.reset()

    def reset(self) -> None:
        self._memory: list[torch.Tensor | None] = [None] * len(self.codec.net.memory_block_indices)
        self._started = False

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [B, C, t, h, w] (normalised) -> video frames [B, 3, T', H, W] in [-1, 1]."""
        codec = self.codec
        if latents.dim() != 5 or latents.shape[1] != codec.latent_channels or latents.shape[2] < 1:
            raise ValueError(
                f"latents must be [B, {codec.latent_channels}, t, h, w] with t >= 1 (got {tuple(latents.shape)})"
            )
        batch, _, t, _, _ = latents.shape
        if self._started and self._memory[0] is not None and self._memory[0].shape[0] != batch:
            raise ValueError(
                f"this stream decodes {self._memory[0].shape[0]} video(s) at a time, not {batch}; reset() first"
            )
        frames = latents.to(device=codec.device, dtype=codec.dtype).transpose(1, 2).flatten(0, 1)  # [B*t, C, h, w]
        if codec.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        pixels, self._memory = codec.net(frames, batch, self._memory)  # [B*4t, 3, H, W], in about [0, 1]
        video = pixels.unflatten(0, (batch, t * codec.temporal_factor))  # [B, 4t, 3, H, W]
        if not self._started:
            video = video[:, codec.net.config.frames_to_trim :]
            self._started = True
        return (video.clamp(0.0, 1.0) * 2.0 - 1.0).transpose(1, 2).contiguous()  # [B, 3, T', H, W]


# --- building ---------------------------------------------------------------------------------------------


def _to_memory_format(net: TinyDecoderNet, channels_last: bool) -> TinyDecoderNet:
    return net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def build_random_tiny_codec(
    device: torch.device | str,
    dtype: torch.dtype,
    *,
    config: TinyDecoderConfig | None = None,
    seed: int = 0,
    channels_last: bool | None = None,
) -> TinyDecoderCodec:
    """The tiny decoder at `taew2_1`'s shape (unless `config` says otherwise) with random weights, for timing.

    The weights are PyTorch's default initialisation drawn from `seed` (the global RNG is left as it was).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TinyDecoderNet(config)
    return TinyDecoderCodec(net.to(device=device, dtype=dtype), channels_last=channels_last)
