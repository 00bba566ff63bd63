"""The judge: reads storyworld frames (rendered or generated) and checks them against the story.

How a scene is read (numpy only, a dozen frames a scene):

1. The location is the one whose (sky, ground) pair is nearest to the median colour of the top rows and of
   the rows below every character's feet.
2. A 3x3 median filter removes noise but keeps 2-pixel details. Every ground-row pixel gets its nearest
   palette colour (the ground as measured, the eight named colours, skin, hair, metal, ink) and an ink
   share: how much of it is a blend of ink over another palette colour (blur spreads ink but keeps its
   total). Pixels that are not ground are figures; the columns they fill split them into characters (the
   world keeps characters in separate lanes).
3. A character's colour is a soft vote of its pixels nearest a named colour. Its kind and trait are the
   votes of its nearest neighbours among reference readings of the world's own renders of every kind,
   trait and action (clean and degraded), compared on maps of where its colour, skin, hair, metal and ink
   are, anchored at its feet.
4. Per scene, the number of characters is the most common count over frames; each character's kind,
   colour and trait are majority votes over the frames that show that count.

``judge_story`` matches the expected characters of each scene to the detected ones and reports adherence
(location, and kind and colour where the prompt states them) and consistency: does a character brought back
by a later prompt look as it did at its first appearance (colour when the prompt did not restate it; trait,
never stated, always)?
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from iamflow.storyworld.stories import KIND_WORDS
from iamflow.storyworld.world import HALF_WIDTH, Character, SceneSpec, Story, World, render_scene

logger = logging.getLogger(__name__)

FRAMES_PER_SCENE = 12  # frames read per scene, evenly spaced
MIN_BLOB_PIXELS = 15
NEIGHBOURS = 7
PRINCIPAL_COMPONENTS = 48
REFERENCE_VARIANTS = 6  # readings of each kind x trait x action: clean and degraded, facing both ways
COLOUR_NAMES = tuple(World.COLOURS)
# palette index layout used by the labels: 0 ground, 1..8 named colours, then the fixed sprite colours
_FIXED = ("skin", "hair", "metal", "ink")
_SKIN, _HAIR, _METAL, _INK = (1 + len(COLOUR_NAMES) + i for i in range(len(_FIXED)))
_COLOUR_RGB = np.array([World.COLOURS[c] for c in COLOUR_NAMES], dtype=np.float32)  # [8, 3]
_SKY_RGB = np.array([World.SKY[loc] for loc in World.LOCATIONS], dtype=np.float32)  # [L, 3]
_GROUND_RGB = np.array([World.GROUND[loc] for loc in World.LOCATIONS], dtype=np.float32)  # [L, 3]
_COLOUR_SIGMA = 35.0  # soft colour vote: weight exp(-d^2 / 2 sigma^2)


@dataclass(frozen=True)
class ExpectedCharacter:
    char_id: str
    kind: str
    colour: str
    trait: str
    x: float  # centre column at the scene's first frame


@dataclass(frozen=True)
class ExpectedScene:
    location: str
    characters: tuple[ExpectedCharacter, ...]


@dataclass
class Detection:
    """One character the judge found in a scene."""

    x: float  # median centre column
    kind: str
    colour: str | None
    trait: str
    support: int  # frames it was read in
    kind_votes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"x": self.x, "kind": self.kind, "colour": self.colour, "trait": self.trait, "support": self.support}


def expected_scene(story: Story, scene_index: int) -> ExpectedScene:
    """What scene ``scene_index`` of a story should show."""
    scene = story.scenes[scene_index]
    characters = []
    for char_id, _, start_x in scene.characters:
        c: Character = story.character(char_id)
        characters.append(ExpectedCharacter(char_id, c.kind, c.colour, c.trait, float(start_x)))
    return ExpectedScene(scene.location, tuple(characters))


# ---------------------------------------------------------------------------------------------------------
# Reading frames


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    size = World.FRAME_SIZE
    if frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
        raise ValueError(f"frames must be [T, {size}, {size}, 3] RGB (got shape {tuple(frames.shape)})")
    if frames.shape[0] == 0:
        raise ValueError("frames must hold at least one frame")
    return frames


def _pick_frames(frames: np.ndarray, count: int = FRAMES_PER_SCENE) -> np.ndarray:
    index = np.unique(np.linspace(0, frames.shape[0] - 1, num=min(count, frames.shape[0])).round().astype(int))
    return frames[index]


_MEDIAN9_NETWORK = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)


def _median3(frames: np.ndarray) -> np.ndarray:
    """3x3 median filter over H and W, per channel, edges replicated: [F, H, W, 3] uint8 -> float32.

    A median removes noise but keeps the world's 2-pixel details (bands, hat brims), which a mean would smear.
    """
    x = np.pad(frames, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = frames.shape[1:3]
    p = [x[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    # median of nine by a fixed network of 19 compare-exchanges, elementwise over whole arrays
    for a, b in _MEDIAN9_NETWORK:
        p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
    return p[4].astype(np.float32)


def _ground_rows(frames: np.ndarray) -> np.ndarray:
    """The smoothed ground rows (HORIZON_ROW..) of frames [F, H, W, 3] -> [F, R, W, 3] float32."""
    return _median3(frames[:, World.HORIZON_ROW - 1 :])[:, 1:]


def _locate(frames: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Location index, per-location distances and the measured ground colour, from the sample rows."""
    sky = np.median(frames[:, : World.SKY_SAMPLE_ROWS].reshape(-1, 3), axis=0)
    lo, hi = World.GROUND_SAMPLE_ROWS
    ground = np.median(frames[:, lo:hi].reshape(-1, 3), axis=0).astype(np.float32)
    score = np.linalg.norm(_SKY_RGB - sky, axis=1) + np.linalg.norm(_GROUND_RGB - ground, axis=1)
    return int(np.argmin(score)), score, ground


@dataclass
class _Maps:
    """Per-pixel readings of the ground rows of F frames."""

    labels: np.ndarray  # [F, R, W] nearest palette index: 0 ground, 1..8 named colours, then skin/hair/metal/ink
    colour_d2: np.ndarray  # [F, R, W, 8] squared distance of each pixel to each named colour
    ink: np.ndarray  # [F, R, W] ink blend fraction
    figure: np.ndarray  # [F, R, W] bool, not ground

    def figures(self, f: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
        """Features of every figure in frame ``f``, left to right."""
        return [_features(self, f, span) for span in _blobs(self.figure[f])]


def _maps(region: np.ndarray, ground: np.ndarray) -> _Maps:
    """Read smoothed ground rows [F, R, W, 3] against the palette.

    ``ground`` is the ground colour as measured in these frames, so a slightly tinted ground still reads.
    """
    fixed = [World.SKIN, World.HAIR, World.METAL, World.INK]
    palette = np.array([ground, *World.COLOURS.values(), *fixed], dtype=np.float32)  # [P, 3]
    d2 = sum((region[..., c, None] - palette[:, c]) ** 2 for c in range(3))  # [F, R, W, P]
    labels = d2.argmin(-1)
    # Ink is read as a blend only where a pixel is not plainly one palette colour (the city's grey ground,
    # say, is also a blend of metal and ink); a pixel plainly ink holds all ink.
    ink = (labels == _INK).astype(np.float32)
    blended = (d2.min(-1) >= 30.0**2) & (labels != _INK)
    ink[blended] = _ink_mass(region[blended], palette[:-1])
    # a blend of ink and a dark ground can sit nearer the ground than the ink: it is still figure
    figure = (labels != 0) | (ink > 0)
    return _Maps(labels, d2[..., 1 : 1 + len(COLOUR_NAMES)], ink, figure)


def _blobs(fg: np.ndarray) -> list[tuple[int, int]]:
    """Column spans [c0, c1] of the figures in one frame's foreground mask [R, W]."""
    active = fg.sum(0) >= 2
    spans: list[list[int]] = []
    for col in np.flatnonzero(active):
        if spans and col - spans[-1][1] <= 2:  # a one-column gap does not split a figure
            spans[-1][1] = col
        else:
            spans.append([col, col])
    return [(c0, c1) for c0, c1 in spans if fg[:, c0 : c1 + 1].sum() >= MIN_BLOB_PIXELS]


def _span(mask_counts: np.ndarray, minimum: float) -> tuple[int, int] | None:
    idx = np.flatnonzero(mask_counts >= minimum)
    if idx.size == 0:
        return None
    return int(idx[0]), int(idx[-1])


WINDOW = (28, 20)  # rows x columns read around a figure, anchored at its feet and its colour's centre
KIND_POOL = 2  # maps are averaged over POOL x POOL cells: tolerance for blur and small shifts
TRAIT_POOL = 4  # coarser for the ink map: a trait a pixel or two off must still look like itself


def _window(values: np.ndarray, bottom: int, centre: int, pool: int) -> np.ndarray:
    """The WINDOW of a [R, W, C] map whose bottom row is ``bottom`` and middle column ``centre``, pooled.

    Outside the map counts as 0. Returns [WINDOW_rows / pool, WINDOW_cols / pool, C].
    """
    rows, cols = WINDOW
    out = np.zeros((rows, cols, values.shape[-1]), dtype=np.float32)
    r0, c0 = bottom - rows + 1, centre - cols // 2
    src_r0, src_r1 = max(r0, 0), min(r0 + rows, values.shape[0])
    src_c0, src_c1 = max(c0, 0), min(c0 + cols, values.shape[1])
    out[src_r0 - r0 : src_r1 - r0, src_c0 - c0 : src_c1 - c0] = values[src_r0:src_r1, src_c0:src_c1]
    return out.reshape(rows // pool, pool, cols // pool, pool, -1).mean(axis=(1, 3))


def _ink_mass(pixels: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, in [0, 1], as a blend of ink over one of the other palette colours.

    Blur spreads ink into its neighbours but keeps its total, so ink is measured as a blend fraction rather
    than as pixels that still look like ink. ``pixels`` [N, 3], ``bases`` [B, 3] with the ground first -> [N].
    """
    ink = np.array(World.INK, dtype=np.float32)
    towards = ink - bases  # [B, 3]
    offset = pixels[:, None, :] - bases  # [N, B, 3]
    share = np.clip((offset * towards).sum(-1) / (towards**2).sum(-1), 0.0, 1.0)  # [N, B]
    residual = ((offset - share[..., None] * towards) ** 2).sum(-1)  # [N, B]
    # Ink over the ground comes first: the greys (snow, metal, the city's ground) lie on one line towards
    # ink, and a hat or a bag is drawn against the ground.
    best = np.where(residual[:, 0] < 40.0**2, 0, residual.argmin(-1))
    rows = np.arange(len(pixels))
    share = np.where(residual[rows, best] < 40.0**2, share[rows, best], 0.0)
    return np.clip((share - 0.3) / 0.7, 0.0, 1.0)  # noise alone rarely reaches a 0.3 blend


def _features(maps: _Maps, f: int, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Kind features, trait features, colour votes [8] and centre column of one figure of frame ``f``.

    Kind features are maps of where the figure's colour, skin, hair and metal are; trait features the map of
    its ink; both in a window anchored at the figure's feet and its colour's centre column.
    """
    c0, c1 = span
    labels = maps.labels[f]
    inside = np.zeros(labels.shape[1], dtype=bool)
    inside[c0 : c1 + 1] = True
    fg = maps.figure[f] & inside
    rows = _span(fg.sum(1), 1)
    top, bottom = rows if rows else (0, labels.shape[0] - 1)
    # soft colour vote of the pixels nearest a named colour (skin, hair, metal and ink do not vote)
    voters = fg & (labels >= 1) & (labels <= len(COLOUR_NAMES))
    votes = np.exp(-maps.colour_d2[f][voters] / (2 * _COLOUR_SIGMA**2)).sum(0)  # [8]
    colour = int(np.argmax(votes))
    cmask = (labels == 1 + colour) & inside
    anchor = int(round(np.mean(np.nonzero(cmask)[1]))) if cmask.any() else (c0 + c1) // 2
    parts = np.stack([cmask, labels == _SKIN, labels == _HAIR, labels == _METAL], axis=-1) & inside[:, None]
    kind_features = _window(parts.astype(np.float32), bottom, anchor, KIND_POOL).ravel()
    ink = np.where(inside, maps.ink[f], 0.0).astype(np.float32)
    trait_features = _window(ink[..., None], bottom, anchor, TRAIT_POOL).ravel()
    column_mass = fg.sum(0)[c0 : c1 + 1] + 1e-6
    centre = c0 + float(np.average(np.arange(c1 - c0 + 1), weights=column_mass))
    return kind_features, trait_features, votes, centre


@dataclass
class _Reading:
    location: str
    location_distances: np.ndarray
    counts: list[int]
    figures: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]]  # per frame, per figure


def _read(frames: np.ndarray) -> _Reading:
    frames = _pick_frames(_check_frames(frames))
    loc_index, distances, ground = _locate(frames)
    found = World.LOCATIONS[loc_index]
    maps = _maps(_ground_rows(frames), ground)
    figures = [maps.figures(f) for f in range(frames.shape[0])]
    return _Reading(found, distances, [len(figs) for figs in figures], figures)


# ---------------------------------------------------------------------------------------------------------
# Reference features from the world's own renders


def _upsample_bilinear(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Bilinear up-sampling by an integer factor along one axis (pixel centres aligned, edges replicated)."""
    n = x.shape[axis]
    centres = (np.arange(n * factor) + 0.5) / factor - 0.5
    lo = np.clip(np.floor(centres).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    frac = np.clip(centres - np.floor(centres), 0.0, 1.0).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def degrade(frames: np.ndarray, rng: np.random.Generator, noise_sigma: float = 20.0, blur: int = 2) -> np.ndarray:
    """Frames as a generative model might give them back: ``blur``x down-up sampling, then Gaussian noise."""
    x = frames.astype(np.float32)
    if blur > 1:
        t, h, w, c = x.shape
        x = x.reshape(t, h // blur, blur, w // blur, blur, c).mean(axis=(2, 4))
        x = _upsample_bilinear(_upsample_bilinear(x, blur, axis=1), blur, axis=2)
    if noise_sigma > 0:
        x = x + rng.normal(0.0, noise_sigma, size=x.shape).astype(np.float32)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


class _Neighbours:
    """A bank of labelled feature vectors, ready for nearest-neighbour votes."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
        features = features.astype(np.float32)
        self.mean = features.mean(0)
        # distances are taken in the bank's leading principal components: the same neighbours, a small product
        _, _, components = np.linalg.svd(features - self.mean, full_matrices=False)
        self.projection = np.ascontiguousarray(components[:PRINCIPAL_COMPONENTS].T)  # [D, C]
        bank = (features - self.mean) @ self.projection  # [N, C]
        self.bank_t = np.ascontiguousarray(bank.T)  # [C, N]
        self.half_norms = 0.5 * (bank**2).sum(1)  # [N]
        self.labels = labels
        self.num_classes = num_classes

    def classify(self, queries: np.ndarray) -> np.ndarray:
        """[Q, D] -> [Q] class index, the majority of the NEIGHBOURS nearest bank vectors."""
        projected = (queries.astype(np.float32) - self.mean) @ self.projection  # [Q, C]
        # squared distance up to each query's own norm, halved: |b|^2 / 2 - q.b
        d2 = self.half_norms[None] - projected @ self.bank_t  # [Q, N]
        k = min(NEIGHBOURS, d2.shape[1])
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        votes = np.zeros((queries.shape[0], self.num_classes))
        np.add.at(votes, (np.repeat(np.arange(queries.shape[0]), k), self.labels[nearest].ravel()), 1.0)
        return votes.argmax(1)


@dataclass
class _Reference:
    kinds: _Neighbours
    traits_by_kind: list[_Neighbours]  # the trait is read among references of the same kind
    size: int


@lru_cache(maxsize=1)
def _reference() -> _Reference:
    """Features of every kind x trait x action alone in the frame (built once).

    Each combination is read REFERENCE_VARIANTS times (clean twice, then degraded), facing both ways, each
    time in another colour, place and column.
    """
    rng = np.random.default_rng(1234)
    kind_rows, trait_rows, kinds, traits = [], [], [], []
    for k, kind in enumerate(World.KINDS):
        for t, trait in enumerate(World.TRAITS):
            for action in World.ACTIONS:
                for variant in range(REFERENCE_VARIANTS):
                    colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
                    location = World.LOCATIONS[int(rng.integers(len(World.LOCATIONS)))]
                    half = HALF_WIDTH[kind]  # anywhere in the frame, edges included
                    x = float(rng.integers(half + 1, World.FRAME_SIZE - 1 - half))
                    story = Story([Character("ref", kind, colour, trait)], [SceneSpec(location, [("ref", action, x)])])
                    frames = render_scene(story, 0, num_frames=13)[::3]  # 5 frames across a jump/sit/walk cycle
                    if variant % 2:
                        frames = np.ascontiguousarray(frames[:, :, ::-1])
                    if variant >= 2:  # most references are degraded: generated frames rarely come out clean
                        frames = degrade(frames, rng)
                    maps = _maps(_ground_rows(frames), np.array(World.GROUND[location], dtype=np.float32))
                    for f in range(frames.shape[0]):
                        figures = maps.figures(f)
                        if len(figures) != 1:
                            continue
                        kf, tf, _, _ = figures[0]
                        kind_rows.append(kf)
                        trait_rows.append(tf)
                        kinds.append(k)
                        traits.append(t)
    logger.info("judge reference: %d figure readings", len(kinds))
    kind_features, trait_features = np.stack(kind_rows), np.stack(trait_rows)
    kinds_array, traits_array = np.array(kinds), np.array(traits)
    return _Reference(
        kinds=_Neighbours(kind_features, kinds_array, len(World.KINDS)),
        traits_by_kind=[
            _Neighbours(trait_features[kinds_array == k], traits_array[kinds_array == k], len(World.TRAITS))
            for k in range(len(World.KINDS))
        ],
        size=len(kinds),
    )


def _classify(kind_features: np.ndarray, trait_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = _reference()
    kinds = ref.kinds.classify(kind_features)
    traits = np.empty(len(kinds), dtype=int)
    for k in np.unique(kinds):
        rows = kinds == k
        traits[rows] = ref.traits_by_kind[k].classify(trait_features[rows])
    return kinds, traits


# ---------------------------------------------------------------------------------------------------------
# Judging


def read_scene(frames: np.ndarray) -> dict:
    """What a scene shows, without expectations: location and characters (kind, colour, trait)."""
    reading = _read(frames)
    return {"location": reading.location, "characters": [d.as_dict() for d in _detect([reading])[0]]}


def _detect(readings: list[_Reading]) -> list[list[Detection]]:
    """The characters of each reading (one reading a scene), classified in one batch."""
    plans, kind_rows, trait_rows = [], [], []
    for reading in readings:
        count = Counter(reading.counts).most_common(1)[0][0] if reading.counts else 0
        frames = [figs for figs in reading.figures if len(figs) == count] if count else []
        flat = [fig for figs in frames for fig in figs]  # frame-major, then left to right
        plans.append((count, len(frames), flat, len(kind_rows)))
        kind_rows += [fig[0] for fig in flat]
        trait_rows += [fig[1] for fig in flat]
    if kind_rows:
        kinds, traits = _classify(np.stack(kind_rows), np.stack(trait_rows))
    results = []
    for count, num_frames, flat, offset in plans:
        detections = []
        for slot in range(count):
            idx = [i * count + slot for i in range(num_frames)]
            kind_votes = Counter(World.KINDS[kinds[offset + i]] for i in idx)
            trait_votes = Counter(World.TRAITS[traits[offset + i]] for i in idx)
            colour_votes = Counter(COLOUR_NAMES[int(np.argmax(flat[i][2]))] for i in idx if flat[i][2].max() > 0.5)
            detections.append(
                Detection(
                    x=float(np.median([flat[i][3] for i in idx])),
                    kind=kind_votes.most_common(1)[0][0],
                    colour=colour_votes.most_common(1)[0][0] if colour_votes else None,
                    trait=trait_votes.most_common(1)[0][0],
                    support=len(idx),
                    kind_votes=dict(kind_votes),
                )
            )
        results.append(detections)
    return results


def _match(expected: tuple[ExpectedCharacter, ...], found: list[Detection]) -> dict[str, int | None]:
    """Expected char_id -> detection index, the assignment that agrees most (ties: nearest columns)."""
    best, best_score = {}, -np.inf
    slots = list(range(len(found))) + [None] * len(expected)
    for perm in set(itertools.permutations(slots, len(expected))):
        score = 0.0
        for e, j in zip(expected, perm):
            if j is None:
                continue
            d = found[j]
            score += 2.0 * (d.kind == e.kind) + (d.colour == e.colour) + (d.trait == e.trait) + 0.5
            score -= abs(d.x - e.x) / (10.0 * World.FRAME_SIZE)
        if score > best_score:
            best, best_score = {e.char_id: j for e, j in zip(expected, perm)}, score
    return best


def judge_scene(frames: np.ndarray, expected: ExpectedScene | tuple[Story, int]) -> dict:
    """Check one scene's frames [T, 64, 64, 3] uint8 against what it should show.

    ``expected`` is an ``ExpectedScene`` or ``(story, scene_index)``. Returns the detected location and
    characters, whether location and count are right, and per expected character the matched detection
    and whether its kind, colour and trait are right.
    """
    reading = _read(frames)
    return _score_scene(reading, _detect([reading])[0], expected)


def _score_scene(reading: _Reading, found: list[Detection], expected: ExpectedScene | tuple[Story, int]) -> dict:
    if isinstance(expected, tuple):
        expected = expected_scene(*expected)
    match = _match(expected.characters, found)
    per_character = {}
    for e in expected.characters:
        j = match[e.char_id]
        d = found[j] if j is not None else None
        per_character[e.char_id] = {
            "detection": j,
            "found": d is not None,
            "kind": d.kind if d else None,
            "colour": d.colour if d else None,
            "trait": d.trait if d else None,
            "kind_correct": bool(d and d.kind == e.kind),
            "colour_correct": bool(d and d.colour == e.colour),
            "trait_correct": bool(d and d.trait == e.trait),
        }
    n = max(len(expected.characters), 1)
    return {
        "location": reading.location,
        "location_correct": reading.location == expected.location,
        "count": len(found),
        "count_correct": len(found) == len(expected.characters),
        "characters": [d.as_dict() for d in found],
        "per_character": per_character,
        "kind_accuracy": sum(p["kind_correct"] for p in per_character.values()) / n,
        "colour_accuracy": sum(p["colour_correct"] for p in per_character.values()) / n,
        "trait_accuracy": sum(p["trait_correct"] for p in per_character.values()) / n,
    }


TALLY_NAMES = ("location", "count", "kind", "colour", "trait", "kind_asked", "colour_asked", "colour_consistency",
               "trait_consistency", "shown_trait_consistency", "returning_trait_consistency", "identity_consistency",
               "colour_asked_1", "colour_asked_2", "colour_asked_3", "trait_drawn")


def stated(scene: SceneSpec, char_id: str, kind: str) -> tuple[bool, bool]:
    """Whether a scene's prompt states a character's (kind, colour).

    A first appearance states both; "the man in red" both; "the one in red" the colour; "the dog" or "the
    man" the kind; a name, a pronoun or "the protagonist" neither (keeping those is consistency's part).
    """
    form = scene.referring.get(char_id)
    if form == "full":
        return True, True
    phrase = scene.mentions.get(char_id, "").lower()
    kind_named = any(re.search(rf"\b{re.escape(noun)}\b", phrase) for noun in KIND_WORDS[kind])  # any phrasing
    return form in ("colour", "role") and kind_named, form == "colour"


def judge_story(scene_frames: list[np.ndarray], story: Story) -> dict:
    """Judge a whole story: one [T_i, 64, 64, 3] array per scene, in order.

    Rates in [0, 1] (``None`` where nothing was there to count):

    * ``adherence``: does the scene show what its prompt asks? The mean of ``location_accuracy``,
      ``kind_asked`` and ``colour_asked``: kind and colour over the (scene, character) pairs whose prompt
      states them (``stated``).
    * ``location_accuracy``, ``count_accuracy``; ``kind_accuracy``, ``colour_accuracy``, ``trait_accuracy``
      over every (scene, expected character), stated or not, against the story's truth; ``truth_accuracy`` is
      the mean of location, kind and colour counted that way (adherence and consistency in one number).
    * ``colour_consistency``: later appearances whose prompt did not restate the colour (name, pronoun,
      role) show the colour of the character's first appearance.
    * ``trait_consistency``: every later appearance shows the first appearance's trait;
      ``returning_trait_consistency`` the same over the appearances after at least one scene away (what the
      window cannot carry over: only the sink or the memory can).
    * ``shown_trait_consistency``: the same as ``trait_consistency`` over the characters whose first appearance
      shows a trait (a band, a hat or a bag, not "plain"). "Plain" is a trait too, so a model that draws no
      trait at all would keep ``trait_consistency`` at 1; this rate counts only traits that were drawn.
    * ``identity_consistency``: every later appearance shows the first appearance's kind, colour and trait.

    A character missing from a scene counts as wrong. The reference is what the judge saw at the first
    appearance (the truth when the character was not found there). ``tallies`` holds [hits, total] per
    rate, for pooling stories with ``summarise``.

    ``breakdown`` holds rates that say where the others are lost, not whether a video is right:
    ``colour_asked`` split by how many characters the scene holds (``colour_asked_by_figures``), and
    ``trait_drawn``, the share of first appearances read with a trait (three quarters of the world's characters
    have one; the trait of a first appearance is never prompted, so a model drawing the average leaves it out).
    """
    if len(scene_frames) != len(story.scenes):
        raise ValueError(
            f"judge_story needs one frame array a scene ({len(story.scenes)} scenes, got {len(scene_frames)})"
        )
    tallies = {name: [0, 0] for name in TALLY_NAMES}
    scenes, first_seen, last_scene = [], {}, {}
    readings = [_read(frames) for frames in scene_frames]
    for index, (reading, found) in enumerate(zip(readings, _detect(readings))):
        result = _score_scene(reading, found, (story, index))
        scenes.append(result)
        spec = story.scenes[index]
        tallies["location"][0] += result["location_correct"]
        tallies["location"][1] += 1
        tallies["count"][0] += result["count_correct"]
        tallies["count"][1] += 1
        for char_id, seen in result["per_character"].items():
            for attribute in ("kind", "colour", "trait"):
                tallies[attribute][0] += seen[f"{attribute}_correct"]
                tallies[attribute][1] += 1
            kind_stated, colour_stated = stated(spec, char_id, story.character(char_id).kind)
            for attribute, asked in (("kind", kind_stated), ("colour", colour_stated)):
                tallies[f"{attribute}_asked"][0] += asked and seen[f"{attribute}_correct"]
                tallies[f"{attribute}_asked"][1] += asked
            crowd = f"colour_asked_{min(len(spec.characters), 3)}"
            tallies[crowd][0] += colour_stated and seen["colour_correct"]
            tallies[crowd][1] += colour_stated
            previous, last_scene[char_id] = last_scene.get(char_id), index
            if char_id not in first_seen:
                truth = story.character(char_id)
                first_seen[char_id] = (
                    (seen["kind"], seen["colour"], seen["trait"])
                    if seen["found"]
                    else (truth.kind, truth.colour, truth.trait)
                )
                tallies["trait_drawn"][0] += seen["found"] and seen["trait"] != "plain"
                tallies["trait_drawn"][1] += seen["found"]
                continue
            kind, colour, trait = first_seen[char_id]
            found = seen["found"]
            if previous < index - 1:
                tallies["returning_trait_consistency"][0] += found and seen["trait"] == trait
                tallies["returning_trait_consistency"][1] += 1
            if not colour_stated:
                tallies["colour_consistency"][0] += found and seen["colour"] == colour
                tallies["colour_consistency"][1] += 1
            tallies["trait_consistency"][0] += found and seen["trait"] == trait
            tallies["trait_consistency"][1] += 1
            if trait != "plain":
                tallies["shown_trait_consistency"][0] += found and seen["trait"] == trait
                tallies["shown_trait_consistency"][1] += 1
            same = found and (seen["kind"], seen["colour"], seen["trait"]) == (kind, colour, trait)
            tallies["identity_consistency"][0] += same
            tallies["identity_consistency"][1] += 1
    return {**_rates(tallies), "tallies": {k: list(map(int, v)) for k, v in tallies.items()}, "scenes": scenes}


def _rates(tallies: dict[str, list[int]]) -> dict:
    rate = {name: (hits / total if total else None) for name, (hits, total) in tallies.items()}
    adherence_parts = [rate["location"], rate["kind_asked"], rate["colour_asked"]]
    truth_parts = [rate["location"], rate["kind"], rate["colour"]]
    return {
        "location_accuracy": rate["location"],
        "count_accuracy": rate["count"],
        "kind_accuracy": rate["kind"],
        "colour_accuracy": rate["colour"],
        "trait_accuracy": rate["trait"],
        "kind_asked": rate["kind_asked"],
        "colour_asked": rate["colour_asked"],
        "adherence": float(np.mean(adherence_parts)) if None not in adherence_parts else None,
        "truth_accuracy": float(np.mean(truth_parts)) if None not in truth_parts else None,
        "colour_consistency": rate["colour_consistency"],
        "trait_consistency": rate["trait_consistency"],
        "shown_trait_consistency": rate["shown_trait_consistency"],
        "returning_trait_consistency": rate["returning_trait_consistency"],
        "identity_consistency": rate["identity_consistency"],
        "breakdown": {"colour_asked_by_figures": {str(n): rate[f"colour_asked_{n}"] for n in (1, 2, 3)},
                      "trait_drawn": rate["trait_drawn"]},
    }


def summarise(results: list[dict]) -> dict:
    """Pool ``judge_story`` results of many stories into one set of rates (counts summed, then divided)."""
    tallies = {name: [0, 0] for name in TALLY_NAMES}
    for result in results:
        for name, (hits, total) in result["tallies"].items():
            tallies[name][0] += hits
            tallies[name][1] += total
    return {**_rates(tallies), "tallies": tallies, "stories": len(results)}
