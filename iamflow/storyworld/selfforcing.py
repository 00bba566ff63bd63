"""Self-forcing stage of the embedded model: train it on its own rollouts, ``python -m iamflow.storyworld.selfforcing``.

The student (the DiT, from the shipped weights) generates a batch of multi-scene stories from their captions
alone, chunk by chunk, exactly as a story session runs it: the engine's KV cache (sink, local window, memory
frames), a memory policy choosing the memory frames (``iam``: its ``MemoryBank``, archived as chunks leave the
window, retrieved for the characters a new scene names; ``nam``: MemFlow's bank, every third chunk's first frame as
committed; ``sink``: none), and the window and sink re-cached under the new prompt at every scene switch. Every
denoising step of a chunk runs without gradient except the last, which runs on a copy of the cache with gradient;
the chunk's clean latents are then committed to the cache without gradient (the context a later chunk sees is the
student's own sample, detached).

Each chunk's sample gets a distribution-matching loss (DMD): renoised to a random sigma, the frozen teacher (the
shipped model, with classifier-free guidance) and a "fake score" model (a copy of the teacher trained alongside
on the student's samples) each predict it back, seeing the same context (the student's own frames, laid out as
the cache holds them); the student moves its sample along fake - teacher. A regression term (flow matching on
the true renders of the same stories, in the same layout) keeps the student following its prompts.

One run is one resumable piece that stops by the wall clock (``--minutes``). ``--out`` holds the student's
shards, ``fake/`` the fake score's, ``ema/`` (with ``--ema``) the moving average of the student's weights,
``optim.pt`` both optimizers and ``state.json`` the step, the number of sequences seen, the next story seed and the
losses; a run on a folder that has them continues from there.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from iamflow.config import EMBEDDED_PRESET, Config, load_config
from iamflow.engine.engine import Engine
from iamflow.engine.kv_cache import KVCache
from iamflow.engine.model import CausalWanModel, TextConditioning
from iamflow.memory.bank import FrameRecord, MemoryBank
from iamflow.memory.memflow import MemFlowBank, records_chunk
from iamflow.memory.policies import memory_policy
from iamflow.storyworld.data import CHUNK_FRAMES, frame_mask_to_tokens, render_story_video, to_video_tensor
from iamflow.storyworld.stories import training_story
from iamflow.storyworld.world import Story

logger = logging.getLogger("iamflow.storyworld.selfforcing")

TextFeatures = Callable[[list[str]], torch.Tensor]  # prompts -> [N, text_len, 384] token features


@dataclass
class Settings:
    batch: int = 4  # stories rolled out together (they share the cache's shape: scenes and chunks a scene)
    max_scenes: int = 4
    chunks_per_scene: int = 2
    lr: float = 2e-6
    fake_lr: float = 2e-5
    teacher_guidance: float | None = None  # default: the preset's sampler.guidance_scale
    regression_weight: float = 1.0
    fake_updates: int = 1  # fake-score updates a step, each on the step's samples with fresh noise
    ema: float = 0.0  # decay of an exponential moving average of the student's weights (0: none is kept)
    min_sigma: float = 0.02
    max_sigma: float = 0.98
    # the memory policies the rollouts are told with, one drawn a step: "iam" (the entity memory: each leaving
    # chunk archives a frame, a switch brings back the frames of the characters the prompt names), "sink" (no
    # memory frames: the first chunk and the window alone) and "nam" (MemFlow's bank: every third chunk's first
    # frame, its K/V as committed), as the app's stories are told with any of them
    policies: tuple[str, ...] = ("iam",)

    def __post_init__(self):
        unknown = [p for p in self.policies if p not in ROLLOUT_POLICIES]
        if not self.policies or unknown:
            raise ValueError(f"rollout policies {list(self.policies)}: choose among {', '.join(ROLLOUT_POLICIES)}")


# --- the rollout ----------------------------------------------------------------------------------------------

ROLLOUT_POLICIES = ("iam", "sink", "nam")  # the memory policies a rollout can follow


def copy_cache(cache: KVCache) -> KVCache:
    """The same cache with its own K/V, one tensor a layer: a pass with gradient writes there, not into the real
    cache (and one layer's write does not touch what autograd saved of another's)."""
    other = copy.copy(cache)
    other.keys, other.values = [k.clone() for k in cache.keys], [v.clone() for v in cache.values]
    return other


def _encode(model: CausalWanModel, features: torch.Tensor) -> TextConditioning:
    return model.encode_text(features.to(model.device))


@dataclass
class Chunk:
    """One rolled-out chunk: its sample (with gradient through the last step) and the context it saw."""

    index: int
    scene: int
    sample: torch.Tensor  # [B, C, 3, h, w], with gradient
    memory: torch.Tensor | None  # [B, C, m, h, w] the memory frames the cache held (detached), or None
    memory_positions: torch.Tensor | None  # [B, m]


def _memory_of(banks: list[MemoryBank]) -> tuple[list[list[FrameRecord]], int]:
    """The active frames of every story's bank, cut to the count all have (the cache holds one count a batch)."""
    active = [bank.active_records() for bank in banks]
    count = min(len(a) for a in active)
    return [a[:count] for a in active], count


def _write_memory(model: CausalWanModel, cache: KVCache, text: TextConditioning, records: list[list[FrameRecord]],
                  count: int, context_t: float) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Recompute the K/V of the memory frames (each story its own frames and positions) into the cache."""
    if count == 0:
        cache.set_memory_count(0)
        return None, None
    latents = torch.stack([torch.stack([r.latent for r in rs], dim=1) for rs in records]).to(model.device)  # [B, C, m, h, w]
    positions = torch.tensor([[r.frame for r in rs] for rs in records], device=model.device)
    t = torch.full((latents.shape[0], count), context_t, device=model.device)
    model(latents, t, text, frame_positions=positions, cache=cache, write=cache.memory_write(count))
    cache.set_memory_count(count)
    return latents, positions


def _memflow_memory(kv_bank: MemFlowBank, clean: list[torch.Tensor],
                    fpc: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The frames MemFlow's bank holds (those most layers hold; a record's key is its chunk), as the teacher and the
    fake score see them: the recorded chunks' first latent frames [B, C, m, h, w] and their positions [B, m]."""
    chunks = sorted(int(key) for key in kv_bank.active())
    if not chunks:
        return None, None
    latents = torch.stack([clean[g][:, :, 0] for g in chunks], dim=2)
    positions = torch.tensor([g * fpc for g in chunks], device=latents.device).expand(latents.shape[0], -1)
    return latents, positions


def rollout(engine: Engine, stories: list[Story], features: list[torch.Tensor], uncond: TextConditioning | None,
            chunks_per_scene: int, generator: torch.Generator,
            on_chunk: Callable[[Chunk, list[torch.Tensor]], None] | None = None, policy: str = "iam") -> list[Chunk]:
    """Generate every scene of ``stories`` (all with the same number of scenes) chunk by chunk, as a story session
    with memory ``policy`` does (``ROLLOUT_POLICIES``; with "nam" the batch's stories share one bank order, as they
    share one cache, and a chunk's ``memory`` lists the frames most layers hold); ``features`` holds each scene's
    prompt features [B, text_len, 384]. Under gradient mode the last denoising step of each chunk keeps its graph
    (its own text conditioning included).
    ``on_chunk(chunk, clean chunks so far)`` runs after each chunk is committed."""
    model, sampler, fpc = engine.model, engine.sampler, engine.frames_per_chunk
    batch, num_scenes = len(stories), len(features)
    with torch.no_grad():
        texts = [_encode(model, f) for f in features]
    if policy not in ROLLOUT_POLICIES:
        raise ValueError(f"a rollout follows one of the memory policies {', '.join(ROLLOUT_POLICIES)} (got {policy!r})")
    chosen = memory_policy(policy)
    size = engine.config.cache.max_memory_frames
    cache = engine.new_cache(batch_size=batch, max_memory_frames=chosen.cache_shape(0, size).memory_frames or None)
    remembers = chosen.archives_frames  # the iam bank; sink and nam leave it empty
    banks = [MemoryBank("iam", cache.max_memory_frames) for _ in stories]
    kv_bank = MemFlowBank(model.cfg.num_layers, size) if chosen.kv_as_committed and size else None
    ids = [{c.char_id: i for i, c in enumerate(story.characters)} for story in stories]
    entities = [[[ids[b][c] for c in story.scenes[j].char_ids] for b, story in enumerate(stories)] for j in range(num_scenes)]
    guided = sampler.cfg.guided_steps
    steps = len(sampler)
    zero_keys = torch.zeros(1, 1, 1)
    clean: list[torch.Tensor] = []
    chunks: list[Chunk] = []
    memory = positions = None
    for j in range(num_scenes):
        text = texts[j]
        with torch.no_grad():
            if j > 0:  # a scene switch: memory for the characters the new prompt names, then the re-cache
                if remembers:
                    for b, bank in enumerate(banks):
                        bank.set_active(chosen.at_switch(bank, entities[j][b], zero_keys))
                    memory, positions = _write_memory(model, cache, text, *_memory_of(banks), sampler.context_timestep)
                if kv_bank is not None and kv_bank.pending:  # MemFlow re-compresses before the re-cache, no text
                    kv_bank.before_chunk(cache, None)
                    memory, positions = _memflow_memory(kv_bank, clean, fpc)
                first_ring = 1 if cache.sink_frames else 0
                kept = list(range(max(first_ring, len(clean) - cache.ring_slots), len(clean)))
                if kept:
                    engine.recache(cache, text, torch.cat([clean[i] for i in kept], 2), kept[0] * fpc,
                                   clean[0] if cache.sink_frames else None, batched=False)
        for c in range(chunks_per_scene):
            g = len(clean)
            offset = g * fpc
            if kv_bank is not None and kv_bank.pending:  # MemFlow: place the newest record or re-compress
                with torch.no_grad():
                    kv_bank.before_chunk(cache, None if c == 0 and j > 0 else [k for k, _ in text.kv])
                memory, positions = _memflow_memory(kv_bank, clean, fpc)
            write = cache.next_chunk_write()
            x = torch.randn((batch, *engine.latent_shape[:1], fpc, *engine.latent_shape[1:]), generator=generator,
                            device=engine.device)
            for i in range(steps):
                sigma = float(sampler.sigmas[i])
                t = torch.full((batch, fpc), float(sampler.timesteps[i]), device=engine.device)
                last = i + 1 == steps
                with torch.set_grad_enabled(last and torch.is_grad_enabled()):
                    target = copy_cache(cache) if last else cache
                    conditioning = _encode(model, features[j]) if last and torch.is_grad_enabled() else text
                    velocity = model(x, t, conditioning, frame_offset=offset, cache=target, write=write).float()
                    if i < guided:
                        plain = model(x, t, uncond, frame_offset=offset, cache=target, write=write).float()
                        velocity = plain + sampler.cfg.guidance_scale * (velocity - plain)
                    x0 = x - sigma * velocity
                if not last:
                    with torch.no_grad():
                        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
                        x = sampler.add_noise(x0.detach(), noise, float(sampler.sigmas[i + 1]))
            with torch.no_grad():
                engine.commit_chunk(cache, text, x0.detach(), offset)
                if kv_bank is not None and records_chunk(g):  # its first frame's K/V, as committed
                    kv_bank.stage(cache, str(g))
            clean.append(x0.detach())
            chunk = Chunk(g, j, x0, memory, positions)
            chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk, clean)
            # the iam policy: archive a frame of the chunk leaving the window, keep the best for this scene
            leaving = g + 1 - cache.ring_slots
            if remembers and leaving >= (1 if cache.sink_frames else 0) and leaving > 0:
                owner = leaving // chunks_per_scene
                for b, bank in enumerate(banks):
                    frame = leaving * fpc + fpc // 2
                    bank.add(FrameRecord(
                        scene=owner, chunk=leaving % chunks_per_scene, frame=frame, entity_ids=list(entities[owner][b]),
                        scores={e: 0.0 for e in entities[owner][b]}, score=0.0, reason="entity match",
                        latent=clean[leaving][b, :, fpc // 2].detach(), queries=torch.zeros(1, 1, 1)))
                changed = [bank.set_active(chosen.during_scene(bank, entities[j][b], zero_keys))
                           for b, bank in enumerate(banks)]
                if any(changed):
                    with torch.no_grad():
                        memory, positions = _write_memory(model, cache, text, *_memory_of(banks),
                                                          sampler.context_timestep)
    return chunks


# --- the context layout the teacher and the fake score see ----------------------------------------------------


def context_sequence(chunk: Chunk, clean: list[torch.Tensor], fpc: int = CHUNK_FRAMES,
                     ring_slots: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``[memory | sink | window chunks | current]`` as the cache held them when ``chunk`` was made: the context
    latents [B, C, F_ctx, h, w], every frame's position [B, F], the frame visibility [B, F, F] (memory sees
    memory; the rest see memory, the chunks before them and their own chunk) and F_ctx."""
    g = chunk.index
    window = list(range(max(1, g - ring_slots + 1), g))
    parts, groups, positions = [], [], []
    batch = chunk.sample.shape[0]
    if chunk.memory is not None and g > 0:
        parts.append(chunk.memory)
        groups += [0] * chunk.memory.shape[2]
        positions.append(chunk.memory_positions)
    for group, index in enumerate(([0] if g > 0 else []) + window, start=1):
        parts.append(clean[index])
        groups += [group] * fpc
        positions.append(torch.arange(index * fpc, (index + 1) * fpc, device=chunk.sample.device).expand(batch, fpc))
    groups += [max(groups) + 1 if groups else 1] * fpc
    positions.append(torch.arange(g * fpc, (g + 1) * fpc, device=chunk.sample.device).expand(batch, fpc))
    context = torch.cat(parts, 2) if parts else chunk.sample.new_zeros(batch, chunk.sample.shape[1], 0,
                                                                       *chunk.sample.shape[3:])
    group = torch.tensor(groups, device=chunk.sample.device)
    gq, gk = group[:, None], group[None, :]
    visible = torch.where(gq == 0, gk == 0, gk <= gq)
    return context, torch.cat(positions, 1), visible.expand(batch, -1, -1), context.shape[2]


def _velocity(model: CausalWanModel, context: torch.Tensor, current: torch.Tensor, sigma: torch.Tensor,
              text: TextConditioning, positions: torch.Tensor, mask: torch.Tensor, num_train_timesteps: int,
              context_t: float) -> torch.Tensor:
    """The model's velocity of the current frames [B, C, 3, h, w] at per-sequence ``sigma`` [B], in context."""
    x = torch.cat([context, current], 2)
    t = torch.full(x.shape[::2][:2], context_t, device=x.device)
    t[:, context.shape[2]:] = sigma[:, None] * num_train_timesteps
    return model(x, t, text, frame_positions=positions, attn_mask=mask)[:, :, context.shape[2]:].float()


# --- the stage ------------------------------------------------------------------------------------------------


class SelfForcing:
    """Student, frozen teacher and fake score, their optimizers, and one training step at a time."""

    def __init__(self, config: Config, student: CausalWanModel, teacher: CausalWanModel, fake: CausalWanModel,
                 codec, text_features: TextFeatures, settings: Settings, first_seed: int = 3_000_000):
        self.config, self.settings, self.codec, self.text_features = config, settings, codec, text_features
        self.student, self.teacher, self.fake = student, teacher, fake
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.engine = Engine(student, config)
        self.student_opt = torch.optim.AdamW(student.parameters(), lr=settings.lr, betas=(0.0, 0.999), weight_decay=0.0)
        if not 0.0 <= settings.ema < 1.0:
            raise ValueError(f"ema={settings.ema}: the decay of the student's average lies in [0, 1) (0.99, say; "
                             f"0 keeps no average)")
        # the average of the student's weights over the steps, what a piece offers for evaluation when kept
        self.ema = copy.deepcopy(student).requires_grad_(False) if settings.ema > 0 else None
        self.fake_opt = torch.optim.AdamW(fake.parameters(), lr=settings.fake_lr, betas=(0.0, 0.999), weight_decay=0.0)
        self.state = {"step": 0, "sequences_seen": 0, "next_seed": first_seed, "losses": []}
        self.guidance = config.sampler.guidance_scale if settings.teacher_guidance is None else settings.teacher_guidance

    # --- stories
    def next_stories(self, rng: np.random.Generator) -> list[Story]:
        """``batch`` training stories (memory stories among them), cut to the same number of scenes."""
        scenes = int(rng.integers(2, self.settings.max_scenes + 1))
        chosen: list[Story] = []
        while len(chosen) < self.settings.batch:
            story = training_story(self.state["next_seed"])
            self.state["next_seed"] += 1
            if len(story.scenes) >= scenes:
                chosen.append(Story(story.characters, story.scenes[:scenes], story.seed))
        return chosen

    @torch.no_grad()
    def true_latents(self, stories: list[Story]) -> torch.Tensor:
        """The stories rendered with ``chunks_per_scene`` chunks a scene, encoded: [B, C, F, h, w]."""
        chunks = [self.settings.chunks_per_scene] * len(stories[0].scenes)
        videos = [render_story_video(story, chunks).video for story in stories]
        return torch.cat([self.codec.encode(to_video_tensor(v).to(self.student.device)) for v in videos]).float()

    # --- one step
    def step(self) -> dict:
        s, device = self.settings, self.student.device
        rng = np.random.default_rng(self.state["next_seed"])
        stories = self.next_stories(rng)
        num_scenes = len(stories[0].scenes)
        features = [self.text_features([story.scenes[j].prompt for story in stories]).to(device) for j in range(num_scenes)]
        null = self.text_features([""]).to(device).expand(len(stories), -1, -1)
        sampler = self.engine.sampler
        ntt, context_t = sampler.cfg.num_train_timesteps, sampler.context_timestep
        generator = torch.Generator(device=device).manual_seed(int(self.state["next_seed"]))
        self.student_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            teacher_text = [_encode(self.teacher, f) for f in features]
            teacher_null = _encode(self.teacher, null)
        with torch.no_grad():
            uncond = _encode(self.student, null) if sampler.cfg.guided_steps else None
        total = len(stories[0].scenes) * s.chunks_per_scene
        kept: list[tuple[Chunk, torch.Tensor, torch.Tensor, torch.Tensor, int]] = []
        dmd_losses = []

        def on_chunk(chunk: Chunk, clean: list[torch.Tensor]) -> None:
            context, positions, visible, n = context_sequence(chunk, clean, self.engine.frames_per_chunk,
                                                              self.engine.config.cache.local_window_frames
                                                              // self.engine.frames_per_chunk)
            mask = frame_mask_to_tokens(visible, self.config.tokens_per_frame)
            x0 = chunk.sample
            sigma = s.min_sigma + (s.max_sigma - s.min_sigma) * torch.rand(x0.shape[0], device=device)
            sig = sigma[:, None, None, None, None]
            noisy = (1 - sig) * x0.detach() + sig * torch.randn_like(x0)
            with torch.no_grad():
                text_t = teacher_text[chunk.scene]
                real = _velocity(self.teacher, context, noisy, sigma, text_t, positions, mask, ntt, context_t)
                if self.guidance != 1:
                    plain = _velocity(self.teacher, context, noisy, sigma, teacher_null, positions, mask, ntt, context_t)
                    real = plain + self.guidance * (real - plain)
                fake = _velocity(self.fake, context, noisy, sigma, _encode(self.fake, features[chunk.scene]),
                                 positions, mask, ntt, context_t)
                x0_real, x0_fake = noisy - sig * real, noisy - sig * fake
                scale = (x0.detach() - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp(min=1e-4)
                direction = (x0_fake - x0_real) / scale
            loss = 0.5 * F.mse_loss(x0, (x0 - direction).detach())
            (loss / total).backward()
            dmd_losses.append(loss.item())
            kept.append((chunk, context, positions, mask, n))

        policy = s.policies[int(rng.integers(len(s.policies)))] if len(s.policies) > 1 else s.policies[0]
        rollout(self.engine, stories, features, uncond, s.chunks_per_scene, generator, on_chunk, policy)

        # regression on the true renders, in the layout of one chunk of the rollout (its memory frames' places)
        truth = self.true_latents(stories)  # [B, C, F, h, w]
        fpc = self.engine.frames_per_chunk
        chunk, _, _, _, _ = kept[int(rng.integers(len(kept)))]
        true_chunks = [truth[:, :, i * fpc : (i + 1) * fpc] for i in range(total)]
        memory = None
        if chunk.memory is not None:
            memory = torch.stack([truth[b][:, chunk.memory_positions[b]] for b in range(truth.shape[0])])
        true_chunk = Chunk(chunk.index, chunk.scene, true_chunks[chunk.index], memory, chunk.memory_positions)
        context, positions, visible, _ = context_sequence(true_chunk, true_chunks, fpc,
                                                          self.engine.config.cache.local_window_frames // fpc)
        mask = frame_mask_to_tokens(visible, self.config.tokens_per_frame)
        clean = true_chunk.sample
        sigma = sampler.sigmas.to(device)[torch.randint(len(sampler), (clean.shape[0],), device=device)]
        noise = torch.randn_like(clean)
        sig = sigma[:, None, None, None, None]
        velocity = _velocity(self.student, context, (1 - sig) * clean + sig * noise, sigma,
                             _encode(self.student, features[chunk.scene]), positions, mask, ntt, context_t)
        regression = F.mse_loss(velocity, noise - clean)
        (s.regression_weight * regression).backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0))
        self.student_opt.step()
        if self.ema is not None:
            with torch.no_grad():
                for averaged, current in zip(self.ema.parameters(), self.student.parameters()):
                    averaged.lerp_(current, 1.0 - s.ema)

        # the fake score learns the student's samples (flow matching, the same context the student saw)
        fake_losses = []
        for _ in range(s.fake_updates):
            self.fake_opt.zero_grad(set_to_none=True)
            for chunk, context, positions, mask, _ in kept:
                x0 = chunk.sample.detach()
                sigma = s.min_sigma + (s.max_sigma - s.min_sigma) * torch.rand(x0.shape[0], device=device)
                sig = sigma[:, None, None, None, None]
                noise = torch.randn_like(x0)
                v = _velocity(self.fake, context, (1 - sig) * x0 + sig * noise, sigma,
                              _encode(self.fake, features[chunk.scene]), positions, mask, ntt, context_t)
                loss = F.mse_loss(v, noise - x0)
                (loss / len(kept)).backward()
                fake_losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(self.fake.parameters(), 1.0)
            self.fake_opt.step()
        self.state["step"] += 1
        self.state["sequences_seen"] += len(stories)
        record = {"step": self.state["step"], "scenes": num_scenes, "policy": policy, "dmd": float(np.mean(dmd_losses)),
                  "regression": regression.item(), "fake": float(np.mean(fake_losses)), "grad_norm": grad_norm}
        self.state["losses"].append({k: round(v, 6) if isinstance(v, float) else v for k, v in record.items()})
        return record

    # --- pieces
    def save(self, folder: str | Path) -> None:
        from iamflow.storyworld.model import save_dit

        folder = Path(folder)
        (folder / "fake").mkdir(parents=True, exist_ok=True)
        save_dit(self.student, folder)
        save_dit(self.fake, folder / "fake")
        if self.ema is not None:
            (folder / "ema").mkdir(exist_ok=True)
            save_dit(self.ema, folder / "ema")
        torch.save({"student": self.student_opt.state_dict(), "fake": self.fake_opt.state_dict()}, folder / "optim.pt")
        (folder / "state.json").write_text(json.dumps(self.state, indent=1))

    def resume(self, folder: str | Path) -> bool:
        """Continue a piece saved in ``folder``; False (and nothing changed) when it holds none."""
        from iamflow.storyworld.model import load_dit_state

        folder = Path(folder)
        if not (folder / "state.json").is_file():
            return False
        load_dit_state(self.student, folder)
        load_dit_state(self.fake, folder / "fake")
        if self.ema is not None:
            if (folder / "ema").is_dir():
                load_dit_state(self.ema, folder / "ema")
            else:  # a piece saved without an average: it starts from the student as it is
                self.ema.load_state_dict(self.student.state_dict())
        if (folder / "optim.pt").is_file():
            optim = torch.load(folder / "optim.pt", map_location=self.student.device)
            self.student_opt.load_state_dict(optim["student"])
            self.fake_opt.load_state_dict(optim["fake"])
        else:  # a piece brought back as its weights alone (the moments did not travel): fresh optimizer moments
            logger.info("%s has no optim.pt: the optimizers start afresh from its weights", folder)
        self.state = json.loads((folder / "state.json").read_text())
        return True


def main(argv: list[str] | None = None) -> None:
    from iamflow.storyworld.codec import StoryworldCodec
    from iamflow.storyworld.model import ASSETS, load_codec_state, load_dit_state

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/storyworld-selfforcing", help="the piece's folder (resumed if it holds one)")
    ap.add_argument("--init", default=str(ASSETS), help="weights the student and the fake score start from")
    ap.add_argument("--teacher", default="", help="the teacher's weights (default: --init)")
    ap.add_argument("--minilm", default=".carry/storyworld/minilm",
                    help="compact MiniLM folder for text features; the bundled MiniLM when it is absent")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the piece, saving included")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in all (0: the clock decides)")
    ap.add_argument("--batch", type=int, default=Settings.batch)
    ap.add_argument("--max-scenes", type=int, default=Settings.max_scenes)
    ap.add_argument("--chunks-per-scene", type=int, default=Settings.chunks_per_scene)
    ap.add_argument("--lr", type=float, default=Settings.lr)
    ap.add_argument("--fake-lr", type=float, default=Settings.fake_lr)
    ap.add_argument("--teacher-guidance", type=float, default=None)
    ap.add_argument("--regression-weight", type=float, default=Settings.regression_weight)
    ap.add_argument("--fake-updates", type=int, default=Settings.fake_updates)
    ap.add_argument("--ema", type=float, default=Settings.ema,
                    help="keep an exponential moving average of the student with this decay (0.99, say) in <out>/ema")
    ap.add_argument("--first-seed", type=int, default=3_000_000)
    ap.add_argument("--policies", default=",".join(Settings.policies),
                    help="memory policies of the rollouts, one drawn a step, comma-separated "
                         f"(of {', '.join(ROLLOUT_POLICIES)})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    deadline = time.time() + args.minutes * 60
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = load_config(preset=EMBEDDED_PRESET, overrides={"runtime": {"device": device.type}})
    models = []
    for source in (args.init, args.teacher or args.init, args.init):
        model = CausalWanModel(config.model).to(device)
        load_dit_state(model, source)
        models.append(model)
    student, teacher, fake = models
    codec = StoryworldCodec(device=device)
    load_codec_state(codec, Path(args.init) / "codec.safetensors")
    if (Path(args.minilm) / "minilm.safetensors").is_file():
        from iamflow.storyworld.data import CompactMiniLM

        compact = CompactMiniLM.load(args.minilm, config.model.text_len, device)
        text_features = compact.encode
    else:
        from iamflow.engine.text_encoder import MiniLMTextEncoder

        encoder = MiniLMTextEncoder(config.model.text_len)
        text_features = encoder.encode
    settings = Settings(batch=args.batch, max_scenes=args.max_scenes, chunks_per_scene=args.chunks_per_scene,
                        lr=args.lr, fake_lr=args.fake_lr, teacher_guidance=args.teacher_guidance,
                        regression_weight=args.regression_weight, fake_updates=args.fake_updates, ema=args.ema,
                        policies=tuple(p.strip() for p in args.policies.split(",") if p.strip()))
    stage = SelfForcing(config, student, teacher, fake, codec, text_features, settings, args.first_seed)
    if stage.resume(args.out):
        logger.info("resumed %s at step %d (%d sequences seen)", args.out, stage.state["step"],
                    stage.state["sequences_seen"])
    started, steps = time.time(), 0
    while time.time() < deadline - 30 and (not args.max_steps or stage.state["step"] < args.max_steps):
        record = stage.step()
        steps += 1
        logger.info("step %d: %s (%.1f s a step)", record["step"], record, (time.time() - started) / steps)
    stage.save(args.out)
    for name in ("codec.safetensors", "config.yaml"):  # the piece's folder is a weights folder (load_storyworld)
        if (Path(args.init) / name).is_file() and not (Path(args.out) / name).is_file():
            shutil.copyfile(Path(args.init) / name, Path(args.out) / name)
    logger.info("saved %s: step %d, %d sequences seen", args.out, stage.state["step"], stage.state["sequences_seen"])


if __name__ == "__main__":
    main()
