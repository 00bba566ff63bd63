"""How the page receives a scene's chunks: the worker hands over what arrived while the page was busy in one batch,
and the page shows a batch as one segment joined without re-encoding."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from iamflow import video
from ui.callbacks import _one_segment
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


def test_chunks_that_arrive_together_are_shown_as_one_segment_with_all_their_frames(tmp_path):
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8) for n in (9, 12, 12)]
    segments = [video.write_video(c, tmp_path / f"chunk-{i:04d}.ts", 16, scale=1) for i, c in enumerate(clips)]
    assert _one_segment(segments[:1], tmp_path / "shown") == segments[0]  # one chunk: its own segment
    joined = _one_segment(segments, tmp_path / "shown")
    assert joined.parent == tmp_path / "shown" and joined.suffix == ".ts"
    frames = video.read_video(joined)
    assert len(frames) == sum(len(c) for c in clips)
    # no re-encoding: the joined frames are the segments' frames, in order
    np.testing.assert_array_equal(frames, np.concatenate([video.read_video(s) for s in segments]))
