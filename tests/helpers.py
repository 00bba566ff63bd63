"""Small steps several test files take the same way (imported as ``from helpers import ...``)."""

from __future__ import annotations


def stream_decode(codec, latents, sizes: list[int]) -> list:
    """``latents`` [B, C, t, h, w] through a fresh streaming decoder of ``codec`` in pieces of ``sizes`` latent
    frames; the decoded pieces in order."""
    decoder = codec.stream_decoder()
    chunks, start = [], 0
    for size in sizes:
        chunks.append(decoder.decode(latents[:, :, start : start + size]))
        start += size
    return chunks


def stop_after_chunk_1(session, prompt: str, seconds: float = 6, seed: int = 2) -> list:
    """A scene whose viewer presses Stop once chunk 1 has arrived; the events received."""
    events = []
    for event in session.add_scene(prompt, seconds=seconds, seed=seed):
        events.append(event)
        if event.chunk_index == 1:
            session.stop()
    return events
