"""The memory bank: archived frames with the entities they show, and the few frames the model remembers.

An archived frame is its clean latent plus metadata (scene, chunk, story frame, entity ids, scores), saved as
``p{scene}_c{chunk}_f{frame}.pt`` when a save directory is set. K/V are never archived: when a frame becomes
active its K/V are recomputed under the current prompt into the memory region of the cache.

A bank given an ``aside_dir`` (a story's) keeps each record's latent and picture in a file there, not in RAM (a Wan
frame's latent is 400 KB and its picture 1.2 MB, one record a chunk for ``iam``: a long story's archive would grow
the host's memory by gigabytes); ``latent(key)`` and ``thumbnail(key)`` read them back, the last few kept.

Which chunks are archived and which frames are active is the memory policy's decision
(``iamflow.memory.policies``); the bank stores, covers and ranks.

Scores are cross-attention logits: a frame's mean cross-attention query (captured on a few layers during its
clean commit pass, ``CausalWanModel.capturing``) against the mean cross-attention key of a text (an entity's
description, or the prompt).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from iamflow.files import link_or_copy

logger = logging.getLogger(__name__)


@dataclass
class FrameRecord:
    scene: int
    chunk: int  # chunk index within the scene
    frame: int  # story latent frame index (its rotary position, plus its scene's shift after a cut)
    entity_ids: list[int]
    scores: dict[int, float]  # entity id -> score when archived
    score: float
    reason: str
    latent: torch.Tensor | None  # [C, h, w], CPU (None while put aside: ``MemoryBank.latent``)
    queries: torch.Tensor  # [layers, heads, D] mean cross-attention query, CPU float32
    thumbnail: np.ndarray | None = None
    aside: bool = False  # its latent and thumbnail are in the bank's aside folder, not here

    @property
    def key(self) -> str:
        return f"p{self.scene}_c{self.chunk}_f{self.frame}"

    def info(self) -> dict:
        return {
            "key": self.key,
            "scene": self.scene,
            "chunk": self.chunk,
            "frame": self.frame,
            "entity_ids": list(self.entity_ids),
            "score": round(float(self.score), 4),
            "reason": self.reason,
        }


def text_keys(kv: list[tuple[torch.Tensor, torch.Tensor]], layers: list[int], length: int) -> torch.Tensor:
    """Mean cross-attention key over the first ``length`` text tokens: [layers, heads, D]."""
    return torch.stack([kv[layer][0][0, :, : max(length, 1)].float().mean(dim=1) for layer in layers]).cpu()


def relevance(queries: torch.Tensor, keys: torch.Tensor) -> float:
    """Cross-attention logit of a frame (queries [layers, heads, D]) for a text (keys [layers, heads, D])."""
    return float((queries * keys).sum(-1).mean() / math.sqrt(queries.shape[-1]))


@dataclass
class MemoryBank:
    policy: str
    max_memory_frames: int
    save_dir: Path | None = None
    aside_dir: Path | None = None  # where records' latents and pictures wait (None: they stay in RAM)
    archive: dict[str, FrameRecord] = field(default_factory=dict)
    by_entity: dict[int, set[str]] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)  # keys of the active frames, in slot order
    _read_back: OrderedDict = field(default_factory=OrderedDict)  # key -> (latent, thumbnail), the last few read

    @property
    def enabled(self) -> bool:
        from iamflow.memory.policies import memory_policy

        return memory_policy(self.policy).enabled(self.max_memory_frames)

    def add(self, record: FrameRecord) -> None:
        self.archive[record.key] = record
        for entity in record.entity_ids:
            self.by_entity.setdefault(entity, set()).add(record.key)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            torch.save(
                {"latent": record.latent, "queries": record.queries, **record.info(), "scores": record.scores},
                self.save_dir / f"{record.key}.pt",
            )
        if self.aside_dir is not None and not record.aside:
            self._put_aside(record)

    def _aside_path(self, key: str) -> Path:
        return self.aside_dir / f"{key}.pt"

    def _put_aside(self, record: FrameRecord) -> None:
        self.aside_dir.mkdir(parents=True, exist_ok=True)
        path = self._aside_path(record.key)
        path.unlink(missing_ok=True)  # (never write through a link: a saved story may share the old file)
        picture = None if record.thumbnail is None else torch.from_numpy(np.ascontiguousarray(record.thumbnail))
        torch.save({"latent": record.latent, "thumbnail": picture}, path)
        record.latent, record.thumbnail, record.aside = None, None, True
        self._read_back.pop(record.key, None)

    def latent(self, key: str) -> torch.Tensor:
        """A record's latent ``[C, h, w]`` (read back from the aside folder if it waits there)."""
        return self._heavy(key)[0]

    def thumbnail(self, key: str) -> np.ndarray | None:
        return self._heavy(key)[1]

    def _heavy(self, key: str) -> tuple[torch.Tensor, np.ndarray | None]:
        record = self.archive[key]
        if not record.aside:
            return record.latent, record.thumbnail
        if key in self._read_back:
            self._read_back.move_to_end(key)
            return self._read_back[key]
        data = torch.load(self._aside_path(key), map_location="cpu", weights_only=True)
        value = (data["latent"], None if data["thumbnail"] is None else data["thumbnail"].numpy())
        self._read_back[key] = value
        while len(self._read_back) > 2 * max(1, self.max_memory_frames):  # (the active frames, and a switch's)
            self._read_back.popitem(last=False)
        return value

    def aside_files(self) -> dict[str, Path]:
        """Key -> file of every record put aside."""
        return {key: self._aside_path(key) for key, record in self.archive.items() if record.aside}

    def rewind(self, archived: int, active: list[str]) -> None:
        """Undo: keep only the first ``archived`` records (archive order) and restore the ``active`` frames."""
        for key in list(self.archive)[archived:]:
            record = self.archive.pop(key)
            for entity in record.entity_ids:
                self.by_entity.get(entity, set()).discard(key)
            if self.save_dir is not None:
                (self.save_dir / f"{key}.pt").unlink(missing_ok=True)
            if record.aside:
                self._aside_path(key).unlink(missing_ok=True)
            self._read_back.pop(key, None)
        self.active = [k for k in active if k in self.archive]

    # --- choosing the active frames ---------------------------------------------------------------
    def top_by_prompt(self, prompt_keys: torch.Tensor, count: int, exclude: set[str] = frozenset()) -> list[str]:
        ranked = sorted(
            (k for k in self.archive if k not in exclude),
            key=lambda k: (-relevance(self.archive[k].queries, prompt_keys), -self.archive[k].frame),
        )
        return ranked[:count]

    def cover(self, entities: list[int], prompt_keys: torch.Tensor) -> list[str]:
        """Greedy set cover of ``entities`` by archived frames (most new ids first, ties by score)."""
        wanted = {e for e in entities if self.by_entity.get(e)}
        chosen: list[str] = []
        while wanted and len(chosen) < self.max_memory_frames:
            candidates = {k for e in wanted for k in self.by_entity[e]} - set(chosen)
            if not candidates:
                break
            best = max(
                candidates,
                key=lambda k: (
                    len(wanted & set(self.archive[k].entity_ids)),
                    max(self.archive[k].scores.get(e, -1e9) for e in wanted),
                    self.archive[k].frame,
                ),
            )
            chosen.append(best)
            wanted -= set(self.archive[best].entity_ids)
        if len(chosen) < self.max_memory_frames:
            chosen += self.top_by_prompt(prompt_keys, self.max_memory_frames - len(chosen), exclude=set(chosen))
        return chosen

    def set_active(self, keys: list[str]) -> bool:
        """Make ``keys`` the active frames; returns True if the active set changed."""
        keys = sorted(keys, key=lambda k: self.archive[k].frame)  # slot order = story order
        changed = keys != self.active
        self.active = keys
        return changed

    def active_records(self) -> list[FrameRecord]:
        return [self.archive[k] for k in self.active]

    def snapshot(self) -> dict:
        return {
            "active": [self.archive[k].info() for k in self.active],
            "archive": [r.info() for r in sorted(self.archive.values(), key=lambda r: r.frame)],
        }

    # --- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The bank as tensors and plain values; a record put aside is marked ``aside`` and its latent and picture
        stay in its file (``aside_files``: a saved story links them beside its state)."""
        return {
            "policy": self.policy,
            "max_memory_frames": self.max_memory_frames,
            "active": list(self.active),
            "records": [
                {**r.info(), "scores": {str(k): v for k, v in r.scores.items()}, "latent": r.latent,
                 "queries": r.queries, "thumbnail": None if r.thumbnail is None else torch.from_numpy(r.thumbnail),
                 "aside": r.aside}
                for r in self.archive.values()
            ],
        }

    def load_state_dict(self, state: dict, aside_from: Path | None = None) -> None:
        """``state`` from ``state_dict``; the files of records put aside are taken from the folder ``aside_from``
        (linked or copied into this bank's aside folder, or read when it has none)."""
        self.archive.clear()
        self.by_entity.clear()
        self._read_back.clear()
        save_dir, self.save_dir = self.save_dir, None  # already on disk
        for r in state["records"]:
            record = FrameRecord(
                scene=r["scene"], chunk=r["chunk"], frame=r["frame"], entity_ids=list(r["entity_ids"]),
                scores={int(k): v for k, v in r["scores"].items()}, score=r["score"], reason=r["reason"],
                latent=r["latent"], queries=r["queries"],
                thumbnail=None if r.get("thumbnail") is None else r["thumbnail"].numpy(),
            )
            if r.get("aside"):
                source = None if aside_from is None else Path(aside_from) / f"{record.key}.pt"
                if source is None or not source.is_file():
                    raise ValueError(f"the saved story is incomplete: its archived frame {record.key} has no file "
                                     f"(memory/{record.key}.pt); save the story again from where it was made")
                if self.aside_dir is not None:
                    self.aside_dir.mkdir(parents=True, exist_ok=True)
                    link_or_copy(source, self._aside_path(record.key))
                    record.aside = True
                else:
                    data = torch.load(source, map_location="cpu", weights_only=True)
                    record.latent = data["latent"]
                    record.thumbnail = None if data["thumbnail"] is None else data["thumbnail"].numpy()
            self.add(record)
        self.save_dir = save_dir
        self.active = list(state["active"])

