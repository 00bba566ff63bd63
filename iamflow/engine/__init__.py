"""The generator: causal Wan2.1 DiT, KV cache, few-step flow sampler, codecs, text encoders, checkpoints."""
