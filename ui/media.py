"""Video files for the page: H.264 segments of a scene as it streams, the story's display copy, its subtitles.

Frames arrive as ``uint8 [T, H, W, 3]`` arrays. Small videos (the embedded model makes 64x64) are scaled up
with nearest-neighbour so people can see them, by the same factor as the exported story
(``iamflow.video.display_scale``). Everything here shells out to ffmpeg; nothing here knows about models.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

class MediaError(RuntimeError):
    """ffmpeg is missing or refused a file; the message says which and why."""


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise MediaError("ffmpeg is not installed; install it (e.g. `apt-get install -y ffmpeg`) and restart the app")
    return path


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour scale of ``[..., H, W, C]`` frames by an integer factor (pixels stay crisp)."""
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _even(frames: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides; pad the last row/column by repetition when a size is odd."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def _run(args: list[str], stdin: bytes | None, what: str) -> None:
    result = subprocess.run(args, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError(f"{what} failed (ffmpeg exit {result.returncode}): {' '.join(message)}")


def write_h264(frames: np.ndarray, path: str | Path, fps: float, scale: int = 1) -> Path:
    """Encode ``uint8 [T, H, W, 3]`` frames as H.264 (yuv420p) into ``path``: ``.ts`` (a stream segment) or ``.mp4``.

    Every segment starts on a keyframe and has no B-frames, so it decodes on its own the moment it arrives.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3] (got {frames.dtype} {frames.shape})")
    frames = _even(upscale(frames, scale))
    _, h, w, _ = frames.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = {".ts": ["-f", "mpegts"], ".mp4": ["-movflags", "+faststart", "-f", "mp4"]}.get(path.suffix)
    if container is None:
        raise ValueError(f"video path must end in .ts or .mp4 (got {path.name})")
    args = [
        ffmpeg_binary(), "-v", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "pipe:0",
        "-an", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0",
        "-pix_fmt", "yuv420p", "-crf", "18", "-g", str(max(1, len(frames))),
        *container, str(path),
    ]  # fmt: skip
    _run(args, np.ascontiguousarray(frames).tobytes(), f"encoding {path.name}")
    return path


def _vtt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def vtt_escape(text: str) -> str:
    """Cue text is parsed for tags (``<b>``, ``<v Name>``) and entities; a prompt must show as typed."""
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())


def write_subtitles(captions: list[tuple[float, float, str]], path: str | Path) -> Path:
    """A WebVTT file with one cue per ``(start_s, end_s, text)``: each scene's prompt under its frames."""
    lines = ["WEBVTT", ""]
    for number, (start, end, text) in enumerate(captions, 1):
        if end <= start:
            continue
        lines += [str(number), f"{_vtt_time(start)} --> {_vtt_time(end)}", vtt_escape(text) or "-", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
