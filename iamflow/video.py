"""Writing frames as H.264 mp4 files that browsers play (Debian's ffmpeg, libx264, yuv420p, faststart)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg is not installed: run the README's setup command (it installs Debian's ffmpeg)")
    return path


def display_scale(height: int, width: int, minimum: int = 256) -> int:
    """Integer nearest-neighbour factor so that small videos are at least ``minimum`` pixels on their short side."""
    return max(1, -(-minimum // min(height, width)))


def write_mp4(frames: np.ndarray, path: str | Path, fps: int, scale: int | None = None, crf: int = 18) -> Path:
    """frames [T, H, W, 3] uint8 -> an H.264 mp4 at ``fps``; ``scale`` upsamples by an integer (auto if None)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3] (got {frames.dtype} {frames.shape})")
    if len(frames) == 0:
        raise ValueError("no frames to write")
    t, h, w, _ = frames.shape
    scale = display_scale(h, w) if scale is None else scale
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    if h % 2 or w % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = h + h % 2, w + w % 2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg_path(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
        "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path),
    ]
    result = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path}: {result.stderr.decode(errors='replace')[-500:]}")
    return path
