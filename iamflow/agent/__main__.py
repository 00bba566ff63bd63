"""Batch entity analysis: ``python -m iamflow.agent PROMPTS.jsonl --out DIR [--backend rules|llm]``.

Reads the original tool's formats: ``.jsonl`` with one story per line (``{"prompts": [...]}``), or ``.txt``
with one single-prompt story per line. Writes ``DIR/mapping_{line}.json`` per story (line numbers from 0,
as the original tool names them). The whole file is checked before anything is written, so a malformed line
stops the run with its line number and nothing is written half.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from iamflow.config import RULES_BACKEND
from iamflow.files import write_atomic

from .agent import BACKENDS, EntityAgent

logger = logging.getLogger("iamflow.agent")


def read_stories(path: Path) -> list[tuple[int, list[str]]]:
    """(line number from 0, prompts) per story; ``ValueError`` names the first bad line and what is wrong."""
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file: give the .jsonl or .txt file of prompts")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ValueError(f"{path.name} line {line}: not UTF-8 text; give a .jsonl or .txt file of prompts") from None
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror})") from None
    stories: list[tuple[int, list[str]]] = []
    lines = text.splitlines()
    as_text = path.suffix.lower() == ".txt"
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path.name} line {number + 1}"
        if as_text:
            stories.append((number, [line.strip()]))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(record, dict) or "prompts" not in record:
            raise ValueError(f'{where}: expected an object like {{"prompts": ["scene 1", "scene 2"]}}')
        prompts = record["prompts"]
        if not isinstance(prompts, list) or not prompts:
            raise ValueError(f"{where}: 'prompts' must be a non-empty list of strings")
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"{where}: prompts[{i}] must be a non-empty string")
        stories.append((number, prompts))
    if not stories:
        raise ValueError(f"{path} has no stories: write one {{\"prompts\": [...]}} object per line")
    return stories


def run(input_path: Path, out_dir: Path, backend: str = RULES_BACKEND, llm_model_path: str | None = None) -> list[Path]:
    stories = read_stories(input_path)
    results = []
    for number, prompts in stories:
        agent = EntityAgent(backend=backend, llm_model_path=llm_model_path)
        for prompt in prompts:
            agent.observe(prompt)
        results.append((number, agent.to_mapping()))
    written = []
    for number, mapping in results:  # all stories analysed before the first file is written
        target = out_dir / f"mapping_{number}.json"
        write_atomic(target, json.dumps(mapping, indent=2, ensure_ascii=False))
        written.append(target)
        logger.info("wrote %s (%d characters)", target, len(mapping["global_registry"]))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iamflow.agent", description=__doc__.split("\n")[0])
    parser.add_argument("prompts", type=Path, help=".jsonl ({\"prompts\": [...]} per line) or .txt (one per line)")
    parser.add_argument("--out", type=Path, required=True, help="directory for mapping_{line}.json")
    parser.add_argument("--backend", choices=BACKENDS, default=RULES_BACKEND)
    parser.add_argument("--llm_model_path", default=None,
                        help="transformers model directory or .gguf file (default: bundled SmolLM2-135M)")
    parser.add_argument("--log_level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder for the mapping files")
        run(args.prompts, args.out, args.backend, args.llm_model_path)
    except ValueError as error:
        logger.error("%s", error)
        return 2
    except OSError as error:  # e.g. --out under a file, or a read-only folder
        logger.error("cannot write the mapping files to --out %s (%s)", args.out, error.strerror or error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
