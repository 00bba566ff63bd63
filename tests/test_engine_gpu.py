"""GPU checks of the engine (run on the lent GPU machine with `pytest -m gpu`, never in CI)."""

import pytest
import torch

from iamflow.config import load_config
from iamflow.engine.engine import Engine
from iamflow.engine.model import CausalWanModel

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_cached_chunks_follow_the_masked_forward_on_gpu(compiled):
    cfg = load_config(preset="tiny", overrides={"cache": {"sink_frames": 3, "local_window_frames": 6, "max_memory_frames": 0}})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = CausalWanModel(cfg.model)
    model.to_inference_dtype(torch.bfloat16)
    if compiled:
        model.compile_blocks()
    engine = Engine(model, cfg)
    text = engine.encode_text(torch.randn(1, cfg.model.text_len, cfg.model.text_dim, device="cuda"))
    chunks = list(engine.generate(text, 4, torch.Generator(device="cuda").manual_seed(0)))
    clean = torch.cat(chunks, dim=2)
    cache = engine.new_cache()
    outputs = []
    with torch.no_grad():
        for c in range(4):
            write = cache.next_chunk_write()
            t = torch.zeros(1, 3, device="cuda")
            outputs.append(model(clean[:, :, 3 * c : 3 * c + 3], t, text, frame_offset=3 * c, cache=cache, write=write))
            cache.commit_chunk()
        full = model(clean, torch.zeros(1, 12, device="cuda"), text, frames_per_chunk=3, local_window_frames=6, sink_frames=3)
    cached = torch.cat(outputs, dim=2).float()
    err = (cached - full.float()).abs().max() / full.float().abs().max()
    assert torch.isfinite(clean).all()
    assert err < 2e-2, err  # bf16 rounding only
