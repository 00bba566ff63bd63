"""Generator checkpoints: every real format loads into the causal Wan DiT with identical results, strictly.

Files are real (safetensors, torch.save, diffusers save_pretrained) and written to tmp dirs; the models are
the tiny preset with random weights.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from iamflow.config import load_config
from iamflow.engine.checkpoints import (
    CheckpointError,
    apply_lora,
    attach_lora,
    convert_diffusers_to_wan,
    convert_wan_to_diffusers,
    load_generator,
    lora_target_modules,
    read_generator_state_dict,
)
from iamflow.engine.model import CausalWanModel

LORA_RANK, LORA_ALPHA = 4, 8.0


@pytest.fixture(scope="module")
def cfg():
    return load_config(preset="tiny").model


def random_state_dict(cfg, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    template = CausalWanModel(cfg).state_dict()
    return {k: torch.randn(v.shape, generator=generator) * 0.2 for k, v in template.items()}


def tiny_diffusers_model(cfg, **extra):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        num_attention_heads=cfg.num_heads,
        attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        text_dim=cfg.text_dim,
        freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim,
        num_layers=cfg.num_layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        **extra,
    )


@pytest.fixture(scope="module")
def weights(cfg):
    return random_state_dict(cfg, seed=0)


@pytest.fixture(scope="module")
def inputs(cfg):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, cfg.in_channels, 2, 4, 4, generator=generator)  # [B, C, F, H, W]
    t = torch.tensor([[700.0, 300.0]])  # [B, F]
    context = torch.randn(1, cfg.text_len, cfg.text_dim, generator=generator)
    return x, t, context


@torch.no_grad()
def run(model, inputs):
    return model(*inputs)


@pytest.fixture(scope="module")
def reference_output(cfg, weights, inputs):
    model = CausalWanModel(cfg)
    model.load_state_dict(weights)
    return run(model, inputs)


def with_fsdp_segments(key: str) -> str:
    """How FSDP-wrapped training names a parameter: wrapper segment at the root and inside each block."""
    parts = key.split(".")
    if parts[0] == "blocks":
        parts.insert(2, "_fsdp_wrapped_module")  # blocks.N._fsdp_wrapped_module.rest
    return "model._fsdp_wrapped_module." + ".".join(parts)


@pytest.fixture(scope="module")
def checkpoint_files(cfg, weights, tmp_path_factory):
    """One file or folder per supported format, all holding ``weights``."""
    root = tmp_path_factory.mktemp("checkpoints")
    other = random_state_dict(cfg, seed=2)  # what must NOT be picked
    paths = {}

    wan_dir = root / "wan_original"
    wan_dir.mkdir()
    save_file(weights, wan_dir / "diffusion_pytorch_model.safetensors")
    (wan_dir / "config.json").write_text(json.dumps({"_class_name": "WanModel", "dim": cfg.dim}))
    paths["wan folder"] = wan_dir
    paths["wan safetensors file"] = wan_dir / "diffusion_pytorch_model.safetensors"

    sharded = root / "wan_sharded"
    sharded.mkdir()
    keys = sorted(weights)
    halves = {
        "diffusion_pytorch_model-00001-of-00002.safetensors": keys[::2],
        "diffusion_pytorch_model-00002-of-00002.safetensors": keys[1::2],
    }
    weight_map = {}
    for name, shard_keys in halves.items():
        save_file({k: weights[k] for k in shard_keys}, sharded / name)
        weight_map.update({k: name for k in shard_keys})
    index = {"metadata": {}, "weight_map": weight_map}
    (sharded / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    paths["wan sharded folder"] = sharded
    paths["wan sharded index"] = sharded / "diffusion_pytorch_model.safetensors.index.json"

    diffusers_model = tiny_diffusers_model(cfg)
    diffusers_model.load_state_dict(convert_wan_to_diffusers(weights), strict=True)
    diffusers_model.save_pretrained(root / "diffusers")
    diffusers_model.save_pretrained(root / "diffusers_sharded", max_shard_size="40KB")
    assert (root / "diffusers_sharded" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    paths["diffusers folder"] = root / "diffusers"
    paths["diffusers sharded folder"] = root / "diffusers_sharded"
    diffusers_model.save_pretrained(root / "pipeline" / "transformer")  # a whole pipeline: its transformer is read
    (root / "pipeline" / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    paths["diffusers pipeline folder"] = root / "pipeline"
    # diffusers key names in a file whose name says nothing: the layout is recognised from the keys
    save_file(convert_wan_to_diffusers(weights), root / "renamed.safetensors")
    paths["diffusers-keyed safetensors file"] = root / "renamed.safetensors"

    training = {
        "generator": {f"model.{k}": v for k, v in weights.items()},
        "generator_ema": {with_fsdp_segments(k): v.double() for k, v in other.items()},
        "critic": {f"model.{k}": v for k, v in other.items()},
        "step": 1200,
    }
    torch.save(training, root / "self_forcing.pt")
    paths["training checkpoint, generator"] = root / "self_forcing.pt"

    ema = {
        "generator": {f"model.{k}": v for k, v in other.items()},
        "generator_ema": {with_fsdp_segments(k): v for k, v in weights.items()},
        "step": 1200,
    }
    torch.save(ema, root / "ema.pt")
    paths["training checkpoint, generator_ema"] = (root / "ema.pt", "generator_ema")
    torch.save({"generator_ema": ema["generator_ema"], "step": 3}, root / "ema_only.pt")
    paths["training checkpoint, only generator_ema"] = root / "ema_only.pt"

    torch.save(weights, root / "plain.pth")
    paths["plain state dict .pth"] = root / "plain.pth"
    return paths


FORMATS = [
    "wan folder",
    "wan safetensors file",
    "wan sharded folder",
    "wan sharded index",
    "diffusers folder",
    "diffusers sharded folder",
    "diffusers pipeline folder",
    "diffusers-keyed safetensors file",
    "training checkpoint, generator",
    "training checkpoint, generator_ema",
    "training checkpoint, only generator_ema",
    "plain state dict .pth",
]


# ---------------------------------------------------------------------------------------------------------------
# key mapping
# ---------------------------------------------------------------------------------------------------------------


def test_every_diffusers_key_maps_to_the_model_and_back(cfg):
    diffusers_sd = tiny_diffusers_model(cfg).state_dict()
    model_sd = CausalWanModel(cfg).state_dict()

    wan = convert_diffusers_to_wan(diffusers_sd)
    assert len(wan) == len(diffusers_sd)
    assert set(wan) == set(model_sd)
    assert all(wan[k].shape == model_sd[k].shape for k in wan)
    back = convert_wan_to_diffusers(wan)
    assert list(back) == list(diffusers_sd) and all(back[k] is diffusers_sd[k] for k in back)

    to_diffusers = convert_wan_to_diffusers(model_sd)
    assert set(to_diffusers) == set(diffusers_sd)
    assert all(to_diffusers[k].shape == diffusers_sd[k].shape for k in to_diffusers)
    assert list(convert_diffusers_to_wan(to_diffusers)) == list(model_sd)

    # the cross-attention norm (Wan's norm3, affine) is diffusers' norm2
    assert wan["blocks.0.norm3.weight"] is diffusers_sd["blocks.0.norm2.weight"]


def test_image_conditioning_keys_map_both_ways(cfg):
    i2v = tiny_diffusers_model(cfg, image_dim=24, added_kv_proj_dim=cfg.dim, pos_embed_seq_len=514)
    diffusers_sd = i2v.state_dict()
    wan = convert_diffusers_to_wan(diffusers_sd)
    assert convert_wan_to_diffusers(wan).keys() == diffusers_sd.keys()
    expected = {
        "img_emb.proj.0.weight",
        "img_emb.proj.1.weight",
        "img_emb.proj.3.weight",
        "img_emb.proj.4.bias",
        "img_emb.emb_pos",
        "blocks.0.cross_attn.k_img.weight",
        "blocks.0.cross_attn.v_img.bias",
        "blocks.0.cross_attn.norm_k_img.weight",
    }
    assert expected <= set(wan)
    assert not [k for k in wan if "condition_embedder" in k or "attn2" in k or "add_" in k]


# ---------------------------------------------------------------------------------------------------------------
# every format, identical outputs
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_to_identical_outputs(cfg, checkpoint_files, inputs, reference_output, fmt):
    entry = checkpoint_files[fmt]
    path, key = entry if isinstance(entry, tuple) else (entry, "auto")
    model = CausalWanModel(cfg)
    info = load_generator(model, path, key=key)
    assert info.num_tensors == len(model.state_dict())
    assert torch.equal(run(model, inputs), reference_output)


def test_auto_key_takes_generator_like_the_anchor_inference_scripts(checkpoint_files, weights):
    # the file holds both; "generator" holds `weights`, "generator_ema" something else
    state_dict = read_generator_state_dict(checkpoint_files["training checkpoint, generator"])
    assert all(torch.equal(state_dict[k], weights[k]) for k in weights)
    path, _ = checkpoint_files["training checkpoint, generator_ema"]
    ema = read_generator_state_dict(path, key="generator_ema")
    assert set(ema) == set(weights)  # "model." and every "_fsdp_wrapped_module." segment stripped
    assert all(torch.equal(ema[k], weights[k]) for k in weights)


def test_a_bare_model_entry_is_read_as_the_generator(weights, tmp_path):
    torch.save({"model": {f"model.{k}": v for k, v in weights.items()}, "step": 7}, tmp_path / "model.pt")
    state_dict = read_generator_state_dict(tmp_path / "model.pt")
    assert state_dict.keys() == weights.keys()


def test_each_tensor_is_cast_to_the_dtype_of_the_model_tensor(cfg, checkpoint_files):
    model = CausalWanModel(cfg).to_inference_dtype(torch.bfloat16)
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    load_generator(model, checkpoint_files["training checkpoint, generator"])  # float32 in the file
    assert {k: v.dtype for k, v in model.state_dict().items()} == dtypes
    assert dtypes["blocks.0.modulation"] == torch.float32 and dtypes["blocks.0.ffn.0.weight"] == torch.bfloat16


def test_load_reports_the_format(cfg, checkpoint_files):
    info = load_generator(CausalWanModel(cfg), checkpoint_files["diffusers sharded folder"])
    assert (info.format, info.layout, info.key) == ("diffusers folder (sharded)", "diffusers", None)
    info = load_generator(CausalWanModel(cfg), checkpoint_files["training checkpoint, only generator_ema"])
    assert (info.format, info.layout, info.key) == ("training checkpoint", "wan", "generator_ema")
    info = load_generator(CausalWanModel(cfg), checkpoint_files["wan folder"])
    assert (info.format, info.layout, info.key) == ("Wan folder", "wan", None)


# ---------------------------------------------------------------------------------------------------------------
# strictness
# ---------------------------------------------------------------------------------------------------------------


def test_missing_key_is_named(cfg, weights, tmp_path):
    broken = {k: v for k, v in weights.items() if k != "blocks.1.cross_attn.norm_k.weight"}
    save_file(broken, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): blocks\.1\.cross_attn\.norm_k\.weight"):
        load_generator(CausalWanModel(cfg), tmp_path / "w.safetensors")


def test_unexpected_key_is_named(cfg, weights, tmp_path):
    torch.save({**weights, "blocks.0.self_attn.extra.weight": torch.zeros(3)}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): blocks\.0\.self_attn\.extra\.weight"):
        load_generator(CausalWanModel(cfg), tmp_path / "w.pt")


def test_shape_mismatch_is_named_with_both_shapes(cfg, weights, tmp_path):
    broken = dict(weights)
    broken["blocks.0.ffn.0.weight"] = torch.zeros(64, cfg.dim)
    torch.save({"generator": {f"model.{k}": v for k, v in broken.items()}}, tmp_path / "w.pt")
    model = CausalWanModel(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = r"1 wrong shape key\(s\): blocks\.0\.ffn\.0\.weight \(checkpoint \(64, 48\), model \(96, 48\)\)"
    with pytest.raises(CheckpointError, match=expected):
        load_generator(model, tmp_path / "w.pt")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded


def test_wrong_entries_and_files_say_what_to_do(cfg, weights, tmp_path):
    torch.save({"generator_lora": {"a.lora_A.weight": torch.zeros(1)}, "step": 1}, tmp_path / "lora.pt")
    with pytest.raises(CheckpointError, match="only LoRA"):
        read_generator_state_dict(tmp_path / "lora.pt")
    torch.save({"generator": {f"model.{k}": v for k, v in weights.items()}}, tmp_path / "gen.pt")
    with pytest.raises(CheckpointError, match="no 'generator_ema' entry"):
        read_generator_state_dict(tmp_path / "gen.pt", key="generator_ema")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_generator_state_dict(tmp_path / "absent")
    mixed = {**convert_wan_to_diffusers(weights), "blocks.0.self_attn.q.weight": torch.zeros(cfg.dim, cfg.dim)}
    save_file(mixed, tmp_path / "mixed.safetensors")
    with pytest.raises(CheckpointError, match="mixes Wan original names"):
        read_generator_state_dict(tmp_path / "mixed.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_generator_state_dict(tmp_path / "junk.pt")


# ---------------------------------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_weights(cfg):
    model = CausalWanModel(cfg)
    generator = torch.Generator().manual_seed(3)
    out = {}
    for name in lora_target_modules(model):
        linear = model.get_submodule(name)
        out[f"{name}.lora_A.weight"] = torch.randn(LORA_RANK, linear.in_features, generator=generator) * 0.2
        out[f"{name}.lora_B.weight"] = torch.randn(linear.out_features, LORA_RANK, generator=generator) * 0.2  # nonzero
    return out


@pytest.fixture(scope="module")
def lora_files(lora_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    peft_keys = {f"base_model.model.{k}": v for k, v in lora_weights.items()}
    torch.save({"generator_lora": peft_keys, "critic_lora": {}, "step": 500}, root / "lora.pt")
    torch.save(peft_keys, root / "raw_peft.pt")
    return {"generator_lora": root / "lora.pt", "raw": root / "raw_peft.pt"}


def base_model(cfg, weights):
    model = CausalWanModel(cfg)
    model.load_state_dict(weights)
    return model


def test_every_block_linear_is_a_lora_target(cfg):
    targets = lora_target_modules(CausalWanModel(cfg))
    per_block = [f"{attn}.{p}" for attn in ("self_attn", "cross_attn") for p in "qkvo"] + ["ffn.0", "ffn.2"]
    assert sorted(targets) == sorted(f"blocks.{i}.{n}" for i in range(cfg.num_layers) for n in per_block)


@pytest.mark.parametrize("merged_from,unmerged_from", [("generator_lora", "raw"), ("raw", "generator_lora")])
def test_lora_merged_equals_unmerged_and_changes_the_output(
    cfg, weights, inputs, reference_output, lora_files, merged_from, unmerged_from
):
    merged = apply_lora(base_model(cfg, weights), lora_files[merged_from], LORA_RANK, LORA_ALPHA)
    unmerged = attach_lora(base_model(cfg, weights), lora_files[unmerged_from], LORA_RANK, LORA_ALPHA)

    assert type(merged) is CausalWanModel
    assert list(merged.state_dict()) == list(weights)  # nothing of PEFT left
    merged_out, unmerged_out = run(merged, inputs), run(unmerged, inputs)
    torch.testing.assert_close(merged_out, unmerged_out, rtol=1e-5, atol=1e-5)
    assert (merged_out - reference_output).abs().max() > 1e-2


def test_lora_merge_is_w_plus_scaled_b_times_a(cfg, weights, lora_weights, lora_files):
    merged = apply_lora(base_model(cfg, weights), lora_files["generator_lora"], LORA_RANK, LORA_ALPHA)
    name = "blocks.1.ffn.0"
    delta = (LORA_ALPHA / LORA_RANK) * lora_weights[f"{name}.lora_B.weight"] @ lora_weights[f"{name}.lora_A.weight"]
    torch.testing.assert_close(merged.get_submodule(name).weight, weights[f"{name}.weight"] + delta)
    torch.testing.assert_close(merged.get_submodule(name).bias, weights[f"{name}.bias"])


def test_lora_with_the_wrong_rank_is_refused_with_the_file_rank(cfg, weights, lora_files):
    model = base_model(cfg, weights)
    with pytest.raises(CheckpointError, match=r"has rank 4 .* but rank 8 was asked; set weights\.lora_rank=4"):
        apply_lora(model, lora_files["generator_lora"], rank=8, alpha=8)
    assert type(model.blocks[0].self_attn.q) is torch.nn.Linear  # refused before anything was injected


def test_lora_missing_a_layer_is_named(cfg, weights, lora_weights, tmp_path):
    partial = {f"base_model.model.{k}": v for k, v in lora_weights.items() if not k.startswith("blocks.1.ffn.2.")}
    torch.save({"generator_lora": partial}, tmp_path / "lora.pt")
    expected = r"2 missing key\(s\): blocks\.1\.ffn\.2\.lora_A\.weight, blocks\.1\.ffn\.2\.lora_B\.weight"
    with pytest.raises(CheckpointError, match=expected):
        apply_lora(base_model(cfg, weights), tmp_path / "lora.pt", LORA_RANK, LORA_ALPHA)


def test_lora_file_is_not_a_generator(cfg, weights, lora_files):
    with pytest.raises(CheckpointError):
        load_generator(base_model(cfg, weights), lora_files["raw"])


def test_every_loader_raises_the_one_checkpoint_error(cfg, tmp_path):
    """The storyworld shards, the codec files and the generator loader share one checker and one error class."""
    from iamflow.engine.codec import StateDictMismatchError
    from iamflow.storyworld.model import StoryworldWeightsError, load_dit_state, save_dit

    assert StateDictMismatchError is CheckpointError and StoryworldWeightsError is CheckpointError
    model = CausalWanModel(cfg)
    (shard,) = save_dit(model, tmp_path)
    state = load_file(str(shard))
    del state["head.head.bias"]
    save_file(state, str(shard))
    with pytest.raises(CheckpointError, match=r"(?s)storyworld DiT weights in .*1 missing key\(s\): head\.head\.bias"):
        load_dit_state(CausalWanModel(cfg), tmp_path)
