"""Does a cut show the new place at once, and do characters keep their look across it? ``cut`` against ``recache``.

    python -m iamflow.storyworld.cuts --stories 6 --seed 0

Each storyworld story is generated once per transition (a fresh ``StorySession`` with the ``iam`` memory, the
transition forced for every switch). Reported per transition: the location accuracy of the first chunk of every
later scene (``first_chunk_location``) and of the later scenes whose place changed (``new_place_first_chunk``),
the location accuracy over whole scenes, and the story judge's trait, colour and identity consistency.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from iamflow.config import EMBEDDED_PRESET, MemoryConfig, load_config
from iamflow.session import Runtime, StorySession, StorySettings
from iamflow.storyworld.metrics import judge_scene, judge_story, summarise
from iamflow.storyworld.stories import story_from_seed

logger = logging.getLogger("iamflow.storyworld.cuts")

COLUMNS = ("first_chunk_location", "new_place_first_chunk", "location_accuracy", "trait_consistency",
           "returning_trait_consistency", "colour_consistency", "identity_consistency")


def evaluate_transition(runtime: Runtime, transition: str, stories: int, seed: int, seconds: float,
                        policy: str = MemoryConfig.policy) -> dict:
    first_hits, new_place_hits, judged = [], [], []
    for i in range(stories):
        story = story_from_seed(seed + i)
        session = StorySession(runtime, StorySettings(memory_policy=policy, transition=transition))
        scene_frames = []
        for j, scene in enumerate(story.scenes):
            events = list(session.add_scene(scene.prompt, seconds=seconds, seed=seed * 1000 + i * 10 + j))
            scene_frames.append(np.concatenate([e.frames for e in events]))
            if j > 0:
                correct = judge_scene(events[0].frames, (story, j))["location_correct"]
                first_hits.append(correct)
                if scene.location != story.scenes[j - 1].location:
                    new_place_hits.append(correct)
        judged.append(judge_story(scene_frames, story))
        logger.info("%s: story %d of %d judged (first chunks so far: %d of %d at the right place)", transition,
                    i + 1, stories, sum(first_hits), len(first_hits))
    summary = summarise(judged)
    summary["first_chunk_location"] = float(np.mean(first_hits)) if first_hits else None
    summary["new_place_first_chunk"] = float(np.mean(new_place_hits)) if new_place_hits else None
    summary["switched_scenes"] = [len(first_hits), len(new_place_hits)]
    logger.info("%s: %s", transition, {k: summary.get(k) for k in COLUMNS})
    return summary


def markdown(results: dict, stories: int, seed: int) -> str:
    lines = [f"Stories: {stories}, seed {seed}.", "", "| transition | " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * (len(COLUMNS) + 1)]
    for name, summary in results.items():
        cells = [f"{summary[c]:.3f}" if summary.get(c) is not None else "—" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each scene")
    parser.add_argument("--transitions", default="recache,cut")
    parser.add_argument("--policy", default=MemoryConfig.policy, choices=MemoryConfig.POLICIES)
    parser.add_argument("--out", default="outputs/cuts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runtime = Runtime.load(load_config(preset=EMBEDDED_PRESET))
    results = {t: evaluate_transition(runtime, t, args.stories, args.seed, args.seconds, args.policy)
               for t in args.transitions.split(",")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cuts.json").write_text(json.dumps({"stories": args.stories, "seed": args.seed, "results": results},
                                              indent=2, default=str))
    (out / "cuts.md").write_text(markdown(results, args.stories, args.seed))
    print(markdown(results, args.stories, args.seed))


if __name__ == "__main__":
    main()
