"""The self-attention KV cache of the causal DiT: one fixed allocation, three regions, in-place writes.

Layout of every layer's keys and values, in latent frames (``T`` = tokens per frame)::

    [ memory (M slots, filled from the right) | sink (S) | local ring (L) ]

Keys are stored with their rotary position already applied, so attention over the cache needs no
position bookkeeping. The visible keys are always one contiguous slice — the filled memory slots, the sink
and the filled part of the ring — so attention reads a view of the cache and never concatenates or clones.
All bookkeeping is plain Python integers: nothing in the chunk loop waits for the device.

A chunk being denoised is written into the ring slot it will keep once committed (Self-Forcing style): each
denoising pass overwrites it, the clean commit pass writes its final K/V, and the next chunk moves on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CacheWrite:
    """Where a forward pass writes the K/V of its frames: a token offset into the cache."""

    token_start: int
    visible_start: int  # first visible token, inclusive
    visible_end: int  # last visible token, exclusive; covers the written frames
    # a write of several chunks at once (batched re-cache): the token end of each chunk; chunk c sees
    # [visible_start, chunk_ends[c]), the block-causal order of writing them one by one
    chunk_ends: tuple[int, ...] = ()


class KVCache:
    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        head_dim: int,
        tokens_per_frame: int,
        frames_per_chunk: int,
        sink_frames: int,
        local_window_frames: int,
        max_memory_frames: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ):
        if local_window_frames % frames_per_chunk:
            raise ValueError(
                f"local_window_frames ({local_window_frames}) must be a multiple of frames_per_chunk ({frames_per_chunk})"
            )
        self.tokens_per_frame = tokens_per_frame
        self.frames_per_chunk = frames_per_chunk
        self.sink_frames = sink_frames
        self.local_window_frames = local_window_frames
        self.max_memory_frames = max_memory_frames
        total_frames = max_memory_frames + sink_frames + local_window_frames
        shape = (num_layers, batch_size, num_heads, total_frames * tokens_per_frame, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)  # [layers, B, heads, tokens, head_dim]
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.reset()

    # --- region geometry (frames) ---
    @property
    def sink_start(self) -> int:
        return self.max_memory_frames

    @property
    def local_start(self) -> int:
        return self.max_memory_frames + self.sink_frames

    @property
    def ring_slots(self) -> int:
        return self.local_window_frames // self.frames_per_chunk

    def reset(self) -> None:
        """Forget everything (the tensors are kept and overwritten later)."""
        self.sink_filled = False
        self.memory_count = 0
        self.chunks_written = 0  # chunks committed to sink or ring since reset

    def _visible(self, local_filled_frames: int) -> tuple[int, int]:
        start = (self.max_memory_frames - self.memory_count) * self.tokens_per_frame
        return start, (self.local_start + local_filled_frames) * self.tokens_per_frame

    def next_chunk_write(self) -> CacheWrite:
        """Where the next chunk's frames go, and what they see (themselves included)."""
        fpc, tpf = self.frames_per_chunk, self.tokens_per_frame
        if self.sink_frames and not self.sink_filled:
            start, _ = self._visible(0)
            return CacheWrite(self.sink_start * tpf, start, (self.sink_start + self.sink_frames) * tpf)
        ring_index = self.chunks_written - (1 if self.sink_frames else 0)
        slot = ring_index % self.ring_slots
        filled = min(ring_index + 1, self.ring_slots) * fpc
        start, end = self._visible(filled)
        return CacheWrite((self.local_start + slot * fpc) * tpf, start, end)

    def chunks_write(self, num_chunks: int) -> CacheWrite:
        """Where the next ``num_chunks`` chunks go when written in one pass (a batched re-cache), each seeing what
        it would see if the chunks were committed one by one; ``commit_chunks`` then advances past them all.

        The chunks must fit the sink (if empty) and the ring without wrapping, as after ``reset_ring``."""
        fpc, tpf = self.frames_per_chunk, self.tokens_per_frame
        first = self.next_chunk_write()
        ring_index = self.chunks_written - (1 if self.sink_frames else 0)
        last_ring_index = ring_index + num_chunks - 1
        if last_ring_index >= self.ring_slots:
            raise ValueError(
                f"{num_chunks} chunks do not fit the cache without wrapping ({self.ring_slots} ring slots, "
                f"{max(ring_index, 0)} filled)"
            )
        ends = tuple(first.token_start + (c + 1) * fpc * tpf for c in range(num_chunks))
        return CacheWrite(first.token_start, first.visible_start, ends[-1], ends)

    def commit_chunks(self, num_chunks: int) -> None:
        for _ in range(num_chunks):
            self.commit_chunk()

    def alone(self, write: CacheWrite) -> CacheWrite | None:
        """The same write seeing only its own chunk (no memory, sink or window); None when that is all it sees."""
        end = write.token_start + self.frames_per_chunk * self.tokens_per_frame
        if (write.visible_start, write.visible_end) == (write.token_start, end):
            return None
        return CacheWrite(write.token_start, write.token_start, end)

    def commit_chunk(self) -> None:
        """The chunk written by ``next_chunk_write`` is final: advance to the next slot."""
        if self.sink_frames and not self.sink_filled:
            self.sink_filled = True
        self.chunks_written += 1

    def reset_ring(self, keep_sink: bool = True) -> None:
        """Empty the local window (a re-cache refills it), and the sink too unless ``keep_sink``; the next
        chunk committed then goes to the sink. Memory is kept."""
        if not keep_sink:
            self.sink_filled = False
        self.chunks_written = 1 if self.sink_filled else 0

    def memory_write(self, num_frames: int) -> CacheWrite:
        """Write ``num_frames`` memory frames (replacing the active memory); they see only each other."""
        if num_frames > self.max_memory_frames:
            raise ValueError(f"{num_frames} memory frames do not fit max_memory_frames={self.max_memory_frames}")
        start = (self.max_memory_frames - num_frames) * self.tokens_per_frame
        return CacheWrite(start, start, self.max_memory_frames * self.tokens_per_frame)

    def set_memory_count(self, num_frames: int) -> None:
        self.memory_count = num_frames

    @property
    def visible_frames(self) -> int:
        start, end = self._visible(self.local_filled_frames)
        return (end - start) // self.tokens_per_frame

    @property
    def local_filled_frames(self) -> int:
        ring_chunks = self.chunks_written - (1 if self.sink_frames and self.sink_filled else 0)
        return min(max(ring_chunks, 0), self.ring_slots) * self.frames_per_chunk

    # --- memory slots holding K/V as first committed (MemFlow's bank) ---
    def last_chunk_start(self) -> int:
        """Token start of the chunk committed last (in the sink or the ring)."""
        ring_index = self.chunks_written - 1 - (1 if self.sink_frames else 0)
        if ring_index < 0:
            return self.sink_start * self.tokens_per_frame
        return (self.local_start + (ring_index % self.ring_slots) * self.frames_per_chunk) * self.tokens_per_frame

    def copy_to_memory_slot(self, token_start: int, slot: int) -> None:
        """Copy one frame's K/V (every layer) from ``token_start`` into memory slot ``slot`` (0 = leftmost)."""
        tpf = self.tokens_per_frame
        for tensor in (self.keys, self.values):
            tensor[:, :, :, slot * tpf : (slot + 1) * tpf].copy_(tensor[:, :, :, token_start : token_start + tpf])

    def memory_slot_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory region as [layers, B, heads, slots, tokens_per_frame, D] views (keys, values)."""
        end = self.max_memory_frames * self.tokens_per_frame
        return tuple(t[:, :, :, :end].unflatten(3, (self.max_memory_frames, self.tokens_per_frame))
                     for t in (self.keys, self.values))
