"""Pure functions from the session's plain dicts to what the panels show.

Everything a user typed (prompts, entity names, aliases, attributes) is escaped: it is shown as text, never
interpreted as markup. Scene numbers are shown from 1; the session counts from 0.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .media import upscale, write_picture

TIMELINE_HEADERS = ["Scene", "Prompt", "Seconds", "Chunks", "Characters", "Note"]
ARCHIVE_HEADERS = ["Scene", "Chunk", "Frame", "Characters", "Score", "Why kept"]


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/]+[\\/])+([^\s'\"\\/]*)")


def without_paths(text: str) -> str:
    """``text`` with every absolute file path cut to its last part (the server's folders are nobody's business)."""
    return _PATH.sub(lambda m: m.group(1) or "", text)


def popup_text(text: str) -> str:
    """A message for an error or info popup, which renders HTML: what came from users or files shows as text."""
    return html.escape(without_paths(str(text)), quote=False)


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values if str(v))


def _scene_numbers(indices: Iterable[int]) -> str:
    return ", ".join(str(int(i) + 1) for i in sorted(set(int(i) for i in indices)))


def entity_fields(record: dict) -> dict:
    """One registry record in either form the session hands out (UI snapshot or ``mapping.json``)."""
    instances = record.get("instances") or []
    aliases = record.get("aliases") or record.get("all_entities") or [i.get("entity", "") for i in instances]
    current = record.get("attrs") or record.get("current_attrs") or []
    every = record.get("all_attrs") or []
    scenes = record.get("prompts") or [i.get("prompt_index", 0) for i in instances]
    return {
        "name": str(record.get("name", "")),
        "kind": str(record.get("kind", "")),
        "aliases": [str(a) for a in aliases if a],
        "attrs": [str(a) for a in current],
        "earlier_attrs": [str(a) for a in every if a not in current],
        "scenes": [int(s) for s in scenes],
    }


def entity_names(registry: dict) -> dict[int, str]:
    """Global id -> name, for captions that mention characters by id."""
    names = {}
    for key, record in (registry or {}).items():
        try:
            names[int(key)] = str(record.get("name", key))
        except (TypeError, ValueError):
            continue
    return names


def describe_ids(ids: Iterable[int], names: dict[int, str]) -> str:
    return _join(f"{names.get(int(i), '?')} (#{int(i)})" for i in ids)


def registry_html(registry: dict) -> str:
    """The Entities panel: one row per character with id, name, aliases, attributes and the scenes it is in."""
    if not registry:
        return '<p class="iam-empty">No characters yet. Describe someone in a scene prompt ("a man in a red jacket").</p>'
    rows = []
    for key, record in sorted(registry.items(), key=lambda item: int(item[0])):
        fields = entity_fields(record)
        attrs = _text(_join(fields["attrs"])) or "&mdash;"
        if fields["earlier_attrs"]:
            attrs += f'<br><span class="iam-muted">earlier: {_text(_join(fields["earlier_attrs"]))}</span>'
        rows.append(
            f'<tr data-entity-id="{_text(key)}">'
            f'<td class="iam-id">#{_text(key)}</td>'
            f'<td><b class="iam-name">{_text(fields["name"])}</b><br><span class="iam-muted">{_text(fields["kind"])}</span></td>'
            f"<td>{_text(_join(fields['aliases'])) or '&mdash;'}</td>"
            f"<td>{attrs}</td>"
            f"<td>{_text(_scene_numbers(fields['scenes'])) or '&mdash;'}</td>"
            "</tr>"
        )
    return (
        '<table class="iam-table"><thead><tr><th>ID</th><th>Name</th><th>Also called</th>'
        "<th>Attributes</th><th>Scenes</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def scene_entities_text(scene_entities: list[dict]) -> str:
    """One line under the live player: who this scene is about, and who is new."""
    if not scene_entities:
        return "No characters recognised in this scene."
    parts = []
    for e in scene_entities:
        surface = f' ("{e["surface"]}")' if e.get("surface") else ""
        parts.append(f'{e.get("name", "?")} #{e.get("global_id", "?")}{surface}{" — new" if e.get("is_new") else ""}')
    return "In this scene: " + "; ".join(parts)


def memory_caption(frame: dict, names: dict[int, str]) -> str:
    where = f'Scene {int(frame.get("scene", 0)) + 1} · chunk {int(frame.get("chunk", 0)) + 1} · frame {int(frame.get("frame", 0))}'
    who = describe_ids(frame.get("entity_ids") or [], names) or "no character"
    score = frame.get("score")
    score_text = f" · score {float(score):.2f}" if score is not None else ""
    reason = f' · {frame["reason"]}' if frame.get("reason") else ""
    return f"{where} · {who}{score_text}{reason}"


def memory_gallery(frames: list[dict], registry: dict, folder: str | Path) -> list[tuple[str, str]]:
    """Active memory frames as (picture file, caption) pairs; thumbnails are scaled up so they can be seen, and
    written once each into ``folder`` (``media.write_picture``)."""
    names = entity_names(registry)
    items = []
    for frame in frames or []:
        thumb = frame.get("thumbnail")
        if thumb is None:
            continue
        thumb = np.asarray(thumb, dtype=np.uint8)
        scale = max(1, 128 // max(thumb.shape[0], thumb.shape[1]))
        items.append((str(write_picture(upscale(thumb, scale), folder)), memory_caption(frame, names)))
    return items


def archive_rows(frames: list[dict], registry: dict) -> list[list]:
    names = entity_names(registry)
    rows = []
    for f in frames or []:
        score = f.get("score")
        rows.append([
            int(f.get("scene", 0)) + 1, int(f.get("chunk", 0)) + 1, int(f.get("frame", 0)),
            describe_ids(f.get("entity_ids") or [], names), "" if score is None else round(float(score), 3),
            str(f.get("reason", "")),
        ])  # fmt: skip
    return rows


def timeline_rows(scenes: list[dict], registry: dict) -> list[list]:
    """The story's scenes in order: prompt, length, how much was made, who is in it."""
    names = entity_names(registry)
    rows = []
    for s in scenes:
        note = "stopped early" if s.get("stopped") else scene_note(s)
        rows.append([
            int(s["index"]) + 1, str(s["prompt"]), round(float(s.get("seconds", 0.0)), 2),
            f'{int(s.get("chunks_done", 0))}/{int(s.get("num_chunks", 0))}',
            _join(names.get(int(i), f"#{i}") for i in s.get("entity_ids") or []), note,
        ])  # fmt: skip
    return rows


def scene_note(scene: dict) -> str:
    """How a scene that was not stopped ended, when that is not "at its length"."""
    if scene.get("live"):
        return "live, until the next prompt" if scene.get("switched") else "live, ran to its cap"
    return "switched early to the next prompt" if scene.get("switched") else ""


def scene_captions(scenes: list[dict], fps: float) -> list[tuple[float, float, str]]:
    """(start_s, end_s, prompt) for each scene, placed by its frame count on the story's timeline."""
    captions, start = [], 0.0
    for s in scenes:
        end = start + int(s.get("num_frames", 0)) / float(fps)
        captions.append((start, end, f'Scene {int(s["index"]) + 1}: {s["prompt"]}'))
        start = end
    return captions


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def progress_text(scene_index: int, chunk_index: int, num_chunks: int, elapsed_s: float, eta_s: float | None,
                  done: bool = False) -> str:
    """ "Scene 2 · chunk 3 of 5 · 4 s elapsed · about 6 s left" """
    head = f"Scene {scene_index + 1} · chunk {chunk_index + 1} of {num_chunks} · {_clock(elapsed_s)} elapsed"
    if done:
        return f"{head} · done"
    if eta_s is None:
        return head
    return f"{head} · about {_clock(eta_s)} left"


LIVE_PLACEHOLDER = '<div class="iam-live iam-live-empty">The scene shows here as it is generated.</div>'


def live_view_html(path: str | None) -> str:
    """The live view: an ``<img>`` playing the story's Motion-JPEG stream at ``path`` (a server path; written
    relative to the page, so a server behind a path prefix works too), or the placeholder when there is none."""
    if not path:
        return LIVE_PLACEHOLDER
    return (f'<div class="iam-live"><img src="{_text(path.lstrip("/"))}" alt="The scene as it is generated" '
            'decoding="async"></div>')


def live_progress_text(scene_index: int, chunk_index: int, elapsed_s: float, cap_s: float,
                       switching_to: int | None = None) -> str:
    """ "Scene 2 · live · chunk 3 · 4 s elapsed · until the next prompt (at most 60 s)" """
    head = f"Scene {scene_index + 1} · live · chunk {chunk_index + 1} · {_clock(elapsed_s)} elapsed"
    if switching_to is not None:
        return f"{head} · switching to scene {switching_to + 1} at the next chunk"
    return f"{head} · until the next prompt (at most {cap_s:g} s)"


def waiting_text(ahead: int, device: str) -> str:
    """ "In the queue of cuda:1: 2 jobs of other stories ahead" (a story waits for the device it lives on)"""
    where = f" of {device}" if device else ""
    return f"In the queue{where}: {ahead} job{'' if ahead == 1 else 's'} of other stories ahead"


def server_status(preset: str, devices: list[str], loaded: list[bool], errors: list[str | None]) -> str:
    """The line under the title: the model, and per device whether it is ready (one device: as it always read)."""
    failed = [error for error in errors if error]
    if failed and len(failed) == len(errors):
        return f"⚠ {failed[0]}" if len(failed) == 1 else "⚠ " + " ".join(failed)
    if len(devices) == 1:
        return f"Model: {preset} ({'ready' if loaded[0] else 'loading…'}). Type the first scene and press Add scene."
    states = ", ".join(f"{device} {'failed' if error else 'ready' if ready else 'loading…'}"
                       for device, ready, error in zip(devices, loaded, errors))
    serving = len(devices) - len(failed)
    text = (f"Model: {preset} on {len(devices)} devices ({states}); {serving} "
            f"{'story is' if serving == 1 else 'stories are'} generated at once. Type the first scene and press Add scene.")
    return text if not failed else f"{text} ⚠ {' '.join(failed)}"


def switching_text(scene_index: int) -> str:
    return f"Switching to scene {scene_index + 1} at the next chunk…"


def story_summary(scenes: list[dict], fps: float) -> str:
    frames = sum(int(s.get("num_frames", 0)) for s in scenes)
    if not scenes:
        return "Empty story. Type the first scene and press Add scene."
    plural = "s" if len(scenes) != 1 else ""
    return f"{len(scenes)} scene{plural} · {frames / float(fps):.1f} s of video"


def mapping_text(mapping: dict) -> str:
    return json.dumps(mapping, indent=2, ensure_ascii=False, default=str)
