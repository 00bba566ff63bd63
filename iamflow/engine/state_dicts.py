"""Reading raw state dicts and checking that they fit a model, with errors that list what does not.

The one strict checker of the project: every loader (DiT generator and LoRA, VAE, tiny decoder, umT5, the
storyworld weights) compares names and shapes with ``check_state_dict`` and raises ``CheckpointError``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A weights file cannot be read or does not fit the model; the message names the file and the keys."""


StateDictMismatchError = CheckpointError  # the name the codec and text-encoder modules export


def mismatch_message(what: str, missing: list[str], unexpected: list[str], shapes: list[str], show: int = 5,
                     hint: str = "") -> str:
    parts = [f"{what} does not match the model{hint}:"]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
            parts.append(f"{len(keys)} {label} key(s): {', '.join(keys[:show])}{more}")
    return "\n  ".join(parts)


def check_state_dict(what: str, state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                     hint: str = "") -> None:
    """Raise CheckpointError unless ``state_dict`` has exactly the keys and shapes of ``expected``; ``hint`` (e.g.
    " (no key matched at all: is this a Wan2.1 DiT checkpoint?)") follows the first line."""
    missing = sorted(k for k in expected if k not in state_dict)
    unexpected = sorted(k for k in state_dict if k not in expected)
    shapes = sorted(
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
        for k in state_dict
        if k in expected and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        raise CheckpointError(mismatch_message(what, missing, unexpected, shapes, hint=hint))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A raw state dict from .safetensors or a torch file (tensors only: nothing in the file can run code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return dict(state)
