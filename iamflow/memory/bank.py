"""The memory bank: archived frames with the entities they show, and the few frames the model remembers.

An archived frame is its clean latent plus metadata (scene, chunk, story frame, entity ids, scores), saved as
``p{scene}_c{chunk}_f{frame}.pt`` when a save directory is set. K/V are never archived: when a frame becomes
active its K/V are recomputed under the current prompt into the memory region of the cache.

Which chunks are archived and which frames are active is the memory policy's decision
(``iamflow.memory.policies``); the bank stores, covers and ranks.

Scores are cross-attention logits: a frame's mean cross-attention query (captured on a few layers during its
clean commit pass, ``CausalWanModel.capturing``) against the mean cross-attention key of a text (an entity's
description, or the prompt).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

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
    latent: torch.Tensor  # [C, h, w], CPU
    queries: torch.Tensor  # [layers, heads, D] mean cross-attention query, CPU float32
    thumbnail: np.ndarray | None = None

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
    archive: dict[str, FrameRecord] = field(default_factory=dict)
    by_entity: dict[int, set[str]] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)  # keys of the active frames, in slot order

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

    def rewind(self, archived: int, active: list[str]) -> None:
        """Undo: keep only the first ``archived`` records (archive order) and restore the ``active`` frames."""
        for key in list(self.archive)[archived:]:
            record = self.archive.pop(key)
            for entity in record.entity_ids:
                self.by_entity.get(entity, set()).discard(key)
            if self.save_dir is not None:
                (self.save_dir / f"{key}.pt").unlink(missing_ok=True)
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
        return {
            "policy": self.policy,
            "max_memory_frames": self.max_memory_frames,
            "active": list(self.active),
            "records": [
                {**r.info(), "scores": {str(k): v for k, v in r.scores.items()}, "latent": r.latent,
                 "queries": r.queries, "thumbnail": None if r.thumbnail is None else torch.from_numpy(r.thumbnail)}
                for r in self.archive.values()
            ],
        }

    def load_state_dict(self, state: dict) -> None:
        self.archive.clear()
        self.by_entity.clear()
        save_dir, self.save_dir = self.save_dir, None  # already on disk
        for r in state["records"]:
            self.add(
                FrameRecord(
                    scene=r["scene"], chunk=r["chunk"], frame=r["frame"], entity_ids=list(r["entity_ids"]),
                    scores={int(k): v for k, v in r["scores"].items()}, score=r["score"], reason=r["reason"],
                    latent=r["latent"], queries=r["queries"],
                    thumbnail=None if r.get("thumbnail") is None else r["thumbnail"].numpy(),
                )
            )
        self.save_dir = save_dir
        self.active = list(state["active"])
