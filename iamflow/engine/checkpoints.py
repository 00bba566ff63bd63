"""Generator weights: every real checkpoint format read into Wan's original key names, loaded strictly.

Owns three things:

* the key mapping between Wan's original names (what ``CausalWanModel`` uses) and the diffusers
  ``WanTransformer3DModel`` layout, both ways;
* reading a generator checkpoint in any of the formats that exist in the wild into one Wan-named state dict:
  the original Wan release (``diffusion_pytorch_model*.safetensors``, sharded or not), a diffusers
  ``WanTransformer3DModel`` folder, the training checkpoints of Self-Forcing / LongLive / MemFlow
  (``torch.save({"generator": ..., "generator_ema": ..., ...})`` with ``model.``-prefixed keys and FSDP
  wrapper segments) and a plain state dict file;
* the PEFT LoRA file those projects train on top of the base (``lora.pt``), merged into the weights.

The layout (Wan or diffusers) is recognised from the key names, never from file names. Loading is strict:
missing keys, unexpected keys and shape mismatches all raise ``CheckpointError`` naming them.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from iamflow.engine.state_dicts import CheckpointError, check_state_dict, mismatch_message

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "LoadedCheckpoint",
    "convert_diffusers_to_wan",
    "convert_wan_to_diffusers",
    "detect_layout",
    "read_generator_state_dict",
    "load_generator",
    "read_lora_state_dict",
    "lora_target_modules",
    "attach_lora",
    "apply_lora",
]

StateDict = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------------------------
# Key mapping: Wan original <-> diffusers WanTransformer3DModel
# --------------------------------------------------------------------------------------------------------------

# Module paths outside the blocks. Image-conditioning entries (img_emb) exist only in Wan's I2V/FLF2V models;
# they are mapped so the conversion is complete, and a T2V model reports them as unexpected keys.
_TOP_LEVEL_WAN_TO_DIFFUSERS = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "head.head": "proj_out",
    "head.modulation": "scale_shift_table",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",
}

# Module paths inside ``blocks.N``. Wan runs its norms in the order norm1 (self-attn), norm3 (cross-attn,
# affine), norm2 (FFN); diffusers numbers them in execution order, so norm2 and norm3 swap names.
_BLOCK_WAN_TO_DIFFUSERS = {
    "modulation": "scale_shift_table",
    "norm1": "norm1",
    "norm2": "norm3",
    "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    **{
        f"{wan_attn}.{wan_name}": f"{diffusers_attn}.{diffusers_name}"
        for wan_attn, diffusers_attn in (("self_attn", "attn1"), ("cross_attn", "attn2"))
        for wan_name, diffusers_name in (
            ("q", "to_q"),
            ("k", "to_k"),
            ("v", "to_v"),
            ("o", "to_out.0"),
            ("norm_q", "norm_q"),
            ("norm_k", "norm_k"),
            ("k_img", "add_k_proj"),
            ("v_img", "add_v_proj"),
            ("norm_k_img", "norm_added_k"),
        )
    },
}

_BLOCK_KEY = re.compile(r"^(blocks\.\d+\.)(.+)$")


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    """Replace the longest module path of ``table`` that ``key`` starts with; None if none matches."""
    best = None
    for old in table:
        if (key == old or key.startswith(old + ".")) and (best is None or len(old) > len(best)):
            best = old
    return None if best is None else table[best] + key[len(best) :]


def _convert_key(key: str, top: Mapping[str, str], block: Mapping[str, str]) -> str:
    match = _BLOCK_KEY.match(key)
    if match:
        renamed = _rename(match.group(2), block)
        return key if renamed is None else match.group(1) + renamed
    renamed = _rename(key, top)
    return key if renamed is None else renamed


_TOP_LEVEL_DIFFUSERS_TO_WAN = {v: k for k, v in _TOP_LEVEL_WAN_TO_DIFFUSERS.items()}
_BLOCK_DIFFUSERS_TO_WAN = {v: k for k, v in _BLOCK_WAN_TO_DIFFUSERS.items()}


def convert_wan_to_diffusers(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Wan original key names -> diffusers ``WanTransformer3DModel`` names. Unknown keys pass through unchanged."""
    return {_convert_key(k, _TOP_LEVEL_WAN_TO_DIFFUSERS, _BLOCK_WAN_TO_DIFFUSERS): v for k, v in state_dict.items()}


def convert_diffusers_to_wan(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """diffusers ``WanTransformer3DModel`` names -> Wan original names. Unknown keys pass through unchanged."""
    return {_convert_key(k, _TOP_LEVEL_DIFFUSERS_TO_WAN, _BLOCK_DIFFUSERS_TO_WAN): v for k, v in state_dict.items()}


_DIFFUSERS_MARKERS = re.compile(r"^(condition_embedder\.|proj_out\.|scale_shift_table$)|\.(attn1|attn2)\.|\.ffn\.net\.")
_WAN_MARKERS = re.compile(
    r"^(time_embedding\.|text_embedding\.|head\.head\.|head\.modulation$)|\.(self_attn|cross_attn)\."
)


def detect_layout(keys: list[str] | Mapping[str, object]) -> str:
    """``"wan"`` or ``"diffusers"``, from the key names. Keys of neither kind count as Wan (loading then
    reports them); keys of both kinds at once are an error."""
    diffusers = sum(1 for k in keys if _DIFFUSERS_MARKERS.search(k))
    wan = sum(1 for k in keys if _WAN_MARKERS.search(k))
    if diffusers and wan:
        raise CheckpointError(
            f"the state dict mixes Wan original names ({wan} keys) and diffusers names ({diffusers} keys); "
            "it is neither a Wan nor a diffusers WanTransformer3DModel checkpoint"
        )
    return "diffusers" if diffusers else "wan"


# --------------------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------------------

# Segments that torch wrappers insert into parameter names (FSDP with use_orig_params, activation
# checkpointing, torch.compile). The training EMA of Self-Forcing / LongLive keeps them in its keys.
_WRAPPER_SEGMENTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
# Whole-dict prefixes: the training wrapper holds the DiT as ``.model``; single-file (ComfyUI) exports use
# ``model.diffusion_model.``. Stripped only when every key carries them.
_WHOLE_DICT_PREFIXES = ("model.diffusion_model.", "model.")
# Keys of a training checkpoint that can hold the generator, in the order ``key="auto"`` tries them.
# The Self-Forcing, LongLive and MemFlow inference scripts load "generator" unless told to use the EMA
# (``use_ema`` defaults to false), and LongLive's trainer also accepts a bare "model" entry.
_AUTO_KEYS = ("generator", "generator_ema", "model")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What ``load_generator`` read: where, in which format, under which key, how many tensors."""

    path: str
    format: str  # e.g. "diffusers folder (sharded)", "training checkpoint", "safetensors file"
    layout: str  # "wan" or "diffusers": the key names found in the file
    key: str | None  # the training-checkpoint entry used ("generator" / "generator_ema" / "model"), else None
    num_tensors: int


def _strip_wrappers(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    out: StateDict = {}
    for key, value in state_dict.items():
        for segment in _WRAPPER_SEGMENTS:
            key = key.replace(segment, "")
        out[key] = value
    for prefix in _WHOLE_DICT_PREFIXES:
        if out and all(k.startswith(prefix) for k in out):
            return {k[len(prefix) :]: v for k, v in out.items()}
    return out


def _torch_load(path: Path) -> object:
    """torch.load on the CPU, memory-mapped where the file format allows, tensors-only where the pickle allows."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:  # files from the legacy (non-zip) serializer cannot be memory-mapped
            if "mmap" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise CheckpointError(f"cannot read {path} as a torch checkpoint: {str(error).splitlines()[0]}") from error
        # Training checkpoints may pickle objects beyond tensors and containers (e.g. a config object).
        logger.warning("%s holds more than tensors and containers; loading it with full unpickling", path)
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as retry_error:  # whatever the pickled objects raise
            raise CheckpointError(f"cannot read {path} as a torch checkpoint: {retry_error}") from retry_error
    except (OSError, EOFError, RuntimeError) as error:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {error}") from error


def _load_safetensors(path: Path) -> StateDict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"cannot read {path} as safetensors: {error}") from error


def _load_weight_file(path: Path) -> StateDict:
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    loaded = _torch_load(path)
    if not _is_tensor_dict(loaded):
        raise CheckpointError(f"{path} is a shard of a sharded checkpoint but does not hold a plain state dict")
    return dict(loaded)


def _load_sharded(index_path: Path) -> StateDict:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{index_path} is not a sharded-checkpoint index (a JSON with a 'weight_map'): {error}"
        ) from error
    state_dict: StateDict = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index_path.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index_path} lists the shard {shard}, which is not in {index_path.parent}")
        state_dict.update(_load_weight_file(shard_path))
    absent = [k for k in weight_map if k not in state_dict]
    if absent:
        raise CheckpointError(
            f"{index_path}: {len(absent)} keys of the index are in none of its shards ({_first(absent)})"
        )
    return state_dict


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _read_folder(folder: Path) -> tuple[StateDict, str]:
    if (folder / "transformer" / "config.json").is_file():  # a whole diffusers pipeline: take its transformer
        folder = folder / "transformer"
    kind = "folder"
    config_path = folder / "config.json"
    if config_path.is_file():
        try:
            class_name = json.loads(config_path.read_text()).get("_class_name")
        except (OSError, ValueError, AttributeError):
            class_name = None
        kind = {"WanTransformer3DModel": "diffusers folder", "WanModel": "Wan folder"}.get(class_name, kind)
    indexes = sorted(folder.glob("*.index.json"))
    if len(indexes) > 1:
        names = ", ".join(p.name for p in indexes)
        raise CheckpointError(f"{folder} holds several sharded-checkpoint indexes ({names}); pass one of them")
    if indexes:
        return _load_sharded(indexes[0]), f"{kind} (sharded)"
    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors")) or sorted(folder.glob("*.safetensors"))
    if not files:
        files = sorted(folder.glob("diffusion_pytorch_model*.bin"))
    if not files:
        raise CheckpointError(
            f"{folder} holds no generator weights: expected diffusion_pytorch_model*.safetensors "
            "(optionally with a .safetensors.index.json) or a diffusers WanTransformer3DModel folder"
        )
    state_dict: StateDict = {}
    for file in files:  # shards without an index (as some conversion scripts write them)
        state_dict.update(_load_weight_file(file))
    return state_dict, kind + (" (sharded)" if len(files) > 1 else "")


def _select_generator(checkpoint: Mapping[str, object], key: str, path: Path) -> tuple[Mapping[str, object], str]:
    """Pick the generator's state dict out of a training checkpoint."""
    top_keys = sorted(str(k) for k in checkpoint)
    if key == "auto":
        for candidate in _AUTO_KEYS:
            if isinstance(checkpoint.get(candidate), Mapping):
                return checkpoint[candidate], candidate
        if "generator_lora" in checkpoint:
            raise CheckpointError(
                f"{path} holds only LoRA weights ('generator_lora'); "
                "load a base checkpoint and apply this file as weights.lora_ckpt"
            )
        raise CheckpointError(
            f"{path} holds no generator: expected one of {list(_AUTO_KEYS)} or a plain state dict "
            f"(top-level keys: {top_keys[:10]})"
        )
    if not isinstance(checkpoint.get(key), Mapping):
        raise CheckpointError(
            f"{path} has no '{key}' entry (top-level keys: {top_keys[:10]}); "
            "use weights.generator_key=auto or one of those"
        )
    return checkpoint[key], key


def _read(path: str | Path, key: str = "auto") -> tuple[StateDict, str, str, str | None]:
    """-> (Wan-named state dict, format description, layout found in the file, training key used)."""
    if key not in ("auto", "generator", "generator_ema", "model"):
        raise CheckpointError(f"key must be 'auto', 'generator', 'generator_ema' or 'model' (got {key!r})")
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"generator checkpoint {path} does not exist")
    used_key = None
    if path.is_dir():
        state_dict, fmt = _read_folder(path)
    elif path.name.endswith(".json"):
        state_dict, fmt = _load_sharded(path), "sharded safetensors"
    elif path.suffix == ".safetensors":
        state_dict, fmt = _load_safetensors(path), "safetensors file"
    else:
        loaded = _torch_load(path)
        if not isinstance(loaded, Mapping):
            raise CheckpointError(
                f"{path} holds a {type(loaded).__name__}, not a state dict or a training checkpoint dict"
            )
        if _is_tensor_dict(loaded):
            state_dict, fmt = dict(loaded), "state dict file"
        else:
            selected, used_key = _select_generator(loaded, key, path)
            non_tensors = [k for k, v in selected.items() if not isinstance(v, torch.Tensor)]
            if non_tensors:
                raise CheckpointError(f"{path}['{used_key}'] holds non-tensor entries ({_first(non_tensors)})")
            state_dict, fmt = dict(selected), "training checkpoint"
    if fmt != "training checkpoint" and key != "auto":
        raise CheckpointError(f"{path} is a {fmt}, not a training checkpoint: it has no '{key}' entry; use key='auto'")
    state_dict = _strip_wrappers(state_dict)
    try:
        layout = detect_layout(state_dict)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    if layout == "diffusers":
        state_dict = convert_diffusers_to_wan(state_dict)
    return state_dict, fmt, layout, used_key


def read_generator_state_dict(path: str | Path, key: str = "auto") -> StateDict:
    """Read a generator checkpoint of any supported format into a state dict with Wan's original key names.

    ``path``: a file (``.safetensors``, ``.pt``/``.pth``/``.bin``/``.ckpt``, or a ``*.index.json`` of shards)
    or a folder (an original Wan release, a diffusers ``WanTransformer3DModel`` folder, or a diffusers
    pipeline folder with a ``transformer/`` subfolder).
    ``key``: for training checkpoints, which entry holds the generator. ``"auto"`` takes ``"generator"``
    (what Self-Forcing / LongLive / MemFlow inference load by default, ``use_ema`` being false), else
    ``"generator_ema"``, else ``"model"``; the other values demand that entry.
    """
    return _read(path, key)[0]


# --------------------------------------------------------------------------------------------------------------
# Strict loading
# --------------------------------------------------------------------------------------------------------------


def _first(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def load_generator(model: nn.Module, path: str | Path, key: str = "auto") -> LoadedCheckpoint:
    """Load a generator checkpoint of any supported format into ``model`` (a ``CausalWanModel``), strictly.

    Every model tensor must be in the checkpoint with the same shape and the checkpoint must hold nothing
    else, or ``CheckpointError`` lists what differs. Each tensor is cast to the dtype of the model tensor it
    replaces (so float32 parameters of a bf16 model stay float32).
    """
    state_dict, fmt, layout, used_key = _read(path, key)
    expected = model.state_dict()
    hint = ""
    if layout == "wan" and not any(k in expected for k in state_dict):
        hint = " (no key matched at all: is this a Wan2.1 DiT checkpoint?)"
    check_state_dict(f"checkpoint {path}", state_dict, expected, hint)
    cast = {k: v.to(dtype=expected[k].dtype) for k, v in state_dict.items()}
    model.load_state_dict(cast, strict=True)
    info = LoadedCheckpoint(str(path), fmt, layout, used_key, len(cast))
    logger.info(
        "loaded generator from %s: %s, %s key names%s, %d tensors",
        path,
        fmt,
        "Wan original" if layout == "wan" else "diffusers",
        f", entry '{used_key}'" if used_key else "",
        len(cast),
    )
    return info


# --------------------------------------------------------------------------------------------------------------
# LoRA
# --------------------------------------------------------------------------------------------------------------

_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B)(?:\.(?P<adapter>[^.]+))?\.weight$")


def lora_target_modules(model: nn.Module) -> list[str]:
    """Full names of the Linear layers LoRA adapts: every Linear of every block (self_attn q/k/v/o,
    cross_attn q/k/v/o, ffn.0, ffn.2), as the LongLive / MemFlow trainers target them."""
    return [
        f"blocks.{i}.{name}"
        for i, block in enumerate(model.blocks)
        for name, module in block.named_modules()
        if isinstance(module, nn.Linear)
    ]


def read_lora_state_dict(path: str | Path) -> StateDict:
    """Read a LoRA file into ``{"blocks.N.<module>.lora_A.weight": ..., "...lora_B.weight": ...}``.

    Accepts ``{"generator_lora": state_dict, ...}`` (what the LongLive / MemFlow trainers save) or a raw PEFT
    state dict; keys may carry PEFT's ``base_model.model.`` prefix, an adapter name
    (``lora_A.default.weight``) and FSDP wrapper segments.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"LoRA file {path} does not exist")
    loaded: object = _load_safetensors(path) if path.suffix == ".safetensors" else _torch_load(path)
    if isinstance(loaded, Mapping) and "generator_lora" in loaded:
        loaded = loaded["generator_lora"]
    if not _is_tensor_dict(loaded):
        keys = sorted(map(str, loaded))[:10] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise CheckpointError(
            f"{path} is not a LoRA file: expected {{'generator_lora': state_dict}} or a PEFT state dict (found {keys})"
        )
    out: StateDict = {}
    for key, value in loaded.items():
        for segment in _WRAPPER_SEGMENTS:
            key = key.replace(segment, "")
        if key.startswith(_PEFT_PREFIX):
            key = key[len(_PEFT_PREFIX) :]
        match = _LORA_KEY.match(key)
        if match:  # drop the adapter name PEFT puts in live module names
            key = f"{match['module']}.{match['kind']}.weight"
        out[key] = value
    return out


def _expected_lora_shapes(model: nn.Module, rank: int) -> dict[str, torch.Size]:
    shapes = {}
    for name in lora_target_modules(model):
        linear = model.get_submodule(name)
        shapes[f"{name}.lora_A.weight"] = torch.Size([rank, linear.in_features])
        shapes[f"{name}.lora_B.weight"] = torch.Size([linear.out_features, rank])
    return shapes


def _file_rank(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int] | None:
    for key, value in state_dict.items():
        if key.endswith(".lora_A.weight") and value.ndim == 2:
            return key, value.shape[0]
    return None


def attach_lora(model: nn.Module, path: str | Path, rank: int, alpha: float):
    """Wrap ``model`` with PEFT LoRA adapters (rank ``rank``, scale ``alpha / rank``) on every block Linear and
    load the adapter weights from ``path``, strictly, without merging. Returns the ``peft.PeftModel``; the
    layers of ``model`` itself are replaced in place. For inference use ``apply_lora``, which merges."""
    import peft

    if rank < 1 or alpha <= 0:
        raise CheckpointError(f"LoRA rank and alpha must be positive (got rank={rank}, alpha={alpha})")
    lora = read_lora_state_dict(path)
    found = _file_rank(lora)
    if found is not None and found[1] != rank:
        key, file_rank = found
        raise CheckpointError(
            f"LoRA file {path} has rank {file_rank} ({key} is {list(lora[key].shape)}) but rank {rank} was asked; "
            f"set weights.lora_rank={file_rank}"
        )
    expected = {k: torch.empty(shape, device="meta") for k, shape in _expected_lora_shapes(model, rank).items()}
    check_state_dict(f"LoRA file {path}", lora, expected)

    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=lora_target_modules(model))
    wrapped = peft.get_peft_model(model, config)
    result = peft.set_peft_model_state_dict(wrapped, {_PEFT_PREFIX + k: v for k, v in lora.items()})
    not_loaded = [k for k in result.missing_keys if ".lora_" in k]
    if result.unexpected_keys or not_loaded:  # cannot happen after check_state_dict unless PEFT's naming changes
        raise CheckpointError(mismatch_message(f"LoRA file {path}", not_loaded, list(result.unexpected_keys), []))
    for name, param in model.named_parameters():  # PEFT freezes the base; keep the caller's flags
        base_name = name.replace(".base_layer.", ".")
        if base_name in requires_grad:
            param.requires_grad_(requires_grad[base_name])
    logger.info("LoRA from %s: %d adapted Linear layers, rank %d, alpha %g", path, len(lora) // 2, rank, alpha)
    return wrapped


def apply_lora(model: nn.Module, path: str | Path, rank: int, alpha: float) -> nn.Module:
    """Load the LoRA file at ``path`` onto ``model`` and merge it into the base weights.

    Returns ``model`` itself (the same object), a plain ``CausalWanModel`` whose block Linear weights are now
    ``W + (alpha / rank) * B @ A``; nothing of PEFT remains in it.
    """
    merged = attach_lora(model, path, rank, alpha).merge_and_unload()
    logger.info("LoRA from %s merged into the generator weights", path)
    return merged
