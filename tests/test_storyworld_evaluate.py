"""The consistency evaluation command runs the real shipped model end to end and writes its table."""

import json
import subprocess
import sys

from iamflow.storyworld.metrics import stated
from iamflow.storyworld.stories import story_from_seed


def evaluate(tmp_path, *options: str):
    """One story of seed 3, 1.5 s a scene, two guided steps, prompts as written: the command's output folder."""
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "iamflow.storyworld.evaluate", "--stories", "1", "--seed", "3", "--seconds", "1.5",
           "--no-enrich", "--override", "sampler.guidance_steps=2", *options, "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return out


def test_evaluate_command_writes_json_and_markdown(tmp_path):
    out = evaluate(tmp_path, "--policies", "none,iam", "--jobs", "2")
    story_scenes = story_from_seed(3).scenes
    report = json.loads((out / "evaluation.json").read_text())
    assert report["stories"] == 1 and list(report["results"]) == ["none", "iam"]
    assert report["overrides"] == ["sampler.guidance_steps=2"]
    assert report["generation_fps_one_core"] > 0  # reported, not judged: the machine may be busy
    for row in report["results"].values():
        assert 0.0 <= row["adherence"] <= 1.0 and 0.0 <= row["location_accuracy"] <= 1.0
        assert row["video_fps"] > 0
        assert row["tallies"]["location"][1] == len(story_scenes) and row["stories"] == 1
    table = (out / "evaluation.md").read_text()
    assert "Generation on one core" in table and "| none |" in table and "| iam |" in table and "trait drawn at a first appearance" in table
    for row in report["results"].values():
        assert set(row["breakdown"]["colour_asked_by_figures"]) == {"1", "2", "3"}
        assert row["breakdown"]["trait_drawn"] is None or 0.0 <= row["breakdown"]["trait_drawn"] <= 1.0


def test_evaluate_command_refuses_an_unknown_policy(tmp_path):
    cmd = [sys.executable, "-m", "iamflow.storyworld.evaluate", "--policies", "iam,everything", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "everything" in done.stderr and "none, sink, nam, iam" in done.stderr
    assert not (tmp_path / "evaluation.json").exists()


def test_evaluate_command_refuses_an_unknown_enrich_choice(tmp_path):
    cmd = [sys.executable, "-m", "iamflow.storyworld.evaluate", "--enrich", "sometimes", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--enrich" in done.stderr and "sometimes" in done.stderr
    assert not (tmp_path / "evaluation.json").exists()


def test_evaluate_command_refuses_a_bad_override(tmp_path):
    cmd = [sys.executable, "-m", "iamflow.storyworld.evaluate", "--override", "sampler.guidance_scale=0.5",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "guidance_scale" in done.stderr
    assert not (tmp_path / "evaluation.json").exists()


def test_evaluate_command_captions_the_stories_in_the_held_apart_phrasing(tmp_path):
    out = evaluate(tmp_path, "--policies", "iam", "--phrasing", "held")
    report = json.loads((out / "evaluation.json").read_text())
    assert report["phrasing"] == "held" and list(report["results"]) == ["iam"]
    row = report["results"]["iam"]
    held = story_from_seed(3, phrasing="held")
    assert row["tallies"]["location"][1] == len(held.scenes) and 0.0 <= row["adherence"] <= 1.0
    asked = sum(stated(scene, c, held.character(c).kind)[1] for scene in held.scenes for c in scene.char_ids)
    assert row["tallies"]["colour_asked"][1] == asked
    assert "held phrasing" in (out / "evaluation.md").read_text()


def test_evaluate_command_refuses_an_unknown_phrasing(tmp_path):
    cmd = [sys.executable, "-m", "iamflow.storyworld.evaluate", "--phrasing", "casual", "--out", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--phrasing" in result.stderr
