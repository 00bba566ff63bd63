"""Video files: the one H.264 writer of the project (imageio-ffmpeg's ffmpeg), and joining segments without re-encoding.

Every file is H.264 in yuv420p (what browsers play). A story's video is kept as one segment a chunk (MPEG-TS,
each starting on a keyframe, no B-frames, so a segment plays the moment it is written); the story mp4 is those
segments joined by ffmpeg's concat demuxer with ``-c copy``: no frame is encoded twice. Small videos (the
embedded model makes 64x64) are scaled up by an integer factor, nearest-neighbour, so people can see them.

The ffmpeg is imageio-ffmpeg's (its own build, or the one ``IMAGEIO_FFMPEG_EXE`` names).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CONTAINERS = {".ts": "mpegts", ".mp4": "mp4"}


class VideoError(RuntimeError):
    """ffmpeg is missing or could not write a file; the message says which and why."""


def ffmpeg_path() -> str:
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise VideoError(f"no ffmpeg found ({err}); install imageio-ffmpeg (requirements.txt) or set IMAGEIO_FFMPEG_EXE") from None


def display_scale(height: int, width: int, minimum: int = 256) -> int:
    """Integer nearest-neighbour factor so that small videos are at least ``minimum`` pixels on their short side."""
    return max(1, -(-minimum // min(height, width)))


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour scale of ``[..., H, W, C]`` frames by an integer factor (pixels stay crisp)."""
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides; pad the last row/column by repetition when a size is odd."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def write_video(frames: np.ndarray, path: str | Path, fps: float, scale: int | None = None, crf: int = 18) -> Path:
    """``uint8 [T, H, W, 3]`` frames -> H.264 at ``fps`` in ``path`` (``.ts``: a stream segment, ``.mp4``: a file
    with its index in front). ``scale``: integer upscale (None: ``display_scale``). Each file starts on a
    keyframe and has no B-frames, so segments decode on their own and join without re-encoding."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3] (got {frames.dtype} {frames.shape})")
    path = Path(path)
    if path.suffix not in CONTAINERS:
        raise ValueError(f"video path must end in .ts or .mp4 (got {path.name})")
    scale = display_scale(*frames.shape[1:3]) if scale is None else scale
    frames = _even(upscale(frames, scale))
    t, h, w, _ = frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    # one ffmpeg run fed the raw frames (imageio-ffmpeg's own writer sends ffmpeg's error output to the server's
    # stderr, where no one reads why a segment failed; here it comes back in the error)
    args = [ffmpeg_path(), "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
            "-r", f"{fps:g}", "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-bf", "0", "-pix_fmt", "yuv420p", "-crf", str(crf), "-g", str(t), "-f", CONTAINERS[path.suffix]]
    args += ["-movflags", "+faststart"] if path.suffix == ".mp4" else []
    result = subprocess.run(args + [str(path)], input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        message = " ".join(result.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise VideoError(f"encoding {path.name} failed (ffmpeg exit {result.returncode}): {message}")
    return path


def write_mp4(frames: np.ndarray, path: str | Path, fps: int, scale: int | None = None, crf: int = 18) -> Path:
    """frames [T, H, W, 3] uint8 -> an H.264 mp4 (see ``write_video``)."""
    if Path(path).suffix != ".mp4":
        raise ValueError(f"an mp4 path must end in .mp4 (got {Path(path).name})")
    return write_video(frames, path, fps, scale, crf)


def concat(segments: list[Path], path: str | Path) -> Path:
    """Join H.264 segments (as ``write_video`` makes them, all of one size and fps) into ``path`` without
    re-encoding (ffmpeg's concat demuxer, ``-c copy``)."""
    if not segments:
        raise ValueError("no segments to join")
    path = Path(path)
    if path.suffix not in CONTAINERS:
        raise ValueError(f"video path must end in .ts or .mp4 (got {path.name})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=path.parent, delete=False) as listing:
        for segment in segments:
            listing.write("file '" + str(Path(segment).resolve()).replace("'", "'\\''") + "'\n")
    args = [ffmpeg_path(), "-v", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", listing.name,
            "-c", "copy", "-f", CONTAINERS[path.suffix]]
    args += ["-movflags", "+faststart"] if path.suffix == ".mp4" else []
    try:
        result = subprocess.run(args + [str(path)], capture_output=True, check=False)
    finally:
        Path(listing.name).unlink(missing_ok=True)
    if result.returncode != 0:
        message = " ".join(result.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise VideoError(f"joining {len(segments)} segments into {path.name} failed (ffmpeg exit {result.returncode}): {message}")
    return path


def read_video(path: str | Path) -> np.ndarray:
    """The frames of a video file as ``uint8 [T, H, W, 3]`` (decoded by the same ffmpeg)."""
    import imageio_ffmpeg

    ffmpeg_path()
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(frame, np.uint8).reshape(h, w, 3) for frame in reader]
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)
