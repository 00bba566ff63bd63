"""Scorer of the entity agent on the labelled scripts in ``tests/data/agent``.

Mention recall: share of labelled (prompt, character) mentions that the agent reports, i.e. some character
it lists in that prompt has a mention overlapping the labelled anchor. Mention precision: share of reported
(prompt, character) entries that match a labelled one. Identity F1: over all pairs of labelled mentions in
*different* prompts of a script, a pair is positive when both are the same labelled character; the agent
predicts positive when both mentions were recalled with the same global id.

    python -m iamflow.agent.evaluate [--data DIR] [--backend rules|llm] [--split all|dev|heldout] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from iamflow.config import AGENT_BACKENDS, LLM_BACKEND, RULES_BACKEND

from .agent import EntityAgent

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "agent"


@dataclass
class Script:
    id: str
    cases: list[str]
    prompts: list[str]
    labels: list[dict[str, tuple[int, int]]]  # per prompt: label -> anchor span
    heldout: bool = False
    source: str = ""


def find_anchor(text: str, anchor: str) -> tuple[int, int]:
    """Span of ``anchor`` in ``text`` as a whole word; ``word#2`` is the second occurrence."""
    occurrence = 1
    if "#" in anchor:
        anchor, number = anchor.rsplit("#", 1)
        occurrence = int(number)
    for flags in (0, re.IGNORECASE):
        hits = list(re.finditer(rf"(?<![\w-]){re.escape(anchor)}(?![\w-])", text, flags))
        if len(hits) >= occurrence:
            hit = hits[occurrence - 1]
            return hit.start(), hit.end()
    raise ValueError(f"anchor {anchor!r} (occurrence {occurrence}) not found in prompt: {text[:80]!r}...")


def load_scripts(data_dir: Path = DEFAULT_DATA) -> list[Script]:
    scripts = []
    for path in sorted(Path(data_dir).glob("scripts_*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or []:
            prompts, labels = [], []
            for p in entry["prompts"]:
                text = " ".join(p["text"].split())
                prompts.append(text)
                labels.append({label: find_anchor(text, anchor) for label, anchor in (p.get("chars") or {}).items()})
            cases = list(entry.get("cases", []))
            scripts.append(Script(entry["id"], cases, prompts, labels, heldout="heldout" in cases, source=path.name))
    ids = [s.id for s in scripts]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate script ids: {sorted(duplicates)}")
    return scripts


@dataclass
class Counts:
    gold_mentions: int = 0
    recalled: int = 0
    predicted: int = 0
    predicted_matched: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    scripts: int = 0

    def add(self, other: "Counts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def recall(self) -> float:
        return self.recalled / self.gold_mentions if self.gold_mentions else 1.0

    @property
    def precision(self) -> float:
        return self.predicted_matched / self.predicted if self.predicted else 1.0

    @property
    def identity_precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def identity_recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def identity_f1(self) -> float:
        p, r = self.identity_precision, self.identity_recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class ScriptResult:
    script: Script
    counts: Counts
    predicted: list[list[dict]] = field(default_factory=list)  # per prompt: label -> predicted id (or None)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fallbacks: int = 0
    cpu_ms: list[float] = field(default_factory=list)  # CPU time of the process: less swayed by other jobs


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_script(script: Script, agent: EntityAgent) -> ScriptResult:
    counts = Counts(scripts=1)
    aligned: list[dict[str, int | None]] = []
    latencies, cpu = [], []
    errors = []
    for text, labels in zip(script.prompts, script.labels):
        start, start_cpu = time.perf_counter(), time.process_time()
        scene = agent.observe(text)
        latencies.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
        entities = scene.entities
        label_to_id: dict[str, int | None] = {}
        matched_entities: set[int] = set()
        # anchors shared by several labels ("they") are matched after the unambiguous ones
        ordered = sorted(labels.items(), key=lambda kv: sum(1 for v in labels.values() if v == kv[1]))
        for label, span in ordered:
            options = [e for e in entities if any(_overlaps(span, s) for s in e.spans)
                       and e.global_id not in matched_entities]
            if len(options) > 1:
                history = [a.get(label) for a in aligned if a.get(label) is not None]
                preferred = [e for e in options if e.global_id in history]
                options = preferred or options
            if options:
                label_to_id[label] = options[0].global_id
                matched_entities.add(options[0].global_id)
            else:
                label_to_id[label] = None
                errors.append(f"prompt {len(aligned)}: missed {label} ({text[span[0]:span[1]]!r})")
        for e in entities:
            if e.global_id not in matched_entities:
                errors.append(f"prompt {len(aligned)}: extra {e.name} ({e.surface!r})")
        counts.gold_mentions += len(labels)
        counts.recalled += sum(1 for v in label_to_id.values() if v is not None)
        counts.predicted += len(entities)
        counts.predicted_matched += len(matched_entities)
        aligned.append(label_to_id)
    gold = [(i, label, pid) for i, a in enumerate(aligned) for label, pid in a.items()]
    for x in range(len(gold)):
        for y in range(x + 1, len(gold)):
            (pi, li, idi), (pj, lj, idj) = gold[x], gold[y]
            if pi == pj:
                continue
            same_gold = li == lj
            same_pred = idi is not None and idi == idj
            if same_gold and same_pred:
                counts.tp += 1
            elif same_gold:
                counts.fn += 1
                errors.append(f"split {li}: prompt {pi} -> {idi}, prompt {pj} -> {idj}")
            elif same_pred:
                counts.fp += 1
                errors.append(f"merged {li} (prompt {pi}) and {lj} (prompt {pj}) as id {idi}")
    return ScriptResult(script, counts, aligned, latencies, errors, agent.fallbacks, cpu_ms=cpu)


def evaluate(scripts: list[Script], backend: str = RULES_BACKEND, **agent_kwargs) -> list[ScriptResult]:
    return [score_script(s, EntityAgent(backend=backend, **agent_kwargs)) for s in scripts]


def summary_table(results: list[ScriptResult]) -> str:
    """Markdown table: overall, per case type, and dev/held-out."""
    rows: list[tuple[str, Counts]] = []
    total = Counts()
    for r in results:
        total.add(r.counts)
    rows.append(("**all**", total))
    for split, flag in (("dev", False), ("heldout", True)):
        part = Counts()
        for r in results:
            if r.script.heldout == flag:
                part.add(r.counts)
        if part.scripts:
            rows.append((f"split: {split}", part))
    cases = sorted({c for r in results for c in r.script.cases if c != "heldout"})
    for case in cases:
        part = Counts()
        for r in results:
            if case in r.script.cases:
                part.add(r.counts)
        rows.append((case, part))
    lines = ["| subset | scripts | mentions | mention recall | mention precision | identity P | identity R "
             "| identity F1 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in rows:
        lines.append(f"| {name} | {c.scripts} | {c.gold_mentions} | {c.recall:.3f} | {c.precision:.3f} | "
                     f"{c.identity_precision:.3f} | {c.identity_recall:.3f} | {c.identity_f1:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iamflow.agent.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of scripts_*.yaml")
    parser.add_argument("--backend", choices=AGENT_BACKENDS, default=RULES_BACKEND)
    parser.add_argument("--llm_model_path", default=None)
    parser.add_argument("--split", choices=("all", "dev", "heldout"), default="all")
    parser.add_argument("--ids", default="", help="comma-separated script ids to score (default: all)")
    parser.add_argument("--errors", action="store_true", help="list every miss, split and wrong merge")
    parser.add_argument("--json", type=Path, default=None, help="write per-script results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scripts = load_scripts(args.data)
    if args.split != "all":
        scripts = [s for s in scripts if s.heldout == (args.split == "heldout")]
    if args.ids:
        wanted = set(args.ids.split(","))
        scripts = [s for s in scripts if s.id in wanted]
    kwargs = {"llm_model_path": args.llm_model_path} if args.backend == LLM_BACKEND else {}
    EntityAgent(backend=RULES_BACKEND).observe("A man walks.")  # load models before timing
    results = evaluate(scripts, backend=args.backend, **kwargs)
    latencies = [x for r in results for x in r.latencies_ms]
    out = sys.stdout
    out.write(summary_table(results) + "\n\n")
    ordered = sorted(latencies)
    if args.backend == LLM_BACKEND:
        fallbacks = sum(r.fallbacks for r in results)
        out.write(f"LLM answers rejected (rules used instead): {fallbacks} of {len(latencies)} prompts\n")
    out.write(f"prompts: {len(latencies)}; latency per prompt (ms): median {statistics.median(latencies):.1f}, "
              f"p90 {ordered[int(0.9 * (len(ordered) - 1))]:.1f}, max {max(latencies):.1f}; CPU time per prompt "
              f"(ms): median {statistics.median(x for r in results for x in r.cpu_ms):.1f}\n")
    if args.errors:
        for r in results:
            if r.errors:
                out.write(f"\n## {r.script.id}\n" + "\n".join(r.errors) + "\n")
    if args.json:
        args.json.write_text(json.dumps([{"id": r.script.id, "cases": r.script.cases,
                                          "predicted": r.predicted, "errors": r.errors,
                                          "latencies_ms": r.latencies_ms} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
