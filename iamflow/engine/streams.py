"""The streams of one device, and copies between it and the host that the host does not wait for.

A story's chunk is denoised and committed on the device's current stream. Its decode runs on a stream of its own
(high priority, so the frames being shown are not starved by the next chunk's denoising), and what the host keeps
(latents, memory-scoring queries, frames) is copied into pinned memory without blocking. The host waits only
where it reads a copy (``HostCopy.wait``), which the session does when it hands a chunk's frames out.

On a CPU every stream is the current one and every copy is done at once: the same operations in the same order,
so a CPU run is identical whichever way the loop is ordered.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch


@dataclass
class HostCopy:
    """A tensor on its way to the host; ``wait()`` returns it once it has arrived."""

    tensor: torch.Tensor
    event: torch.cuda.Event | None = None

    def wait(self) -> torch.Tensor:
        if self.event is not None:
            self.event.synchronize()
            self.event = None
        return self.tensor


class DeviceStreams:
    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            _, highest = torch.cuda.Stream.priority_range()
            self.decode_stream = torch.cuda.Stream(self.device, priority=highest)
            self.copy_stream = torch.cuda.Stream(self.device)

    @contextlib.contextmanager
    def side(self, name: str, *inputs: torch.Tensor) -> Iterator[None]:
        """Run the block on side stream ``name`` ("decode_stream" or "copy_stream") after everything queued so far
        on the current stream; ``inputs`` (made on the current stream) stay allocated until the side stream used them."""
        if not self.cuda:
            yield
            return
        stream = getattr(self, name)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        for tensor in inputs:
            tensor.record_stream(stream)
        with torch.cuda.stream(stream):
            yield

    def to_host(self, tensor: torch.Tensor, stream: str = "copy_stream") -> HostCopy:
        """Start copying ``tensor`` to pinned host memory on a side stream; the host goes on at once."""
        if not self.cuda:
            return HostCopy(tensor.cpu())
        with self.side(stream, tensor):
            return _pinned_copy(tensor)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host tensor onto the device without the host waiting for the device's queue (a pageable copy would)."""
        if not self.cuda or tensor.device.type == "cuda":
            return tensor.to(self.device)
        return tensor.pin_memory().to(self.device, non_blocking=True)


def _pinned_copy(tensor: torch.Tensor) -> HostCopy:
    """Start copying a GPU ``tensor`` into pinned host memory on the current stream; the host goes on at once."""
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return HostCopy(host, event)


class DecodeError(RuntimeError):
    """A chunk could not be decoded on the decode device (the cause is chained)."""


class DecodeJob:
    """A chunk handed to a ``DecodeStage``: ``wait()`` returns its uint8 frames [T, H, W, 3] on the host once
    decoded and copied (like ``HostCopy.wait``), or raises the decode thread's error as a ``DecodeError``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.future: Future = Future()

    def wait(self) -> torch.Tensor:
        try:
            copy = self.future.result()
        except Exception as err:
            raise DecodeError(f"decoding a chunk on {self.device} failed: {type(err).__name__}: {err}") from err
        return copy.wait()

    def finish_quietly(self) -> None:
        """Wait until the decode thread is done with this chunk, whatever came of it (a dropped scene's chunks)."""
        try:
            self.wait()
        except DecodeError:
            pass


class DecodeStage:
    """The decode device's share of a story: one thread that takes the chunks in order from a bounded queue,
    brings each chunk's latents over from the DiT's device, decodes them with the story's stream decoder and copies
    the frames to pinned host memory. The host only queues a chunk (``submit``) and waits where it reads the frames,
    so it queues the DiT's next chunk while this one decodes; the queue's bound (``depth``) holds the host back
    when the decode falls behind, so latents do not pile up.

    On GPUs the hand-over runs on a side stream of the DiT's device (after an event the host recorded where the
    chunk was made: the DiT's own stream never waits), and decode and frame copy on a high-priority stream of the
    decode device. On a CPU the thread does the same operations in the same order beside the host thread."""

    def __init__(self, source: torch.device, device: torch.device,
                 decode: Callable[[object, torch.Tensor], torch.Tensor], depth: int = 2):
        if not 1 <= depth <= 2:
            raise ValueError(f"the decode queue holds 1 or 2 chunks (got {depth})")
        self.source, self.device = torch.device(source), torch.device(device)
        self._decode = decode  # (stream decoder, latents on the decode device) -> uint8 frames there
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.cuda = self.device.type == "cuda"
        if self.source.type == "cuda":
            self.handover_stream = torch.cuda.Stream(self.source)
        if self.cuda:
            _, highest = torch.cuda.Stream.priority_range()
            self.decode_stream = torch.cuda.Stream(self.device, priority=highest)

    def submit(self, decoder, latents: torch.Tensor, stage=None) -> DecodeJob:
        """Queue ``latents`` (made on the current stream of the DiT's device) for decoding after every chunk queued
        before; returns at once unless the queue is full. ``stage(name)``: the benchmark's timer."""
        job = DecodeJob(self.device)
        ready = None
        if self.source.type == "cuda" and latents.device == self.source:  # (a story's saved latents come from the host)
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(self.source))
            latents.record_stream(self.handover_stream)  # not reused by the DiT before the hand-over read it
            if self.source == self.device:
                latents.record_stream(self.decode_stream)
        self._ensure_thread()
        item = (job, decoder, latents, ready, stage)
        while True:  # bounded: wait for room, but never for a thread that is gone
            try:
                self._queue.put(item, timeout=1.0)
                return job
            except queue.Full:
                if not self._thread.is_alive():
                    raise DecodeError(f"the decode thread for {self.device} has stopped") from None

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                # the thread holds the stage weakly: a runtime dropped takes its stage and thread with it
                self._thread = threading.Thread(target=_decode_worker, args=(weakref.ref(self), self._queue),
                                                name=f"decode-{self.device}", daemon=True)
                self._thread.start()

    def _run(self, decoder, latents: torch.Tensor, ready, stage) -> HostCopy:
        stage = stage or (lambda name: contextlib.nullcontext())
        if not self.cuda:
            with stage("hand-over"):
                if ready is not None:  # a GPU's chunk to a host decoder: copied once made, beside the DiT
                    self.handover_stream.wait_event(ready)
                    with torch.cuda.stream(self.handover_stream):
                        moved = latents.to(self.device)
                else:
                    moved = latents.to(self.device)
            with stage("decode"):
                frames = self._decode(decoder, moved)
            with stage("frame copy to host"):
                return HostCopy(frames.cpu())
        with torch.cuda.stream(self.decode_stream):
            with stage("hand-over"):
                if latents.device == self.device:  # one GPU: the decode stream waits for the chunk
                    if ready is not None:
                        self.decode_stream.wait_event(ready)
                    moved = latents
                elif ready is not None:
                    # a peer copy on the DiT device's side stream, once the chunk is made; the decode stream (the
                    # copy's destination stream) waits for it
                    self.handover_stream.wait_event(ready)
                    with torch.cuda.stream(self.handover_stream):
                        moved = latents.to(self.device, non_blocking=True)
                    self.decode_stream.wait_stream(self.handover_stream)
                else:  # a DiT on the host
                    moved = latents.to(self.device)
            with stage("decode"):
                frames = self._decode(decoder, moved)
            with stage("frame copy to host"):
                return _pinned_copy(frames)

    def close(self) -> None:
        """Let the thread finish the chunks queued and end."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@torch.no_grad()
def _decode_worker(stage_ref: "weakref.ref[DecodeStage]", jobs: queue.Queue) -> None:
    """The decode thread: the chunks in the order queued; an error goes to the chunk's job (the host thread raises
    it where it waits) and the thread goes on."""
    while True:
        try:
            item = jobs.get(timeout=1.0)
        except queue.Empty:
            if stage_ref() is None:  # the runtime is gone
                return
            continue
        if item is None:
            return
        job, decoder, latents, ready, timer = item
        del item
        stage = stage_ref()
        try:
            if stage is None:
                raise DecodeError("the runtime was closed")
            job.future.set_result(stage._run(decoder, latents, ready, timer))
        except BaseException as err:
            job.future.set_exception(err)
        del job, decoder, latents, ready, timer, stage


@dataclass
class StageTimer:
    """Durations of named stages of a session's work, for the benchmark's breakdown.

    Each stage gets its host time (how long the host spent queuing or doing it) and, on a GPU, its device time:
    CUDA events on the stream that runs it, read only when ``take`` is called, so timing adds no wait to the
    loop. A host stage (the agent) has host time only."""

    device: torch.device
    spans: list[tuple[str, float, object, object]] = field(default_factory=list)

    @contextlib.contextmanager
    def __call__(self, name: str, host: bool = False) -> Iterator[None]:
        on_device = not host and torch.device(self.device).type == "cuda"
        if on_device:
            start_event, end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start_event.record()
        start = time.perf_counter()
        yield
        host_seconds = time.perf_counter() - start
        if on_device:
            end_event.record()
            self.spans.append((name, host_seconds, start_event, end_event))
        else:
            self.spans.append((name, host_seconds, None, None))

    def take(self) -> list[tuple[str, float, float | None]]:
        """(stage, host seconds, device seconds or None) for every span so far, in order; waits for the device;
        forgets them."""
        out = []
        for name, host_seconds, start, end in self.spans:
            device_seconds = None
            if start is not None:
                end.synchronize()
                device_seconds = start.elapsed_time(end) / 1000.0
            out.append((name, host_seconds, device_seconds))
        self.spans.clear()
        return out
