"""The causal Wan2.1 text-to-video DiT.

Module and parameter names are Wan's original ones (``blocks.N.self_attn.q.weight``, ``head.modulation``...),
so an original checkpoint loads by name; other layouts are mapped in ``checkpoints.py``. The shape comes
entirely from ``ModelConfig``.

Attention is chunk-wise causal: frames are grouped in chunks, bidirectional inside a chunk and causal
across chunks. Two ways to run it:

* one forward over all frames with a block mask (training, and the reference for the cached path);
* chunk by chunk with a ``KVCache``: each call sees only its own frames and reads earlier ones from the cache.

Rotary positions are computed for any frame index when attention runs, so a story has no length limit.
Timesteps are per frame (``t`` is ``[B, F]``), each frame modulated by its own AdaLN parameters.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from iamflow.config import ModelConfig
from iamflow.engine.kv_cache import CacheWrite, KVCache


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """[N] -> [N, dim]: cos then sin of t * 10000^(-i/half), computed in float64 like Wan."""
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float64, device=timesteps.device) / half
    angles = timesteps.to(torch.float64)[:, None] * torch.pow(10000.0, -exponent)[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


class RotaryEmbedding(nn.Module):
    """3-D rotary positions: the head dim split into time / height / width parts (44/42/42 for head dim 128)."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        hw = 2 * (head_dim // 6)
        self.split = (head_dim - 2 * hw, hw, hw)
        inv = [1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d) for d in self.split]
        for name, value in zip(("inv_t", "inv_h", "inv_w"), inv):
            self.register_buffer(name, value, persistent=False)

    def forward(self, frame_positions: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """frame_positions [F] or [B, F] (any integers) -> cos, sin of shape [(B,) F*height*width, head_dim/2],
        float32. A batch of position lists lets one forward hold sequences at different story positions."""
        device = frame_positions.device
        lead, f, h, w = frame_positions.shape[:-1], frame_positions.shape[-1], height, width
        ang_t = frame_positions.to(torch.float64)[..., None] * self.inv_t.to(device)  # [(B,) F, t/2]
        ang_h = torch.arange(height, device=device, dtype=torch.float64)[:, None] * self.inv_h.to(device)
        ang_w = torch.arange(width, device=device, dtype=torch.float64)[:, None] * self.inv_w.to(device)
        grid = (*lead, f, h, w)
        angles = torch.cat(
            [
                ang_t[..., :, None, None, :].expand(*grid, -1),
                ang_h[:, None, :].expand(*grid, -1),
                ang_w[None, :, :].expand(*grid, -1),
            ],
            dim=-1,
        ).reshape(*lead, f * h * w, -1)  # [(B,) F*H*W, head_dim/2]
        return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, L, heads, D] with interleaved (even, odd) pairs rotated by the angles of cos/sin [(B,) L, D/2]."""
    pairs = x.float().unflatten(-1, (-1, 2))  # [B, L, heads, D/2, 2]
    x0, x1 = pairs[..., 0], pairs[..., 1]
    cos, sin = (c[None, :, None] if c.dim() == 2 else c[:, :, None] for c in (cos, sin))
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type_as(x)


@dataclass
class AttentionContext:
    """What one layer's self-attention needs besides the hidden states.

    Built per layer from what the forward shares (positions, cache write, mask) and the layer's own slice of the
    cache, so a compiled block sees tensors only: no layer index reaches it (an int argument would be a guard,
    one recompile per layer).
    """

    rope: tuple[torch.Tensor, torch.Tensor]
    keys: torch.Tensor | None = None  # this layer's cache [B, heads, tokens, D], or None (full forward)
    values: torch.Tensor | None = None
    write: CacheWrite | None = None
    mask: torch.Tensor | None = None  # [L, L] bool, only for the full (uncached) forward

    def for_layer(self, cache: KVCache | None, layer: int) -> "AttentionContext":
        if cache is None:
            return self
        return AttentionContext(self.rope, cache.keys[layer], cache.values[layer], self.write, self.mask)


class Attention(nn.Module):
    """q, k, v, o projections and RMS norms of q and k over the whole width (Wan's names)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()


class SelfAttention(Attention):
    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        q = self.norm_q(self.q(x)).unflatten(2, (self.num_heads, -1))  # [B, L, heads, D]
        k = self.norm_k(self.k(x)).unflatten(2, (self.num_heads, -1))
        v = self.v(x).unflatten(2, (self.num_heads, -1))
        q, k = apply_rotary(q, *ctx.rope), apply_rotary(k, *ctx.rope)
        q = q.transpose(1, 2)  # [B, heads, L, D]
        out = attend(q, k.transpose(1, 2), v.transpose(1, 2), ctx)
        return self.o(out.transpose(1, 2).flatten(2))


@torch.compiler.disable
def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
    """q, k, v [B, heads, L, D]. Cached: write k, v in place, then attend to the visible slice of the cache.

    A write of several chunks (a batched re-cache) is block causal: the queries of its chunk c see the keys before
    the write and the write's chunks 0..c, each chunk attending to its own slice, which is the block-causal mask
    without building it.
    """
    if ctx.keys is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=ctx.mask)
    w, length = ctx.write, k.shape[2]
    keys, values = ctx.keys, ctx.values  # [B, heads, tokens, D]
    keys[:, :, w.token_start : w.token_start + length].copy_(k)
    values[:, :, w.token_start : w.token_start + length].copy_(v)
    if not w.chunk_ends:
        return F.scaled_dot_product_attention(
            q, keys[:, :, w.visible_start : w.visible_end], values[:, :, w.visible_start : w.visible_end]
        )
    outputs, query_start = [], 0
    for end in w.chunk_ends:  # token ends of each chunk of the write, in cache coordinates
        query_end = end - w.token_start
        outputs.append(F.scaled_dot_product_attention(
            q[:, :, query_start:query_end], keys[:, :, w.visible_start : end], values[:, :, w.visible_start : end]
        ))
        query_start = query_end
    return torch.cat(outputs, dim=2)


class CrossAttention(Attention):
    """Text cross-attention. Its K/V depend only on the prompt, so they are computed once per prompt."""

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """context [B, text_len, dim] -> K, V [B, heads, text_len, D]."""
        k = self.norm_k(self.k(context)).unflatten(2, (self.num_heads, -1)).transpose(1, 2)
        v = self.v(context).unflatten(2, (self.num_heads, -1)).transpose(1, 2)
        return k, v

    def mean_query(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x [B, F*HW, dim] -> the mean query of each frame's tokens, [B, F, heads, D] float32."""
        q = self.norm_q(self.q(x)).unflatten(2, (self.num_heads, -1))
        return q.float().unflatten(1, (frames, -1)).mean(dim=2)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q = self.norm_q(self.q(x)).unflatten(2, (self.num_heads, -1)).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.o(out.transpose(1, 2).flatten(2))


class WanBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dim = cfg.dim
        self.norm1 = LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = LayerNorm(dim, cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm2 = LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        e: torch.Tensor,
        text_kv: tuple[torch.Tensor, torch.Tensor],
        ctx: AttentionContext,
        frames: int,
        capture: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> the new hidden states and, with ``capture``, each frame's mean cross-attention query [B, F, heads, D]."""
        # x [B, F*HW, C]; e [B, F, 6, C] float32 -> six [B, F, 1, C] modulations, one per frame
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation.unsqueeze(1) + e).unsqueeze(3).unbind(2)
        dtype = x.dtype

        def per_frame(t: torch.Tensor) -> torch.Tensor:  # [B, F*HW, C] <-> [B, F, HW, C]
            return t.unflatten(1, (frames, -1))

        h = (per_frame(self.norm1(x).float()) * (1 + scale1) + shift1).flatten(1, 2).to(dtype)
        x = (per_frame(x.float()) + per_frame(self.self_attn(h, ctx).float()) * gate1).flatten(1, 2).to(dtype)
        h = self.norm3(x)
        query = self.cross_attn.mean_query(h, frames) if capture else None
        x = x + self.cross_attn(h, text_kv)
        h = (per_frame(self.norm2(x).float()) * (1 + scale2) + shift2).flatten(1, 2).to(dtype)
        x = (per_frame(x.float()) + per_frame(self.ffn(h).float()) * gate2).flatten(1, 2).to(dtype)
        return x, query


class Head(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_channels * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor, frames: int) -> torch.Tensor:
        # e [B, F, C] (the time embedding, before projection)
        shift, scale = (self.modulation.unsqueeze(1) + e.unsqueeze(2)).unsqueeze(3).unbind(2)  # [B, F, 1, C]
        h = self.norm(x).float().unflatten(1, (frames, -1)) * (1 + scale) + shift
        return self.head(h.flatten(1, 2).to(x.dtype))


@dataclass
class TextConditioning:
    """A prompt turned into what every layer's cross-attention reads: K/V per layer."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]

    def blend(self, other: "TextConditioning", weight: float) -> "TextConditioning":
        """(1 - weight) * self + weight * other, per layer (soft scene transitions)."""
        return TextConditioning(
            [(torch.lerp(k0, k1, weight), torch.lerp(v0, v1, weight)) for (k0, v0), (k1, v1) in zip(self.kv, other.kv)]
        )


class QueryCapture:
    """The memory scorer's capture, live for one ``with model.capturing(layers)`` block: every pass the model runs
    inside it, on the thread that opened it, records each frame's mean cross-attention query on these layers
    (a later pass replaces an earlier one's). ``captured[layer]`` -> [B, F, heads, D] float32."""

    def __init__(self, layers: Iterable[int]):
        self.layers = tuple(layers)
        self.queries: dict[int, torch.Tensor] = {}
        self.thread = threading.get_ident()

    def __getitem__(self, layer: int) -> torch.Tensor:
        if layer not in self.queries:
            raise KeyError(f"no query captured on layer {layer}: capturing {list(self.layers)}, and a model pass "
                           "must run inside the `with model.capturing(...)` block")
        return self.queries[layer]

    def wants(self, layer: int) -> bool:
        return layer in self.layers and self.thread == threading.get_ident()


class CausalWanModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self._capture: QueryCapture | None = None  # set only inside ``capturing``
        dim = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_channels, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList(WanBlock(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        self.rope = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)

    # parameters that stay float32 whatever the compute dtype: the time path, modulations and affine norms
    FLOAT32_PARAMETERS = ("time_embedding.", "time_projection.", "modulation", "norm3.")

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    def to_inference_dtype(self, dtype: torch.dtype) -> "CausalWanModel":
        """Cast weights to ``dtype`` except the float32 ones (precision of timestep and modulation math)."""
        for name, param in self.named_parameters():
            keep = any(key in name for key in self.FLOAT32_PARAMETERS)
            param.data = param.data.to(torch.float32 if keep else dtype)
        return self

    @property
    def device(self) -> torch.device:
        return self.patch_embedding.weight.device

    def compile_blocks(self) -> None:
        """torch.compile each block; the cache read/write stays eager (a graph break), shapes stay static.

        The blocks share one compiled graph per input shape (their weights are graph inputs, and no layer index
        reaches the block), so a session compiles once per shape it uses: chunk, memory write, re-cache, each
        with and without the memory scorer's query capture. ``Engine.warm_up`` runs them all once.
        """
        import torch._dynamo

        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        for block in self.blocks:
            block.compile(dynamic=False)
        self.compiled = True

    @contextmanager
    def capturing(self, layers: Iterable[int]) -> Iterator[QueryCapture]:
        """``with model.capturing(layers) as captured:`` the passes run inside record each frame's mean
        cross-attention query on ``layers`` (the memory scorer's layers) into ``captured``; none is recorded once
        the block is left, even by an exception. The choice is made in ``forward``'s eager loop, which hands each
        block only a bool: a forward hook inside a compiled block would not run, a layer index would recompile."""
        if self._capture is not None:
            raise RuntimeError("a query capture is already active on this model: leave its `with` block first")
        captured = QueryCapture(layers)
        self._capture = captured
        try:
            yield captured
        finally:
            self._capture = None

    def encode_text(self, context: torch.Tensor) -> TextConditioning:
        """context [B, text_len, text_dim] (padding zeroed) -> per-layer cross-attention K/V."""
        emb = self.text_embedding(context.to(self.dtype))  # [B, text_len, dim]
        return TextConditioning([block.cross_attn.context_kv(emb) for block in self.blocks])

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: TextConditioning | torch.Tensor,
        *,
        frame_offset: int = 0,
        frame_positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        write: CacheWrite | None = None,
        frames_per_chunk: int | None = None,
        local_window_frames: int | None = None,
        sink_frames: int = 0,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the flow velocity for latents ``x`` [B, C, F, H, W] at per-frame timesteps ``t`` [B, F].

        Cached: ``cache`` and ``write`` given; ``x`` holds the frames being written and their rotary frame
        positions start at ``frame_offset`` (or are ``frame_positions`` [F], for memory frames). Full: no cache;
        with ``frames_per_chunk`` the attention is block causal (optionally limited to a sink plus a local window,
        matching what the cache keeps); or ``attn_mask`` [F*H*W, F*H*W] or [B, 1, F*H*W, F*H*W] (True = may
        attend) gives any other visibility, and ``frame_positions`` [B, F] per-sequence positions: training
        batches of cache-shaped sequences with memory frames.
        Inside ``with self.capturing(layers)`` the pass also records the scoring layers' mean queries.
        """
        if not isinstance(text, TextConditioning):
            text = self.encode_text(text)
        b, _, frames, height, width = x.shape
        pt, ph, pw = self.cfg.patch_size
        grid = (frames // pt, height // ph, width // pw)
        if t.shape != (b, frames):
            raise ValueError(f"timesteps must have shape [batch, frames] = {(b, frames)} (got {tuple(t.shape)})")

        h = self.patch_embedding(x.to(self.dtype)).flatten(2).transpose(1, 2)  # [B, F*H*W, dim]
        # the time path runs in float32 (kept so by to_inference_dtype), as in Wan
        e = self.time_embedding(sinusoidal_embedding(t[:, ::pt].flatten(), self.cfg.freq_dim))
        e0 = self.time_projection(e).unflatten(1, (6, -1)).unflatten(0, (b, grid[0]))  # [B, F, 6, dim]
        e = e.unflatten(0, (b, grid[0]))  # [B, F, dim]

        if frame_positions is None:
            frame_positions = torch.arange(frame_offset, frame_offset + grid[0], device=x.device)
        positions = frame_positions.to(x.device)
        ctx = AttentionContext(rope=self.rope(positions, grid[1], grid[2]), write=write)
        if attn_mask is not None:
            ctx.mask = attn_mask
        elif cache is None and frames_per_chunk:
            ctx.mask = block_causal_mask(grid[0], grid[1] * grid[2], frames_per_chunk, local_window_frames, sink_frames, x.device)
        capture = self._capture
        for i, block in enumerate(self.blocks):
            wanted = capture is not None and capture.wants(i)  # a bool, never the index: one graph for all blocks
            h, query = block(h, e0, text.kv[i], ctx.for_layer(cache, i), grid[0], wanted)
            if wanted:
                capture.queries[i] = query

        out = self.head(h, e, grid[0])  # [B, F*H*W, out*pt*ph*pw]
        out = out.view(b, *grid, pt, ph, pw, self.cfg.out_channels)
        return out.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, self.cfg.out_channels, frames, height, width)


def block_causal_mask(
    frames: int,
    tokens_per_frame: int,
    frames_per_chunk: int,
    local_window_frames: int | None = None,
    sink_frames: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """[L, L] boolean mask, True where a query token may attend a key token.

    Query chunk c sees chunks <= c; with a local window it sees only the newest ``local_window_frames``
    frames (its own chunk included) plus the first ``sink_frames`` frames.
    """
    chunk = torch.arange(frames, device=device) // frames_per_chunk
    q_chunk, k_chunk = chunk[:, None], chunk[None, :]
    allowed = k_chunk <= q_chunk
    if local_window_frames:
        window_chunks = local_window_frames // frames_per_chunk
        in_window = k_chunk > q_chunk - window_chunks
        if sink_frames:  # the sink (first chunk) stays visible, outside the window
            in_window = in_window | (k_chunk < sink_frames // frames_per_chunk)
        allowed = allowed & in_window
    return allowed.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)
