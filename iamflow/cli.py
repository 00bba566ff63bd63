"""The original tool's two batch modes, as thin shells over StorySession.

* single (``agent_inference.py``): a .txt file, one prompt a line, one video a line;
* interactive (``agent_interactive_inference.py``): a .jsonl file, ``{"prompts": [...]}`` a line, the prompts
  switching at ``switch_frame_indices`` (latent frames), one video and one ``mapping_{line}.json`` a line.

The YAML keeps the original keys (``data_path``, ``output_folder``, ``num_output_frames``,
``switch_frame_indices``, ``model_name``, ``generator_ckpt``, ``lora_ckpt``, ``adapter``, ``llm_model_path``,
``max_memory_frames``, ``save_dir``). ``preset`` chooses the model: ``auto`` (the default) runs Wan2.1 when a
generator checkpoint is configured and the embedded storyworld model otherwise. Run with ``python`` (one
process) or ``torchrun --nproc_per_node=N`` (lines split across processes; gloo on CPU, nccl on GPU).
Everything is checked before anything is generated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iamflow.config import (EMBEDDED_PRESET, LLM_BACKEND, TINY_PRESET, WAN_PRESET, AgentConfig, CacheConfig,
                            ConfigError, MemoryConfig, load_config, merge_overrides, parse_overrides)
from iamflow.runtime import check_weights

logger = logging.getLogger("iamflow.cli")


AUTO_PRESET = "auto"  # Wan2.1 when a generator checkpoint is configured, else the embedded model


@dataclass
class Adapter:
    type: str = "lora"
    rank: int = 256
    alpha: int = 256


@dataclass
class BatchConfig:
    data_path: str = ""
    output_folder: str = "outputs"
    num_output_frames: int = 120  # latent frames per video
    switch_frame_indices: list[int] = field(default_factory=list)
    preset: str = AUTO_PRESET
    model_name: str = "Wan2.1-T2V-1.3B"
    wan_model_path: str = ""  # folder of the Wan2.1 release: text encoder, tokenizer, VAE (and DiT)
    generator_ckpt: str = ""
    lora_ckpt: str = ""
    adapter: Adapter = field(default_factory=Adapter)
    llm_model_path: str = ""
    agent_backend: str = AgentConfig.backend
    max_memory_frames: int = CacheConfig.max_memory_frames
    memory_policy: str = MemoryConfig.policy
    transition: str = MemoryConfig.transition
    enrich_prompts: bool = AgentConfig.enrich_prompts
    save_dir: str = ""
    save_mapping: bool = False  # single mode writes mapping_{i}.json only on request
    seed: int = 0
    # engine config overrides, {"section": {"key": value}}; given as section.key=value strings, read once
    overrides: dict[str, Any] = field(default_factory=dict)


# Expected type of each key, as named in messages (bool is not accepted where a number is).
_INT_KEYS = ("num_output_frames", "max_memory_frames", "seed")
_BOOL_KEYS = ("enrich_prompts", "save_mapping")
_STR_KEYS = ("data_path", "output_folder", "preset", "model_name", "wan_model_path", "generator_ckpt", "lora_ckpt",
             "llm_model_path", "agent_backend", "memory_policy", "transition", "save_dir")


def _read_yaml(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config_path {path} cannot be read as text ({type(err).__name__})") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{where}: {problem}; fix the YAML there") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values")
    return values


def _check_types(values: dict) -> None:
    """Every key has the type it needs; the message names the key and what it got."""
    for key in _INT_KEYS:
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], int)):
            raise ConfigError(f"{key} must be a whole number (got {values[key]!r})")
    for key in _BOOL_KEYS:
        if key in values and not isinstance(values[key], bool):
            raise ConfigError(f"{key} must be true or false (got {values[key]!r})")
    for key in _STR_KEYS:
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"{key} must be a string (got {values[key]!r})")
    if "switch_frame_indices" in values:
        switches = values["switch_frame_indices"]
        if isinstance(switches, str):
            try:
                switches = [int(x) for x in switches.split(",") if x.strip()]
            except ValueError:
                raise ConfigError(f"switch_frame_indices must be whole numbers separated by commas (got {switches!r})") from None
        if not isinstance(switches, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in switches):
            raise ConfigError(
                f"switch_frame_indices must be a list of latent frame indices, e.g. [40, 80] (got {values['switch_frame_indices']!r})"
            )
        values["switch_frame_indices"] = switches
    overrides = values.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(x, str) for x in overrides):
        raise ConfigError(f"overrides must be a list of section.key=value strings (got {overrides!r})")


def read_batch_config(path: str | None, cli: dict) -> BatchConfig:
    values: dict = {}
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"--config_path {path} does not exist")
        values = _read_yaml(path)
    values.update({k: v for k, v in cli.items() if v is not None})
    names = {f.name for f in dataclasses.fields(BatchConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in the batch config (allowed: {', '.join(sorted(names))})")
    _check_types(values)
    values["overrides"] = parse_overrides(values.get("overrides", []))
    adapter = values.pop("adapter", None) or {}
    if not isinstance(adapter, dict) or set(adapter) - {"type", "rank", "alpha"}:
        raise ConfigError(f"adapter must be a mapping with type, rank, alpha (got {adapter!r})")
    for key in ("rank", "alpha"):
        if key in adapter and (isinstance(adapter[key], bool) or not isinstance(adapter[key], int)):
            raise ConfigError(f"adapter.{key} must be a whole number (got {adapter[key]!r})")
    return BatchConfig(**values, adapter=Adapter(**adapter))


def check_output_folder(folder: str) -> None:
    """The output folder can be made (or is a folder) and written to: checked before any model loads."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_folder {folder} is a file; give a folder for the videos")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(f"output_folder {folder} cannot be made: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output_folder {folder} cannot be written ({parent} is not writable)")


def check_memory(config, total_latent_frames: int, force: bool) -> None:
    """A video's frames are held in memory until it is written: refuse one that cannot fit in this machine."""
    import psutil

    video = config.video
    per_latent_frame = (video.temporal_compression * video.height * video.width * 3  # uint8 RGB frames
                        + 4 * config.model.in_channels * video.latent_height * video.latent_width)  # float32 latent
    needed = 2 * per_latent_frame * total_latent_frames  # the frames, and their copy while the mp4 is written
    available = psutil.virtual_memory().available
    if needed > available and not force:
        raise ConfigError(
            f"num_output_frames {total_latent_frames} needs about {needed / 2**30:.1f} GiB of memory for one video and "
            f"this machine has {available / 2**30:.1f} GiB free; lower num_output_frames (or pass --force to try anyway)"
        )


def engine_config(batch: BatchConfig):
    preset = batch.preset
    if preset == AUTO_PRESET:
        preset = WAN_PRESET if batch.generator_ckpt else EMBEDDED_PRESET
    overrides = {
        "cache": {"max_memory_frames": batch.max_memory_frames},
        "memory": {"policy": batch.memory_policy, "transition": batch.transition, "save_dir": batch.save_dir},
        "agent": {"backend": batch.agent_backend, "llm_model_path": batch.llm_model_path, "enrich_prompts": batch.enrich_prompts},
        "runtime": {"seed": batch.seed},
    }
    if preset == WAN_PRESET:
        root = Path(batch.wan_model_path) if batch.wan_model_path else None
        overrides["weights"] = {
            "generator_ckpt": batch.generator_ckpt or (str(root) if root else ""),
            "lora_ckpt": batch.lora_ckpt,
            "lora_rank": batch.adapter.rank,
            "lora_alpha": batch.adapter.alpha,
            "text_encoder_path": str(root / "models_t5_umt5-xxl-enc-bf16.pth") if root else "",
            "tokenizer_path": str(root / "google" / "umt5-xxl") if root else "",
            "vae_path": str(root / "Wan2.1_VAE.pth") if root else "",
        }
    return load_config(preset=preset, overrides=merge_overrides(overrides, batch.overrides))


def read_stories(batch: BatchConfig, mode: str) -> list[list[str]]:
    """The stories of the data file: a list of prompts per line. Errors name the line and what is wrong."""
    path = Path(batch.data_path)
    if not batch.data_path or not path.is_file():
        raise ConfigError(f"data_path {batch.data_path!r} does not exist: pass --data_path PROMPTS.{'jsonl' if mode == 'interactive' else 'txt'}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text; data_path must be a text file of prompts") from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise ConfigError(f"{path}:{line}: holds a NUL byte; data_path must be a text file of prompts")
    stories = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl" or mode == "interactive" and path.suffix != ".txt":
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{number}: not valid JSON ({err.msg}); each line must be {{\"prompts\": [...]}}") from None
            prompts = item.get("prompts") if isinstance(item, dict) else None
            if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
                raise ConfigError(f"{path}:{number}: needs a non-empty \"prompts\" list of non-empty strings")
            stories.append([p.strip() for p in prompts])
        else:
            stories.append([line.strip()])
    if not stories:
        raise ConfigError(f"{path} holds no prompts")
    return stories


def plan_scenes(batch: BatchConfig, num_prompts: int, frames_per_chunk: int, line: int) -> list[int]:
    """Latent frames per scene from num_output_frames and switch_frame_indices, checked."""
    total = batch.num_output_frames
    if total < frames_per_chunk or total % frames_per_chunk:
        raise ConfigError(f"num_output_frames must be a positive multiple of {frames_per_chunk} latent frames (got {total})")
    listed = list(batch.switch_frame_indices) if num_prompts > 1 else []
    if any(b <= a for a, b in zip([0, *listed], [*listed, total])):
        raise ConfigError(
            f"switch_frame_indices must be increasing and below num_output_frames (got {listed}, {total})"
        )
    switches = listed if num_prompts > 1 else []
    if num_prompts > 1:
        if len(switches) < num_prompts - 1:
            raise ConfigError(
                f"line {line} has {num_prompts} prompts but switch_frame_indices has {len(switches)} entries; "
                f"give {num_prompts - 1} switch indices (one per prompt after the first)"
            )
        switches = switches[: num_prompts - 1]
    bounds = [0, *switches, total]
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ConfigError(
            f"switch_frame_indices must be increasing and below num_output_frames (got {switches}, {total})"
        )
    # a switch takes effect at the first chunk that starts at or after it (as in the original tool)
    bounds = [-(-b // frames_per_chunk) * frames_per_chunk for b in bounds[:-1]] + [total]
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ConfigError(f"switch_frame_indices {switches} fall in the same chunk of {frames_per_chunk} frames; space them further apart")
    return [b - a for a, b in zip(bounds, bounds[1:])]


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return rank, world


def run_batch(mode: str, argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=f"IAM Flow {mode} batch mode")
    parser.add_argument("--config_path", default=f"configs/agent_{'interactive_' if mode == 'interactive' else ''}inference.yaml")
    parser.add_argument("--data_path")
    parser.add_argument("--output_folder")
    parser.add_argument("--llm_model_path")
    parser.add_argument("--max_memory_frames", type=int)
    parser.add_argument("--save_dir")
    parser.add_argument("--preset", choices=[AUTO_PRESET, EMBEDDED_PRESET, WAN_PRESET, TINY_PRESET])
    parser.add_argument("--num_output_frames", type=int)
    parser.add_argument("--override", action="append", dest="overrides", help="engine config section.key=value")
    parser.add_argument("--force", action="store_true", help="run even when a video may not fit in this machine's memory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        batch = read_batch_config(args.config_path,
                                  {k: v for k, v in vars(args).items() if k not in ("config_path", "force")})
        if batch.llm_model_path:
            batch.agent_backend = LLM_BACKEND
        config = engine_config(batch)
        check_weights(config)
        stories = read_stories(batch, mode)
        plans = [plan_scenes(batch, len(p), config.cache.frames_per_chunk, i + 1) for i, p in enumerate(stories)]
        check_output_folder(batch.output_folder)
        check_memory(config, batch.num_output_frames, args.force)
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    return generate_all(batch, config, stories, plans, mode)


def generate_all(batch: BatchConfig, config, stories: list[list[str]], plans: list[list[int]], mode: str) -> list[Path]:
    from iamflow.session import Runtime, StorySession

    rank, world = _distributed()
    runtime = Runtime.load(config)
    out = Path(batch.output_folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    fpc = config.cache.frames_per_chunk
    for i in range(rank, len(stories), world):
        save_dir = Path(batch.save_dir) / f"{i}" if batch.save_dir else None
        session = StorySession(runtime, save_dir=save_dir)
        for j, (prompt, frames) in enumerate(zip(stories[i], plans[i])):
            logger.info("rank %d: story %d scene %d/%d: %d latent frames", rank, i, j + 1, len(stories[i]), frames)
            for _ in session.add_scene(prompt, seed=batch.seed + 1000 * i + j, chunks=frames // fpc):
                pass
        video = session.video.join(out / f"rank{rank}-{i}-0_iam_lora.mp4")  # the segments, not re-encoded
        if mode == "interactive" or batch.save_mapping:
            target = out / f"mapping_{i}.json"
            target.write_text(json.dumps(session.mapping(), indent=2, ensure_ascii=False))
            written.append(target)
        written.append(video)
        logger.info("rank %d: wrote %s", rank, video)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return written
