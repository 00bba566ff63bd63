"""Copy probe: does the model take a character's unnamed trait from its context?

    python -m iamflow.storyworld.probe --cases 40

Trait consistency over whole stories mixes two things: whether the model copies what its context shows, and
how far its own earlier frames drifted from the truth. The probe measures the first alone. For stories whose
second scene shows one character of the first, it renders the first scene (two chunks) once with the
character's own trait and once with another, encodes it, lays it into a fresh cache the way a scene switch does
(sink = first chunk, window = second chunk, both re-cached under the second scene's prompt), denoises the second
scene's first chunk with the preset's sampler and lets the judge read the trait drawn. ``copy_rate`` is the
share of cases drawing the context's trait (chance is one in four); ``context_read_rate`` the share of contexts
whose decoded frames the judge reads with the trait they were rendered with (the probe's own check).

``--context model`` (``self_probe``) asks the question of whole stories instead: the model draws the first scene
itself (two chunks, from its prompt), and the trait the judge reads there is the one the switch should keep.
It reports how often a first appearance is drawn with a trait at all (``drawn_rate``; the world gives one to
three quarters of its characters), how often the switch keeps the trait read (``kept_rate``, "plain" included)
and how often it keeps a trait that was drawn (``shown_kept_rate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Iterator

import torch

from iamflow.config import EMBEDDED_PRESET, load_config
from iamflow.engine.codec import to_uint8
from iamflow.session import Runtime
from iamflow.storyworld.data import CHUNK_FRAMES, to_video_tensor, video_frames
from iamflow.storyworld.metrics import judge_scene
from iamflow.storyworld.stories import story_from_seed
from iamflow.storyworld.world import Story, World, render_scene

logger = logging.getLogger("iamflow.storyworld.probe")


def carried_over(story: Story) -> str | None:
    """The character of a story's second scene if it shows exactly one, who was in the first; else None."""
    if len(story.scenes) < 2 or len(story.scenes[1].characters) != 1:
        return None
    char_id = story.scenes[1].char_ids[0]
    return char_id if char_id in story.scenes[0].char_ids else None


def probe_stories(first_seed: int) -> Iterator[tuple[int, Story, str]]:
    """(seed, story, carried-over character) for the seeds after ``first_seed`` whose story has one."""
    seed = first_seed
    while True:
        seed += 1
        story = story_from_seed(seed)
        char_id = carried_over(story)
        if char_id is not None:
            yield seed, story, char_id


def with_trait(story: Story, char_id: str, trait: str) -> Story:
    cast = [dataclasses.replace(c, trait=trait) if c.char_id == char_id else c for c in story.characters]
    return dataclasses.replace(story, characters=cast)


@torch.no_grad()
def copy_probe(runtime: Runtime, cases: int, first_seed: int = 50_000) -> dict:
    """``cases`` probes (half with the character's own trait, half with another); see the module docstring."""
    engine, codec, encoder = runtime.engine, runtime.codec, runtime.text_encoder
    uncond = engine.encode_text(encoder.encode([""])) if engine.sampler.cfg.guided_steps else None
    context_frames = video_frames(2 * CHUNK_FRAMES)  # two chunks of the first scene
    copied = context_read = done = 0
    drawn: dict[str, int] = {}
    for seed, story, char_id in probe_stories(first_seed):
        if done >= cases:
            break
        own = story.character(char_id).trait
        other = [t for t in World.TRAITS if t != own][seed % (len(World.TRAITS) - 1)]
        for trait in (own, other)[: cases - done]:
            shown = with_trait(story, char_id, trait)
            video = render_scene(shown, 0, context_frames)
            latents = codec.encode(to_video_tensor(video)).to(engine.device)  # [1, C, 6, h, w]
            context = judge_scene(to_uint8(codec.decode(latents)), (shown, 0))["per_character"][char_id]
            context_read += context["trait"] == trait
            text = engine.encode_text(encoder.encode([shown.scenes[1].prompt]))
            cache = engine.new_cache()
            engine.recache(cache, text, latents[:, :, CHUNK_FRAMES:], CHUNK_FRAMES, sink=latents[:, :, :CHUNK_FRAMES])
            x0 = engine.denoise_chunk(cache, text, 2 * CHUNK_FRAMES, torch.Generator().manual_seed(seed), uncond=uncond)
            seen = judge_scene(to_uint8(codec.decode(x0)), (shown, 1))["per_character"][char_id]
            copied += seen["found"] and seen["trait"] == trait
            drawn[str(seen["trait"])] = drawn.get(str(seen["trait"]), 0) + 1
            done += 1
    return {"cases": done, "copied": copied, "copy_rate": copied / done, "context_read_rate": context_read / done,
            "traits_drawn": drawn, "first_seed": first_seed}


@torch.no_grad()
def self_probe(runtime: Runtime, cases: int, first_seed: int = 50_000) -> dict:
    """``cases`` scene switches whose context is the model's own first scene; see the module docstring."""
    engine, codec, encoder = runtime.engine, runtime.codec, runtime.text_encoder
    uncond = engine.encode_text(encoder.encode([""])) if engine.sampler.cfg.guided_steps else None
    first_traits: dict[str, int] = {}
    kept = shown = shown_kept = done = 0
    for seed, story, char_id in probe_stories(first_seed):
        if done >= cases:
            break
        first_text, second_text = (engine.encode_text(encoder.encode([scene.prompt])) for scene in story.scenes[:2])
        generator = torch.Generator(device=engine.device).manual_seed(seed)
        cache = engine.new_cache()
        latents = torch.cat(list(engine.generate(first_text, 2, generator, cache=cache, uncond=uncond)), 2)
        first = judge_scene(to_uint8(codec.decode(latents)), (story, 0))["per_character"][char_id]
        trait = first["trait"] if first["found"] else story.character(char_id).trait
        first_traits[str(first["trait"])] = first_traits.get(str(first["trait"]), 0) + 1
        engine.recache(cache, second_text, latents[:, :, CHUNK_FRAMES:], CHUNK_FRAMES,
                       sink=latents[:, :, :CHUNK_FRAMES])
        x0 = engine.denoise_chunk(cache, second_text, 2 * CHUNK_FRAMES, generator, uncond=uncond)
        seen = judge_scene(to_uint8(codec.decode(x0)), (story, 1))["per_character"][char_id]
        same = bool(seen["found"] and seen["trait"] == trait)
        kept += same
        shown += trait != "plain"
        shown_kept += same and trait != "plain"
        done += 1
    found = done - first_traits.get("None", 0)  # first appearances the judge found
    drawn = found - first_traits.get("plain", 0)
    return {"cases": done, "first_traits": first_traits, "drawn_rate": drawn / found if found else None,
            "kept": kept, "kept_rate": kept / done, "shown": shown, "shown_kept": shown_kept,
            "shown_kept_rate": shown_kept / shown if shown else None, "first_seed": first_seed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--first-seed", type=int, default=50_000, help="stories are drawn from the seeds after this one")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="storyworld preset setting, e.g. sampler.guidance_scale=1 (repeatable)")
    ap.add_argument("--context", choices=("rendered", "model"), default="rendered",
                    help="the first scene: rendered by the world (copy_probe) or drawn by the model (self_probe)")
    ap.add_argument("--out", default="", help="also write the result as JSON here")
    args = ap.parse_args()
    if args.cases < 1:
        ap.error(f"--cases must be at least 1 (got {args.cases})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    runtime = Runtime.load(load_config(preset=EMBEDDED_PRESET, overrides=args.override))
    probe = copy_probe if args.context == "rendered" else self_probe
    result = {**probe(runtime, args.cases, args.first_seed), "context": args.context, "overrides": args.override}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
