"""The live view: the frames of the scene being generated, sent to the page as they are decoded.

A story's frames reach its page's live view as a Motion-JPEG stream (``multipart/x-mixed-replace``, which an
``<img>`` plays by itself): each frame is one JPEG part, sent the moment the story hands its chunk out and no
sooner than its playback time, so the page shows the video at its frame rate and a switch as soon as the story
has its first frame. The story's H.264 segments (the story player, exports, bundles) are written beside it as
before; this path only skips the segment encoding, probing and muxing that stood between a chunk and the page.

One ``LiveFeed`` a story: the device worker ``push``es each chunk's frames (it never waits), a thread of the feed
encodes them, and the server's route sends them to the one page connected (a newer connection takes over).
Its address holds an unguessable token: only the page the story belongs to is ever given it.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import numpy as np

from iamflow.video import display_scale, upscale

logger = logging.getLogger(__name__)

ROUTE = "/iamflow/live/{token}"
BOUNDARY = "iamflow-frame"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


@dataclass(frozen=True)
class LiveFrame:
    jpeg: bytes
    scene_index: int
    frame_index: int  # the frame's index in the story's video
    fps: float


class LiveFeed:
    """The frames of one story on their way to its page's live view (see the module's docstring)."""

    MAX_FRAMES = 320  # frames kept for a page that is behind or not connected (20 s at 16 fps); the oldest go first
    QUALITY = 85

    def __init__(self):
        self.token = secrets.token_urlsafe(16)
        self._lock = threading.Lock()
        self._to_encode: collections.deque = collections.deque()  # (frames [T, H, W, 3] uint8, scene, first, fps)
        self._frames: collections.deque[LiveFrame] = collections.deque(maxlen=self.MAX_FRAMES)
        self._work = threading.Condition(self._lock)
        self._listener: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._connection = 0  # bumped by every page that connects: an older connection then ends
        self._closed = False
        self._cleared = 0  # bumped by ``clear``: frames of a chunk being encoded then are dropped
        self._thread: threading.Thread | None = None  # started by the first chunk

    @property
    def path(self) -> str:
        return ROUTE.format(token=self.token)

    # --- the device worker's side ---------------------------------------------------------------------------
    def push(self, frames: np.ndarray, scene_index: int, first_frame: int, fps: float) -> None:
        """Queue a chunk's frames ``[T, H, W, 3]`` uint8 for the page; returns at once."""
        with self._work:
            if self._closed:
                return
            self._to_encode.append((frames, scene_index, first_frame, fps))
            self._work.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._encode_loop, name="iamflow-live-feed", daemon=True)
                self._thread.start()

    def clear(self) -> None:
        """Drop every frame not yet sent (the story changed: undo, a new story, a loaded one)."""
        with self._work:
            self._to_encode.clear()
            self._frames.clear()
            self._cleared += 1

    def close(self) -> None:
        with self._work:
            self._closed = True
            self._to_encode.clear()
            self._frames.clear()
            self._work.notify()
        self._wake()

    # --- encoding -----------------------------------------------------------------------------------------
    def _encode_loop(self) -> None:
        from PIL import Image

        while True:
            with self._work:
                while not self._to_encode and not self._closed:
                    self._work.wait()
                if self._closed:
                    return
                frames, scene_index, first_frame, fps = self._to_encode.popleft()
                cleared = self._cleared
            scale = display_scale(*frames.shape[1:3])
            for offset, frame in enumerate(frames):
                buffer = io.BytesIO()
                Image.fromarray(np.ascontiguousarray(upscale(frame, scale))).save(buffer, format="JPEG",
                                                                                 quality=self.QUALITY)
                with self._work:
                    if self._closed:
                        return
                    if self._cleared != cleared:
                        break
                    self._frames.append(LiveFrame(buffer.getvalue(), scene_index, first_frame + offset, fps))
                self._wake()

    def _wake(self, listener: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None) -> None:
        listener = listener or self._listener
        if listener is not None:
            loop, event = listener
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop has closed: the page went away
                pass

    # --- the page's side ----------------------------------------------------------------------------------
    async def parts(self, paced: bool = True) -> AsyncIterator[bytes]:
        """The multipart body for the page connected now: one part a frame, each sent when it is ready and (when
        ``paced``) no sooner than one frame interval after the last, so the page plays at the video's rate. A
        connection made later ends this one."""
        event = asyncio.Event()
        with self._work:
            self._connection += 1
            mine = self._connection
            older, self._listener = self._listener, (asyncio.get_running_loop(), event)
        if older is not None:  # the page connected before ends: woken, it sees a newer connection
            self._wake(older)
        due = 0.0  # when the next frame may be shown
        try:
            while True:
                with self._work:
                    if self._closed or self._connection != mine:
                        return
                    frame = self._frames.popleft() if self._frames else None
                    if frame is None:
                        event.clear()
                if frame is None:
                    await event.wait()
                    continue
                now = time.monotonic()
                if paced and due > now:
                    await asyncio.sleep(due - now)
                due = max(now, due) + 1.0 / frame.fps
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n"
                        f"X-Scene: {frame.scene_index}\r\nX-Frame: {frame.frame_index}\r\n\r\n")
                yield head.encode() + frame.jpeg + b"\r\n"
        finally:
            with self._work:
                if self._connection == mine:
                    self._listener = None


def read_part(stream) -> tuple[dict[str, str], bytes] | None:
    """The next part of a live view's stream (a file-like object read as an ``<img>`` would): its headers, lower-case
    names (``x-scene``, ``x-frame``, ``content-length``), and its JPEG; None at the end of the stream."""
    while (line := stream.readline()):
        if not line.startswith(b"--"):
            continue
        headers = {}
        while (header := stream.readline().strip()):
            name, value = header.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        return headers, stream.read(int(headers["content-length"]))
    return None


def live_route(find_feed: Callable[[str], LiveFeed | None]):
    """The server's route of the live view: ``GET /iamflow/live/<token>`` streams that story's frames
    (``?paced=0``: as they come, for measuring the generation's own rate)."""
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def stream(request):
        feed = find_feed(request.path_params["token"])
        if feed is None:
            return PlainTextResponse("No story streams at this address (its page was closed or reloaded, or the "
                                     "story was released): reload the page.", status_code=404)
        paced = request.query_params.get("paced", "1") != "0"
        return StreamingResponse(feed.parts(paced), media_type=MEDIA_TYPE,
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return Route(ROUTE, stream, methods=["GET"])
