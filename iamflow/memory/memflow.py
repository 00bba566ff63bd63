"""MemFlow's narrative memory bank, as its released interactive inference runs it (``bank_size`` 3,
``record_interval`` 3, no sparse memory activation), so MemFlow's weights see the memory they were trained with.

* Every third chunk of the story (chunks 0, 3, 6, …) records the K/V of its **first** latent frame as its clean
  commit pass wrote them (rotary positions included, under the prompt of that moment). They are never recomputed.
* At the start of the next chunk the record enters the bank: appended while the bank has room; once full, the
  bank is re-compressed at the start of **every** chunk: per layer, the ``size - 1`` frames whose keys score
  highest against the current prompt's cross-attention keys are kept (best first), then the newest record is
  appended (it can then be in the bank twice, as in MemFlow).
* Score of a bank frame in one layer: the mean over text tokens (padding included), heads and the frame's tokens
  of ``text_key · frame_key / sqrt(D)``, i.e. the dot product of the mean text key and the frame's mean key.
  At a re-cached scene switch MemFlow has just emptied its text cache, so the scores are all zero there and the
  bank keeps its first ``size - 1`` frames (ties keep bank order).
* A chunk attends to ``min(records before it, size)`` bank frames; layers may hold different frames.

The bank lives in the cache's memory region: slot 0 holds the newest record until it enters the bank, bank entry i
sits in slot ``size - i`` (so the visible frames are the rightmost ones). Its state is a function of the cache
log, so replaying the log rebuilds it.
"""

from __future__ import annotations

import math

import torch

from iamflow.engine.kv_cache import KVCache

RECORD_INTERVAL = 3  # chunks


def records_chunk(story_chunk: int) -> bool:
    """Whether the story's chunk ``story_chunk`` gives its first frame to the bank."""
    return story_chunk % RECORD_INTERVAL == 0


class MemFlowBank:
    def __init__(self, num_layers: int, size: int):
        self.size = size
        self.entries: list[list[str]] = [[] for _ in range(num_layers)]  # per layer, frame keys in bank order
        self.records = 0  # records made so far (the newest may not be in the bank yet)
        self.newest: str | None = None
        self.placed = True  # the newest record is in the bank

    def stage(self, cache: KVCache, key: str) -> None:
        """After the clean commit of a recording chunk: keep its first frame's K/V in slot 0."""
        cache.copy_to_memory_slot(cache.last_chunk_start(), 0)
        self.records += 1
        self.newest, self.placed = key, False

    @property
    def pending(self) -> bool:
        """Whether the next chunk start changes the bank (a record to place, or a full bank to re-compress)."""
        return self.records > 0 and (not self.placed or self.records > self.size)

    def before_chunk(self, cache: KVCache, text_keys: list[torch.Tensor] | None) -> None:
        """A chunk starts (or a scene switch re-caches): place the newest record or re-compress the bank.
        ``text_keys``: per layer the prompt's cross-attention keys [B, heads, text_len, D]; None scores zero."""
        keys, values = cache.memory_slot_view()  # [layers, B, heads, slots, T, D]
        if self.records <= self.size:
            slot = self.size - (self.records - 1)
            for tensor in (keys, values):
                tensor[:, :, :, slot].copy_(tensor[:, :, :, 0])
            if not self.placed:
                for entries in self.entries:
                    entries.append(self.newest)
        else:
            order = self._compress_order(keys, text_keys)  # per layer: current entry indices to keep, best first
            slots = torch.tensor([[self.size - i for i in keep] + [0] for keep in order], device=keys.device)
            layer = torch.arange(len(order), device=keys.device)[:, None]
            for tensor in (keys, values):
                kept = tensor[layer, :, :, slots]  # [layers, size, B, heads, T, D]
                tensor[:, :, :, 1:].copy_(kept.permute(0, 2, 3, 1, 4, 5).flip(3))  # entry i -> slot size - i
            self.entries = [[entries[i] for i in keep] + [self.newest] for entries, keep in zip(self.entries, order)]
        self.placed = True
        cache.set_memory_count(min(self.records, self.size))

    def _compress_order(self, keys: torch.Tensor, text_keys: list[torch.Tensor] | None) -> list[list[int]]:
        keep = self.size - 1
        if text_keys is None:
            return [list(range(keep)) for _ in self.entries]
        bank = keys[:, :, :, 1:].flip(3).float().mean(dim=4)  # [layers, B, heads, size, D], entry order
        text = torch.stack([k.float().mean(dim=2) for k in text_keys])  # [layers, B, heads, D]
        scores = (bank * text[:, :, :, None]).sum(-1).mean(dim=(1, 2)) / math.sqrt(keys.shape[-1])  # [layers, size]
        scores = scores.cpu().tolist()
        return [sorted(range(self.size), key=lambda i: -row[i])[:keep] for row in scores]

    def active(self) -> list[str]:
        """The frames most layers hold, at most ``size`` (for the memory panel)."""
        counts: dict[str, int] = {}
        for entries in self.entries:
            for key in dict.fromkeys(entries):
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts, key=lambda k: -counts[k])[: self.size]
