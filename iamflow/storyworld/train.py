"""Train the embedded storyworld model: ``python -m iamflow.storyworld.train``.

One run is one resumable piece that stops by the wall clock (``--minutes``) and writes its weights:

1. render ``--stories`` training stories (their own seed range per piece) on all CPU cores;
2. the codec: trained from scratch if ``--init`` has none, else loaded and kept frozen;
3. every story encoded to latents, every scene prompt to MiniLM token features (``CompactMiniLM``);
4. the DiT, flow matching on sequences laid out like the KV cache with the ``iam`` memory policy
   (``data.sample_batch``): memory frames, sink, window, and the current chunk noised to one of the sampler's
   sigmas (mostly) or any sigma; loss on the current chunk's velocity. ``--text-dropout`` of the sequences
   see the empty prompt instead of theirs, so the model also predicts without the prompt (guidance).
   ``--figure-weight`` weighs the loss on the latent cells that show a character, ``--trait-weight`` on those
   that show its trait: a trait or a colour covers a few of a frame's 256 cells, and uniform weights let the
   background dominate. ``--own-context`` of the sequences get the model's own one-pass prediction of their
   context instead of the truth (``own_context``), the way inference feeds its own frames back.

Weights go to ``--out`` as float16 safetensors shards of at most 16 MiB; the next piece resumes from them
(``--init``), with a fresh optimizer and a short warm-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from iamflow.config import EMBEDDED_PRESET, load_config
from iamflow.engine.model import CausalWanModel
from iamflow.engine.sampler import FlowSampler, shifted_schedule
from iamflow.storyworld.codec import StoryworldCodec
from iamflow.storyworld.data import (
    CHUNK_FRAMES,
    TRAIT,
    CompactMiniLM,
    LatentStories,
    frame_mask_to_tokens,
    lr_at,
    random_story_video,
    sample_batch,
    to_video_tensor,
)
from iamflow.storyworld.model import load_dit_state, load_codec_state, save_dit, save_codec

logger = logging.getLogger("iamflow.storyworld.train")


# --- data ---------------------------------------------------------------------------------------------------


def render_stories(first_seed: int, count: int, workers: int):
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(random_story_video, range(first_seed, first_seed + count), chunksize=4)


@torch.no_grad()
def encode_stories(videos, codec: StoryworldCodec, minilm: CompactMiniLM, device) -> LatentStories:
    latents, prompts, starts, chunks, chunk_scene, text_starts, chars, figures = [], [], [], [], [], [], [], []
    frames = scenes = 0
    for v in videos:
        z = codec.encode(to_video_tensor(v.video).to(device))[0].transpose(0, 1)  # [F, C, h, w]
        latents.append(z.half())
        figures.append(torch.from_numpy(v.figures).to(device))
        prompts += v.prompts
        starts.append(frames), chunks.append(len(v.chunk_scene)), chunk_scene.append(v.chunk_scene)
        text_starts.append(scenes), chars.append(v.scene_chars)
        frames, scenes = frames + z.shape[0], scenes + len(v.prompts)
    texts = [minilm.encode(prompts[i : i + 512]).half() for i in range(0, len(prompts), 512)]
    return LatentStories(torch.cat(latents), torch.cat(texts), np.array(starts), np.array(chunks), chunk_scene,
                         np.array(text_starts), chars, torch.cat(figures))


# --- codec --------------------------------------------------------------------------------------------------


def train_codec(codec: StoryworldCodec, groups: torch.Tensor, seconds: float, batch: int = 128) -> dict:
    """groups [N, 12, 64, 64] uint8 (four frames a latent frame) on the device."""
    opt = torch.optim.AdamW(codec.net.parameters(), lr=1e-3, weight_decay=0.0)
    codec.net.train()
    start, step, losses = time.time(), 0, []
    while time.time() - start < seconds:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, 200, (time.time() - start) / seconds, 1e-3, floor=0.05)
        x = groups[torch.randint(len(groups), (batch,), device=groups.device)].float() / 127.5 - 1
        with torch.autocast("cuda", torch.bfloat16, enabled=x.is_cuda):
            z = codec.raw_encode(x)
            z = z + 0.1 * torch.randn_like(z) * z.detach().std() * (torch.rand(batch, 1, 1, 1, device=z.device) < 0.5)
            y = codec.raw_decode(z)
        loss = F.l1_loss(y.float(), x) + F.mse_loss(y.float(), x) + 1e-4 * z.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            losses.append(round(loss.item(), 5))
        if step % 500 == 0:
            logger.info("codec step %d loss %.4f", step, loss.item())
        step += 1
    codec.net.eval()
    with torch.no_grad():  # per-channel statistics of the latents: the DiT works on normalised latents
        z = torch.cat([codec.raw_encode(groups[i : i + 512].float() / 127.5 - 1) for i in range(0, min(len(groups), 8192), 512)])
        codec.latent_mean, codec.latent_std = z.mean((0, 2, 3)), z.std((0, 2, 3))
    return {"codec_steps": step, "codec_loss_curve": losses}


# --- DiT ----------------------------------------------------------------------------------------------------


def dit_batch(data: LatentStories, rng, batch: int, sampler: FlowSampler, tokens_per_frame: int, device,
              switch_share: float = 0.0, null_text: torch.Tensor | None = None, text_dropout: float = 0.0,
              figure_weight: float = 1.0, crowd_share: float = 0.0, trait_weight: float | None = None,
              copy_trait_weight: float | None = None):
    """Inputs, timesteps, text, positions and mask of one batch; the velocity target of its current chunks and
    the loss weight of each of their latent cells [B, 1, 3, h, w]: ``figure_weight`` where a character is,
    ``trait_weight`` (default: the same) where its trait is, 1 elsewhere; ``copy_trait_weight`` (if given)
    where its trait is in a sequence whose characters are all in the context (``copyable``), so that the
    weight falls on traits the context shows, not on those drawn for the first time."""
    b = sample_batch(data, rng, batch, switch_share, crowd_share)
    index = b["index"].to(device)
    x = data.latents[index.clamp(min=0)].float() * (index >= 0)[..., None, None, None]  # [B, F, C, h, w]
    x = x.transpose(1, 2)  # [B, C, F, h, w]
    clean = x[:, :, -3:]
    # the current chunk's sigma: one of the sampler's (what inference uses) or any (shifted like training)
    steps = sampler.sigmas.to(device)[torch.randint(len(sampler), (batch,), device=device)]
    anywhere = torch.rand(batch, device=device)
    shift = sampler.cfg.shift
    anywhere = shift * anywhere / (1 + (shift - 1) * anywhere)
    sigma = torch.where(torch.rand(batch, device=device) < 0.7, steps, anywhere)[:, None, None, None, None]
    noise = torch.randn_like(clean)
    # context frames are clean (t = 0) up to a little noise: inference feeds back the model's own outputs
    context = x[:, :, :-3] + 0.1 * torch.rand(batch, 1, 1, 1, 1, device=device) * torch.randn_like(x[:, :, :-3])
    x_in = torch.cat([context, (1 - sigma) * clean + sigma * noise], dim=2)
    t = torch.zeros(batch, x.shape[2], device=device)
    t[:, -3:] = sigma.flatten()[:, None] * sampler.cfg.num_train_timesteps
    mask = frame_mask_to_tokens(b["visible"].to(device), tokens_per_frame)
    text = data.text[b["text_rows"].to(device)].float()
    if text_dropout > 0:  # the empty prompt's features: what classifier-free guidance contrasts with
        dropped = torch.rand(batch, device=device) < text_dropout
        text = torch.where(dropped[:, None, None], null_text.float(), text)
    level = data.figures[index[:, -3:]][:, None]  # [B, 1, 3, h, w]
    weights = torch.tensor([1.0, figure_weight, figure_weight if trait_weight is None else trait_weight], device=device)
    weight = weights[level.long()]
    if copy_trait_weight is not None:
        copy = b["copyable"].to(device)[:, None, None, None, None] & (level == TRAIT)
        weight = torch.where(copy, torch.full_like(weight, copy_trait_weight), weight)
    return x_in, t, text, b["positions"].to(device), mask, noise - clean, weight


def own_context(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                positions: torch.Tensor, mask: torch.Tensor, share: float, max_sigma: float,
                num_train_timesteps: int) -> torch.Tensor:
    """``x`` [B, C, F, h, w] with the context frames of ``share`` of the sequences replaced by the model's own
    prediction of them from noise of sigma U(0, ``max_sigma``), one pass, no gradient. Inference feeds the
    model's own frames back as context, where a detail it was unsure of is faint; the truth never is."""
    batch = x.shape[0]
    chosen = torch.rand(batch, device=x.device) < share
    if not chosen.any():
        return x
    context, current = x[:, :, :-CHUNK_FRAMES], x[:, :, -CHUNK_FRAMES:]
    sigma = max_sigma * torch.rand(batch, 1, 1, 1, 1, device=x.device)
    noisy = (1 - sigma) * context + sigma * torch.randn_like(context)
    t_noisy = t.clone()
    t_noisy[:, :-CHUNK_FRAMES] = sigma.flatten()[:, None] * num_train_timesteps
    with torch.no_grad(), torch.autocast(x.device.type, torch.bfloat16, enabled=x.device.type == "cuda"):
        velocity = model(torch.cat([noisy, current], 2), t_noisy, text, frame_positions=positions, attn_mask=mask)
    predicted = noisy - sigma * velocity[:, :, :-CHUNK_FRAMES].float()
    return torch.cat([torch.where(chosen[:, None, None, None, None], predicted, context), current], 2)


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error with a weight per latent cell (broadcast over channels); all weights 1 give F.mse_loss."""
    weight = weight.expand_as(target)
    return ((prediction.float() - target).pow(2) * weight).sum() / weight.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/storyworld"))
    ap.add_argument("--init", default="", help="folder with codec.safetensors and/or dit shards to resume from")
    ap.add_argument("--minilm", default=".carry/storyworld/minilm")
    ap.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of this piece, everything included")
    ap.add_argument("--codec-minutes", type=float, default=2.0)
    ap.add_argument("--stories", type=int, default=6000)
    ap.add_argument("--first-seed", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--piece", type=int, default=0, help="index of this piece (logged in the model card)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--switch-share", type=float, default=0.0,
                    help="share of sequences whose current chunk opens a later scene (or follows its opening chunk)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the DiT blocks")
    ap.add_argument("--text-dropout", type=float, default=0.0,
                    help="share of sequences trained on the empty prompt (sampler.guidance_scale > 1 needs it)")
    ap.add_argument("--figure-weight", type=float, default=1.0,
                    help="loss weight of the latent cells that show a character (the rest weigh 1): traits and colours "
                         "cover a few cells of a frame")
    ap.add_argument("--trait-weight", type=float, default=None,
                    help="loss weight of the latent cells that show a character's trait (default: --figure-weight)")
    ap.add_argument("--crowd-share", type=float, default=0.0,
                    help="share of sequences (beside --switch-share) whose current chunk shows three characters")
    ap.add_argument("--copy-trait-weight", type=float, default=None,
                    help="loss weight of the trait's cells where every character of the current chunk is in its "
                         "context (the trait can be copied), instead of --trait-weight")
    ap.add_argument("--own-context", type=float, default=0.0,
                    help="share of the sequences whose context is the model's own one-pass prediction of it")
    ap.add_argument("--own-context-sigma", type=float, default=0.4,
                    help="the noise that prediction starts from: sigma U(0, this)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    deadline = time.time() + args.minutes * 60
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    config = load_config(preset=EMBEDDED_PRESET)
    out, init = Path(args.out), Path(args.init) if args.init else None
    out.mkdir(parents=True, exist_ok=True)
    log: dict = {"piece": args.piece, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                 "stories": args.stories, "first_seed": args.first_seed, "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    minilm = CompactMiniLM.load(args.minilm, config.model.text_len, device)
    videos = list(render_stories(args.first_seed, args.stories, max(1, (os.cpu_count() or 2) - 1)))
    logger.info("rendered %d stories, %d frames", len(videos), sum(len(v.video) for v in videos))

    codec = StoryworldCodec(device=device)
    if init and (init / "codec.safetensors").is_file():
        load_codec_state(codec, init / "codec.safetensors")
    else:
        as_bytes = [((codec._groups(to_video_tensor(v.video)) + 1) * 127.5).round().to(torch.uint8) for v in videos[:800]]
        groups = torch.cat(as_bytes).to(device)  # [N, 12, 64, 64] uint8
        log.update(train_codec(codec, groups, args.codec_minutes * 60))
        del groups
    save_codec(codec, out / "codec.safetensors")
    data = encode_stories(videos, codec, minilm, device)
    null_text = minilm.encode([""]).to(device)  # [1, text_len, 384]
    del videos, minilm
    logger.info("latents %s, text %s", tuple(data.latents.shape), tuple(data.text.shape))

    model = CausalWanModel(config.model).to(device)
    if init and list(init.glob("dit*.safetensors")):
        load_dit_state(model, init)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    if args.compile:
        model.compile_blocks()
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    sampler, rng = FlowSampler(config.sampler), np.random.default_rng(args.first_seed)
    step, losses, started = 0, [], time.time()
    stop = deadline - 25  # leave time to write the weights
    while time.time() < stop:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.warmup, (time.time() - started) / (stop - started), args.lr)
        x, t, text, positions, mask, target, weight = dit_batch(
            data, rng, args.batch, sampler, config.tokens_per_frame, device, args.switch_share, null_text,
            args.text_dropout, args.figure_weight, args.crowd_share, args.trait_weight, args.copy_trait_weight)
        try:
            if args.own_context > 0:
                x = own_context(model, x, t, text, positions, mask, args.own_context, args.own_context_sigma,
                                config.sampler.num_train_timesteps)
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                velocity = model(x, t, text, frame_positions=positions, attn_mask=mask)
        except Exception:  # a compiler failure costs the speed-up, not the piece
            if not (args.compile and step == 0):
                raise
            logger.exception("torch.compile failed; training eagerly")
            args.compile = False
            for block in model.blocks:
                block._compiled_call_impl = None
            continue
        loss = weighted_mse(velocity[:, :, -3:], target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - min(args.ema, (step + 1) / (step + 10)))
        if step % 100 == 0:
            losses.append(round(loss.item(), 5))
            if step % 500 == 0:
                logger.info("dit step %d loss %.4f lr %.2e (%.1f steps/s)", step, loss.item(),
                            opt.param_groups[0]["lr"], step / max(time.time() - started, 1e-6))
        step += 1
    with torch.no_grad():
        for p, e in zip(params, ema):
            p.copy_(e)
    save_dit(model, out)
    log.update({"dit_steps": step, "dit_batch": args.batch, "lr": args.lr, "switch_share": args.switch_share,
                "text_dropout": args.text_dropout, "figure_weight": args.figure_weight,
                "crowd_share": args.crowd_share, "trait_weight": args.trait_weight,
                "copy_trait_weight": args.copy_trait_weight, "own_context": args.own_context,
                "own_context_sigma": args.own_context_sigma,
                "compiled": args.compile, "dit_seconds": round(time.time() - started, 1),
                "dit_loss_every_100": losses, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    (out / f"train_log_{args.piece}.json").write_text(json.dumps(log, indent=1))
    logger.info("piece %d done: %d DiT steps, last loss %s", args.piece, step, losses[-5:])


if __name__ == "__main__":
    main()
