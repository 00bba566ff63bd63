"""Wan VAE codec: streaming decode equals a full decode, normalisation, both checkpoint layouts load alike."""

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from iamflow.engine.codec import (
    StateDictMismatchError,
    VideoCodec,
    WanVAECodec,
    to_uint8,
    to_wan_original_vae_keys,
)

from helpers import stream_decode

# Wan2.1's layout (4 levels: 8x spatial, temporal downsampling on the last two: 4x) at a tiny width.
TINY = dict(
    base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
    latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.7, 2.0, 1.0],
)


def _random_vae(seed=0):
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(**TINY)
    with torch.no_grad():  # norms start at 1 and attention projections at 0; make every tensor matter
        for name, param in vae.named_parameters():
            if "gamma" in name:
                param.uniform_(0.5, 1.5)
            elif param.abs().max() == 0:
                param.normal_(0.0, 0.05)
    return vae.eval()


@pytest.fixture(scope="module")
def codec():
    return WanVAECodec(_random_vae())


@pytest.fixture(scope="module")
def latents():
    return torch.randn(2, 4, 7, 2, 3, generator=torch.Generator().manual_seed(1))  # [B, C, t, h, w]


@pytest.mark.parametrize("sizes", [[3, 3, 1], [1] * 7, [2, 4, 1], [7]])
def test_streaming_decode_is_bit_exact_with_full_decode(codec, latents, sizes):
    full = codec.decode(latents)
    assert isinstance(codec, VideoCodec)
    assert full.shape == (2, 3, 4 * 7 - 3, 16, 24) == (2, 3, codec.num_video_frames(7), 16, 24)
    chunks = stream_decode(codec, latents, sizes)
    assert [c.shape[2] for c in chunks] == [4 * sizes[0] - 3] + [4 * s for s in sizes[1:]]
    assert torch.equal(torch.cat(chunks, dim=2), full)


def test_full_decode_matches_diffusers_and_is_clamped(codec, latents):
    ours = codec.decode(latents)
    with torch.no_grad():
        reference = codec.vae.decode(codec.denormalize(latents)).sample
    # diffusers runs post_quant_conv over all frames at once, which rounds differently from one frame at a time
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
    assert ours.min() >= -1 and ours.max() <= 1


@pytest.mark.parametrize("sizes", [[3, 3, 1], [1] * 7, [7]])
def test_2d_convolutions_decode_like_the_3d_ones(latents, sizes):
    """codec.wan_convolutions=2d: each causal 3-D convolution of the decoder as one 2-D convolution per temporal tap.
    Streaming still equals a full decode bit for bit, the video equals the 3-D decode within float rounding, and
    switching back gives the 3-D bits again."""
    codec = WanVAECodec(_random_vae())
    three_d = codec.decode(latents)
    assert codec.use_convolutions("2d") is codec and codec.convolutions == "2d"
    two_d = codec.decode(latents)
    assert torch.equal(torch.cat(stream_decode(codec, latents, sizes), dim=2), two_d)
    assert not torch.equal(two_d, three_d)  # another order of the sums: the 2-D path really ran
    torch.testing.assert_close(two_d, three_d, rtol=0, atol=2e-5)
    assert torch.equal(codec.use_convolutions("3d").decode(latents), three_d)
    with pytest.raises(ValueError, match="3d or 2d"):
        codec.use_convolutions("3D")


def test_reset_starts_a_new_video(codec, latents):
    decoder = codec.stream_decoder()
    decoder.decode(latents[:, :, :3])
    decoder.reset()
    assert torch.equal(decoder.decode(latents[:, :, 3:6]), codec.decode(latents[:, :, 3:6]))


def test_normalisation_follows_wan(codec):
    mean = torch.tensor(TINY["latents_mean"]).view(1, 4, 1, 1, 1)
    std = torch.tensor(TINY["latents_std"]).view(1, 4, 1, 1, 1)
    z = torch.randn(1, 4, 2, 2, 3)
    latents = codec.normalize(z)
    torch.testing.assert_close(latents, (z - mean) / std)  # Wan's WanVAE.encode: (mu - mean) * (1 / std)
    torch.testing.assert_close(codec.denormalize(latents), latents / (1.0 / std) + mean)  # diffusers' WanPipeline
    torch.testing.assert_close(codec.denormalize(latents), z)


def test_encode_gives_normalised_posterior_mean(codec):
    video = torch.rand(1, 3, 9, 16, 24) * 2 - 1
    latents = codec.encode(video)
    assert latents.shape == (1, 4, 3, 2, 3)
    with torch.no_grad():
        raw = codec.vae.encode(video).latent_dist.mean
    torch.testing.assert_close(latents, codec.normalize(raw))
    assert codec.decode(latents).shape == (1, 3, 9, 16, 24)
    with pytest.raises(ValueError, match="1 \\+ 4\\*k frames"):
        codec.encode(video[:, :, :8])


def test_wan_pth_and_diffusers_folder_load_the_same(tmp_path, latents):
    vae = _random_vae(seed=3)
    vae.save_pretrained(str(tmp_path / "repo" / "vae"))
    wan_state = to_wan_original_vae_keys(vae.state_dict(), num_res_blocks=TINY["num_res_blocks"])
    assert {"conv1.weight", "conv2.weight", "encoder.conv1.weight", "decoder.head.2.weight",
            "encoder.middle.1.to_qkv.weight", "decoder.upsamples.0.residual.0.gamma",
            "decoder.upsamples.8.resample.1.weight", "decoder.upsamples.3.shortcut.weight",
            "decoder.upsamples.5.time_conv.weight", "encoder.downsamples.2.shortcut.weight"} <= set(wan_state)
    torch.save(wan_state, tmp_path / "Wan2.1_VAE.pth")
    from_folder = WanVAECodec.from_pretrained(tmp_path / "repo", device="cpu")
    from_pth = WanVAECodec.from_pretrained(tmp_path / "Wan2.1_VAE.pth", config=TINY, device="cpu")
    assert torch.equal(from_folder.decode(latents), from_pth.decode(latents))
    video = from_folder.decode(latents[:1, :, :2])
    assert torch.equal(from_folder.encode(video), from_pth.encode(video))


def test_key_mapping_agrees_with_diffusers_converter_on_full_wan21_layout():
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    with torch.device("meta"):
        state = AutoencoderKLWan().state_dict()  # the default config is Wan2.1's VAE
    back = convert_wan_vae_to_diffusers(to_wan_original_vae_keys(state))
    assert set(back) == set(state) and all(back[k] is state[k] for k in state)


def test_bad_wan_checkpoint_names_the_keys(tmp_path):
    good = to_wan_original_vae_keys(_random_vae().state_dict(), num_res_blocks=1)
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "decoder.upsamples.3.residual.6.bias"},
                    r"1 missing key\(s\): decoder\.upsamples\.3\.residual\.6\.bias"),
        "extra": ({**good, "decoder.upsamples.99.time_conv.weight": torch.zeros(1)},
                  r"1 unexpected key\(s\): decoder\.upsamples\.99\.time_conv\.weight"),
        "shape": ({**good, "conv2.weight": torch.zeros(4, 4, 1, 1, 2)},
                  r"1 wrong shape key\(s\): conv2\.weight \(checkpoint \(4, 4, 1, 1, 2\), model \(4, 4, 1, 1, 1\)\)"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / f"{name}.pth")
        with pytest.raises(StateDictMismatchError, match=message):
            WanVAECodec.from_pretrained(tmp_path / f"{name}.pth", config=TINY, device="cpu")


def test_to_uint8(codec, latents):
    frames = to_uint8(codec.decode(latents[:1]))
    assert frames.shape == (25, 16, 24, 3) and frames.dtype == np.uint8
    edges = to_uint8(torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 1, 3))
    assert edges[0, 0, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="one video"):
        to_uint8(torch.zeros(2, 3, 1, 8, 8))


def test_wan_convolutions_config():
    from iamflow.config import ConfigError, load_config
    from iamflow.runtime import _tiny, wan_convolutions

    assert load_config().codec.wan_convolutions == "auto"
    with pytest.raises(ConfigError, match=r"codec\.wan_convolutions must be one of auto, 3d, 2d \(got 'conv2d'\)"):
        load_config(overrides=["codec.wan_convolutions=conv2d"])
    # auto: 2-D for an eager decoder on a GPU, 3-D for a compiled one and on a CPU; a choice written is kept
    auto, compiled = load_config(), load_config(overrides=["runtime.compile_decoder=true"])
    assert [wan_convolutions(auto, "cuda:1"), wan_convolutions(compiled, "cuda"), wan_convolutions(auto, "cpu")] \
        == ["2d", "3d", "3d"]
    assert wan_convolutions(load_config(overrides=["codec.wan_convolutions=2d"]), "cpu") == "2d"
    assert _tiny(load_config(preset="tiny"))[1].convolutions == "3d"  # (this CPU)
    _, codec, _ = _tiny(load_config(preset="tiny", overrides=["codec.wan_convolutions=2d"]))
    assert codec.convolutions == "2d"
    assert codec.decode(torch.zeros(1, codec.latent_channels, 2, 2, 3)).shape[2] == 5


@pytest.mark.gpu
def test_2d_convolutions_follow_the_3d_ones_on_gpu():
    """The Wan2.1 VAE's full width on a GPU: in float32 (TF32 off) the 2-D taps give the 3-D convolution's video
    within rounding; in bf16, eager and compiled, within bf16 rounding of it; streaming equals a full decode."""
    torch.manual_seed(0)
    with torch.device("cuda"):
        vae = AutoencoderKLWan().eval()
    latents = torch.randn(1, 16, 4, 16, 24, device="cuda", generator=torch.Generator(device="cuda").manual_seed(3))
    codec = WanVAECodec(vae)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        exact = codec.decode(latents)
        codec.use_convolutions("2d")
        torch.testing.assert_close(codec.decode(latents), exact, rtol=0, atol=1e-4)
    vae.to(torch.bfloat16)
    reference = codec.use_convolutions("3d").decode(latents)
    two_d = codec.use_convolutions("2d").decode(latents)
    assert torch.equal(torch.cat(stream_decode(codec, latents, [1, 2, 1]), dim=2), two_d)
    assert (two_d.float() - exact).abs().mean() < 2 * (reference.float() - exact).abs().mean() + 1e-3
    vae.decoder.compile(dynamic=False)
    compiled = codec.decode(latents)
    assert (compiled.float() - two_d.float()).abs().mean() < 1e-2
