"""The shipped storyworld model: its weights in ``assets/storyworld`` and how they load.

``load_storyworld()`` returns the four pieces a session needs, ready for the CPU::

    model, codec, text_encoder, config = load_storyworld()
    engine = Engine(model, config)

The DiT is the engine's ``CausalWanModel`` in the ``storyworld`` preset, stored as float16 safetensors shards
(``dit-0000N.safetensors``, each under 16 MiB) with Wan's parameter names; the codec is ``codec.safetensors``;
``config.yaml`` records the preset the weights were trained with. Text features come from the bundled MiniLM.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import yaml

from iamflow.config import EMBEDDED_PRESET, Config, load_config
from iamflow.engine.model import CausalWanModel
from iamflow.engine.state_dicts import CheckpointError, check_state_dict
from iamflow.engine.text_encoder import MiniLMTextEncoder
from iamflow.storyworld.codec import StoryworldCodec

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "storyworld"
SHARD_BYTES = 15 * 2**20


StoryworldWeightsError = CheckpointError  # the shipped weights are missing or do not fit the model


def save_codec(codec: StoryworldCodec, path: str | Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().float().cpu().contiguous() for k, v in codec.state_dict().items()}, str(path))


def load_codec_state(codec: StoryworldCodec, path: str | Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    check_state_dict(f"storyworld codec weights {path}", state, codec.state_dict())
    codec.load_state_dict(state)


def save_dit(model: CausalWanModel, folder: str | Path) -> list[Path]:
    """Float16 shards ``dit-0000N.safetensors`` of at most SHARD_BYTES each; older shards are removed."""
    from safetensors.torch import save_file

    folder = Path(folder)
    for old in folder.glob("dit-*.safetensors"):
        old.unlink()
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, value in model.state_dict().items():
        tensor = value.detach().to(torch.float16).cpu().contiguous()
        if shards[-1] and size + tensor.nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += tensor.nbytes
    paths = [folder / f"dit-{i + 1:05d}.safetensors" for i in range(len(shards))]
    for shard, path in zip(shards, paths):
        save_file(shard, str(path))
    return paths


def load_dit_state(model: CausalWanModel, folder: str | Path) -> None:
    """Load every ``dit-*.safetensors`` shard of ``folder`` by name; any missing or unexpected key is an error."""
    from safetensors.torch import load_file

    paths = sorted(Path(folder).glob("dit-*.safetensors"))
    if not paths:
        raise StoryworldWeightsError(f"no dit-*.safetensors shards in {folder}")
    state: dict[str, torch.Tensor] = {}
    for path in paths:
        state.update(load_file(str(path)))
    expected = model.state_dict()
    check_state_dict(f"storyworld DiT weights in {folder}", state, expected)
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(state[name].to(param.dtype))


def storyworld_config(weights_dir: str | Path = ASSETS, overrides: list[str] | dict | None = None) -> Config:
    """The ``storyworld`` preset, checked against the shapes the shipped weights were trained with."""
    config = load_config(preset=EMBEDDED_PRESET, overrides=overrides)
    recorded = Path(weights_dir) / "config.yaml"
    if recorded.is_file():
        trained = yaml.safe_load(recorded.read_text())
        for section in ("model", "video"):
            ours = config.to_dict()[section]
            theirs = trained.get(section, {})
            diff = {k: (ours.get(k), v) for k, v in theirs.items() if ours.get(k) != v}
            if diff:
                raise StoryworldWeightsError(
                    f"the storyworld preset's {section} section differs from the shipped weights' "
                    f"{recorded} (key: (preset, weights)): {diff}"
                )
    return config


def load_storyworld(
    device: torch.device | str = "cpu",
    weights_dir: str | Path | None = None,
    overrides: list[str] | dict | None = None,
) -> tuple[CausalWanModel, StoryworldCodec, MiniLMTextEncoder, Config]:
    """The embedded model: (DiT in eval mode, codec, MiniLM text encoder, config), all on ``device``."""
    folder = Path(weights_dir) if weights_dir is not None else ASSETS
    if not (folder / "codec.safetensors").is_file():
        raise StoryworldWeightsError(f"the storyworld weights are missing from {folder} (codec.safetensors not found)")
    config = storyworld_config(folder, overrides)
    model = CausalWanModel(config.model)
    load_dit_state(model, folder)
    model = model.to(device).eval().requires_grad_(False)
    codec = StoryworldCodec(device=device)
    load_codec_state(codec, folder / "codec.safetensors")
    text_encoder = MiniLMTextEncoder(text_len=config.model.text_len, device=device)
    logger.info("storyworld model loaded from %s (%.1fM DiT parameters)", folder,
                sum(p.numel() for p in model.parameters()) / 1e6)
    return model, codec, text_encoder, config
