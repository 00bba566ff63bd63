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
import time
from collections.abc import Iterator
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
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        return HostCopy(host, event)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host tensor onto the device without the host waiting for the device's queue (a pageable copy would)."""
        if not self.cuda or tensor.device.type == "cuda":
            return tensor.to(self.device)
        return tensor.pin_memory().to(self.device, non_blocking=True)


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
