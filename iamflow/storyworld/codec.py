"""The storyworld codec: 64x64 RGB video <-> 16-channel 16x16 latents, one latent frame at a time.

Latent frame 0 holds video frame 0; latent frame j >= 1 holds video frames 4j-3 .. 4j (the temporal layout of
Wan's VAE, so the engine's frame arithmetic is the same for both codecs). Each latent frame is encoded from and
decoded to its own video frames only, so a streaming decode is exactly a full decode cut in pieces.

The network is a small convolutional autoencoder: the four frames of a latent frame are stacked as 12 input
channels (frame 0 is repeated four times), two stride-2 stages bring 64x64 to 16x16. Latents are normalised
per channel with statistics measured on the training data; the DiT works on the normalised latents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from iamflow.engine.codec import StreamDecoder, VideoCodec


@dataclass
class CodecConfig:
    latent_channels: int = 16
    hidden_channels: int = 64
    temporal_factor: int = 4
    spatial_factor: int = 4


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class FrameAutoencoder(nn.Module):
    """[N, 3*T, 64, 64] (T = temporal_factor frames stacked) <-> [N, C, 16, 16] raw latents."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        rgb = 3 * cfg.temporal_factor
        h = cfg.hidden_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(rgb, h, 3, padding=1), ResBlock(h),
            nn.Conv2d(h, 2 * h, 4, stride=2, padding=1), ResBlock(2 * h),  # 32x32
            nn.Conv2d(2 * h, 2 * h, 4, stride=2, padding=1), ResBlock(2 * h), ResBlock(2 * h),  # 16x16
            nn.SiLU(), nn.Conv2d(2 * h, cfg.latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(cfg.latent_channels, 2 * h, 3, padding=1), ResBlock(2 * h), ResBlock(2 * h),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * h, 2 * h, 3, padding=1), ResBlock(2 * h),  # 32
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * h, h, 3, padding=1), ResBlock(h),  # 64
            nn.SiLU(), nn.Conv2d(h, rgb, 3, padding=1),
        )


class StoryworldCodec(VideoCodec):
    """The embedded model's codec (see the module docstring for the frame layout)."""

    fps = 16

    def __init__(self, cfg: CodecConfig | None = None, device: torch.device | str = "cpu"):
        self.cfg = cfg or CodecConfig()
        self.latent_channels = self.cfg.latent_channels
        self.temporal_factor = self.cfg.temporal_factor
        self.spatial_factor = self.cfg.spatial_factor
        self.net = FrameAutoencoder(self.cfg).to(device).eval()
        c = self.cfg.latent_channels
        self.latent_mean = torch.zeros(c, device=device)
        self.latent_std = torch.ones(c, device=device)

    # --- state -------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> "StoryworldCodec":
        self.net.to(device)
        self.latent_mean, self.latent_std = self.latent_mean.to(device), self.latent_std.to(device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{f"net.{k}": v for k, v in self.net.state_dict().items()},
                "latent_mean": self.latent_mean, "latent_std": self.latent_std}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load by name; a missing or unexpected key is an error that lists them."""
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(f"storyworld codec weights do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.net.load_state_dict({k[4:]: v.float() for k, v in state.items() if k.startswith("net.")})
        self.latent_mean = state["latent_mean"].float().to(self.device)
        self.latent_std = state["latent_std"].float().to(self.device)

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    # --- frame grouping ----------------------------------------------------------------------------------
    def _groups(self, video: torch.Tensor) -> torch.Tensor:
        """video [B, 3, T, H, W] -> [B*t, 3*tf, H, W]: each latent frame's video frames, frame 0 repeated."""
        tf = self.temporal_factor
        t = self.num_latent_frames(video.shape[2])
        first = video[:, :, :1].expand(-1, -1, tf, -1, -1)
        frames = torch.cat([first, video[:, :, 1:]], dim=2)  # [B, 3, t*tf, H, W]
        b, _, _, h, w = frames.shape
        return frames.view(b, 3, t, tf, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b * t, 3 * tf, h, w)

    def raw_encode(self, groups: torch.Tensor) -> torch.Tensor:
        """[N, 3*tf, H, W] -> un-normalised latents [N, C, h, w]."""
        return self.net.encoder(groups)

    def raw_decode(self, z: torch.Tensor) -> torch.Tensor:
        """Un-normalised latents [N, C, h, w] -> [N, 3*tf, H, W]."""
        return self.net.decoder(z)

    # --- VideoCodec ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        b = video.shape[0]
        z = self.raw_encode(self._groups(video.to(self.device).float()))  # [B*t, C, h, w]
        z = (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]
        return z.unflatten(0, (b, -1)).transpose(1, 2)  # [B, C, t, h, w]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_frames(latents, first_is_video_start=True)

    def decode_frames(self, latents: torch.Tensor, first_is_video_start: bool) -> torch.Tensor:
        """latents [B, C, t, h, w] -> [B, 3, T', H, W]; the video's first latent frame gives one frame."""
        b, _, t, _, _ = latents.shape
        if t == 0:
            raise ValueError("decode needs at least one latent frame")
        z = latents.to(self.device).float().transpose(1, 2).flatten(0, 1)  # [B*t, C, h, w]
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        out = self.raw_decode(z).clamp(-1, 1)  # [B*t, 3*tf, H, W]
        h, w = out.shape[-2:]
        video = out.view(b, t, self.temporal_factor, 3, h, w).permute(0, 3, 1, 2, 4, 5)  # [B, 3, t, tf, H, W]
        video = video.reshape(b, 3, t * self.temporal_factor, h, w)
        if first_is_video_start:  # latent frame 0 stands for the single first frame: its last copy
            video = video[:, :, self.temporal_factor - 1 :]
        return video

    def stream_decoder(self) -> "StoryworldStreamDecoder":
        return StoryworldStreamDecoder(self)


class StoryworldStreamDecoder(StreamDecoder):
    """Chunk by chunk decoding; the only state is whether the video's first latent frame has been seen."""

    reach_latent_frames = 0  # each latent frame decodes on its own

    def __init__(self, codec: StoryworldCodec):
        self.codec = codec
        self.started = False

    def reset(self) -> None:
        self.started = False

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        video = self.codec.decode_frames(latents, first_is_video_start=not self.started)
        self.started = True
        return video
