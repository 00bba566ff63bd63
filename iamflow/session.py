"""StorySession: the live story the app keeps between turns, and the one generation loop of the project.

A session owns the story's latents, its KV cache, the entity agent and the memory bank. ``add_scene``
extends the story from its current end, chunk by chunk, yielding a ``ChunkEvent`` with the decoded frames
and snapshots of the registry and the memory. The app, both batch commands, the benchmark of the embedded
model and its evaluation all drive this loop.

Every write into the KV cache is recorded as an operation (commit a chunk, re-cache the window, write the
memory); replaying that log rebuilds the cache exactly, so the cache can be dropped between turns, a scene
undone, or a saved story loaded, and the continuation is the same as if nothing had happened.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import shutil
import tempfile
import threading
import time
import unicodedata
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from iamflow.agent import EntityAgent
from iamflow.config import (AGENT_BACKENDS, MAX_PROMPT_CHARS, MAX_SCENE_SECONDS, MAX_SEED, AgentConfig, CacheConfig, Config,
                            MemoryConfig)
from iamflow.engine.engine import Engine
from iamflow.engine.kv_cache import KVCache
from iamflow.engine.model import TextConditioning
from iamflow.engine.streams import HostCopy, StageTimer
from iamflow.memory.bank import FrameRecord, MemoryBank
from iamflow.memory.memflow import MemFlowBank, records_chunk
from iamflow.memory.policies import memory_policy, scene_transition, score_layers, transition_policy
from iamflow.runtime import Runtime
from iamflow import story_files
from iamflow.story_files import CHUNKS_DIR, MEMORY_DIR, ChunkTensors, StoryVideo
from iamflow.video import display_scale

__all__ = ["Runtime", "StorySession", "StorySettings", "SceneRecord", "ChunkEvent", "validate_prompt", "LIVE",
           "NoSceneRunning"]

logger = logging.getLogger(__name__)

LIVE = "live"  # a scene's length "until the next prompt" (capped by video.live_max_seconds)
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format (zero-width, bidi), surrogate, private, unassigned


def validate_prompt(prompt: str) -> str:
    """The prompt as everything downstream sees it (NFC, whitespace runs as one space, control, format and bidi
    override characters removed, so nothing hides a word from the agent or reorders the text shown); a
    ValueError that says what to change if it cannot be used."""
    if not isinstance(prompt, str):
        raise ValueError("the scene prompt is empty: describe what happens in the scene")
    prompt = unicodedata.normalize("NFC", prompt)
    prompt = "".join(c for c in " ".join(prompt.split()) if unicodedata.category(c) not in _INVISIBLE)
    prompt = " ".join(prompt.split())
    if not prompt:
        raise ValueError("the scene prompt is empty: describe what happens in the scene")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the scene prompt is too long ({len(prompt)} characters); keep it under {MAX_PROMPT_CHARS}")
    return prompt


def validate_seed(seed) -> int:
    """A scene's seed: an integer in [0, 2**63) (what the generator takes), or a random one when none is given."""
    if seed is None or seed == "":
        return random.randrange(2**31)
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"the seed must be a whole number between 0 and {MAX_SEED} (got {seed!r})") from None
    if isinstance(seed, float) and value != seed or not 0 <= value <= MAX_SEED:
        raise ValueError(f"the seed must be a whole number between 0 and {MAX_SEED} (got {seed!r})")
    return value


class NoSceneRunning(RuntimeError):
    """A switch was asked for while no scene is being generated: add the scene instead."""


@dataclass(frozen=True)
class StorySettings:
    """Per-story choices a person can change between stories (the model is the runtime's)."""

    memory_policy: str = MemoryConfig.policy
    transition: str = MemoryConfig.transition
    max_memory_frames: int = CacheConfig.max_memory_frames
    enrich_prompts: bool = AgentConfig.enrich_prompts
    agent_backend: str = AgentConfig.backend
    llm_model_path: str = AgentConfig.llm_model_path
    auto_cut: bool = False  # a scene at a new location (as the agent reads it) starts with a cut

    def validate(self, cache_limit: int) -> "StorySettings":
        if self.memory_policy not in MemoryConfig.POLICIES:
            raise ValueError(f"memory policy must be one of {', '.join(MemoryConfig.POLICIES)} (got {self.memory_policy!r})")
        if self.transition not in MemoryConfig.TRANSITIONS:
            raise ValueError(f"transition must be one of {', '.join(MemoryConfig.TRANSITIONS)} (got {self.transition!r})")
        if not 0 <= self.max_memory_frames <= cache_limit:
            raise ValueError(f"max memory frames must be between 0 and {cache_limit} (got {self.max_memory_frames})")
        if self.agent_backend not in AGENT_BACKENDS:
            raise ValueError(f"agent backend must be {' or '.join(AGENT_BACKENDS)} (got {self.agent_backend!r})")
        return self

    @classmethod
    def from_config(cls, config: Config) -> "StorySettings":
        return cls(
            memory_policy=config.memory.policy,
            transition=config.memory.transition,
            max_memory_frames=config.cache.max_memory_frames,
            enrich_prompts=config.agent.enrich_prompts,
            agent_backend=config.agent.backend,
            llm_model_path=config.agent.llm_model_path,
        )


@dataclass
class SceneRecord:
    index: int
    prompt: str
    seed: int
    seconds: float
    num_chunks: int
    text_prompt: str = ""  # what the text encoder saw (the enriched prompt when enrichment is on)
    chunks_done: int = 0
    first_chunk: int = 0  # story chunk index of the scene's first chunk
    first_frame: int = 0  # story video frame index of the scene's first frame
    num_frames: int = 0
    entity_ids: list[int] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    stopped: bool = False
    ops_start: int = 0  # length of the cache log before the scene
    archived_before: int = 0  # size of the memory archive before the scene
    active_before: list[str] = field(default_factory=list)
    transition: str = ""  # how the scene began (recache, soft, none, cut); empty for the first
    position_shift: int = 0  # rotary frame positions of the scene = story frame index + this (cuts jump)
    live: bool = False  # ran until the next prompt (or its cap); seconds and num_chunks are then what it made
    switched: bool = False  # ended early because the next prompt came while it was generated

    @property
    def returning_only(self) -> bool:
        """A later scene whose prompt introduces no new character: the sampler's context guidance applies (with
        a newcomer it would not, as it pulls a new character towards the look of one in the context)."""
        return self.index > 0 and not any(e["is_new"] for e in self.entities)


@dataclass
class PreparedChunk:
    """A switch's first chunk denoised ahead (``prepare_switch`` with a seed, or with a random one drawn then): used
    when the scene added next has the same prompt and seed and finds the same cache, so only its decode is left."""
    prompt: str
    text_prompt: str
    seed: int
    seed_given: bool  # False: drawn by prepare_switch; a scene added with no seed of its own takes it
    ramp: tuple[float, ...]
    context_guided: bool
    cache: object  # the KVCache it was denoised on
    x0: torch.Tensor  # its clean latents, on the device
    generator: torch.Generator  # the scene's generator after the chunk's noise was drawn

    def fits(self, scene: "SceneRecord", seed: int, ramp: list[float], context_guided: bool, cache) -> bool:
        return (self.text_prompt == scene.text_prompt and self.seed == seed and self.ramp == tuple(ramp)
                and self.context_guided == context_guided and self.cache is cache)


@dataclass
class ChunkEvent:
    scene_index: int
    chunk_index: int
    num_chunks: int
    frames: np.ndarray  # [T, H, W, 3] uint8
    first_frame: int
    fps: int
    segment: Future  # -> the chunk's H.264 segment (Path) once written; raises if it could not be
    registry: dict
    memory: list[dict]
    scene_entities: list[dict]
    elapsed_s: float
    eta_s: float
    done: bool
    live: bool = False  # the scene runs until the next prompt; num_chunks is its cap
    # the first frames of a chunk whose other frames come in the next event (same chunk_index): a scene's first
    # chunk, handed out as its first latent frame is decoded; its ``segment`` gives None, the next event's the chunk's
    partial: bool = False


def sentence_distance(a: str, b: str) -> float:
    """1 - cosine similarity of the two prompts' MiniLM sentence embeddings, in [0, 2]."""
    from iamflow.agent import models

    return 1.0 - models.sentence_encoder().similarity(a, b)


class StorySession:
    def __init__(self, runtime: Runtime, settings: StorySettings | None = None, save_dir: str | Path | None = None,
                 video_dir: str | Path | None = None):
        self.runtime = runtime
        self.config = runtime.config
        self.settings = (settings or StorySettings.from_config(runtime.config)).validate(
            runtime.config.cache.max_memory_frames
        )
        self.save_dir = Path(save_dir) if save_dir else (Path(self.config.memory.save_dir) if self.config.memory.save_dir else None)
        self._stop = threading.Event()
        # decode chunk n while chunk n+1 denoises: on with two devices (the decode device's thread), where it buys
        # throughput. A scene stopped part-way then ends with the chunk already being made. Off on one device: on
        # one GPU the DiT and the decoder share the card, so the overlap adds no throughput (an H100, 2026-12-06:
        # 22.1-23.7 FPS either way) but fills a pipeline after each scene's first chunk, whose interval then
        # carries a commit and two decodes (p99 0.89-1.07 s against a median of 0.51 s; serial: 0.55-0.62 s).
        self.overlap_decode = runtime.split
        # hand a scene's first chunk out before queuing the next (the viewer sees it sooner; the second chunk
        # then starts on an idle device); False: queue the second chunk first (steadier intervals)
        self.first_chunk_alone = True
        # True: a scene's first chunk comes in two events, the frames of its first latent frame as soon as they are
        # decoded (``partial``), then the rest, where the decoder gives the same frames decoded in parts (the Wan
        # VAE: it decodes a latent frame at a time anyway). The app's stories do this; by default one event a chunk.
        self.first_frames_early = False
        self.timer: StageTimer | None = None  # set by the benchmark: per-stage durations
        if video_dir is None:  # a folder of the session's own, gone with it
            video_dir = tempfile.mkdtemp(prefix="iamflow-video-")
            weakref.finalize(self, shutil.rmtree, video_dir, True)
        self.video_dir = Path(video_dir)
        self.video: StoryVideo | None = None
        self.decoded_latent_frames = 0  # latent frames decoded to rebuild the decoder's state (undo, load)
        # scenes asked for while one is generated (request_switch), started in order at chunk boundaries
        self._preparing = False  # ``prepare_switch`` is applying a switch's cache operations
        self._switch_lock = threading.Lock()
        self._switches: deque[tuple[str, float | str, int]] = deque()
        self._running = False  # a run of add_scene is taking switches
        self._between = False  # the run took a switch whose scene is not in self.scenes yet
        self.reset()

    # --- state ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new, empty story (settings kept)."""
        s = self.settings
        self.agent = EntityAgent(backend=s.agent_backend, llm_model_path=s.llm_model_path or None)
        # the archive's latents and pictures wait on disk, in the session's folder (the bank keeps the rest)
        shutil.rmtree(self.video_dir / MEMORY_DIR, ignore_errors=True)
        self.bank = MemoryBank(s.memory_policy, s.max_memory_frames, self.save_dir, self.video_dir / MEMORY_DIR)
        self.scenes: list[SceneRecord] = []
        # per chunk, on disk with the last few also in RAM (the window and a margin: what the loop reads)
        in_ram = self.config.cache.local_window_frames // self.frames_per_chunk + 2
        for old in (getattr(self, "latents", None), getattr(self, "chunk_queries", None)):
            if old is not None:
                del old[0:]
        self.latents = ChunkTensors(self.video_dir / CHUNKS_DIR, "latent", in_ram)  # [1, C, fpc, h, w], float32
        self.chunk_scene: list[int] = []
        self.chunk_frame_counts: list[int] = []  # video frames per chunk (the frames are in the segments)
        self._recent_frames: dict[int, np.ndarray] = {}  # chunk -> [T, H, W, 3] uint8, while in the window
        self.chunk_queries = ChunkTensors(self.video_dir / CHUNKS_DIR, "queries", in_ram)  # [fpc, layers, heads, D]
        self._arriving: dict[int, dict[str, HostCopy]] = {}  # chunk -> its copies still on the way to the host
        self.ops: list[dict] = []  # the cache log
        self._scene_text: dict[int, tuple[TextConditioning, int]] = {}
        # a switch made ready while the next prompt was typed (``prepare_switch``): the cache operations it applied
        # beyond the log, and its prompt's text and conditioning
        self._prepared_ops: list[dict] = []
        self._prepared_text: tuple[str, tuple[TextConditioning, int]] | None = None
        self._prepared_chunk: PreparedChunk | None = None  # and its first chunk, denoised
        self.switches_prepared: set[int] = set()  # scenes whose switch found all its device work prepared
        self.first_chunks_prepared: set[int] = set()  # and those of them whose first chunk was denoised ahead
        self.cache: KVCache | None = None
        self.kv_bank: MemFlowBank | None = None  # MemFlow's bank bookkeeping, rebuilt with the cache
        self.decoder = None
        if self.video is not None:
            self.video.truncate(0)
        else:
            video = self.config.video
            self.video = StoryVideo(self.video_dir, display_scale(video.height, video.width), video.fps)

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def fps(self) -> int:
        return self.config.video.fps

    @property
    def frames_per_chunk(self) -> int:
        return self.config.cache.frames_per_chunk

    @property
    def num_video_frames(self) -> int:
        return sum(self.chunk_frame_counts)

    def _stage(self, name: str, host: bool = False):
        return self.timer(name, host) if self.timer is not None else contextlib.nullcontext()

    def _settle(self, chunk: int | None = None) -> None:
        """Wait for the host copies of ``chunk`` and of the chunks before it (of every chunk when None), keep them in
        pageable memory and queue the frames' segments, in story order."""
        for g in [k for k in list(self._arriving) if chunk is None or k <= chunk]:
            copies = self._arriving.pop(g)
            self.latents.settle(g, copies["latents"].wait().clone())  # [1, C, fpc, h, w], out of the pinned pool
            self.chunk_queries.settle(g, copies["queries"].wait().clone())
            if "frames" in copies:  # (a scene's first chunk's were taken when it was handed out)
                self._keep_frames(g, copies["frames"])

    def _keep_frames(self, g: int, frames: HostCopy | list[HostCopy]) -> None:
        """Chunk ``g``'s frames (or its parts, in order), once on the host: kept while the chunk is in the window,
        and queued as the story's next segment."""
        parts = frames if isinstance(frames, list) else [frames]
        kept = np.concatenate([part.wait().numpy() for part in parts])  # (a copy, out of the pinned pool)
        assert len(kept) == self.chunk_frame_counts[g], f"chunk {g} decoded to {len(kept)} frames"
        self._recent_frames[g] = kept
        assert len(self.video) == g, f"segment of chunk {g} queued out of order ({len(self.video)} queued)"
        self.video.add(kept)

    def chunks_for(self, seconds: float) -> int:
        video_frames = self.frames_per_chunk * self.config.video.temporal_compression
        return max(1, math.ceil(seconds * self.fps / video_frames))

    # --- the cache and its log -------------------------------------------------------------------------
    def _text(self, spec: list) -> TextConditioning:
        if spec[0] == "scene":
            return self._scene_condition(spec[1])[0]
        old, new = self._scene_condition(spec[1])[0], self._scene_condition(spec[2])[0]
        return old.blend(new, spec[3])

    def _uncond(self) -> TextConditioning | None:
        """The empty prompt's conditioning, when the sampler guides (classifier-free guidance)."""
        return self.runtime.encode("")[0] if self.config.sampler.guided_steps else None

    # a switch's old and new scene (its prompt ramp blends the two; a prepared switch stores the new one, and a replay
    # walks the scenes in order, a switch at a time); one more held 94 MB of the device for nothing
    SCENE_TEXTS_KEPT = 2

    def _scene_condition(self, scene: int) -> tuple[TextConditioning, int]:
        """A scene's text conditioning, kept for the last few scenes asked for only: a Wan prompt's K/V is ~94 MB of
        the device, and a story of a hundred scenes must not hold a hundred of them (an older scene's, needed again
        by a replay, is made again from its prompt: the same bits)."""
        if scene in self._scene_text:
            self._scene_text[scene] = self._scene_text.pop(scene)  # (the most recent last)
        else:
            text, prepared = self.scenes[scene].text_prompt, self._prepared_text
            self._scene_text[scene] = prepared[1] if prepared and prepared[0] == text else self.runtime.encode(text)
            while len(self._scene_text) > self.SCENE_TEXTS_KEPT:
                self._scene_text.pop(next(iter(self._scene_text)))
        return self._scene_text[scene]

    @property
    def memory_policy(self):
        return memory_policy(self.settings.memory_policy)

    def _new_cache(self) -> KVCache:
        shape = self.memory_policy.cache_shape(self.config.cache.sink_frames, self.settings.max_memory_frames)
        self.kv_bank = (MemFlowBank(self.engine.model.cfg.num_layers, self.settings.max_memory_frames)
                        if self.memory_policy.kv_as_committed and shape.memory_frames else None)
        return self.engine.new_cache(sink_frames=shape.sink_frames, max_memory_frames=shape.memory_frames)

    def _apply(self, op: dict, x0: torch.Tensor | None = None) -> None:
        """Execute one cache operation (and record it when it is new). ``x0``: a new chunk's latents, still on the
        device (its host copy may be on its way)."""
        engine, fpc = self.engine, self.frames_per_chunk
        to_device = self.runtime.streams.to_device
        if op["op"] == "commit":
            i = op["chunk"]
            latents = x0 if x0 is not None else to_device(self.latents[i])
            engine.commit_chunk(self.cache, self._text(op["text"]), latents, op.get("position", i * fpc))
        elif op["op"] == "recache":
            chunks = op["chunks"]
            window = to_device(torch.cat([self.latents[i] for i in chunks], dim=2))
            sink = to_device(self.latents[op["sink"]]) if "sink" in op else None
            engine.recache(self.cache, self._text(op["text"]), window, op.get("position", chunks[0] * fpc), sink)
        elif op["op"] == "memory":
            records = [self.bank.archive[k] for k in op["keys"]]
            if records:
                stacked = torch.stack([self.bank.latent(r.key) for r in records], dim=1)[None]  # [1, C, M, h, w]
                latents = to_device(stacked)
                positions = [r.frame + self.scenes[r.scene].position_shift for r in records]
                engine.write_memory(self.cache, self._text(op["text"]), latents, positions)
            else:
                self.cache.set_memory_count(0)
        elif op["op"] == "cut":  # a new shot: the window goes, the sink and the memory stay
            self.cache.reset_ring(keep_sink=True)
        elif op["op"] == "stage":  # MemFlow: a recording chunk's first frame, K/V as committed
            self.kv_bank.stage(self.cache, op["key"])
        elif op["op"] == "bank":  # MemFlow: place the newest record or re-compress the bank
            text = None if op.get("zero_text") else self._text(op["text"])
            self.kv_bank.before_chunk(self.cache, [k for k, _ in text.kv] if text else None)
            self.bank.set_active([k for k in self.kv_bank.active() if k in self.bank.archive])

    def _log(self, op: dict, x0: torch.Tensor | None = None) -> None:
        if self._preparing:  # applied, not logged: the story has not changed
            self._apply(op, x0)
            self._prepared_ops.append(op)
            return
        if self._prepared_ops:
            if op == self._prepared_ops[0]:  # the cache holds it already
                self._prepared_ops.pop(0)
                self.ops.append(op)
                return
            self._unprepare()
        self._apply(op, x0)
        self.ops.append(op)

    def _unprepare(self) -> None:
        """A prepared switch that did not happen as prepared: the cache goes back to what the log makes."""
        self._prepared_text = None
        if self._prepared_ops or self._prepared_chunk is not None:  # (its denoising wrote the next chunk's slot)
            self._prepared_chunk = None
            self.cache = None
            self._ensure_cache()

    def _ensure_cache(self) -> None:
        if self.cache is not None:
            return
        self._prepared_ops, self._prepared_chunk = [], None  # (a rebuilt cache holds the log's operations only)
        self.cache = self._new_cache()
        replay = self._ops_defining_cache()
        for op in replay:
            self._apply(op)
        self.replayed_ops = len(replay)
        logger.info("rebuilt the KV cache from %d of %d logged operations", len(replay), len(self.ops))

    def _ops_defining_cache(self) -> list[dict]:
        """The logged operations that make the cache as it is now, in their order: from the last re-cache on (it
        rewrites the window, and the sink with it, from latents alone), the memory write in force when it ran,
        and the first chunk's commit when the sink was not rewritten. Before a scene switch with re-cache (or
        with other transitions) every operation counts. The cost of rebuilding is then bounded by the current
        scene, not the story; the result is the same cache, bit for bit (every write lands in the same slot)."""
        anchors = [i for i, op in enumerate(self.ops) if op["op"] == "recache"]
        if not anchors or self.memory_policy.kv_as_committed:
            return list(self.ops)
        anchor = anchors[-1]
        keep = set(range(anchor, len(self.ops)))
        memory = [i for i in range(anchor) if self.ops[i]["op"] == "memory"]
        if memory:
            keep.add(memory[-1])
        if "sink" not in self.ops[anchor]:  # the sink's K/V are still those of the story's first commit
            keep.add(next(i for i, op in enumerate(self.ops) if op["op"] == "commit"))
        return [self.ops[i] for i in sorted(keep)]

    def _ensure_decoder(self) -> None:
        """A decoder whose causal state is the story's end (after undo or load), and the frames of the chunks still
        in the window (the memory's thumbnails come from them). Decodes a bounded tail of the story, not all of it."""
        if self.decoder is not None:
            return
        window = self.cache.ring_slots if self.cache is not None else 1
        first = max(0, len(self.latents) + 1 - window)
        self.decoder = self.runtime.codec.stream_decoder()
        for g, frames in self._decode_from(self.decoder, first):
            self._recent_frames[g] = frames

    def _decode_from(self, decoder, first: int) -> Iterator[tuple[int, np.ndarray]]:
        """Bring a fresh ``decoder`` to the state it has before chunk ``first`` and yield each chunk's frames from
        there on. The decoder's state reaches back ``reach_latent_frames`` latent frames (its causal convolutions'
        memory), so only those are decoded first; a decoder that does not say starts from the story's beginning."""
        fpc = self.frames_per_chunk
        reach = getattr(decoder, "reach_latent_frames", None)
        start = 0 if reach is None else max(0, first * fpc - reach - 1)  # (-1: the video's first latent frame is special)
        if start < first * fpc:
            warm = torch.cat(self.latents[start // fpc : first], dim=2)[:, :, start % fpc :]  # [1, C, t, h, w]
            self.runtime.decode_frames(decoder, warm)  # frames of chunks before ``first``: not needed
            self.decoded_latent_frames += warm.shape[2]
        for g in range(first, len(self.latents)):
            self.decoded_latent_frames += self.latents[g].shape[2]
            yield g, self.runtime.decode_frames(decoder, self.latents[g])

    def close(self) -> None:
        """The story is over: its video segments and its chunks' and archive's files go (a saved or exported copy
        stays)."""
        self.video.truncate(0)
        self.video.close()
        del self.latents[0:], self.chunk_queries[0:]
        shutil.rmtree(self.video_dir / MEMORY_DIR, ignore_errors=True)

    def drop_cache(self) -> None:
        """Free the K/V (e.g. between turns); the next scene rebuilds it from the kept latents."""
        self.cache, self._prepared_chunk = None, None  # (a prepared chunk holds the cache it was made on)

    # --- generation --------------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stop the scene being generated at the next chunk boundary; the chunks made so far stay. Scenes asked for
        with ``request_switch`` and not started yet are withdrawn; returns their prompts."""
        with self._switch_lock:
            withdrawn = [prompt for prompt, _, _ in self._switches]
            self._switches.clear()
            self._stop.set()
        return withdrawn

    def add_scene(
        self, prompt: str, seconds: float | str = 3.0, seed: int | None = None, chunks: int | None = None
    ) -> Iterator[ChunkEvent]:
        """Extend the story by a scene of ``seconds`` (or exactly ``chunks`` chunks); yields one event a chunk.

        ``seconds=LIVE`` ("live") runs the scene until the next prompt, at most ``video.live_max_seconds``.
        A prompt handed to ``request_switch`` while the scene runs ends it at the next chunk boundary (it keeps the
        chunks it made) and its scene follows in the same run of events, with the story's transition policy."""
        prompt = validate_prompt(prompt)
        if chunks is not None:
            if int(chunks) < 1:
                raise ValueError(f"a scene needs at least one chunk (got {chunks})")
            seconds = chunks * self.frames_per_chunk * self.config.video.temporal_compression / self.fps
        else:
            seconds = self._validate_seconds(seconds)
        ready = self._prepared_chunk
        if (seed is None or seed == "") and ready is not None and not ready.seed_given and ready.prompt == prompt:
            seed = ready.seed  # (a random seed either way: the one its first chunk was prepared with)
        seed = validate_seed(seed)
        return self._run(prompt, seconds, seed, chunks)

    def _validate_seconds(self, seconds) -> float | str:
        if seconds == LIVE:
            return LIVE
        try:
            value = float(seconds)
        except (TypeError, ValueError):
            value = math.nan
        if not 0 < value <= MAX_SCENE_SECONDS:
            raise ValueError(f"scene length must be between 0 and {MAX_SCENE_SECONDS:g} seconds, or {LIVE!r} "
                             f"(until the next prompt) (got {seconds!r})")
        return value

    def request_switch(self, prompt: str, seconds: float | str = LIVE, seed: int | None = None) -> int:
        """From any thread: end the scene being generated at its next chunk boundary (it keeps what it made; every
        scene makes at least one chunk) and go on with this prompt. Requests made before it switches follow in
        order. Returns the new scene's index; raises NoSceneRunning when nothing is being generated."""
        prompt, seconds, seed = validate_prompt(prompt), self._validate_seconds(seconds), validate_seed(seed)
        with self._switch_lock:
            if not self._running:
                raise NoSceneRunning("no scene is being generated: add the scene instead")
            self._switches.append((prompt, seconds, seed))
            return len(self.scenes) + len(self._switches) - 1 + self._between

    @property
    def pending_switches(self) -> list[str]:
        """Prompts asked for while the current scene runs, not started yet."""
        with self._switch_lock:
            return [prompt for prompt, _, _ in self._switches]

    def _run(self, prompt: str, seconds: float | str, seed: int, chunks: int | None) -> Iterator[ChunkEvent]:
        """The scene, then each scene asked for while it ran, in order; each one all or nothing."""
        with self._switch_lock:
            if self._running:
                raise RuntimeError("a scene is already being generated in this story; use request_switch")
            self._running = True
        try:
            while True:
                yield from self._all_or_nothing(self._generate_scene(prompt, seconds, seed, chunks))
                with self._switch_lock:
                    if not self._switches:
                        return
                    (prompt, seconds, seed), chunks = self._switches.popleft(), None
                    self._between = True
        finally:
            with self._switch_lock:
                if self._switches:  # the consumer left or a scene failed: what was asked for is not made
                    logger.warning("%d scene(s) asked for were not started: %s", len(self._switches),
                                   [p for p, _, _ in self._switches])
                self._switches.clear()
                self._running = self._between = False

    def _all_or_nothing(self, events: Iterator[ChunkEvent]) -> Iterator[ChunkEvent]:
        """A scene that fails part-way is removed whole (scenes, latents, cache log, archive, registry); one whose
        consumer stops listening keeps the chunks it was handed and is marked stopped."""
        scenes_before, prompts_before = len(self.scenes), len(self.agent.prompts)
        try:
            yield from events
        except GeneratorExit:
            if len(self.scenes) > scenes_before:
                self.scenes[-1].stopped = self.scenes[-1].chunks_done < self.scenes[-1].num_chunks
                self._record_length(self.scenes[-1])
            raise
        except BaseException:
            with self.runtime.lock:
                if len(self.scenes) > scenes_before:
                    self._drop_last_scene()
                elif len(self.agent.prompts) > prompts_before:  # failed between observing and recording the scene
                    self.agent.undo_last()
            raise

    def _record_length(self, scene: SceneRecord) -> None:
        """A live or switched scene is as long as what it made."""
        if scene.live or scene.switched:
            scene.seconds = scene.num_frames / self.fps
        if scene.live:
            scene.num_chunks = scene.chunks_done

    def _generate_scene(self, prompt: str, seconds: float | str, seed: int, chunks: int | None = None) -> Iterator[ChunkEvent]:
        self._stop.clear()
        runtime, engine = self.runtime, self.engine
        start_time = time.perf_counter()
        with runtime.lock:
            self._settle()
            scene_index = len(self.scenes)
            with self._stage("agent", host=True):
                entities = self.agent.observe(prompt)
                text_prompt = self.agent.enrich(prompt) if self.settings.enrich_prompts else prompt
            live = seconds == LIVE
            if live:  # its cap: the most chunks whose video fits in live_max_seconds
                seconds = self.config.video.live_max_seconds
                chunks = max(1, int(seconds * self.fps // (self.frames_per_chunk * self.config.video.temporal_compression)))
            scene = SceneRecord(
                index=scene_index, prompt=prompt, seed=seed, seconds=seconds, num_chunks=chunks or self.chunks_for(seconds),
                live=live,
                text_prompt=text_prompt, first_chunk=len(self.latents), first_frame=self.num_video_frames,
                entity_ids=[e.global_id for e in entities.entities],
                entities=[{"global_id": e.global_id, "name": e.name, "surface": e.surface, "is_new": e.is_new}
                          for e in entities.entities],
                ops_start=len(self.ops), archived_before=len(self.bank.archive), active_before=list(self.bank.active),
            )
            self.scenes.append(scene)
            self._between = False
            self._ensure_cache()
            prepared_for = self._prepared_text[0] if self._prepared_text else None
            if self._prepared_ops and prepared_for != text_prompt:
                self._unprepare()  # prepared for another prompt (its operations name this scene, not its text)
            self._ensure_decoder()
            with self._stage("text encoding", host=True):
                self._scene_condition(scene_index)
                prompt_keys = runtime.text_keys(text_prompt, self._score_layers())
                self._prepare_scoring(scene)
                self._uncond()
            had_prepared = bool(self._prepared_ops)
            ramp = self._switch_context(scene, prompt_keys)
            self.switches_prepared.discard(scene_index)  # (an undone scene's index is used again)
            self.first_chunks_prepared.discard(scene_index)
            if self._prepared_ops:  # a switch prepared for another prompt: its cache work was not this one's
                self._unprepare()
            elif had_prepared:
                self.switches_prepared.add(scene_index)
            self._prepared_text = None
            generator = torch.Generator(device=engine.device).manual_seed(seed)
            ready, self._prepared_chunk, ready_x0 = self._prepared_chunk, None, None
            if (ready is not None and scene_index in self.switches_prepared
                    and ready.fits(scene, seed, ramp, self._context_guided(scene, 0), self.cache)):
                ready_x0, generator = ready.x0, ready.generator  # its first chunk is denoised already
                self.first_chunks_prepared.add(scene_index)
            # (one that does not fit wrote only the slot this scene's first chunk overwrites before reading it)

        lookahead = 1 if self.overlap_decode else 0
        made: list[tuple[int, dict, list]] = []  # chunks made and not yet handed out, with the panels as they were
        for c in range(scene.num_chunks):
            if self._stop.is_set():
                scene.stopped = True
                logger.info("scene %d stopped after %d of %d chunks", scene_index, c, scene.num_chunks)
                break
            if c > 0 and self._switches:
                scene.switched = True
                logger.info("scene %d switched to the next prompt after %d chunks", scene_index, c)
                break
            if c == 0 and self.first_chunk_alone:
                # the scene's first chunk is handed out as soon as its frames are decoded: before its commit pass
                # is queued (the viewer waits for the switch, not for the cache), and before the next chunk is
                yield from self._first_chunk(scene, ramp, generator, prompt_keys, start_time, ready_x0)
                continue
            with runtime.lock:
                g = self._make_chunk(scene, c, ramp, generator, prompt_keys, ready_x0 if c == 0 else None)
                made.append((g, self.registry_snapshot(), self.memory_view()))
            # from then on the decode of one chunk overlaps the making of the next
            if len(made) > lookahead:
                yield self._hand_out(scene, *made.pop(0), start_time)
        while made:
            yield self._hand_out(scene, *made.pop(0), start_time)
        self._record_length(scene)
        if scene.chunks_done == 0:  # stopped before anything was made: the scene never happened
            self._drop_last_scene()

    def _first_chunk(self, scene: SceneRecord, ramp: list[float], generator: torch.Generator,
                     prompt_keys: torch.Tensor, start_time: float,
                     ready_x0: torch.Tensor | None = None) -> Iterator[ChunkEvent]:
        """The scene's first chunk, handed out once its frames are on the host, then committed. Its commit and
        bookkeeping run whatever the consumer does with the event (a consumer that stops there keeps it whole)."""
        with self.runtime.lock:
            g, x0, commit = self._denoise(scene, 0, ramp, generator, ready_x0)
            early = (self.first_frames_early and x0.shape[2] > 1
                     and getattr(self.decoder, "decodes_in_parts_exactly", False))
            # the first latent frame, then the rest, queued one after the other
            parts = [x0[:, :, :1], x0[:, :, 1:]] if early else [x0]
            frames = [self.runtime.decode_to_host(self.decoder, part, self._stage) for part in parts]
            self._settle()  # (every earlier chunk's copies: the story's segments stay in order)
            self.chunk_frame_counts.append(self._video_frames(g, x0.shape[2]))
            registry, memory = self.registry_snapshot(), self.memory_view()
        kept, head = False, 0
        try:
            if early:
                first = frames[0].wait().numpy().copy()
                head = len(first)
                yield self._event(scene, g, registry, memory, start_time, frames=first, partial=True)
            with self.runtime.lock:
                self._keep_frames(g, frames)
                kept = True
                event = self._event(scene, g, registry, memory, start_time, skip=head)
            yield event
        finally:
            with self.runtime.lock:
                if not kept:  # stopped after the early frames: the chunk is still the story's, whole
                    self._keep_frames(g, frames)
                self._commit_and_copy(scene, g, x0, None, commit, prompt_keys)

    def _make_chunk(self, scene: SceneRecord, c: int, ramp: list[float], generator: torch.Generator,
                    prompt_keys: torch.Tensor, ready_x0: torch.Tensor | None = None) -> int:
        """Queue chunk ``c`` of the scene on the device: denoise, commit, decode and the copies to the host; then
        the memory step. Nothing here waits for the device. Returns the chunk's story index."""
        g, x0, commit = self._denoise(scene, c, ramp, generator, ready_x0)
        frames = self.runtime.decode_to_host(self.decoder, x0, self._stage)
        self.chunk_frame_counts.append(self._video_frames(g, x0.shape[2]))
        self._commit_and_copy(scene, g, x0, frames, commit, prompt_keys)
        return g

    def _denoise(self, scene: SceneRecord, c: int, ramp: list[float], generator: torch.Generator,
                 ready_x0: torch.Tensor | None = None) -> tuple[int, torch.Tensor, dict]:
        """Queue chunk ``c``'s denoising: (story index, clean latents on the device, the chunk's commit operation,
        not applied yet). ``ready_x0``: the chunk's latents, denoised while its prompt was typed."""
        engine, fpc = self.engine, self.frames_per_chunk
        g = len(self.latents)
        spec = ["scene", scene.index] if c >= len(ramp) else ["blend", scene.index - 1, scene.index, ramp[c]]
        commit = {"op": "commit", "chunk": g, "text": spec}
        if scene.position_shift:
            commit["position"] = g * fpc + scene.position_shift
        if self.kv_bank is not None and self.kv_bank.pending:  # MemFlow: before the chunk's first step
            zero_text = c == 0 and scene.transition == "recache"  # its text cache was just emptied by the re-cache
            self._log({"op": "bank", "text": spec, **({"zero_text": True} if zero_text else {})})
        if ready_x0 is not None:
            return g, ready_x0, commit
        with self._stage("denoise"):
            x0 = engine.denoise_chunk(self.cache, self._text(spec), commit.get("position", g * fpc), generator, uncond=self._uncond(),
                                      context_guidance=self._context_guided(scene, c))
        return g, x0, commit

    def _commit_and_copy(self, scene: SceneRecord, g: int, x0: torch.Tensor, frames: HostCopy | None, commit: dict,
                         prompt_keys: torch.Tensor) -> None:
        """Queue chunk ``g``'s commit pass (with the memory scorer's capture) and its copies to the host, record it
        in the story, then the memory step. ``frames``: its frames' host copy, or None when they were taken already
        (a scene's first chunk, handed out before this)."""
        engine, streams = self.engine, self.runtime.streams
        layers = self._score_layers()
        with self._stage("commit"), engine.model.capturing(layers) as captured:  # the scorer's queries, this pass
            self._log(commit, x0)
        copies = {"latents": streams.to_host(x0),
                  "queries": streams.to_host(torch.stack([captured[layer][0] for layer in layers], dim=1))}
        if frames is not None:
            copies["frames"] = frames
        self.latents.append(copies["latents"].tensor)
        self.chunk_queries.append(copies["queries"].tensor)
        self._arriving[g] = copies
        self.chunk_scene.append(scene.index)
        with self._stage("memory scoring"):
            self._remember(g, scene, prompt_keys)
        scene.chunks_done += 1
        scene.num_frames += self.chunk_frame_counts[g]

    def _video_frames(self, g: int, latent_frames: int) -> int:
        """The video frames chunk ``g`` decodes to (known before it is decoded: the story's first chunk starts the
        video, 4t-3 frames; every later one continues it, 4t)."""
        factor = self.runtime.codec.temporal_factor
        return factor * latent_frames - (factor - 1 if g == 0 else 0)

    def _hand_out(self, scene: SceneRecord, g: int, registry: dict, memory: list[dict], start_time: float) -> ChunkEvent:
        """Wait for chunk ``g``'s frames and make its event (with the panels as they were when it was made)."""
        self._settle(g)
        return self._event(scene, g, registry, memory, start_time)

    def _event(self, scene: SceneRecord, g: int, registry: dict, memory: list[dict], start_time: float,
               frames: np.ndarray | None = None, partial: bool = False, skip: int = 0) -> ChunkEvent:
        """Chunk ``g``'s event: its frames (``frames``: the early ones of a partial event; ``skip``: how many of the
        chunk's frames an earlier partial event handed out already)."""
        if frames is None:
            frames = self._recent_frames[g][skip:]
        window = self.cache.ring_slots if self.cache is not None else 1
        for old in [k for k in self._recent_frames if k < g + 1 - window]:  # out of the window: in the segments only
            if not self._awaits_record(old):
                del self._recent_frames[old]
        c = g - scene.first_chunk
        elapsed = time.perf_counter() - start_time
        first_frame = scene.first_frame + sum(self.chunk_frame_counts[scene.first_chunk : g]) + skip
        if partial:
            segment: Future = Future()
            segment.set_result(None)
        else:
            segment = self.video.write_of(g)
        return ChunkEvent(
            scene_index=scene.index, chunk_index=c, num_chunks=scene.num_chunks, frames=frames,
            first_frame=first_frame, fps=self.fps, segment=segment,
            registry=registry, memory=memory, scene_entities=list(scene.entities),
            elapsed_s=elapsed, eta_s=elapsed / (c + 1) * (scene.num_chunks - c - 1),
            done=c + 1 == scene.num_chunks and not partial, live=scene.live, partial=partial,
        )

    def _context_guided(self, scene: SceneRecord, chunk: int) -> bool:
        return transition_policy(self.settings.transition).context_guided(
            scene.returning_only, chunk, self.config.sampler.context_guidance_chunks)

    def _score_layers(self) -> list[int]:
        return score_layers(self.config.memory.score_layers, self.engine.model.cfg.num_layers)

    def _switch_context(self, scene: SceneRecord, prompt_keys: torch.Tensor) -> list[float]:
        """A scene's cache work before its first chunk, memory first (the re-cached context attends to the frames
        the new scene remembers), then the switch's transition; returns the prompt ramp (``_begin_transition``)."""
        with self._stage("memory retrieval and write"):
            if scene.index > 0 and self.bank.enabled and self.bank.set_active(
                    self.memory_policy.at_switch(self.bank, scene.entity_ids, prompt_keys)):
                self._log({"op": "memory", "keys": list(self.bank.active), "text": ["scene", scene.index]})
        with self._stage("re-cache"):
            return self._begin_transition(scene)

    def prepare_switch(self, prompt: str, seed: int | None = None) -> bool:
        """Do a scene switch's device work for ``prompt`` ahead of time, while the person is still at the keyboard:
        its text encoding, memory write and re-cache, into the story's cache but not into its log, and the
        denoising of its first chunk with ``seed`` (none: a random seed, which the next scene added with no seed
        of its own takes). If the next scene is ``prompt``, its switch finds that work done (the same operations
        on the same cache: the same frames, bit for bit) and, with the same seed, only its first chunk's decode
        left; any other next step first puts the cache back as the log makes it. The story does not change.
        Returns False when there is nothing to prepare: no scene yet, a scene running, or MemFlow's bank, whose
        state is not the cache's alone."""
        prompt = validate_prompt(prompt)
        seed_given = seed is not None and seed != ""
        seed = validate_seed(seed)
        with self._switch_lock:
            if self._running:
                return False
        if not self.scenes or self.memory_policy.kv_as_committed:
            return False
        runtime, timer = self.runtime, self.timer
        with runtime.lock:
            self._settle()
            self._ensure_cache()
            self._unprepare()
            index, active_before = len(self.scenes), list(self.bank.active)
            entities = self.agent.observe(prompt)
            self.timer, self._preparing = None, True  # (its stages are not the story's)
            try:
                text_prompt = self.agent.enrich(prompt) if self.settings.enrich_prompts else prompt
                scene = SceneRecord(index=index, prompt=prompt, seed=seed, seconds=0.0, num_chunks=1,
                                    text_prompt=text_prompt, first_chunk=len(self.latents),
                                    entity_ids=[e.global_id for e in entities.entities],
                                    entities=[{"is_new": e.is_new} for e in entities.entities])
                condition = runtime.encode(text_prompt)
                self._scene_text[index] = condition
                ramp = self._switch_context(scene, runtime.text_keys(text_prompt, self._score_layers()))
                self._prepared_text = (text_prompt, condition)
                generator = torch.Generator(device=self.engine.device).manual_seed(seed)
                _, x0, _ = self._denoise(scene, 0, ramp, generator)
                self._prepared_chunk = PreparedChunk(prompt, text_prompt, seed, seed_given, tuple(ramp),
                                                     self._context_guided(scene, 0), self.cache, x0, generator)
            except BaseException:
                self.cache, self._prepared_ops, self._prepared_text = None, [], None  # (rebuilt from the log)
                self._prepared_chunk = None
                raise
            finally:
                self.timer, self._preparing = timer, False
                self._scene_text.pop(index, None)
                self.bank.active = active_before
                self.agent.undo_last()
        return True

    def _begin_transition(self, scene: SceneRecord) -> list[float]:
        """Apply the scene-switch policy's plan (logging its cache operations); returns the prompt ramp's blend
        weights (empty when the prompt switches at once)."""
        if scene.index == 0 or not self.latents:
            return []
        previous = self.scenes[scene.index - 1]
        scene.position_shift = previous.position_shift
        scene.transition = scene_transition(self.settings.transition, scene.prompt, self._location(scene.index),
                                            self._location(scene.index - 1), self.settings.auto_cut)
        last_cut = max((s.first_chunk for s in self.scenes[: scene.index] if s.transition == "cut"), default=0)
        plan = transition_policy(scene.transition).begin(
            len(self.latents), max(1 if self.cache.sink_frames else 0, last_cut), self.cache.ring_slots,
            bool(self.cache.sink_frames), self.config.memory.recache_sink,
            lambda: sentence_distance(previous.text_prompt, scene.text_prompt))
        if plan.recache_chunks and self.kv_bank is not None and self.kv_bank.pending:
            # MemFlow re-compresses before re-caching, its text cache empty
            self._log({"op": "bank", "text": ["scene", scene.index], "zero_text": True})
        if plan.recache_chunks:
            op = {"op": "recache", "chunks": plan.recache_chunks, "text": ["scene", scene.index]}
            if plan.recache_sink:
                op["sink"] = 0  # the chunk the sink holds, rewritten under the new prompt too
            if scene.position_shift:  # the window's chunks are all of the shot since the last cut
                op["position"] = plan.recache_chunks[0] * self.frames_per_chunk + previous.position_shift
            self._log(op)
        if plan.flush:
            self._log({"op": "cut", "text": ["scene", scene.index]})
        scene.position_shift += plan.jump * self.frames_per_chunk
        return plan.ramp

    def _location(self, scene_index: int) -> str:
        """The scene's place as the agent read it from the prompt ("" when it names none)."""
        scenes = self.agent.scenes
        return scenes[scene_index].context.get("location", "") if 0 <= scene_index < len(scenes) else ""

    def _remember(self, g: int, scene: SceneRecord, prompt_keys: torch.Tensor) -> None:
        """Memory bank step after chunk ``g``: archive the chunk leaving the window, update the active frames."""
        if self.kv_bank is not None:
            self._record(g)
            return
        if not self.bank.enabled:
            return
        leaving = g + 1 - self.cache.ring_slots
        first_ring_chunk = 1 if self.cache.sink_frames else 0
        if leaving < first_ring_chunk:
            return
        owner = self.scenes[self.chunk_scene[leaving]]
        chunk_in_scene = leaving - owner.first_chunk
        if not self.memory_policy.archives(chunk_in_scene):
            return
        self._settle(leaving)  # a chunk leaving the window was made a window ago: its copies are there
        queries = self.chunk_queries[leaving]  # [fpc, layers, heads, D]
        pick = self.memory_policy.pick_frame(queries, *self._scoring_keys(owner))
        best, frames = pick.index, self._recent_frames[leaving]
        video_frames_per_latent = self.config.video.temporal_compression
        thumb = frames[min(len(frames) - 1, max(0, len(frames) - (self.frames_per_chunk - best) * video_frames_per_latent))]
        record = FrameRecord(
            scene=owner.index, chunk=chunk_in_scene, frame=leaving * self.frames_per_chunk + best,
            entity_ids=list(owner.entity_ids), scores=pick.scores, score=pick.score, reason=pick.reason,
            latent=self.latents[leaving][0, :, best].clone(), queries=queries[best].clone(), thumbnail=thumb.copy(),
        )
        self.bank.add(record)
        if self.bank.set_active(self.memory_policy.during_scene(self.bank, scene.entity_ids, prompt_keys)):
            self._log({"op": "memory", "keys": list(self.bank.active), "text": ["scene", scene.index]})

    def _record(self, g: int) -> None:
        """MemFlow's memory after chunk ``g``: a recording chunk stages its first frame's K/V for the bank. The
        recorded frames whose latents have reached the host are archived (for the memory panel and the files)."""
        if records_chunk(g):
            self._log({"op": "stage", "chunk": g, "key": self._record_key(g), "text": self.ops[-1]["text"]})
        for c in range(max(0, g - 2 * self.cache.ring_slots), g + 1):
            if self._awaits_record(c) and c not in self._arriving and c in self._recent_frames:
                owner, frames = self.scenes[self.chunk_scene[c]], self._recent_frames[c]
                self.bank.add(FrameRecord(
                    scene=owner.index, chunk=c - owner.first_chunk, frame=c * self.frames_per_chunk,
                    entity_ids=list(owner.entity_ids), scores={}, score=0.0, reason="every third chunk",
                    latent=self.latents[c][0, :, 0].clone(), queries=self.chunk_queries[c][0].clone(),
                    thumbnail=frames[max(0, len(frames) - self.frames_per_chunk * self.config.video.temporal_compression)].copy(),
                ))

    def _awaits_record(self, g: int) -> bool:
        """Chunk ``g`` is one MemFlow's memory records and its frame is not archived yet (its frames are kept)."""
        return self.kv_bank is not None and records_chunk(g) and self._record_key(g) not in self.bank.archive

    def _record_key(self, g: int) -> str:
        owner = self.scenes[self.chunk_scene[g]]
        return f"p{owner.index}_c{g - owner.first_chunk}_f{g * self.frames_per_chunk}"

    def _scoring_keys(self, owner: SceneRecord) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """The memory scorer's keys for the frames of scene ``owner``: per entity, and of its prompt."""
        layers = self._score_layers()
        entity_keys = {
            e["global_id"]: self.runtime.text_keys(self._entity_description(e["global_id"], e["surface"]), layers)
            for e in owner.entities
        }
        return entity_keys, self.runtime.text_keys(owner.text_prompt, layers)

    def _prepare_scoring(self, scene: SceneRecord) -> None:
        """Make the scorer's keys of every scene whose chunks can leave the window during this one before the
        first chunk, so the loop never waits for the text encoder."""
        if not self.bank.enabled:
            return
        window = self.cache.ring_slots if self.cache is not None else 1
        owners = {self.chunk_scene[i] for i in range(max(0, len(self.chunk_scene) - window), len(self.chunk_scene))}
        for index in sorted(owners | {scene.index}):
            self._scoring_keys(self.scenes[index])

    def _entity_description(self, global_id: int, surface: str) -> str:
        record = self.agent.registry.entities.get(global_id)
        if record is None:
            return surface
        attrs = list(record.current_attrs)[:6]
        base = record.base or surface
        return ", ".join([base] + attrs) if attrs else base

    # --- undo, snapshots -----------------------------------------------------------------------------
    def undo_last_scene(self) -> None:
        if not self.scenes:
            raise ValueError("there is no scene to undo")
        self._drop_last_scene()

    def _drop_last_scene(self) -> None:
        scene = self.scenes[-1]
        for g in [k for k in self._arriving if k >= scene.first_chunk]:  # its chunks still being decoded go with it
            copies = self._arriving.pop(g)
            for copy in copies.values():
                getattr(copy, "finish_quietly", copy.wait)()
        self._settle()
        del self.latents[scene.first_chunk :], self.chunk_scene[scene.first_chunk :]
        del self.chunk_frame_counts[scene.first_chunk :], self.chunk_queries[scene.first_chunk :]
        self._recent_frames = {g: f for g, f in self._recent_frames.items() if g < scene.first_chunk}
        self.video.truncate(scene.first_chunk)
        del self.ops[scene.ops_start :]
        # everything archived during the scene goes, earlier scenes' frames included: the bank as it was
        self.bank.rewind(scene.archived_before, scene.active_before)
        self.agent.undo_last()
        self.scenes.pop()
        self._scene_text.pop(scene.index, None)
        self.cache, self._prepared_chunk = None, None  # rebuilt by replaying the log
        self.decoder = None

    def iter_story_frames(self) -> Iterator[np.ndarray]:
        """The story's frames chunk by chunk, exactly as they were made (decoded again from the latents with a
        fresh decoder: the segments are H.264, which is lossy)."""
        self._settle()
        with self.runtime.lock:
            for _, frames in self._decode_from(self.runtime.codec.stream_decoder(), 0):
                yield frames

    def story_frames(self) -> np.ndarray:
        """All the story's frames ``uint8 [T, H, W, 3]``, exact (see ``iter_story_frames``; for a long story at
        832x480 this is 1.2 MB a frame: prefer the iterator or the segments)."""
        chunks = list(self.iter_story_frames())
        if not chunks:
            h, w = self.config.video.height, self.config.video.width
            return np.zeros((0, h, w, 3), dtype=np.uint8)
        return np.concatenate(chunks, axis=0)

    def registry_snapshot(self) -> dict:
        return self.agent.registry.snapshot()

    def memory_view(self) -> list[dict]:
        """The active memory frames with thumbnails (for the UI)."""
        return [{**r.info(), "thumbnail": self.bank.thumbnail(r.key)} for r in self.bank.active_records()]

    def memory_snapshot(self) -> dict:
        return self.bank.snapshot()

    def mapping(self) -> dict:
        snapshot = self.bank.snapshot()
        return self.agent.to_mapping(
            extra={
                "frame_archive": {r["key"]: r for r in snapshot["archive"]},
                "frame_active_memory": [r["key"] for r in snapshot["active"]],
            }
        )

    # --- persistence ---------------------------------------------------------------------------------
    def export(self, path: str | Path, scale: int | None = None) -> dict[str, Path]:
        """The story as an H.264 mp4 (its segments joined) and mapping.json beside it (``iamflow.story_files``)."""
        return story_files.export(self, path, scale)

    def save(self, directory: str | Path) -> Path:
        """Everything needed to resume the story identically (``iamflow.story_files``)."""
        return story_files.save(self, directory)

    @classmethod
    def load(cls, directory: str | Path, runtime: Runtime, video_dir: str | Path | None = None) -> "StorySession":
        """A saved story, ready to continue; decodes only what the decoder's causal state needs."""
        return story_files.load(directory, runtime, video_dir)
