"""The generator is exact: diffusers parity, cached chunks equal one masked forward, the sampler's timesteps,
and a long story whose late chunks see and write as much cache as early ones."""

import threading

import pytest
import torch
from diffusers import WanTransformer3DModel

from iamflow.config import ConfigError, load_config, merge_overrides, parse_overrides
from iamflow.engine.checkpoints import convert_diffusers_to_wan
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel
from iamflow.engine.sampler import FlowSampler


def tiny(**cache):
    overrides = {"cache": cache} if cache else None
    return load_config(preset="tiny", overrides=overrides)


def random_model(cfg, seed=0):
    torch.manual_seed(seed)
    model = CausalWanModel(cfg.model).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_full_forward_matches_diffusers():
    cfg = tiny().model
    torch.manual_seed(0)
    reference = WanTransformer3DModel(
        patch_size=cfg.patch_size, num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels, out_channels=cfg.out_channels, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        eps=cfg.eps,
    ).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.2)
    model = CausalWanModel(cfg).eval()
    model.load_state_dict(convert_diffusers_to_wan(reference.state_dict()), strict=True)

    x = torch.randn(2, cfg.in_channels, 5, 8, 12)
    context = torch.randn(2, cfg.text_len, cfg.text_dim)
    context[:, 9:] = 0  # zeroed padding, as the text encoders give it
    with torch.no_grad():
        # one timestep for the whole video (Wan2.1)
        ours = model(x, torch.full((2, 5), 731.0), context)
        theirs = reference(x, torch.tensor([731.0, 731.0]), context, return_dict=False)[0]
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4), (ours - theirs).abs().max()
        # a timestep per frame equals diffusers' per-token timesteps
        t = torch.tensor([[1000.0, 1000, 937.5, 937.5, 0], [625.0, 500, 250, 100, 0]])
        ours = model(x, t, context)
        theirs = reference(x, t.repeat_interleave(4 * 6, dim=1), context, return_dict=False)[0]
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4), (ours - theirs).abs().max()


def _record_calls(model):
    calls = []

    def hook(module, args, kwargs, output):
        calls.append((args[0].clone(), args[1].clone(), kwargs["frame_offset"], output.clone()))

    return calls, model.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize(
    "cache",
    [
        {"frames_per_chunk": 3, "sink_frames": 0, "local_window_frames": 15, "max_memory_frames": 3},  # nothing evicted
        {"frames_per_chunk": 3, "sink_frames": 3, "local_window_frames": 6, "max_memory_frames": 2},  # sink + rolling window
        {"frames_per_chunk": 1, "sink_frames": 0, "local_window_frames": 2, "max_memory_frames": 0},  # window only
    ],
)
def test_cached_chunks_equal_one_masked_forward(cache):
    cfg = tiny(**cache)
    engine = Engine(random_model(cfg), cfg)
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    num_chunks = 5
    calls, handle = _record_calls(engine.model)
    chunks = list(engine.generate(text, num_chunks, torch.Generator().manual_seed(3)))
    handle.remove()
    clean = torch.cat(chunks, dim=2)
    fpc = cfg.cache.frames_per_chunk
    mask_args = dict(frames_per_chunk=fpc, local_window_frames=cfg.cache.local_window_frames, sink_frames=cfg.cache.sink_frames)
    steps = len(engine.sampler) + 1  # denoising steps + the commit pass
    assert len(calls) == num_chunks * steps

    with torch.no_grad():
        # the commit passes of all chunks equal one forward over the clean video at t = 0
        full = engine.model(clean, torch.zeros(1, clean.shape[2]), text, **mask_args)
        commits = torch.cat([calls[c * steps + steps - 1][3] for c in range(num_chunks)], dim=2)
        assert torch.allclose(commits, full, atol=2e-5, rtol=1e-4), (commits - full).abs().max()

        # every denoising step equals a masked forward of the clean prefix plus the noisy chunk
        for index, (x, t, offset, out) in enumerate(calls):
            c = index // steps
            assert offset == c * fpc
            prefix = clean[:, :, : c * fpc]
            video = torch.cat([prefix, x], dim=2)
            times = torch.cat([torch.zeros(1, prefix.shape[2]), t], dim=1)
            expected = engine.model(video, times, text, **mask_args)[:, :, c * fpc :]
            assert torch.allclose(out, expected, atol=2e-5, rtol=1e-4), (index, (out - expected).abs().max())


def test_window_really_forgets():
    """With a rolling window the result must differ from attending to everything (the mask is not vacuous)."""
    cfg = tiny(frames_per_chunk=1, sink_frames=0, local_window_frames=2, max_memory_frames=0)
    model = random_model(cfg)
    x = torch.randn(1, cfg.model.in_channels, 5, 4, 6)
    text = model.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    with torch.no_grad():
        windowed = model(x, torch.zeros(1, 5), text, frames_per_chunk=1, local_window_frames=2)
        causal = model(x, torch.zeros(1, 5), text, frames_per_chunk=1)
    assert torch.allclose(windowed[:, :, :2], causal[:, :, :2], atol=1e-6)
    assert not torch.allclose(windowed[:, :, 4], causal[:, :, 4], atol=1e-3)


def test_query_capture_records_the_scoring_layers_while_its_block_is_open():
    """``model.capturing(layers)``: a commit pass inside records, per scoring layer, each frame's mean query of the
    hidden states its cross-attention sees, and nothing else changes; leaving the block (even by an exception)
    ends the capture; another thread's pass is never recorded."""
    cfg = load_config(preset="tiny", overrides={"model": {"num_layers": 3}})
    engine = Engine(random_model(cfg), cfg)
    model = engine.model
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    fpc = cfg.cache.frames_per_chunk
    x0 = engine.noise(torch.Generator().manual_seed(1), fpc)
    seen = {}  # the direct computation's input: what each block's cross-attention reads, from torch's own hook (eager)
    hooks = [block.cross_attn.register_forward_hook(lambda module, args, out, i=i: seen.__setitem__(i, args[0]))
             for i, block in enumerate(model.blocks)]
    plain = engine.new_cache()
    engine.commit_chunk(plain, text, x0, 0)
    cache = engine.new_cache()
    with model.capturing([0, 2]) as captured:
        engine.commit_chunk(cache, text, x0, 0)
    for hook in hooks:
        hook.remove()

    frames = fpc // cfg.model.patch_size[0]
    assert sorted(captured.queries) == [0, 2]
    with torch.no_grad():
        for layer in (0, 2):
            expected = model.blocks[layer].cross_attn.mean_query(seen[layer], frames)
            assert captured[layer].shape == (1, frames, cfg.model.num_heads, cfg.model.head_dim)
            assert torch.equal(captured[layer], expected)
    with pytest.raises(KeyError, match="no query captured on layer 1"):
        captured[1]
    assert torch.equal(cache.keys, plain.keys) and torch.equal(cache.values, plain.values)  # capturing changes no bit

    kept = dict(captured.queries)
    engine.commit_chunk(cache, text, x0, fpc)  # after the block: no capture
    assert all(captured.queries[layer] is kept[layer] for layer in (0, 2)) and len(captured.queries) == 2

    with pytest.raises(ValueError):
        with model.capturing([1]) as failed:
            raise ValueError("a pass that fails")
    with model.capturing([1]) as again:  # the failed block's capture is gone: a new one may open
        with pytest.raises(RuntimeError, match="already active"):
            with model.capturing([0]):
                pass
        other = threading.Thread(target=engine.commit_chunk, args=(engine.new_cache(), text, x0, 0))
        other.start()
        other.join()
        assert again.queries == {}  # another thread's pass is not this block's
        engine.commit_chunk(engine.new_cache(), text, x0, 0)
    assert sorted(again.queries) == [1] and failed.queries == {}


def test_capturing_any_scoring_layers_compiles_one_graph_for_all_blocks():
    """The compiled blocks get a bool, not a layer index: after one capturing pass, capturing other layers (or
    none) compiles nothing more, and the compiled blocks capture the eager queries bit for bit. (Dynamo's own
    "eager" backend: the guards, hence the recompiles, are the same as the GPU's.)"""
    import torch._dynamo

    cfg = load_config(preset="tiny", overrides={"model": {"num_layers": 4}})
    engine = Engine(random_model(cfg), cfg)
    model = engine.model
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    x0 = engine.noise(torch.Generator().manual_seed(1), cfg.cache.frames_per_chunk)
    with model.capturing([0, 2]) as eager:
        engine.commit_chunk(engine.new_cache(), text, x0, 0)
    torch._dynamo.reset()
    try:
        for block in model.blocks:
            block.compile(backend="eager", dynamic=False)
        engine.commit_chunk(engine.new_cache(), text, x0, 0)
        with model.capturing([0, 2]) as compiled:
            engine.commit_chunk(engine.new_cache(), text, x0, 0)
        assert all(torch.equal(compiled[layer], eager[layer]) for layer in (0, 2))
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        for layers in ([1], [0, 1, 2, 3], []):
            with model.capturing(layers) as captured:
                engine.commit_chunk(engine.new_cache(), text, x0, 0)
            assert sorted(captured.queries) == layers
        engine.commit_chunk(engine.new_cache(), text, x0, 0)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    finally:
        torch._dynamo.reset()


def test_sampler_timesteps_are_exact():
    sampler = FlowSampler(load_config().sampler)
    assert sampler.timesteps.tolist() == pytest.approx([1000.0, 937.5, 833.3333333, 625.0], abs=1e-4)
    assert sampler.sigmas.tolist() == pytest.approx([1.0, 0.9375, 0.8333333, 0.625], abs=1e-6)
    assert load_config().model.head_dim == 128 and load_config().tokens_per_frame == 1560


@pytest.mark.parametrize("renoise", ["fresh", "predicted", "mixed"])
def test_each_step_renoises_as_configured(renoise):
    """fresh: x' = (1 - s') x0 + s' * new noise from the generator; predicted: exactly an Euler step of the flow
    ODE, x' = x + (s' - s) v (no noise drawn after the first); mixed: the noise is sqrt(1 - f) * the predicted
    noise + sqrt(f) * new noise."""
    cfg = load_config(preset="tiny", overrides={"sampler": {"renoise": renoise, "renoise_fresh": 0.3}})
    engine = Engine(random_model(cfg), cfg)
    text = engine.model.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    calls = []
    forward = engine.model.forward

    def spy(x, t, *args, **kwargs):
        out = forward(x, t, *args, **kwargs)
        calls.append((x.clone(), out.clone()))
        return out

    engine.model.forward = spy
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        engine.denoise_chunk(engine.new_cache(), text, 0, generator)
    sigmas = engine.sampler.sigmas.tolist()
    replay = torch.Generator().manual_seed(3)
    engine.noise(replay, cfg.cache.frames_per_chunk)  # the chunk's starting noise
    for i in range(len(sigmas) - 1):
        (x, v), (x_next, _) = calls[i], calls[i + 1]
        x0 = x.double() - sigmas[i] * v.double()
        predicted = (x.double() - (1 - sigmas[i]) * x0) / sigmas[i]
        if renoise == "predicted":
            expected = x.double() + (sigmas[i + 1] - sigmas[i]) * v.double()
            assert torch.allclose(expected, (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * predicted, atol=1e-6)
        else:
            fresh = torch.randn(x.shape, generator=replay).double()
            noise = fresh if renoise == "fresh" else 0.7**0.5 * predicted + 0.3**0.5 * fresh
            expected = (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * noise
        assert torch.allclose(x_next.double(), expected, atol=1e-5), (i, (x_next - expected).abs().max())
    with pytest.raises(ConfigError, match="renoise"):
        load_config(preset="tiny", overrides={"sampler": {"renoise": "euler"}})
    with pytest.raises(ConfigError, match="renoise_fresh"):
        load_config(preset="tiny", overrides={"sampler": {"renoise": "mixed", "renoise_fresh": 1.5}})


def _assert_euler_steps(inputs, velocities, sigmas, x0):
    """Each denoising input is the last one moved along its (guided) velocity by the step in sigma; ``x0`` is the
    last input moved to sigma 0."""
    for k in range(len(sigmas) - 1):
        expected = inputs[k] + (sigmas[k + 1] - sigmas[k]) * velocities[k]
        assert torch.allclose(inputs[k + 1], expected, atol=1e-5), k
    assert torch.allclose(x0.double(), inputs[-1] - sigmas[-1] * velocities[-1], atol=1e-5)


def test_guided_steps_mix_prompt_and_empty_prompt():
    """guidance_scale g on the first guidance_steps steps: v = v(empty) + g * (v(prompt) - v(empty)), the empty
    prompt's pass seeing the same cache; later steps run one pass. Checked through exact Euler steps."""
    overrides = {"sampler": {"renoise": "predicted", "guidance_scale": 2.5, "guidance_steps": "2"}}
    cfg = load_config(preset="tiny", overrides=overrides)
    assert cfg.sampler.guidance_steps == 2 and cfg.sampler.guided_steps == 2
    engine = Engine(random_model(cfg), cfg)
    text = engine.model.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    empty = engine.model.encode_text(torch.zeros(1, cfg.model.text_len, cfg.model.text_dim))
    cache = engine.new_cache()
    list(engine.generate(text, 1, torch.Generator().manual_seed(0), cache=cache, uncond=empty))  # some context
    calls = []
    forward = engine.model.forward

    def spy(x, t, conditioning, *args, **kwargs):
        out = forward(x, t, conditioning, *args, **kwargs)
        calls.append((x.clone(), conditioning is empty, out.clone().double()))
        return out

    engine.model.forward = spy
    with torch.no_grad():
        x0 = engine.denoise_chunk(cache, text, cfg.cache.frames_per_chunk, torch.Generator().manual_seed(3), uncond=empty)
    sigmas = engine.sampler.sigmas.tolist()
    assert [e for _, e, _ in calls] == [False, True, False, True] + [False] * (len(sigmas) - 2)
    velocities, inputs = [], []
    i = 0
    while i < len(calls):
        x, _, v = calls[i]
        if i + 1 < len(calls) and calls[i + 1][1]:
            plain = calls[i + 1][2]
            assert torch.equal(calls[i + 1][0], x)
            v, i = plain + 2.5 * (v - plain), i + 2
        else:
            i += 1
        velocities.append(v), inputs.append(x.double())
    _assert_euler_steps(inputs, velocities, sigmas, x0)
    with pytest.raises(ValueError, match="uncond"):
        engine.denoise_chunk(cache, text, 0, torch.Generator())
    for bad, match in (({"guidance_scale": 0.5}, "guidance_scale"), ({"guidance_steps": 99}, "guidance_steps")):
        with pytest.raises(ConfigError, match=match):
            load_config(preset="tiny", overrides={"sampler": {"guidance_scale": 2.0, **bad}})
    assert load_config(preset="tiny").sampler.guided_steps == 0  # off by default: one pass a step


def test_context_guided_steps_lean_on_the_cache():
    """context_guidance_scale c on the first context_guidance_steps steps: v = v1 + (c - 1) * (v1 - va), va the
    prompt's pass over the chunk alone (it sees none of the cache); a chunk with nothing cached makes no such pass.
    Checked through exact Euler steps."""
    overrides = {"sampler": {"renoise": "predicted", "context_guidance_scale": 2.5, "context_guidance_steps": 2}}
    cfg = load_config(preset="tiny", overrides=overrides)
    assert cfg.sampler.context_guided_steps == 2 and cfg.sampler.guided_steps == 0
    engine = Engine(random_model(cfg), cfg)
    text = engine.model.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    cache = engine.new_cache()
    calls = []
    forward = engine.model.forward

    def spy(x, t, conditioning, *args, **kwargs):
        out = forward(x, t, conditioning, *args, **kwargs)
        w = kwargs["write"]
        calls.append((x.clone(), w.visible_start == w.token_start, out.clone().double()))
        return out

    engine.model.forward = spy
    with torch.no_grad():
        list(engine.generate(text, 1, torch.Generator().manual_seed(0), cache=cache))  # the first chunk sees only itself
        assert [alone for _, alone, _ in calls] == [True] * (len(engine.sampler) + 1)  # one pass a step, then commit
        calls.clear()
        x0 = engine.denoise_chunk(cache, text, cfg.cache.frames_per_chunk, torch.Generator().manual_seed(3))
    sigmas = engine.sampler.sigmas.tolist()
    assert [alone for _, alone, _ in calls] == [False, True, False, True] + [False] * (len(sigmas) - 2)
    assert not torch.allclose(calls[0][2], calls[1][2])  # the cache changes the velocity
    velocities, inputs = [], []
    i = 0
    while i < len(calls):
        x, _, v = calls[i]
        if i + 1 < len(calls) and calls[i + 1][1]:
            assert torch.equal(calls[i + 1][0], x)
            v, i = v + 1.5 * (v - calls[i + 1][2]), i + 2
        else:
            i += 1
        velocities.append(v), inputs.append(x.double())
    _assert_euler_steps(inputs, velocities, sigmas, x0)
    for bad, match in (({"context_guidance_scale": 0.5}, "context_guidance_scale"),
                       ({"context_guidance_scale": 2.0, "context_guidance_steps": 0}, "context_guidance_steps"),
                       ({"context_guidance_chunks": 0}, "context_guidance_chunks")):
        with pytest.raises(ConfigError, match=match):
            load_config(preset="tiny", overrides={"sampler": bad})
    assert load_config(preset="tiny").sampler.context_guided_steps == 0  # off by default


def test_wan_preset_has_the_published_size():
    cfg = load_config(preset="wan2.1-t2v-1.3b").model
    with torch.device("meta"):
        model = CausalWanModel(cfg)
    params = sum(p.numel() for p in model.parameters())
    assert 1.41e9 < params < 1.43e9, params
    assert model.rope.split == (44, 42, 42)


def test_long_story_has_flat_chunk_cost():
    """2,000 latent frames through the rolling cache: no crash past any position table, and a late chunk sees and
    writes as much of the cache as an early one."""
    cfg = tiny(frames_per_chunk=3, sink_frames=3, local_window_frames=9, max_memory_frames=3)
    engine = Engine(random_model(cfg), cfg)
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    generator = torch.Generator().manual_seed(0)
    late_cache, early_cache = engine.new_cache(), engine.new_cache()
    num_chunks = -(-2000 // 3)
    chunks = list(engine.generate(text, num_chunks, generator, cache=late_cache))
    assert len(chunks) * 3 >= 2000 and all(torch.isfinite(c).all() for c in chunks[-10:])
    list(engine.generate(text, 10, generator, cache=early_cache))

    # a chunk's cost is its attention over the keys it sees and the cache it writes: the same at frame 2,000 as at
    # frame 30 (the speed itself is measured by `python -m iamflow.bench --long-chunks`, not here)
    late, early = late_cache.next_chunk_write(), early_cache.next_chunk_write()
    assert late.visible_end - late.visible_start == early.visible_end - early.visible_start
    assert late_cache.keys.shape == early_cache.keys.shape
    chunk_a = list(engine.generate(text, 1, torch.Generator().manual_seed(1), cache=late_cache,
                                   frame_offset=3 * num_chunks))[0]
    assert torch.isfinite(chunk_a).all()


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="cache.local_window_frames"):
        load_config(preset="tiny", overrides=["cache.local_window_frames=4"])
    with pytest.raises(ConfigError, match="did you mean cache.max_memory_frames"):
        load_config(overrides=["cache.max_memory_frame=3"])
    with pytest.raises(ConfigError, match="memory.policy must be one of none, sink, nam, iam"):
        load_config(overrides=["memory.policy=best"])
    with pytest.raises(ConfigError, match="model.num_layers must be int"):
        load_config(overrides=["model.num_layers=many"])
    assert load_config(overrides=["cache.max_memory_frames=5"]).cache.max_memory_frames == 5


def test_typed_overrides_get_the_same_checks_as_command_line_strings():
    """A nested dict of values (what the batch modes pass) and section.key=value strings (what a person types)
    give the same config and the same messages; the strings are read once into that dict."""
    strings = ["cache.max_memory_frames=2", "memory.transition=soft", "runtime.devices=[cpu, cpu]",
               "sampler.guidance_steps=null", "cache.max_memory_frames=4"]
    typed = {"cache": {"max_memory_frames": 4}, "memory": {"transition": "soft"}, "runtime": {"devices": ["cpu", "cpu"]},
             "sampler": {"guidance_steps": None}}
    assert parse_overrides(strings) == typed  # a later string wins, sections are merged
    assert load_config(overrides="cache.max_memory_frames=4").cache.max_memory_frames == 4  # one string alone
    assert load_config(preset="tiny", overrides=typed) == load_config(preset="tiny", overrides=strings)
    assert merge_overrides(typed, {"cache": {"sink_frames": 0}})["cache"] == {"max_memory_frames": 4, "sink_frames": 0}
    for text, value in [("cache.max_memory_frame=3", {"cache": {"max_memory_frame": 3}}),
                        ("memory.policy=best", {"memory": {"policy": "best"}}),
                        ("model.num_layers=many", {"model": {"num_layers": "many"}}),
                        ("memory=iam", {"memory": "iam"})]:
        with pytest.raises(ConfigError) as from_text:
            load_config(overrides=[text])
        with pytest.raises(ConfigError) as from_dict:
            load_config(overrides=value)
        assert str(from_text.value) == str(from_dict.value)
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        parse_overrides(["cache.max_memory_frames"])


@pytest.mark.parametrize("rewrite_sink", [True, False])
def test_batched_recache_equals_chunk_by_chunk(rewrite_sink):
    """A scene switch re-caches the sink and the window in one block-causal pass: the same K/V, and the same next
    chunk, as committing them one by one."""
    cfg = tiny(frames_per_chunk=3, sink_frames=3, local_window_frames=9, max_memory_frames=2)
    engine = Engine(random_model(cfg), cfg)
    old = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    new = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim))
    caches = []
    for batched in (False, True):
        cache = engine.new_cache()
        generator = torch.Generator().manual_seed(5)
        memory = engine.noise(generator, 2)
        engine.write_memory(cache, old, memory, frame_positions=[1, 4])
        chunks = list(engine.generate(old, 5, generator, cache=cache))
        window = torch.cat(chunks[2:], dim=2)  # the 3 chunks the ring holds
        engine.recache(cache, new, window, 6, sink=chunks[0] if rewrite_sink else None, batched=batched)
        assert cache.local_filled_frames == 9 and cache.visible_frames == 2 + 3 + 9
        after = engine.denoise_chunk(cache, new, 15, torch.Generator().manual_seed(9))
        caches.append((cache, after))
    (serial, serial_next), (batched, batched_next) = caches
    for a, b in ((serial.keys, batched.keys), (serial.values, batched.values)):
        assert torch.allclose(a, b, atol=2e-5, rtol=1e-4), (a - b).abs().max()
    assert torch.allclose(serial_next, batched_next, atol=1e-4, rtol=1e-4), (serial_next - batched_next).abs().max()


def test_cuda_graphs_on_a_cpu_is_a_clear_error():
    from iamflow.runtime import build_runtime

    config = load_config(preset="tiny", overrides=["runtime.device=cpu", "runtime.cuda_graphs=true"])
    with pytest.raises(ConfigError, match="runtime.cuda_graphs needs the model on a CUDA GPU .* set runtime.cuda_graphs=false"):
        build_runtime(config)
