"""Memory policies and scene-transition policies: objects that take data and return decisions.

The session owns the KV cache and its log; a policy never touches either. It is asked a question (how is the
cache shaped, does the chunk leaving the window get archived, which frame of it, which frames are active now,
what happens at a scene switch) and answers with plain values that the session applies and logs.

Memory (``memory.policy``):

* ``none`` — a local window only (no sink, no memory);
* ``sink`` — LongLive's frame sink (the story's first chunk) and the window;
* ``nam`` — MemFlow's narrative memory (``MemFlowMemory``): the first frame of every third chunk enters a
  bank of ``max_memory_frames`` frames with its K/V as first committed; once full, the bank is re-compressed at
  every chunk (the best ``max_memory_frames - 1`` by text-key score, then the newest frame);
* ``nam-prompt`` — the project's earlier narrative memory: a prototype frame every third chunk, archived as a
  latent; the active frames are the top-k by relevance to the current prompt, recomputed under it;
* ``iam`` — entity-aware memory: every chunk leaving the window gives its best frame for the scene's
  characters; at a switch the characters the new prompt names get the fewest frames that cover them.

Transitions (``memory.transition``): ``recache`` (LongLive: the window, and the sink with
``memory.recache_sink``, rewritten under the new prompt), ``soft`` (the prompt blends from the old to the new
over a few chunks), ``none``, and ``cut`` (a new shot: the window is flushed, the sink and the memory stay,
and rotary positions jump, so the new place appears at once while remembered characters keep their look).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from iamflow.config import MEMORY_POLICIES as MEMORY_POLICY_NAMES, TRANSITIONS as TRANSITION_NAMES
from iamflow.memory.bank import relevance


# --- memory policies -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CacheShape:
    sink_frames: int
    memory_frames: int


@dataclass(frozen=True)
class FramePick:
    """The frame a leaving chunk archives: its index in the chunk, its score and per-entity scores."""

    index: int
    score: float
    scores: dict[int, float]
    reason: str


class MemoryPolicy:
    """No memory: a local window only."""

    name = "none"
    keeps_sink = False
    archives_frames = False  # frames leaving the window go to the bank's archive
    kv_as_committed = False  # memory slots keep K/V as first committed (only a replay of the whole log rebuilds them)

    def cache_shape(self, sink_frames: int, max_memory_frames: int) -> CacheShape:
        return CacheShape(sink_frames if self.keeps_sink else 0, max_memory_frames if self.archives_frames else 0)

    def enabled(self, max_memory_frames: int) -> bool:
        return self.archives_frames and max_memory_frames > 0

    def archives(self, chunk_in_scene: int) -> bool:
        """Whether the chunk now leaving the window (``chunk_in_scene`` of its scene) gives a frame to the archive."""
        return False

    def pick_frame(self, queries: torch.Tensor, entity_keys: dict[int, torch.Tensor], prompt_keys: torch.Tensor) -> FramePick:
        """The frame of a leaving chunk to archive: queries [frames, layers, heads, D] of the chunk's frames against
        the keys of its scene's characters (mean score), or of its prompt when it names none."""
        best = FramePick(0, -math.inf, {}, "entity match" if entity_keys else "prompt relevance")
        for j in range(queries.shape[0]):
            scores = {e: relevance(queries[j], k) for e, k in entity_keys.items()}
            score = sum(scores.values()) / len(scores) if scores else relevance(queries[j], prompt_keys)
            if score > best.score:
                best = FramePick(j, score, scores, best.reason)
        return best

    def during_scene(self, bank, scene_entities: list[int], prompt_keys: torch.Tensor) -> list[str]:
        """The active frames after an archive, in any order."""
        return []

    def at_switch(self, bank, named_entities: list[int], prompt_keys: torch.Tensor) -> list[str]:
        """The active frames at a scene switch: what the new scene brings back."""
        return []


class SinkMemory(MemoryPolicy):
    name = "sink"
    keeps_sink = True


class PromptMemory(MemoryPolicy):
    """A prototype frame every third chunk; the top-k frames by relevance to the current prompt."""

    name = "nam-prompt"
    keeps_sink = True
    archives_frames = True

    def archives(self, chunk_in_scene: int) -> bool:
        return chunk_in_scene % 3 == 0

    def during_scene(self, bank, scene_entities, prompt_keys):
        return bank.top_by_prompt(prompt_keys, bank.max_memory_frames)

    def at_switch(self, bank, named_entities, prompt_keys):
        return bank.top_by_prompt(prompt_keys, bank.max_memory_frames)


class EntityMemory(MemoryPolicy):
    """Every leaving chunk archives its best frame for the scene's characters; the active frames cover the
    characters of the scene (at a switch: those the new prompt names), the rest filled by prompt relevance."""

    name = "iam"
    keeps_sink = True
    archives_frames = True

    def archives(self, chunk_in_scene: int) -> bool:
        return True

    def during_scene(self, bank, scene_entities, prompt_keys):
        return bank.cover(scene_entities, prompt_keys)

    def at_switch(self, bank, named_entities, prompt_keys):
        return bank.cover(named_entities, prompt_keys)


class MemFlowMemory(MemoryPolicy):
    """MemFlow's bank (``iamflow.memory.memflow``): K/V as first committed, one slot more for the newest record."""

    name = "nam"
    keeps_sink = True
    kv_as_committed = True

    def cache_shape(self, sink_frames: int, max_memory_frames: int) -> CacheShape:
        return CacheShape(sink_frames, max_memory_frames + 1 if max_memory_frames else 0)

    def enabled(self, max_memory_frames: int) -> bool:
        return max_memory_frames > 0

    def at_switch(self, bank, named_entities, prompt_keys):
        return list(bank.active)  # the bank is MemFlow's; a switch does not choose frames


def _by_name(policies: tuple, names: tuple[str, ...], key: str) -> dict:
    """The policies under the names the config accepts (iamflow.config lists them), in its order; one without an
    implementation, or an implementation the config does not list, is a mistake caught at import."""
    found = {p.name: p for p in policies}
    if set(found) != set(names):
        raise ImportError(f"{key} names in iamflow.config {sorted(names)} differ from those implemented {sorted(found)}")
    return {name: found[name] for name in names}


MEMORY_POLICIES: dict[str, MemoryPolicy] = _by_name(
    (MemoryPolicy(), SinkMemory(), MemFlowMemory(), PromptMemory(), EntityMemory()), MEMORY_POLICY_NAMES, "memory.policy"
)


def memory_policy(name: str) -> MemoryPolicy:
    if name not in MEMORY_POLICIES:
        raise ValueError(f"memory policy must be one of {', '.join(MEMORY_POLICIES)} (got {name!r})")
    return MEMORY_POLICIES[name]


def score_layers(layers: list[int], num_layers: int) -> list[int]:
    """The layers whose cross-attention queries score frames: those of ``memory.score_layers`` the model has."""
    return [layer for layer in layers if layer < num_layers] or [0]


# --- transition policies ---------------------------------------------------------------------------------------
@dataclass
class TransitionPlan:
    """What a scene switch does to the cache and the prompt: re-cache these story chunks (and the sink), blend the
    prompt over ``ramp`` (one weight a chunk), or flush the window and move rotary positions on by ``jump``."""

    recache_chunks: list[int] = field(default_factory=list)
    recache_sink: bool = False
    ramp: list[float] = field(default_factory=list)
    flush: bool = False
    jump: int = 0


class TransitionPolicy:
    """No transition: the new prompt simply conditions the next chunk."""

    name = "none"

    def begin(self, story_chunks: int, first_chunk: int, ring_slots: int, has_sink: bool, recache_sink: bool,
              distance=None) -> TransitionPlan:
        """The switch into a new scene. ``story_chunks``: chunks made so far; ``first_chunk``: the first of them
        that may be in the window (after the sink, and not before the last cut); ``distance()``: how far the new
        prompt is from the last (0..2), asked only by a policy that needs it."""
        return TransitionPlan()

    @staticmethod
    def context_guided(returning_only: bool, chunk_in_scene: int, first_chunks: int | None) -> bool:
        """Context guidance for a chunk of a scene: only where no new character comes (it would pull a newcomer
        towards the look of the characters in the context), on the scene's first chunks."""
        return returning_only and (first_chunks is None or chunk_in_scene < first_chunks)


class Recache(TransitionPolicy):
    name = "recache"

    def begin(self, story_chunks, first_chunk, ring_slots, has_sink, recache_sink, distance=None):
        chunks = list(range(max(first_chunk, story_chunks - ring_slots), story_chunks))
        return TransitionPlan(recache_chunks=chunks, recache_sink=bool(chunks) and has_sink and recache_sink)


class Soft(TransitionPolicy):
    name = "soft"

    def begin(self, story_chunks, first_chunk, ring_slots, has_sink, recache_sink, distance=None):
        steps = 1 + round(2 * distance() * ring_slots)  # farther prompts blend over more chunks
        return TransitionPlan(ramp=[0.5 * (1 - math.cos(math.pi * (i + 1) / (steps + 1))) for i in range(steps)])


class Cut(TransitionPolicy):
    """A new shot (∞-RoPE's "RoPE cut", ShotStream's shot boundary): the window is flushed, the sink and the memory
    stay, and the new shot's rotary positions start one window past where they would have (``jump``, in
    chunks), so nothing of the last shot is a neighbour in time while the remembered frames still are context."""

    name = "cut"

    def begin(self, story_chunks, first_chunk, ring_slots, has_sink, recache_sink, distance=None):
        return TransitionPlan(flush=True, jump=ring_slots)


TRANSITION_POLICIES: dict[str, TransitionPolicy] = _by_name(
    (Recache(), Soft(), TransitionPolicy(), Cut()), TRANSITION_NAMES, "memory.transition"
)

_CUT_PROMPT = re.compile(r"^\W*(?:(?:smash|hard|jump|match)\s+)?cut\s+(?:to|back\s+to)\b", re.IGNORECASE)


def scene_transition(setting: str, prompt: str, location: str = "", previous_location: str = "",
                     auto_cut: bool = False) -> str:
    """The transition into a scene: a prompt that opens with "Cut to …" (or "Smash cut to", "Cut back to") is a cut
    whatever the setting; with ``auto_cut`` so is a scene whose location (as the agent read it) is not the last
    scene's; else the setting."""
    if _CUT_PROMPT.match(prompt):
        return "cut"
    if auto_cut and location and previous_location and location.lower() != previous_location.lower():
        return "cut"
    return setting


def transition_policy(name: str) -> TransitionPolicy:
    if name not in TRANSITION_POLICIES:
        raise ValueError(f"transition must be one of {', '.join(TRANSITION_POLICIES)} (got {name!r})")
    return TRANSITION_POLICIES[name]
