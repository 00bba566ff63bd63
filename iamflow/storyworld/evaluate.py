"""Does memory keep characters consistent? Generate storyworld stories and let the judge read the videos.

    python -m iamflow.storyworld.evaluate --stories 50 --seed 0

For each story (sampled from the world with the seed), each memory policy (none | sink | nam | iam) and
prompt enrichment off/on, a fresh StorySession generates the story scene by scene from its captions alone;
the judge reads the decoded RGB frames. Reported per configuration: adherence (location, and kind and colour
where the prompt states them), colour consistency (later mentions that do not restate the colour), trait
consistency (the unnamed trait; also over returns after a scene away), identity consistency, truth accuracy
(location, kind and colour against the story whether stated or not) and video frames a second on this
machine; the engine's own speed on one core in CPU time (the figure to compare across machines and loads);
and where colours and traits are lost (colour asked by crowd size, traits drawn at first appearances).
Writes JSON and a markdown table. ``--override`` changes the storyworld preset (e.g.
``sampler.guidance_scale=1``) for every row. ``--phrasing held`` captions the same stories in the held-apart
phrasing (other words and templates, none of which training captions use): how well the model follows words a
person might type rather than the world's own.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from iamflow.config import EMBEDDED_PRESET, ConfigError, MemoryConfig, load_config, parse_overrides
from iamflow.session import Runtime, StorySession, StorySettings
from iamflow.storyworld.metrics import judge_story, summarise
from iamflow.storyworld.stories import story_from_seed

logger = logging.getLogger("iamflow.storyworld.evaluate")

POLICIES = ("none", "sink", "nam", "iam")  # the rows compared by default (of MemoryConfig.POLICIES)
COLUMNS = ("adherence", "location_accuracy", "kind_asked", "colour_asked", "colour_consistency",
           "trait_consistency", "shown_trait_consistency", "returning_trait_consistency", "identity_consistency",
           "truth_accuracy")


def evaluate_config(runtime: Runtime, policy: str, enriched: bool, stories: int, seed: int, seconds: float,
                    phrasing: str = "plain") -> dict:
    """One row of the table: ``stories`` stories under one memory policy, prompt enrichment on or off, captions in
    ``phrasing`` (``stories.PHRASINGS``)."""
    judged, frames_made, seconds_spent = [], 0, 0.0
    for i in range(stories):
        story = story_from_seed(seed + i, phrasing=phrasing)
        session = StorySession(runtime, StorySettings(memory_policy=policy, enrich_prompts=enriched))
        scene_frames = []
        for j, scene in enumerate(story.scenes):
            start = time.perf_counter()
            events = list(session.add_scene(scene.prompt, seconds=seconds, seed=seed * 1000 + i * 10 + j))
            seconds_spent += time.perf_counter() - start
            frames = np.concatenate([e.frames for e in events])
            frames_made += len(frames)
            scene_frames.append(frames)
        judged.append(judge_story(scene_frames, story))
    summary = summarise(judged)
    summary["video_fps"] = frames_made / seconds_spent if seconds_spent else None
    logger.info("%s: %s", row_name(policy, enriched), {k: summary.get(k) for k in COLUMNS})
    return summary


def generation_fps_one_core(runtime: Runtime, chunks: int = 4) -> float:
    """Video frames a second of the engine and its streaming decoder on one core, in CPU time (so another job
    on the machine does not change it): a fixed prompt, ``chunks`` chunks (9 + 12 a chunk frames)."""
    text = runtime.encode("A robot painted red waves on the beach.")[0]
    uncond = runtime.encode("")[0] if runtime.config.sampler.guided_steps else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        decoder, frames = runtime.codec.stream_decoder(), 0
        start = time.thread_time()
        for latents in runtime.engine.generate(text, chunks, torch.Generator().manual_seed(0), uncond=uncond):
            frames += decoder.decode(latents).shape[2]
        seconds = time.thread_time() - start
    finally:
        torch.set_num_threads(threads)
    return frames / seconds


def row_name(policy: str, enriched: bool) -> str:
    return f"{policy}{' +enrich' if enriched else ''}"


def _worker(args: tuple) -> tuple[str, dict]:
    policy, enriched, stories, seed, seconds, overrides, phrasing = args
    if not logging.getLogger().handlers:  # a spawned worker: log its row like the parent does
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)  # one core a worker: the video fps stays a one-core figure
    runtime = Runtime.load(load_config(preset=EMBEDDED_PRESET, overrides=overrides))
    return row_name(policy, enriched), evaluate_config(runtime, policy, enriched, stories, seed, seconds, phrasing)


def evaluate(stories: int, seed: int, seconds: float, policies=POLICIES, enrich=(False, True), jobs: int = 1,
             overrides: dict | None = None, phrasing: str = "plain") -> dict:
    """Every (policy, enrichment) row; ``jobs`` rows at a time in their own processes. ``overrides``: the storyworld
    preset's settings changed for every row, {"section": {"key": value}}."""
    rows = [(policy, enriched, stories, seed, seconds, overrides or {}, phrasing)
            for policy in policies for enriched in enrich]
    if jobs <= 1:
        done = dict(_worker(row) for row in rows)
    else:
        with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
            done = dict(pool.imap_unordered(_worker, rows))
    return {row_name(p, e): done[row_name(p, e)] for p, e, *_ in rows}


def _cell(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "—"


def markdown(results: dict, stories: int, seed: int, generation_fps: float | None = None,
             phrasing: str = "plain") -> str:
    head = "| policy | " + " | ".join(COLUMNS) + " | video fps (CPU) |"
    lines = [f"Stories: {stories}, seed {seed}, captions in the {phrasing} phrasing.", ""]
    if generation_fps is not None:
        lines += [f"Generation on one core (engine and streaming decoder, CPU time): {generation_fps:.1f} video "
                  "frames/s.", ""]
    lines += [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, summary in results.items():
        fps = summary.get("video_fps")
        cells = [_cell(summary.get(c)) for c in COLUMNS] + [f"{fps:.1f}" if fps else "—"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Where colours and traits are lost: colour asked by the number of characters in the scene, and the "
              "share of first appearances drawn with a trait (the world gives three quarters of its characters one).",
              "", "| policy | colour asked, 1 figure | 2 figures | 3 figures | trait drawn at a first appearance |",
              "|---|---|---|---|---|"]
    for name, summary in results.items():
        parts = summary["breakdown"]
        cells = [_cell(v) for v in (*parts["colour_asked_by_figures"].values(), parts["trait_drawn"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each scene")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--enrich", choices=("both", "off", "on"), default="both",
                        help="rows with prompt enrichment off, on or both (the default)")
    parser.add_argument("--no-enrich", dest="enrich", action="store_const", const="off", help="same as --enrich off")
    parser.add_argument("--jobs", type=int, default=1, help="rows evaluated at once, one process (and core) each")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="storyworld preset setting for every row, e.g. sampler.guidance_scale=1 (repeatable)")
    parser.add_argument("--phrasing", choices=("plain", "held"), default="plain",
                        help="captions of the stories: the world's own (plain) or the held-apart phrasing no training "
                             "caption uses (held); the stories are the same")
    parser.add_argument("--out", default="outputs/evaluation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [p for p in policies if p not in MemoryConfig.POLICIES]
    if bad:
        parser.error(f"--policies takes {', '.join(MemoryConfig.POLICIES)} (got {', '.join(bad)})")
    enrich = {"both": (False, True), "off": (False,), "on": (True,)}[args.enrich]
    try:
        overrides = parse_overrides(args.override)
        load_config(preset=EMBEDDED_PRESET, overrides=overrides)
    except ConfigError as e:
        parser.error(f"--override: {e}")
    results = evaluate(args.stories, args.seed, args.seconds, policies, enrich, args.jobs, overrides, args.phrasing)
    generation_fps = generation_fps_one_core(Runtime.load(load_config(preset=EMBEDDED_PRESET, overrides=overrides)))
    logger.info("generation on one core: %.1f video frames/s (CPU time)", generation_fps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(
        {"stories": args.stories, "seed": args.seed, "overrides": args.override, "phrasing": args.phrasing,
         "generation_fps_one_core": generation_fps, "results": results}, indent=2))
    (out / "evaluation.md").write_text(markdown(results, args.stories, args.seed, generation_fps, args.phrasing))
    logger.info("wrote %s and %s", out / "evaluation.json", out / "evaluation.md")


if __name__ == "__main__":
    main()
