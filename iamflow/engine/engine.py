"""The engine: one chunk of video, denoised in a few steps and committed to the KV cache.

``StorySession`` drives it chunk by chunk; the benchmark and tests use ``generate``. The loop of one chunk::

    x = noise
    for each (t, sigma):                       # 4 steps
        v  = model(x, t, text, cache)          # the chunk attends to the cache and to itself
        v  = v0 + g * (v - v0)                 # guided steps only: v0 = model(x, t, empty prompt, cache)
        v += (c - 1) * (v1 - va)               # context-guided steps only: v1 = the prompt's pass above,
                                               #   va = model(x, t, text, the chunk alone, no cache)
        x0 = x - sigma * v
        x  = renoise(x0, next sigma)           # not after the last step
    model(x0, t=0, text, cache)                # commit: the clean pass writes the chunk's K/V

With ``cuda_graphs`` on (``runtime.cuda_graphs``, a GPU), each cached pass a story repeats (same cache slot, same
visible slice, same shapes) is recorded once as a CUDA graph and replayed after: the host queues one graph instead
of the pass's thousand-odd kernels. The replay runs the kernels of the recorded pass, so its results are the same
bits as the pass run directly.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator

import torch

from iamflow.config import Config
from iamflow.engine.kv_cache import CacheWrite, KVCache
from iamflow.engine.model import CausalWanModel, TextConditioning
from iamflow.engine.sampler import FlowSampler

logger = logging.getLogger(__name__)


class Engine:
    def __init__(self, model: CausalWanModel, config: Config):
        self.model = model.eval()
        self.config = config
        self.sampler = FlowSampler(config.sampler)
        self.frames_per_chunk = config.cache.frames_per_chunk
        self.cuda_graphs = config.runtime.cuda_graphs  # used only where the model is on a GPU

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one latent frame."""
        return self.model.cfg.in_channels, self.config.video.latent_height, self.config.video.latent_width

    def new_cache(
        self, batch_size: int = 1, sink_frames: int | None = None, max_memory_frames: int | None = None
    ) -> KVCache:
        """A cache shaped by the config; a story's policy may turn off the sink or use fewer memory slots."""
        c, m = self.config.cache, self.model.cfg
        return KVCache(
            num_layers=m.num_layers,
            batch_size=batch_size,
            num_heads=m.num_heads,
            head_dim=m.head_dim,
            tokens_per_frame=self.config.tokens_per_frame,
            frames_per_chunk=c.frames_per_chunk,
            sink_frames=c.sink_frames if sink_frames is None else sink_frames,
            local_window_frames=c.local_window_frames,
            max_memory_frames=c.max_memory_frames if max_memory_frames is None else max_memory_frames,
            device=self.device,
            dtype=self.model.dtype,
        )

    @torch.no_grad()
    def encode_text(self, context: torch.Tensor) -> TextConditioning:
        return self.model.encode_text(context.to(self.device))

    def noise(self, generator: torch.Generator, num_frames: int, batch_size: int = 1) -> torch.Tensor:
        return torch.randn(
            (batch_size, self.latent_shape[0], num_frames, *self.latent_shape[1:]),
            generator=generator,
            device=self.device,
            dtype=torch.float32,
        )

    def _timesteps(self, value: float, like: torch.Tensor) -> torch.Tensor:
        return torch.full((like.shape[0], like.shape[2]), value, device=like.device, dtype=torch.float32)

    @torch.no_grad()
    def denoise_chunk(
        self,
        cache: KVCache,
        text: TextConditioning,
        frame_offset: int,
        generator: torch.Generator,
        noise: torch.Tensor | None = None,
        uncond: TextConditioning | None = None,
        context_guidance: bool = True,
    ) -> torch.Tensor:
        """Denoise the next chunk from noise; returns its clean latents [B, C, frames_per_chunk, h, w].

        With ``sampler.guidance_scale`` > 1, ``uncond`` (the empty prompt) is required: the guided steps run the
        model twice, the cached context being the same for both passes (only the chunk's prompt differs).
        With ``sampler.context_guidance_scale`` c > 1, the context-guided steps add c - 1 times what the cache
        changes in the prompt's velocity (a pass that sees only the chunk itself); a chunk with no cache skips it,
        and so does one called with ``context_guidance=False``.
        """
        guided, scale = self.sampler.cfg.guided_steps, self.sampler.cfg.guidance_scale
        context_guided, context_scale = self.sampler.cfg.context_guided_steps, self.sampler.cfg.context_guidance_scale
        if guided and uncond is None:
            raise ValueError("sampler.guidance_scale > 1 needs the empty prompt's conditioning (uncond=)")
        write = cache.next_chunk_write()
        alone = cache.alone(write) if context_guided and context_guidance else None
        x = noise if noise is not None else self.noise(generator, self.frames_per_chunk, cache.keys.shape[1])
        steps = len(self.sampler)
        for i in range(steps):
            t, sigma = float(self.sampler.timesteps[i]), float(self.sampler.sigmas[i])
            timesteps = self._timesteps(t, x)
            prompted = self._pass(x, timesteps, text, frame_offset, cache, write).float()
            velocity = prompted
            if i < guided:
                plain = self._pass(x, timesteps, uncond, frame_offset, cache, write).float()
                velocity = plain + scale * (velocity - plain)
            if alone is not None and i < context_guided:
                bare = self._pass(x, timesteps, text, frame_offset, cache, alone).float()
                velocity = velocity + (context_scale - 1) * (prompted - bare)
            x0 = self.sampler.to_x0(x, velocity, sigma)
            if i + 1 < steps:
                step_noise = self._step_noise(x, x0, sigma, generator)
                x = self.sampler.add_noise(x0, step_noise, float(self.sampler.sigmas[i + 1]))
        return x0

    def _pass(self, x: torch.Tensor, t: torch.Tensor, text: TextConditioning, frame_offset: int, cache: KVCache,
              write: CacheWrite) -> torch.Tensor:
        """One cached forward pass of a chunk (a denoising step or its commit): the model run directly, or, with
        ``cuda_graphs`` on a GPU, its CUDA graph once the same pass has been run before."""
        if not (self.cuda_graphs and x.is_cuda):
            return self.model(x, t, text, frame_offset=frame_offset, cache=cache, write=write)
        return PassGraphs.of(cache).run(self.model, x, t, text, frame_offset, write)

    def _step_noise(self, x: torch.Tensor, x0: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
        """The noise a step re-noises its x0 with (``sampler.renoise``)."""
        cfg = self.sampler.cfg
        if cfg.renoise == "predicted":
            return self.sampler.predicted_noise(x, x0, sigma)
        fresh = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        if cfg.renoise == "fresh":
            return fresh
        share = cfg.renoise_fresh
        return (1 - share) ** 0.5 * self.sampler.predicted_noise(x, x0, sigma) + share**0.5 * fresh

    @torch.no_grad()
    def commit_chunk(
        self,
        cache: KVCache,
        text: TextConditioning,
        x0: torch.Tensor,
        frame_offset: int,
    ) -> None:
        """The clean pass: write the chunk's final K/V into the cache and advance it.

        Run inside ``with engine.model.capturing(layers)``, it also records the frames' mean cross-attention
        queries on those layers (memory scoring).
        """
        write = cache.next_chunk_write()
        t = self._timesteps(self.sampler.context_timestep, x0)
        self._pass(x0, t, text, frame_offset, cache, write)
        cache.commit_chunk()

    @torch.no_grad()
    def write_memory(
        self, cache: KVCache, text: TextConditioning, latents: torch.Tensor, frame_positions: list[int]
    ) -> None:
        """Recompute the K/V of memory frames [B, C, M, h, w] under ``text`` into the cache's memory region.

        The frames are clean (t = 0) and see each other; ``frame_positions`` are their rotary frame indices.
        """
        num = latents.shape[2]
        if num == 0:
            cache.set_memory_count(0)
            return
        write = cache.memory_write(num)
        t = self._timesteps(self.sampler.context_timestep, latents)
        positions = torch.tensor(frame_positions, dtype=torch.long)
        if self.device.type == "cuda":  # a copy from pageable memory would make the host wait for the GPU
            positions = positions.pin_memory()
        positions = positions.to(self.device, non_blocking=True)
        self.model(latents.to(self.device), t, text, frame_positions=positions, cache=cache, write=write)
        cache.set_memory_count(num)

    @torch.no_grad()
    def recache(
        self,
        cache: KVCache,
        text: TextConditioning,
        window: torch.Tensor,
        first_frame: int,
        sink: torch.Tensor | None = None,
        batched: bool | None = None,
    ) -> None:
        """Scene switch (LongLive re-cache): rewrite the context's K/V under the new prompt.

        ``window`` [B, C, n, h, w] holds the clean latents of the last n frames (n a multiple of the chunk
        length, at most the window), the first of them at story frame ``first_frame``. ``sink`` [B, C, S, h, w]
        (the story's first chunk) is rewritten too when given, else its K/V under the old prompt are kept.
        Rewriting it is what the storyworld model was trained for: every context frame under the current
        prompt (a sink kept under the old prompt pulls the old scene's place into the new one).
        ``batched``: all the chunks in one forward pass with block-causal attention (the same K/V as committing
        them one by one, to float rounding); else chunk by chunk. Default: batched on a GPU, where one pass is
        faster; chunk by chunk on a CPU, which keeps the embedded model's results bit for bit as evaluated.
        """
        if batched is None:
            batched = self.device.type == "cuda"
        fpc = self.frames_per_chunk
        rewrite_sink = sink is not None and cache.sink_frames > 0
        cache.reset_ring(keep_sink=not rewrite_sink)
        if not batched:
            if rewrite_sink:
                self.commit_chunk(cache, text, sink, 0)
            for start in range(0, window.shape[2], fpc):
                self.commit_chunk(cache, text, window[:, :, start : start + fpc], first_frame + start)
            return
        # one pass over [sink | window], chunk c attending to the memory and to chunks 0..c (block causal)
        latents = torch.cat([sink, window], dim=2) if rewrite_sink else window  # [B, C, n, h, w]
        positions = torch.arange(first_frame, first_frame + window.shape[2], device=self.device)
        if rewrite_sink:
            positions = torch.cat([torch.arange(sink.shape[2], device=self.device), positions])
        num_chunks = latents.shape[2] // fpc
        write = cache.chunks_write(num_chunks)
        t = self._timesteps(self.sampler.context_timestep, latents)
        self.model(latents.to(self.device), t, text, frame_positions=positions, cache=cache, write=write)
        cache.commit_chunks(num_chunks)

    @torch.no_grad()
    def warm_up(self, text: TextConditioning, uncond: TextConditioning | None = None,
                score_layers: list[int] | None = None, recache_sink: bool = True) -> float:
        """Run once every pass shape a story session repeats, so compiled blocks compile now, not in front of a
        viewer: a chunk's denoising steps, its commit with the memory scorer's capture, memory writes of every count
        up to the cache's memory, and a scene switch's batched re-cache of every window a switch can meet (one chunk
        to the full window: a first scene shorter than the window, or a shot since a cut, re-caches fewer chunks),
        with the sink when the cache has one and ``recache_sink``. Returns the seconds it took. The runtime then
        sets ``torch.compiler.set_stance("eager_on_recompile")``: a shape met later that was not warmed runs eager
        instead of compiling mid-story."""
        start = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(0)
        cache = self.new_cache()
        fpc = self.frames_per_chunk
        if cache.max_memory_frames:  # a story's bank fills one frame at a time: every count is written at a switch
            memory = self.noise(generator, cache.max_memory_frames)
            for n in range(1, cache.max_memory_frames + 1):
                self.write_memory(cache, text, memory[:, :, :n], list(range(n)))
        chunks = []
        for c in range(cache.ring_slots + (1 if cache.sink_frames else 0)):
            x0 = self.denoise_chunk(cache, text, c * fpc, generator, uncond=uncond)
            with self.model.capturing(score_layers or []):
                self.commit_chunk(cache, text, x0, c * fpc)
            chunks.append(x0)
        sink = chunks[0] if cache.sink_frames and recache_sink else None
        for n in range(1, cache.ring_slots + 1):
            self.recache(cache, text, torch.cat(chunks[-n:], dim=2), (len(chunks) - n) * fpc, sink)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def generate(
        self,
        text: TextConditioning,
        num_chunks: int,
        generator: torch.Generator,
        cache: KVCache | None = None,
        frame_offset: int = 0,
        uncond: TextConditioning | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield the clean latents of ``num_chunks`` chunks continuing the cache's story."""
        cache = cache if cache is not None else self.new_cache()
        for _ in range(num_chunks):
            x0 = self.denoise_chunk(cache, text, frame_offset, generator, uncond=uncond)
            self.commit_chunk(cache, text, x0, frame_offset)
            frame_offset += self.frames_per_chunk
            yield x0


class PassGraph:
    """One recorded pass: its static inputs (the chunk's latents, timesteps and rotary frame positions), and what
    the replay leaves behind (the model's output, the memory scorer's queries)."""

    def __init__(self, graph: torch.cuda.CUDAGraph, x: torch.Tensor, t: torch.Tensor, positions: torch.Tensor,
                 out: torch.Tensor, queries: dict[int, torch.Tensor]):
        self.graph, self.x, self.t, self.positions, self.out, self.queries = graph, x, t, positions, out, queries


class PassGraphs:
    """The CUDA graphs of one KV cache's passes (a graph reads and writes the cache at the addresses it was recorded
    with, so graphs belong to their cache and go with it).

    A pass is keyed by where it writes and what it sees (its ``CacheWrite``), its input shapes and the memory
    scorer's layers captured in it. The first time a key is met the pass runs directly (a story's passes while its
    window fills are met once); the second time it is recorded, on a side stream and into a memory pool the cache's
    graphs share (they run one after another), then replayed. Inputs are copied into the graph's own tensors
    before each replay; the prompt's cross-attention K/V into one set shared by the cache's graphs, copied only
    when the prompt changes. Recording waits for nothing on the host (no device synchronisation): a recording
    in the middle of a story costs what the pass costs to queue."""

    def __init__(self, cache: KVCache):
        self._cache = weakref.ref(cache)  # the cache holds its graphs, not the other way round
        self.graphs: dict[tuple, PassGraph] = {}
        self.seen: set[tuple] = set()
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream(cache.keys.device)
        self.text: TextConditioning | None = None  # the graphs' prompt tensors
        # the prompt last copied there (kept alive, so that comparing by identity is safe)
        self.text_source: TextConditioning | None = None
        self.positions_base: torch.Tensor | None = None
        self.replays = 0

    @staticmethod
    def of(cache: KVCache) -> "PassGraphs":
        graphs = getattr(cache, "pass_graphs", None)
        if graphs is None:
            graphs = cache.pass_graphs = PassGraphs(cache)
        return graphs

    def _set_text(self, text: TextConditioning) -> None:
        if self.text is None:
            self.text = TextConditioning([tuple(torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
                                                for t in kv) for kv in text.kv])
        if text is not self.text_source:
            torch._foreach_copy_([t for kv in self.text.kv for t in kv], [t for kv in text.kv for t in kv])
            self.text_source = text

    def _positions(self, graph: PassGraph, frame_offset: int) -> None:
        frames = graph.positions.shape[0]
        if self.positions_base is None or self.positions_base.shape[0] < frames:
            self.positions_base = torch.arange(frames, device=graph.positions.device)
        torch.add(self.positions_base[:frames], frame_offset, out=graph.positions)

    def run(self, model: CausalWanModel, x: torch.Tensor, t: torch.Tensor, text: TextConditioning, frame_offset: int,
            write: CacheWrite) -> torch.Tensor:
        capture = model._capture
        layers = tuple(layer for layer in capture.layers if capture.wants(layer)) if capture is not None else ()
        key = (write, tuple(x.shape), x.dtype, tuple(t.shape), layers)
        graph = self.graphs.get(key)
        if graph is None:
            if key not in self.seen:  # met once: run it directly
                self.seen.add(key)
                return model(x, t, text, frame_offset=frame_offset, cache=self._cache(), write=write)
            graph = self.graphs[key] = self._record(model, x, t, text, write, capture)
        self._set_text(text)
        graph.x.copy_(x)
        graph.t.copy_(t)
        self._positions(graph, frame_offset)
        graph.graph.replay()
        self.replays += 1
        # what the replay leaves is copied out at once: a later replay of this graph rewrites it, and so may one of
        # another key (the graphs share their pool)
        for layer, query in graph.queries.items():
            capture.queries[layer] = query.clone()
        return graph.out.clone()

    def _record(self, model: CausalWanModel, x: torch.Tensor, t: torch.Tensor, text: TextConditioning,
                write: CacheWrite, capture) -> PassGraph:
        self._set_text(text)
        frames = x.shape[2] // model.cfg.patch_size[0]
        static_x, static_t = torch.empty_like(x), torch.empty_like(t)
        positions = torch.empty(frames, dtype=torch.long, device=x.device)
        queue = torch.cuda.current_stream(x.device)
        self.stream.wait_stream(queue)  # the inputs and the cache as the queue leaves them
        graph = torch.cuda.CUDAGraph()
        before = dict(capture.queries) if capture is not None else {}
        with torch.cuda.stream(self.stream):
            graph.capture_begin(pool=self.pool, capture_error_mode="thread_local")
            try:
                out = model(static_x, static_t, self.text, frame_positions=positions, cache=self._cache(), write=write)
            finally:
                graph.capture_end()
        queue.wait_stream(self.stream)
        queries = {}
        if capture is not None:
            queries = {layer: q for layer, q in capture.queries.items() if before.get(layer) is not q}
            capture.queries.update(before)
        return PassGraph(graph, static_x, static_t, positions, out, queries)
