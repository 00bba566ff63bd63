"""Files for the page besides the video (whose one writer is ``iamflow.video``): the story's subtitles and the
memory panel's pictures.

``upscale`` (nearest-neighbour, shared with the video writer) is re-exported for the thumbnails.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from iamflow.files import write_atomic
from iamflow.video import upscale

__all__ = ["upscale", "vtt_escape", "write_picture", "write_subtitles"]

logger = logging.getLogger(__name__)


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


def write_picture(image: np.ndarray, folder: str | Path) -> Path:
    """``image`` [H, W, 3] uint8 as a PNG in ``folder``, named by its pixels and written once: a picture the page is
    shown again is the same file, neither encoded nor rewritten again while the page may be fetching it. (Handed a
    picture as an array, Gradio encodes it again and writes it over the same path every time it is sent.)"""
    from PIL import Image

    pixels = np.ascontiguousarray(image, dtype=np.uint8)
    digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()[:20]
    path = Path(folder) / f"{digest}.png"
    if not path.is_file():  # (the memory panel shows the same frames chunk after chunk: encoded only when new)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        write_atomic(path, buffer.getvalue())  # whole or not at all, for a request that comes in meanwhile
    return path
