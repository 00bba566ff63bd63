"""Training data of the embedded model: rendered stories, their latents, and sequences laid out like the KV cache.

Three things live here:

* ``CompactMiniLM``: all-MiniLM-L6-v2 restricted to the words storyworld captions use, in plain torch, so the
  training machine (which has neither the bundled MiniLM package nor a tokenizer library) computes the same
  token features as ``MiniLMTextEncoder`` on the CPU. ``export_compact_minilm`` writes it from the bundled model.
* ``render_story_video``: a story as one video, each scene a whole number of chunks (scene 0 starts the video,
  so its first latent frame is a single video frame).
* ``LatentStories`` / ``sample_batch``: training sequences mirroring inference with the ``iam`` memory policy::

      [ memory (3 slots) | sink (story chunk 0) | window chunk g-2 | window chunk g-1 | current chunk g ]

  with per-sample attention masks that reproduce what the cache lets each frame see (memory frames see only
  each other; the rest see memory, sink, earlier window chunks and their own chunk) and rotary frame positions
  equal to story frame indices. Memory holds frames of earlier scenes showing the characters of the current
  scene (what entity-aware retrieval returns), sometimes plus unrelated frames, sometimes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iamflow.storyworld.stories import story_from_seed, training_story
from iamflow.storyworld.world import Story, World, background, render_scene

logger = logging.getLogger(__name__)

CHUNK_FRAMES = 3  # latent frames per chunk (cache.frames_per_chunk of the storyworld preset)
TEMPORAL_FACTOR = 4

# --------------------------------------------------------------------------------------------------------
# Text: a compact, exact copy of all-MiniLM-L6-v2 for the words of the storyworld

_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")  # BERT's basic tokenizer on ASCII: lower case, punctuation apart


class CompactMiniLM(nn.Module):
    """BERT encoder (6 layers, 384 wide, 12 heads) with a word -> word-piece table instead of a tokenizer.

    ``encode(prompts)`` gives what ``MiniLMTextEncoder(text_len).encode`` gives: last hidden states of
    ``[CLS] tokens [SEP]`` padded to ``text_len``, padding rows zero.
    """

    def __init__(self, state: dict[str, torch.Tensor], words: dict[str, list[int]], text_len: int):
        super().__init__()
        self.words, self.text_len = words, text_len
        self.heads, self.layers = 12, 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.float(), requires_grad=False)
                                        for k, v in state.items()})

    def p(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "__")]

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of the compact embedding table [B, text_len] and the attention mask [B, text_len]."""
        ids = torch.zeros(len(prompts), self.text_len, dtype=torch.long)
        mask = torch.zeros(len(prompts), self.text_len, dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            pieces = []
            for word in _WORDS.findall(prompt.lower()):
                if word not in self.words:
                    raise KeyError(f"word {word!r} is not in the compact MiniLM vocabulary (re-export it)")
                pieces += self.words[word]
            tokens = [self.words["[CLS]"][0], *pieces[: self.text_len - 2], self.words["[SEP]"][0]]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = True
        return ids, mask

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """[B, text_len, 384] float32 token features, padding zero."""
        p, dev = self.p, self.p("embeddings.word_embeddings.weight").device
        ids, mask = (t.to(dev) for t in self.tokenize(prompts))
        length = ids.shape[1]
        x = p("embeddings.word_embeddings.weight")[ids] + p("embeddings.position_embeddings.weight")[:length]
        x = x + p("embeddings.token_type_embeddings.weight")[0]
        x = F.layer_norm(x, (x.shape[-1],), p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), 1e-12)
        bias = torch.zeros(mask.shape, device=dev).masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None]
        for i in range(self.layers):
            pre = f"encoder.layer.{i}."

            def lin(x: torch.Tensor, name: str) -> torch.Tensor:
                return F.linear(x, p(pre + name + ".weight"), p(pre + name + ".bias"))

            q, k, v = (lin(x, f"attention.self.{n}").unflatten(-1, (self.heads, -1)).transpose(1, 2)
                       for n in ("query", "key", "value"))  # [B, heads, L, 32]
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).flatten(2)
            x = F.layer_norm(x + lin(a, "attention.output.dense"), (x.shape[-1],),
                             p(pre + "attention.output.LayerNorm.weight"), p(pre + "attention.output.LayerNorm.bias"), 1e-12)
            h = lin(F.gelu(lin(x, "intermediate.dense")), "output.dense")
            x = F.layer_norm(x + h, (x.shape[-1],), p(pre + "output.LayerNorm.weight"), p(pre + "output.LayerNorm.bias"), 1e-12)
        return x.masked_fill(~mask[..., None], 0.0)

    @classmethod
    def load(cls, folder: str | Path, text_len: int, device: torch.device | str = "cpu") -> "CompactMiniLM":
        from safetensors.torch import load_file

        folder = Path(folder)
        words = json.loads((folder / "words.json").read_text())
        return cls(load_file(str(folder / "minilm.safetensors")), words, text_len).to(device)


def caption_words(num_stories: int = 60000) -> set[str]:
    """Every word (as BERT's basic tokenizer splits it) of the captions of ``num_stories`` stories and more."""
    from iamflow.storyworld import stories as lexicon

    words: set[str] = set()
    for seed in range(num_stories):
        for prompt in story_from_seed(seed).prompts + training_story(seed).prompts:
            words.update(_WORDS.findall(prompt.lower()))
    train = lexicon.TRAIN  # the training phrasing's tables hold the plain ones
    for table in (train.nouns, train.garments, lexicon.NAMES, train.actions, train.dog_actions, train.robot_actions,
                  train.adverbs, train.places, train.colours, train.roles):
        for phrases in table.values():
            for phrase in phrases:
                words.update(_WORDS.findall(phrase.lower()))
    for phrase in (*train.openers, *lexicon.ORDINALS, *train.protagonist_roles, *lexicon.PRONOUNS.values()):
        words.update(_WORDS.findall(phrase.lower()))
    for name in (*World.COLOURS, *World.KINDS, *World.LOCATIONS):
        words.update(_WORDS.findall(name.lower()))
    for table_words in train.words().values():  # the templates' own words too
        words.update(table_words)
    return words


def export_compact_minilm(folder: str | Path, num_stories: int = 60000) -> None:
    """Write ``minilm.safetensors`` (float16) and ``words.json`` from the bundled all-MiniLM-L6-v2."""
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from iamflow.engine.text_encoder import minilm_model_dir

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = minilm_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    state = AutoModel.from_pretrained(str(source)).state_dict()
    words = sorted(caption_words(num_stories))
    pieces = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in words}
    pieces["[CLS]"], pieces["[SEP]"] = [tokenizer.cls_token_id], [tokenizer.sep_token_id]
    used = sorted({i for ids in pieces.values() for i in ids})
    row = {old: new for new, old in enumerate(used)}
    state = {k: v for k, v in state.items() if "position_ids" not in k and not k.startswith("pooler.")}
    state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][used]
    state["embeddings.position_embeddings.weight"] = state["embeddings.position_embeddings.weight"][:128]
    save_file({k: v.half().contiguous() for k, v in state.items()}, str(folder / "minilm.safetensors"))
    (folder / "words.json").write_text(json.dumps({w: [row[i] for i in ids] for w, ids in pieces.items()}))
    logger.info("compact MiniLM: %d words, %d word pieces -> %s", len(words), len(used), folder)


# --------------------------------------------------------------------------------------------------------
# Stories as videos


@dataclass
class StoryVideo:
    seed: int
    video: np.ndarray  # [T, 64, 64, 3] uint8, the whole story
    chunk_scene: np.ndarray  # [num_chunks] scene index of every latent chunk
    prompts: list[str]
    scene_chars: list[list[str]]  # char_ids shown in each scene
    figures: np.ndarray  # [latent_frames, 16, 16] uint8: latent cells a character and its trait cover (``figure_cells``)


FIGURE, TRAIT = 1, 2  # levels of ``figure_cells``: a cell showing a character, and one showing its trait


def figure_cells(frames: np.ndarray, location: str, opens_video: bool, spatial_factor: int = 4) -> np.ndarray:
    """Latent cells that show a character, and its trait: [T, H, W, 3] frames of one scene -> [t, H/f, W/f]
    uint8, 0 for the background, ``FIGURE`` for a character, ``TRAIT`` where its trait (drawn in ink) is.

    A latent frame covers four video frames (the video's first frame alone), and a cell ``f`` x ``f`` pixels;
    a cell counts if any of its pixels shows a character (or a trait) in any of its frames, and so do its
    eight neighbours (the codec spreads an edge into them). Backgrounds are still, so a drawn pixel is one that
    differs from the empty location."""
    drawn = (frames != background(location)).any(-1)
    ink = drawn & (frames == np.array(World.INK, dtype=np.uint8)).all(-1)
    if opens_video:
        drawn, ink = (np.concatenate([np.repeat(m[:1], TEMPORAL_FACTOR, 0), m[1:]]) for m in (drawn, ink))
    t, h, w = drawn.shape[0] // TEMPORAL_FACTOR, drawn.shape[1] // spatial_factor, drawn.shape[2] // spatial_factor

    def cells(mask: np.ndarray) -> np.ndarray:
        blocks = mask.reshape(t, TEMPORAL_FACTOR, h, spatial_factor, w, spatial_factor).any(axis=(1, 3, 5))
        padded = np.pad(blocks, ((0, 0), (1, 1), (1, 1)))
        return np.stack([padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]).any(0)

    return cells(drawn).astype(np.uint8) + cells(ink)


def video_frames(latent_frames: int) -> int:
    return 1 + TEMPORAL_FACTOR * (latent_frames - 1)


def render_story_video(story: Story, chunks_per_scene: list[int]) -> StoryVideo:
    """The story as one video; scene i lasts ``chunks_per_scene[i]`` chunks of latent frames."""
    pieces, chunk_scene, figures = [], [], []
    for index, chunks in enumerate(chunks_per_scene):
        frames = TEMPORAL_FACTOR * CHUNK_FRAMES * chunks - (TEMPORAL_FACTOR - 1 if index == 0 else 0)
        pieces.append(render_scene(story, index, frames))
        chunk_scene += [index] * chunks
        figures.append(figure_cells(pieces[-1], story.scenes[index].location, opens_video=index == 0))
    return StoryVideo(story.seed, np.concatenate(pieces), np.array(chunk_scene), story.prompts,
                      [scene.char_ids for scene in story.scenes], np.concatenate(figures))


def random_story_video(seed: int) -> StoryVideo:
    """The training story of a seed (``stories.training_story``: memory stories among the world's, captions in the
    training phrasing), 2 to 6 chunks (1.5 to 4.5 s) a scene."""
    story = training_story(seed)
    rng = np.random.default_rng(seed + 7919)
    return render_story_video(story, [int(c) for c in rng.integers(2, 7, size=len(story.scenes))])


def to_video_tensor(frames: np.ndarray) -> torch.Tensor:
    """[T, H, W, 3] uint8 -> [1, 3, T, H, W] float in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0


# --------------------------------------------------------------------------------------------------------
# Latent stories and cache-shaped training sequences

MEMORY_SLOTS = 3
MAX_CAST = 3  # characters a scene shows at most
# frame slots of a training sequence: memory, sink, window chunk g-2, window chunk g-1, current chunk g
SLOTS = [("memory", MEMORY_SLOTS), ("sink", CHUNK_FRAMES), ("window_a", CHUNK_FRAMES), ("window_b", CHUNK_FRAMES),
         ("current", CHUNK_FRAMES)]
SEQUENCE_FRAMES = sum(n for _, n in SLOTS)
# Long stories: the stories trained on are at most 108 latent frames long (about 27 s), the app's can be far
# longer. Rotary attention depends on distances only, so a share of the sequences moves the window and current
# chunk (and the memory frames, less) further from the sink: distances up to ~600 frames (2.5 minutes).
LONG_STORY_SHARE = 0.25
MAX_EXTRA_DISTANCE = 500


@dataclass
class LatentStories:
    """Many stories' latents in one tensor, with what training needs to lay sequences out."""

    latents: torch.Tensor  # [total_frames, C, h, w] normalised, all stories back to back
    text: torch.Tensor  # [num_scenes_total, text_len, 384] MiniLM features of every scene prompt
    story_start: np.ndarray  # [S] first frame of each story in ``latents``
    story_chunks: np.ndarray  # [S]
    chunk_scene: list[np.ndarray]  # per story: scene of each chunk
    scene_text_start: np.ndarray  # [S] row of each story's scene 0 in ``text``
    scene_chars: list[list[list[str]]]
    figures: torch.Tensor  # [total_frames, h, w] uint8, the latent cells characters and traits cover (``figure_cells``)

    @cached_property
    def switch_chunks(self) -> list[np.ndarray]:
        """Per story, the chunks that are scene switches (``_switch_chunks``), computed once."""
        return [_switch_chunks(scenes) for scenes in self.chunk_scene]

    @cached_property
    def crowd_chunks(self) -> list[np.ndarray]:
        """Per story, the chunks whose scene shows the most characters a scene can (three)."""
        return [np.flatnonzero([len(chars[scene]) >= MAX_CAST for scene in scenes])
                for scenes, chars in zip(self.chunk_scene, self.scene_chars)]

    @cached_property
    def crowded_stories(self) -> np.ndarray:
        return np.flatnonzero([chunks.size > 0 for chunks in self.crowd_chunks])


def _memory_frames(rng: np.random.Generator, chunk_scene: np.ndarray, scene_chars: list[list[str]], g: int) -> list[int]:
    """Story frame indices of up to MEMORY_SLOTS memory frames for chunk ``g`` (what the ``iam`` policy retrieves)."""
    window_start = CHUNK_FRAMES * max(1, g - 2)
    candidates = np.arange(CHUNK_FRAMES, window_start)  # neither sink nor window: frames only memory can show
    if candidates.size == 0 or rng.random() < 0.2:  # policy none / sink, or nothing to remember yet
        return []
    scene = chunk_scene[g]
    frame_scene = np.repeat(chunk_scene, CHUNK_FRAMES)
    chosen: list[int] = []
    for char in rng.permutation(scene_chars[scene]):
        earlier = [s for s in range(scene) if char in scene_chars[s]]
        if earlier:
            pool = candidates[frame_scene[candidates] == int(rng.choice(earlier))]
            if pool.size:
                chosen.append(int(rng.choice(pool)))
    if len(chosen) < MEMORY_SLOTS and rng.random() < 0.5:  # unrelated or current-scene frames beside them
        extra = rng.choice(candidates, size=min(MEMORY_SLOTS - len(chosen), candidates.size), replace=False)
        chosen += [int(f) for f in extra]
    return sorted(set(chosen))[:MEMORY_SLOTS]


def _switch_chunks(chunk_scene: np.ndarray) -> np.ndarray:
    """Chunks that open a later scene, or follow its opening chunk: the window still shows the scene before."""
    opening = np.flatnonzero(np.diff(chunk_scene) != 0) + 1
    return np.unique(np.concatenate([opening, opening + 1]).clip(max=len(chunk_scene) - 1))


def sample_batch(data: LatentStories, rng: np.random.Generator, batch: int, switch_share: float = 0.0,
                 crowd_share: float = 0.0) -> dict[str, torch.Tensor]:
    """A batch of cache-shaped sequences. Returns frame indices into ``data.latents`` (-1 = empty slot),
    story frame positions, per-frame visibility masks [B, F, F], the text rows and the current chunk's
    frames (always the last CHUNK_FRAMES of the sequence), and whether every character of the current scene is
    in a context frame (``copyable``: its look, trait included, can be taken from the context; not so where a
    character first appears). ``switch_share`` of the sequences (in expectation)
    are scene switches: their current chunk opens a later scene or follows its opening chunk; ``crowd_share``
    more show three characters (a tenth of the scenes do; binding colours to figures is hardest there)."""
    index = np.full((batch, SEQUENCE_FRAMES), -1, dtype=np.int64)
    positions = np.zeros((batch, SEQUENCE_FRAMES), dtype=np.int64)
    text_rows = np.zeros(batch, dtype=np.int64)
    copyable = np.zeros(batch, dtype=bool)
    group = np.zeros((batch, SEQUENCE_FRAMES), dtype=np.int64)  # 0 memory, 1 sink, 2 window a, 3 window b, 4 current
    offsets = np.cumsum([0] + [n for _, n in SLOTS])
    for slot, (name, n) in enumerate(SLOTS):
        group[:, offsets[slot] : offsets[slot + 1]] = slot
    for b in range(batch):
        draw = rng.random()
        crowd = draw < crowd_share and data.crowded_stories.size > 0
        s = int(rng.choice(data.crowded_stories)) if crowd else int(rng.integers(len(data.story_start)))
        switches = data.switch_chunks[s]
        if crowd:
            g = int(rng.choice(data.crowd_chunks[s]))
        elif switches.size and draw < crowd_share + switch_share:
            g = int(rng.choice(switches))
        else:
            g = int(rng.integers(data.story_chunks[s]))
        chunks = {"sink": 0 if g > 0 else None, "window_a": g - 2 if g - 2 >= 1 else None,
                  "window_b": g - 1 if g - 1 >= 1 else None, "current": g}
        for slot, (name, n) in enumerate(SLOTS):
            if name == "memory":
                frames = _memory_frames(rng, data.chunk_scene[s], data.scene_chars[s], g)
            else:
                frames = [] if chunks[name] is None else list(range(CHUNK_FRAMES * chunks[name], CHUNK_FRAMES * chunks[name] + n))
            for j, f in enumerate(frames):
                index[b, offsets[slot] + j] = data.story_start[s] + f
                positions[b, offsets[slot] + j] = f
        text_rows[b] = data.scene_text_start[s] + data.chunk_scene[s][g]
        context = index[b, :-CHUNK_FRAMES]
        shown = context[context >= 0] - data.story_start[s]
        seen = {c for scene in np.unique(data.chunk_scene[s][shown // CHUNK_FRAMES]) for c in data.scene_chars[s][scene]}
        copyable[b] = set(data.scene_chars[s][data.chunk_scene[s][g]]) <= seen
        if g > 0 and rng.random() < LONG_STORY_SHARE:  # as if the story had run longer before this scene
            extra = int(rng.integers(1, MAX_EXTRA_DISTANCE))
            positions[b, offsets[2]:] += extra
            memory = index[b, : offsets[1]] >= 0
            positions[b, : offsets[1]][memory] += int(rng.integers(0, extra + 1))  # still before the window
    valid = index >= 0
    gq, gk = group[:, :, None], group[:, None, :]
    # memory sees memory; sink sees memory and sink; window/current chunks see everything up to their own chunk
    visible = np.where(gq == 0, gk == 0, gk <= gq) & valid[:, :, None] & valid[:, None, :]
    visible |= np.eye(SEQUENCE_FRAMES, dtype=bool)[None]  # an empty slot sees itself (no empty softmax rows)
    return {
        "index": torch.from_numpy(index),
        "positions": torch.from_numpy(positions),
        "visible": torch.from_numpy(visible),
        "text_rows": torch.from_numpy(text_rows),
        "copyable": torch.from_numpy(copyable),
    }


def frame_mask_to_tokens(visible: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """[B, F, F] frame visibility -> [B, 1, F*T, F*T] token mask for the model's ``attn_mask``."""
    return visible.repeat_interleave(tokens_per_frame, 1).repeat_interleave(tokens_per_frame, 2)[:, None]


def lr_at(step: int, warmup: int, progress: float, peak: float, floor: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, times a cosine from 1 to ``floor`` over ``progress`` in [0, 1]
    (the fraction of the piece's time budget spent: pieces stop by the clock, not by a step count)."""
    cosine = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return peak * min(1.0, (step + 1) / warmup) * cosine
