"""Tiny TAEHV decoder for Wan2.1 latents: streaming equals a full decode, frame counts, strict weights, config."""

import logging

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from iamflow.config import ConfigError, load_config
from iamflow.engine.codec import StateDictMismatchError, VideoCodec
from iamflow.engine.tiny_decoder import (
    TinyDecoderCodec,
    TinyDecoderConfig,
    TinyDecoderNet,
    build_random_tiny_codec,
)
from iamflow.runtime import check_weights, wan_codec

from helpers import stream_decode

# The real layout (3 stages of 3 memory blocks, 4x time, 8x space) at small widths, so a decode takes milliseconds.
SMALL = TinyDecoderConfig(latent_channels=4, widths=(16, 8, 8, 8))


@pytest.fixture(scope="module")
def codec():
    return build_random_tiny_codec("cpu", torch.float32, config=SMALL, seed=0)


@pytest.fixture(scope="module")
def latents():
    return torch.randn(2, 4, 7, 3, 4, generator=torch.Generator().manual_seed(1))  # [B, C, t, h, w]


def _interior(video):
    """Share of values strictly inside (-1, 1): an equality of saturated videos would prove nothing."""
    return ((video > -1) & (video < 1)).float().mean().item()


@pytest.mark.parametrize("sizes", [[3, 3, 1], [1] * 7, [2, 4, 1], [7]])
def test_streaming_decode_is_bit_exact_with_full_decode(codec, latents, sizes):
    full = codec.decode(latents)
    assert isinstance(codec, VideoCodec)
    assert full.shape == (2, 3, codec.num_video_frames(7), 24, 32) == (2, 3, 25, 24, 32)
    assert full.min() >= -1 and full.max() <= 1 and _interior(full) > 0.2
    chunks = stream_decode(codec, latents, sizes)
    # the contract: temporal_factor*(t-1)+1 frames on the first call, temporal_factor*t on every later one
    assert [c.shape[2] for c in chunks] == [4 * sizes[0] - 3] + [4 * s for s in sizes[1:]]
    assert torch.equal(torch.cat(chunks, dim=2), full)


def test_one_video_streams_bit_exact_at_a_real_input_size():
    # One video, as the app decodes: PyTorch sends a single small image (under 20480 input values) to another
    # conv kernel than a batch, so this runs at a latent size past that (26x50x16 values; Wan's is 60x104x16).
    codec = build_random_tiny_codec("cpu", torch.float32, config=TinyDecoderConfig(widths=(16, 4, 4, 4)), seed=2)
    latents = torch.randn(1, 16, 3, 26, 50, generator=torch.Generator().manual_seed(3))
    full = codec.decode(latents)
    assert full.shape == (1, 3, 9, 208, 400) and _interior(full) > 0.2
    assert torch.equal(torch.cat(stream_decode(codec, latents, [1, 1, 1]), dim=2), full)


def test_full_shape_decoder_streams_bit_exact():
    codec = build_random_tiny_codec("cpu", torch.float32)  # taew2_1's widths 256/128/64/64
    latents = torch.randn(2, 16, 3, 2, 3, generator=torch.Generator().manual_seed(4))
    full = codec.decode(latents)
    assert full.shape == (2, 3, 9, 16, 24) and _interior(full) > 0.1
    assert torch.equal(torch.cat(stream_decode(codec, latents, [1, 2]), dim=2), full)


def test_reset_starts_a_new_video(codec, latents):
    decoder = codec.stream_decoder()
    decoder.decode(latents[:, :, :3])
    decoder.reset()
    assert torch.equal(decoder.decode(latents[:, :, 3:6]), codec.decode(latents[:, :, 3:6]))


def test_channels_last_decodes_the_same_video(latents):
    # the layout used on CUDA; on the CPU its kernels round differently, so this compares to float tolerance
    plain = build_random_tiny_codec("cpu", torch.float32, config=SMALL, seed=0, channels_last=False)
    nhwc = build_random_tiny_codec("cpu", torch.float32, config=SMALL, seed=0, channels_last=True)
    assert nhwc.net.decoder[1].weight.is_contiguous(memory_format=torch.channels_last)
    expected = torch.cat(stream_decode(plain, latents[:, :, :4], [1, 3]), dim=2)
    torch.testing.assert_close(torch.cat(stream_decode(nhwc, latents[:, :, :4], [1, 3]), dim=2), expected, rtol=0, atol=1e-5)
    one_video = latents[:1, :, :4]
    torch.testing.assert_close(nhwc.decode(one_video), plain.decode(one_video), rtol=0, atol=1e-5)


def test_bad_latents_and_encode_say_what_to_do(codec, latents):
    with pytest.raises(ValueError, match=r"latents must be \[B, 4, t, h, w\]"):
        codec.decode(latents[:, :3])
    decoder = codec.stream_decoder()
    decoder.decode(latents[:, :, :1])
    with pytest.raises(ValueError, match=r"decodes 2 video\(s\) at a time, not 1"):
        decoder.decode(latents[:1, :, 1:2])
    with pytest.raises(NotImplementedError, match="only decodes.*codec.decoder=wan"):
        codec.encode(torch.zeros(1, 3, 5, 24, 32))


def test_full_shape_keys_are_taew2_1s():
    with torch.device("meta"):
        state = TinyDecoderNet().state_dict()
    # 2 (first conv) + 9 memory blocks x 3 convs x 2 + 3 temporal grows + 3 stage convs + 2 (RGB conv)
    assert len(state) == 64 and all(k.startswith("decoder.") for k in state)
    shapes = {
        "decoder.1.weight": (256, 16, 3, 3), "decoder.1.bias": (256,),
        "decoder.3.conv.0.weight": (256, 512, 3, 3), "decoder.5.conv.4.bias": (256,),
        "decoder.7.conv.weight": (256, 256, 1, 1), "decoder.8.weight": (128, 256, 3, 3),
        "decoder.11.conv.2.weight": (128, 128, 3, 3), "decoder.13.conv.weight": (256, 128, 1, 1),
        "decoder.14.weight": (64, 128, 3, 3), "decoder.15.conv.0.weight": (64, 128, 3, 3),
        "decoder.19.conv.weight": (128, 64, 1, 1), "decoder.20.weight": (64, 64, 3, 3),
        "decoder.22.weight": (3, 64, 3, 3), "decoder.22.bias": (3,),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert not any(k.endswith("skip.weight") for k in state) and "decoder.8.bias" not in state


def _saved_weights(codec):
    """The codec's decoder tensors plus encoder tensors, as TAEHV's files hold both."""
    state = {k: v.clone() for k, v in codec.net.state_dict().items()}
    state["encoder.0.weight"] = torch.randn(64, 3, 3, 3)
    state["encoder.2.conv.weight"] = torch.randn(64, 128, 1, 1)
    return state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_round_trips_and_encoder_keys_are_set_aside(codec, latents, tmp_path, suffix, caplog):
    path = tmp_path / f"taew2_1{suffix}"
    state = _saved_weights(codec)
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    with caplog.at_level(logging.INFO, logger="iamflow.engine.tiny_decoder"):
        loaded = TinyDecoderCodec.from_file(path, config=SMALL, device="cpu")
    assert "2 encoder tensors ignored" in caplog.text
    assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"
    assert torch.equal(loaded.decode(latents), codec.decode(latents))


def test_weights_file_with_a_missing_or_unexpected_key_names_it(codec, tmp_path):
    good = _saved_weights(codec)
    cases = {
        "missing.pth": ({k: v for k, v in good.items() if k != "decoder.13.conv.weight"},
                        r"1 missing key\(s\): decoder\.13\.conv\.weight"),
        "unexpected.safetensors": ({**good, "decoder.23.weight": torch.zeros(3, 3, 3, 3)},
                                   r"1 unexpected key\(s\): decoder\.23\.weight"),
        "shape.pth": ({**good, "decoder.7.conv.weight": torch.zeros(32, 16, 1, 1)},
                      r"1 wrong shape key\(s\): decoder\.7\.conv\.weight \(checkpoint \(32, 16, 1, 1\), "
                      r"model \(16, 16, 1, 1\)\)"),
    }
    for name, (state, message) in cases.items():
        path = tmp_path / name
        torch.save(state, path) if name.endswith(".pth") else save_file(state, str(path))
        with pytest.raises(StateDictMismatchError, match=message):
            TinyDecoderCodec.from_file(path, config=SMALL, device="cpu")
    with pytest.raises(FileNotFoundError, match="weights.tiny_decoder_path"):
        TinyDecoderCodec.from_file(tmp_path / "nowhere.pth", config=SMALL, device="cpu")


def test_config_errors_name_the_key_to_set(tmp_path):
    assert load_config().codec.decoder == "wan"
    with pytest.raises(ConfigError, match=r"codec\.decoder must be one of wan, tiny \(got 'taehv'\)"):
        load_config(overrides=["codec.decoder=taehv"])
    with pytest.raises(ConfigError, match=r"codec\.decoder=tiny needs weights\.tiny_decoder_path"):
        load_config(overrides=["codec.decoder=tiny"])
    with pytest.raises(ConfigError, match=r"needs preset wan2\.1-t2v-1\.3b \(got preset storyworld"):
        load_config(preset="storyworld", overrides=["codec.decoder=tiny", "weights.tiny_decoder_path=/x.pth"])
    with pytest.raises(ConfigError, match=r"unknown config key 'codec\.decodr'; did you mean codec\.decoder\?"):
        load_config(overrides=["codec.decodr=tiny"])

    others = ["weights.generator_ckpt=" + str(tmp_path), "weights.text_encoder_path=" + str(tmp_path)]
    missing = tmp_path / "taew2_1.pth"
    config = load_config(overrides=[*others, "codec.decoder=tiny", f"weights.tiny_decoder_path={missing}"])
    with pytest.raises(ConfigError, match=r"weights\.tiny_decoder_path points to .*taew2_1\.pth, which does not exist"):
        check_weights(config)  # weights.vae_path is not asked for: the tiny decoder replaces the Wan VAE
    with pytest.raises(ConfigError, match=r"set weights\.vae_path"):
        check_weights(load_config(overrides=others))


def test_the_wan_preset_builds_the_tiny_codec_from_the_config(tmp_path):
    net_config = TinyDecoderConfig()  # taew2_1's shape: what the Wan preset loads
    state = build_random_tiny_codec("cpu", torch.float32, config=net_config, seed=5).net.state_dict()
    path = tmp_path / "taew2_1.safetensors"
    save_file(state, str(path))
    config = load_config(overrides=["codec.decoder=tiny", f"weights.tiny_decoder_path={path}"])
    codec = wan_codec(config, torch.device("cpu"), torch.float32)
    assert isinstance(codec, TinyDecoderCodec) and (codec.latent_channels, codec.temporal_factor) == (16, 4)
    assert codec.spatial_factor == 8 and codec.fps == config.video.fps and not codec.channels_last
    assert all(torch.equal(codec.net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.gpu
def test_cuda_channels_last_decode_follows_the_cpu_one():
    # Wan's latent size; the CPU float32 decode is the reference for the CUDA paths (channels-last, TF32 off)
    latents = torch.randn(1, 16, 6, 60, 104, generator=torch.Generator().manual_seed(7))
    expected = build_random_tiny_codec("cpu", torch.float32, seed=7).decode(latents)
    fp32 = build_random_tiny_codec("cuda", torch.float32, seed=7)
    bf16 = build_random_tiny_codec("cuda", torch.bfloat16, seed=7)
    assert fp32.channels_last and bf16.channels_last
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        streamed = torch.cat(stream_decode(fp32, latents.cuda(), [3, 3]), dim=2).cpu()
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-3)
    low = torch.cat(stream_decode(bf16, latents.cuda(), [3, 3]), dim=2).float().cpu()
    assert low.shape == expected.shape == (1, 3, 21, 480, 832)
    assert (low - expected).abs().mean() < 0.05  # bf16 rounding through 24 convs


@pytest.mark.slow  # loads the tiny runtime and the agent's models
def test_a_story_session_streams_its_scene_through_the_tiny_decoder():
    from iamflow.engine.codec import to_uint8
    from iamflow.session import Runtime, StorySession

    base = Runtime.load(load_config(preset="tiny"))  # the tiny DiT (4 latent channels, 32x48 video)
    codec = build_random_tiny_codec("cpu", torch.float32, config=SMALL, seed=8)
    runtime = Runtime(base.config, base.engine, codec, base.text_encoder)
    session = StorySession(runtime)
    events = list(session.add_scene("A young man in a red jacket walks through a sunny park.", seconds=2.0, seed=1))
    assert [e.frames.shape for e in events] == [(9, 32, 48, 3), (12, 32, 48, 3), (12, 32, 48, 3)]
    # what the viewer got chunk by chunk is the one-shot decode of the scene's latents
    whole = to_uint8(codec.decode(torch.cat(session.latents[:], dim=2)))  # (every chunk, read back as a list)
    assert np.array_equal(session.story_frames(), whole)
