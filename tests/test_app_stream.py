"""How the page receives a scene's chunks: the worker hands over what arrived while the page was busy in one batch,
and the live view sends every frame as a JPEG, in order, at the video's rate."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np
import pytest

from ui.live_feed import LiveFeed, read_part
from ui.worker import DeviceWorker


def test_a_slow_reader_gets_every_item_in_order_batched_and_a_failure_after_them():
    worker = DeviceWorker(lambda name: None)
    released = threading.Event()

    def items():
        yield 0
        released.wait(5)  # the reader is busy with item 0 while 1, 2, 3 arrive
        yield from (1, 2, 3)

    batches = []
    for batch in worker.stream(items, batched=True):
        batches.append(batch)
        if batch == [0]:
            released.set()
            time.sleep(0.3)
    assert batches[0] == [0] and [i for b in batches for i in b] == [0, 1, 2, 3]
    assert batches[1] == [1, 2, 3]  # arrived together while the reader was busy

    def failing():
        yield "a"
        yield "b"
        raise RuntimeError("the scene failed")

    seen = []
    with pytest.raises(RuntimeError, match="the scene failed"):
        for batch in worker.stream(failing, batched=True):
            seen += batch
            time.sleep(0.2)
    assert seen == ["a", "b"]  # what came before the failure is handed over first
    assert list(worker.stream(lambda: iter(range(4)))) == [0, 1, 2, 3]  # unbatched: one item at a time
    worker.shutdown()


def _parts(feed: LiveFeed, count: int, paced: bool, timeout: float = 30.0) -> list[tuple[float, bytes]]:
    """(seconds since the first, part) for the next ``count`` parts of one connection to ``feed``."""
    async def read():
        out, stream = [], feed.parts(paced)
        try:
            async for part in stream:
                out.append((time.monotonic(), part))
                if len(out) == count:
                    break
        finally:
            await stream.aclose()
        return out

    parts = asyncio.run(asyncio.wait_for(read(), timeout))
    return [(at - parts[0][0], part) for at, part in parts]


def _read(part: bytes) -> tuple[dict[str, str], bytes]:
    """A part as the page reads it: its headers and its JPEG."""
    read = read_part(io.BytesIO(part))
    assert read is not None, part[:80]
    return read


def test_the_live_feed_sends_each_frame_as_a_jpeg_in_order_at_the_video_rate():
    from PIL import Image

    rng = np.random.default_rng(0)
    feed = LiveFeed()
    clips = [rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8) for n in (9, 12)]
    feed.push(clips[0], 0, 0, 16.0)
    feed.push(clips[1], 1, 9, 16.0)
    parts = _parts(feed, 21, paced=True)
    heads = [_read(p)[0] for _, p in parts]
    assert [(int(h["x-scene"]), int(h["x-frame"])) for h in heads] == \
        [(0, i) for i in range(9)] + [(1, 9 + i) for i in range(12)]
    assert Image.open(io.BytesIO(_read(parts[0][1])[1])).size == (256, 256)  # the embedded model's 64x64, shown at display scale
    assert parts[-1][0] >= 20 / 16 * 0.95  # paced: never faster than the video plays

    feed.push(clips[1], 2, 21, 16.0)
    feed.clear()  # (Undo): what was not sent goes
    feed.push(clips[0][:2], 3, 21, 16.0)
    parts = _parts(feed, 2, paced=False)
    assert [int(_read(p)[0]["x-scene"]) for _, p in parts] == [3, 3]
    feed.close()


def test_a_newer_page_connection_takes_the_feed_over():
    feed = LiveFeed()

    async def both():
        older, newer = feed.parts(False), feed.parts(False)
        waiting = asyncio.ensure_future(older.__anext__())
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(newer.__anext__())  # connects: the older one ends at its next frame
        await asyncio.sleep(0.05)
        feed.push(np.zeros((1, 8, 8, 3), np.uint8), 0, 0, 16.0)
        part = await asyncio.wait_for(second, 10)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 10)
        await newer.aclose()
        return part

    assert _read(asyncio.run(both()))[0]["x-frame"] == "0"
    feed.close()
