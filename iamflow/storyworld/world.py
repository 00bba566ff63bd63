"""The storyworld itself: its vocabulary, exact palette, layout rules and the frame renderer.

Everything a storyworld video can show is defined here: six locations (flat sky and ground with a few
fixed decorations above the horizon), six kinds of character drawn as flat-colour sprites, eight named
colours, four unnamed traits and eight actions. Rendering is a pure function of a scene description and a
frame index, so a scene can be drawn in pieces (``start_frame``) and always comes out the same.

Layout rules the judge relies on (see ``docs/storyworld.md``):

* sky rows ``0 .. HORIZON_ROW - 1``, ground rows ``HORIZON_ROW .. 63``; characters are drawn only over the
  ground, feet on ``FEET_ROW``, so rows ``0 .. SKY_SAMPLE_ROWS - 1`` and the rows below the feet always show
  the location's own colours;
* every character keeps to its own lane: sprites never overlap and stay ``MIN_GAP`` pixels apart, so the
  columns of a frame separate the characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

RGB = tuple[int, int, int]


class World:
    """Constants of the world: sizes, vocabulary and the exact palette (RGB, uint8)."""

    FRAME_SIZE = 64  # frames are FRAME_SIZE x FRAME_SIZE RGB
    FPS = 16
    HORIZON_ROW = 28  # first ground row
    FEET_ROW = 57  # row of every standing character's feet
    SKY_SAMPLE_ROWS = 10  # rows 0..9 hold only sky and the small sun/moon/stars
    GROUND_SAMPLE_ROWS = (60, 64)  # rows below every character's feet
    MIN_GAP = 4  # free columns between two characters' widest poses
    WALK_SPEED = 0.5  # pixels per frame (8 px/s)
    RUN_SPEED = 1.0
    JUMP_HEIGHT = 6  # pixels at the top of a jump
    JUMP_PERIOD = 12  # frames per jump

    LOCATIONS = ("park", "beach", "city", "snow", "desert", "room")
    LOCATION_LABELS = {
        "park": "sunny park",
        "beach": "beach by the sea",
        "city": "city street at night",
        "snow": "snowy field",
        "desert": "desert",
        "room": "room indoors",
    }
    TIME_OF_DAY = {"park": "day", "beach": "day", "city": "night", "snow": "day", "desert": "day", "room": "indoors"}
    SKY: dict[str, RGB] = {
        "park": (120, 190, 240),
        "beach": (170, 225, 250),
        "city": (20, 24, 60),
        "snow": (190, 195, 205),
        "desert": (245, 190, 120),
        "room": (225, 205, 170),  # the wall
    }
    GROUND: dict[str, RGB] = {
        "park": (140, 200, 90),
        "beach": (250, 235, 190),
        "city": (95, 95, 105),
        "snow": (245, 248, 252),
        "desert": (240, 210, 150),
        "room": (90, 130, 110),  # the carpet
    }

    KINDS = ("man", "woman", "boy", "girl", "dog", "robot")
    COLOURS: dict[str, RGB] = {
        "red": (215, 30, 35),
        "blue": (35, 75, 215),
        "green": (20, 130, 40),
        "yellow": (245, 215, 0),
        "purple": (130, 40, 170),
        "orange": (245, 125, 0),
        "pink": (240, 110, 180),
        "teal": (0, 150, 150),
    }
    # Fixed colours of the sprites besides the named colour (clothing, fur or paint).
    SKIN: RGB = (200, 140, 110)
    HAIR: RGB = (150, 85, 40)
    METAL: RGB = (160, 165, 175)
    INK: RGB = (25, 25, 30)  # every trait is drawn in ink

    # The trait is fixed per character, visible in every frame and never named in a caption.
    TRAITS = ("plain", "band", "hat", "bag")
    ACTIONS = ("stand", "walk_left", "walk_right", "run_left", "run_right", "jump", "sit", "wave")

    # Decorations above the horizon (never over the ground).
    SUN: RGB = (250, 230, 80)
    MOON: RGB = (235, 235, 200)
    STAR: RGB = (250, 250, 240)
    HILLS: RGB = (60, 140, 60)
    SEA: RGB = (40, 120, 200)
    FOAM: RGB = (235, 245, 250)
    BUILDING: RGB = (45, 45, 80)
    WINDOW_LIGHT: RGB = (250, 220, 90)
    PINE: RGB = (40, 90, 60)
    DUNE: RGB = (230, 175, 105)
    CACTUS: RGB = (70, 140, 70)
    WOOD: RGB = (140, 100, 70)
    GLASS: RGB = (160, 210, 240)

    @classmethod
    def vocabulary(cls) -> dict[str, tuple[str, ...]]:
        """The world's closed vocabulary, by category."""
        return {
            "locations": cls.LOCATIONS,
            "kinds": cls.KINDS,
            "colours": tuple(cls.COLOURS),
            "traits": cls.TRAITS,
            "actions": cls.ACTIONS,
        }

    @classmethod
    def figure_palette(cls) -> dict[str, RGB]:
        """Every colour a character can be made of, by name."""
        return {**cls.COLOURS, "skin": cls.SKIN, "hair": cls.HAIR, "metal": cls.METAL, "ink": cls.INK}


@dataclass(frozen=True)
class Character:
    """One member of a story's cast; colour and trait never change within a story."""

    char_id: str
    kind: str
    colour: str
    trait: str
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in World.KINDS:
            raise ValueError(f"kind must be one of {World.KINDS} (got {self.kind!r})")
        if self.colour not in World.COLOURS:
            raise ValueError(f"colour must be one of {tuple(World.COLOURS)} (got {self.colour!r})")
        if self.trait not in World.TRAITS:
            raise ValueError(f"trait must be one of {World.TRAITS} (got {self.trait!r})")


@dataclass
class SceneSpec:
    """One scene: where, who does what from which column, and the prompt that asks for it.

    ``characters`` holds ``(char_id, action, start_x)``; ``start_x`` is the sprite's centre column at frame 0.
    ``referring`` says how the prompt named each character: ``full`` (first appearance, kind and colour),
    ``name``, ``pronoun``, ``role`` (kind noun or "the protagonist", no colour) or ``colour`` (a description
    with the colour). ``mentions`` is the exact phrase of the prompt for each character, ``newcomers`` the
    characters seen for the first time in this scene.
    """

    location: str
    characters: list[tuple[str, str, float]]
    prompt: str = ""
    referring: dict[str, str] = field(default_factory=dict)
    mentions: dict[str, str] = field(default_factory=dict)
    newcomers: tuple[str, ...] = ()
    location_mentioned: bool = True
    time_of_day: str | None = None

    def __post_init__(self) -> None:
        if self.location not in World.LOCATIONS:
            raise ValueError(f"location must be one of {World.LOCATIONS} (got {self.location!r})")
        if not 1 <= len(self.characters) <= 3:
            raise ValueError(f"a scene holds 1 to 3 characters (got {len(self.characters)})")
        for char_id, action, _ in self.characters:
            if action not in World.ACTIONS:
                raise ValueError(f"action of {char_id!r} must be one of {World.ACTIONS} (got {action!r})")

    @property
    def char_ids(self) -> list[str]:
        return [char_id for char_id, _, _ in self.characters]


@dataclass
class Story:
    """A cast and its scenes; ``seed`` regenerates the same story with ``stories.story_from_seed``."""

    characters: list[Character]
    scenes: list[SceneSpec]
    seed: int = 0

    def character(self, char_id: str) -> Character:
        for character in self.characters:
            if character.char_id == char_id:
                return character
        raise KeyError(f"no character {char_id!r} in this story (cast: {[c.char_id for c in self.characters]})")

    @property
    def prompts(self) -> list[str]:
        return [scene.prompt for scene in self.scenes]

    def first_appearance(self, char_id: str) -> int:
        for index, scene in enumerate(self.scenes):
            if char_id in scene.char_ids:
                return index
        raise KeyError(f"{char_id!r} appears in no scene")

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "characters": [vars(c).copy() for c in self.characters],
            "scenes": [
                {
                    "location": s.location,
                    "characters": [[c, a, float(x)] for c, a, x in s.characters],
                    "prompt": s.prompt,
                    "referring": dict(s.referring),
                    "mentions": dict(s.mentions),
                    "newcomers": list(s.newcomers),
                    "location_mentioned": s.location_mentioned,
                    "time_of_day": s.time_of_day,
                }
                for s in self.scenes
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Story":
        characters = [Character(**c) for c in data["characters"]]
        scenes = []
        for s in data["scenes"]:
            s = dict(s)
            s["characters"] = [(c, a, float(x)) for c, a, x in s["characters"]]
            s["newcomers"] = tuple(s.get("newcomers", ()))
            scenes.append(SceneSpec(**s))
        return cls(characters=characters, scenes=scenes, seed=int(data.get("seed", 0)))


# ---------------------------------------------------------------------------------------------------------
# Sprites. Each part is (x0, x1, y0, y1, paint) in sprite coordinates, inclusive: x relative to the centre
# column (facing right), y counted down from the top row of the standing sprite. ``paint`` is "body" (the
# named colour), "skin", "hair", "metal" or "ink".

Part = tuple[int, int, int, int, str]

# Standing height in rows, and the widest half-width over every pose and trait (for lanes).
SPRITE_HEIGHT = {"man": 22, "woman": 21, "boy": 15, "girl": 15, "dog": 12, "robot": 21}
HALF_WIDTH = {"man": 7, "woman": 7, "boy": 6, "girl": 6, "dog": 8, "robot": 8}
# Rows the legs fold away when sitting (the dog lies down).
SIT_DROP = {"man": 5, "woman": 3, "boy": 3, "girl": 2, "dog": 3, "robot": 4}


@dataclass(frozen=True)
class Pose:
    step: int  # 0/1, alternating leg position
    lift: int  # pixels above the ground (jump)
    sit: int  # rows folded away (sit)
    wave: int  # -1 no wave, else 0/1 arm position


def _human_parts(kind: str, trait: str, pose: Pose) -> list[Part]:
    adult = kind in ("man", "woman")
    dress = kind in ("woman", "girl")
    head_rows = 5 if adult else 4
    top_body = head_rows
    body_rows = {"man": 9, "woman": 11, "boy": 7, "girl": 8}[kind]
    bottom_body = top_body + body_rows - 1
    half = 3 if adult else 2  # torso half-width
    drop = pose.sit
    parts: list[Part] = []
    # head: one row of hair, then skin
    parts.append((-2, 2, 0, 0, "hair"))
    parts.append((-2, 2, 1, head_rows - 1, "skin"))
    if adult and dress:  # long hair down the sides
        parts.append((-3, -3, 0, 6, "hair"))
        parts.append((3, 3, 0, 6, "hair"))
    elif dress:  # pigtails sticking out
        parts.append((-4, -3, 1, 3, "hair"))
        parts.append((3, 4, 1, 3, "hair"))
    # body: straight torso or flared dress
    if dress:
        step_rows = 3 if adult else 2
        for row in range(top_body, bottom_body + 1):
            width = half + (row - top_body) // step_rows
            parts.append((-width, width, row, row, "body"))
    else:
        parts.append((-half, half, top_body, bottom_body, "body"))
    arm_x = half + 1
    # arms hang beside a torso; beside a dress only down to where it flares out
    arm_end = top_body + ((3 if adult else 2) if dress else body_rows - 2)
    parts.append((-arm_x, -arm_x, top_body + 1, arm_end, "skin"))
    if pose.wave < 0:
        parts.append((arm_x, arm_x, top_body + 1, arm_end, "skin"))
    else:  # raised arm beside the head, swinging one column in and out
        x = arm_x + pose.wave
        parts.append((x, x, 1, top_body, "skin"))
    # traits
    # Traits are ink shapes at least 3 pixels across, so a 2x blur leaves them readable.
    if trait == "band":  # a broad band across the chest
        first = 4 if body_rows >= 11 else (3 if adult else 2)
        for row in range(top_body + first, top_body + first + 3):
            width = half + (row - top_body) // (3 if adult else 2) if dress else half
            parts.append((-width, width, row, row, "ink"))
    elif trait == "hat":  # crown and brim over the hair
        parts.append((-2, 2, -2, -1, "ink"))
        parts.append((-3, 3, 0, 0, "ink"))
    elif trait == "bag":  # hangs at the left hip from a strap
        bag_top = bottom_body - 3 if adult else bottom_body - 2
        parts.append((-arm_x - 3, -arm_x - 1, bag_top, bottom_body, "ink"))
        parts.append((-arm_x - 1, -arm_x - 1, top_body + 1, bag_top - 1, "ink"))
    # everything above the legs sinks when sitting
    parts = [(x0, x1, y0 + drop, y1 + drop, paint) for x0, x1, y0, y1, paint in parts]
    # legs
    leg_top = bottom_body + 1 + drop
    leg_bottom = SPRITE_HEIGHT[kind] - 1
    if drop:
        parts.append((-3, -1, leg_top, leg_bottom, "skin"))
        parts.append((1, 3, leg_top, leg_bottom, "skin"))
    else:
        shift = pose.step
        parts.append((-3 + shift, -2 + shift, leg_top, leg_bottom, "skin"))
        parts.append((1 + shift, 2 + shift, leg_top, leg_bottom, "skin"))
    return parts


def _dog_parts(trait: str, pose: Pose) -> list[Part]:
    drop = pose.sit
    parts: list[Part] = [
        (3, 4, 0, 0, "body"),  # ear
        (3, 7, 1, 5, "body"),  # head
        (-6, 4, 4, 8, "body"),  # body
        (-8, -8, 2, 2, "body"),  # tail
        (-7, -7, 3, 4, "body"),
    ]
    if trait == "band":  # a broad band along the body
        parts.append((-6, 4, 5, 7, "ink"))
    elif trait == "hat":
        parts.append((4, 6, -2, -1, "ink"))
        parts.append((3, 7, 0, 0, "ink"))
    elif trait == "bag":  # a saddlebag hanging at its side
        parts.append((-3, -1, 6, 9, "ink"))
    parts = [(x0, x1, y0 + drop, y1 + drop, paint) for x0, x1, y0, y1, paint in parts]
    if not drop:
        shift = pose.step
        back = (-6 + shift, -5 + shift)
        front = (2 - shift, 3 - shift)
        parts.append((back[0], back[1], 9, 11, "body"))
        if pose.wave < 0:
            parts.append((front[0], front[1], 9, 11, "body"))
        else:  # raised front paw
            parts.append((2, 3, 9, 9, "body"))
            parts.append((5 + pose.wave, 6 + pose.wave, 6, 7, "body"))
    return parts


def _robot_parts(trait: str, pose: Pose) -> list[Part]:
    drop = pose.sit
    parts: list[Part] = [
        (-3, 3, 2, 6, "metal"),  # head
        (-4, 4, 7, 14, "body"),  # body
        (-5, -5, 8, 13, "metal"),  # left arm
    ]
    if trait == "hat":
        parts.append((-2, 2, -1, 0, "ink"))
        parts.append((-4, 4, 1, 1, "ink"))
    else:
        parts.append((-1, 1, 0, 0, "metal"))  # antenna
        parts.append((0, 0, 1, 1, "metal"))
    if pose.wave < 0:
        parts.append((5, 5, 8, 13, "metal"))
    else:
        parts.append((5 + pose.wave, 5 + pose.wave, 2, 7, "metal"))
    if trait == "band":
        parts.append((-4, 4, 9, 11, "ink"))
    elif trait == "bag":
        parts.append((-8, -6, 11, 14, "ink"))
        parts.append((-6, -6, 8, 10, "ink"))
    parts = [(x0, x1, y0 + drop, y1 + drop, paint) for x0, x1, y0, y1, paint in parts]
    leg_bottom = SPRITE_HEIGHT["robot"] - 1
    if drop:
        parts.append((-4, -2, 15 + drop, leg_bottom, "metal"))
        parts.append((2, 4, 15 + drop, leg_bottom, "metal"))
    else:
        shift = pose.step
        parts.append((-3 + shift, -2 + shift, 15, leg_bottom, "metal"))
        parts.append((2 + shift, 3 + shift, 15, leg_bottom, "metal"))
    return parts


@lru_cache(maxsize=4096)
def sprite_parts(kind: str, trait: str, pose: Pose) -> tuple[Part, ...]:
    """The parts of one sprite in one pose (facing right), never below its feet."""
    if kind == "dog":
        parts = _dog_parts(trait, pose)
    elif kind == "robot":
        parts = _robot_parts(trait, pose)
    else:
        parts = _human_parts(kind, trait, pose)
    last_row = SPRITE_HEIGHT[kind] - 1
    return tuple((x0, x1, y0, min(y1, last_row), paint) for x0, x1, y0, y1, paint in parts if y0 <= last_row)


def pose_at(kind: str, action: str, frame: int) -> Pose:
    """The sprite pose of a kind doing an action at a frame index (frame 0 is the scene's first frame)."""
    step = 0
    if action.startswith("walk"):
        step = (frame // 4) % 2
    elif action.startswith("run"):
        step = (frame // 2) % 2
    lift = 0
    if action == "jump":
        lift = int(round(World.JUMP_HEIGHT * abs(math.sin(math.pi * frame / World.JUMP_PERIOD))))
    sit = 0
    if action == "sit":  # the legs fold over the first 6 frames
        sit = int(round(min(frame / 6.0, 1.0) * SIT_DROP[kind]))
    wave = (frame // 4) % 2 if action == "wave" else -1
    return Pose(step=step, lift=lift, sit=sit, wave=wave)


def _velocity(action: str) -> float:
    if action == "walk_left":
        return -World.WALK_SPEED
    if action == "walk_right":
        return World.WALK_SPEED
    if action == "run_left":
        return -World.RUN_SPEED
    if action == "run_right":
        return World.RUN_SPEED
    return 0.0


def facing(action: str) -> int:
    """+1 facing right, -1 facing left (only the dog's sprite is asymmetric enough to show it)."""
    return -1 if action.endswith("_left") else 1


def lane_bounds(scene: SceneSpec, story: Story) -> dict[str, tuple[float, float]]:
    """The columns each character's centre may take in a scene: its lane.

    Neighbours share the free space between them in proportion to how much each walks towards the other, and
    nobody leaves the frame; a walker that reaches its lane's end keeps walking on the spot.
    """
    size = World.FRAME_SIZE
    entries = sorted(scene.characters, key=lambda entry: entry[2])
    half = [HALF_WIDTH[story.character(c).kind] for c, _, _ in entries]
    lows = [float(h + 1) for h in half]
    highs = [float(size - 2 - h) for h in half]
    for i in range(len(entries) - 1):
        (_, action_a, x_a), (_, action_b, x_b) = entries[i], entries[i + 1]
        free = (x_b - half[i + 1]) - (x_a + half[i]) - World.MIN_GAP
        if free < 0:
            raise ValueError(
                f"characters {entries[i][0]!r} and {entries[i + 1][0]!r} start too close "
                f"(start_x {x_a} and {x_b}; they need {half[i] + half[i + 1] + World.MIN_GAP} columns)"
            )
        demand_a = 1.0 if _velocity(action_a) > 0 else 0.05
        demand_b = 1.0 if _velocity(action_b) < 0 else 0.05
        highs[i] = min(highs[i], x_a + free * demand_a / (demand_a + demand_b))
        lows[i + 1] = max(lows[i + 1], x_b - free * demand_b / (demand_a + demand_b))
    return {entry[0]: (lows[i], max(lows[i], highs[i])) for i, entry in enumerate(entries)}


def character_x(action: str, start_x: float, bounds: tuple[float, float], frame: int) -> float:
    """Centre column of a character at a frame: constant velocity, clamped to its lane."""
    low, high = bounds
    return float(min(max(start_x + _velocity(action) * frame, low), high))


# ---------------------------------------------------------------------------------------------------------
# Backgrounds


def _disc(canvas: np.ndarray, cx: int, cy: int, radius: float, rgb: RGB) -> None:
    ys, xs = np.mgrid[0 : canvas.shape[0], 0 : canvas.shape[1]]
    canvas[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius] = rgb


@lru_cache(maxsize=len(World.LOCATIONS))
def _background(location: str) -> np.ndarray:
    size, horizon = World.FRAME_SIZE, World.HORIZON_ROW
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:horizon] = World.SKY[location]
    canvas[horizon:] = World.GROUND[location]
    sky = canvas[:horizon]
    cols = np.arange(size)
    if location == "park":
        _disc(sky, 52, 6, 3.5, World.SUN)
        hill = horizon - 1 - np.round(4 + 3 * np.sin(cols / 7.0)).astype(int)
        for x in range(size):
            sky[hill[x] :, x] = World.HILLS
    elif location == "beach":
        _disc(sky, 12, 6, 3.5, World.SUN)
        sky[20:27] = World.SEA
        sky[27] = World.FOAM
    elif location == "city":
        _disc(sky, 9, 5, 3.0, World.MOON)
        for x, y in ((20, 3), (31, 7), (44, 2), (57, 6), (3, 9), (38, 4)):
            sky[y, x] = World.STAR
        x = 0
        for width, height in ((9, 12), (7, 16), (10, 10), (8, 15), (11, 13), (9, 17), (10, 11)):
            top = horizon - height
            sky[top:, x : x + width] = World.BUILDING
            for wy in range(top + 2, horizon - 2, 4):
                for wx in range(x + 2, min(x + width - 2, size), 3):
                    sky[wy : wy + 2, wx] = World.WINDOW_LIGHT
            x += width + 1
            if x >= size:
                break
    elif location == "snow":
        for base in (6, 22, 41, 55):
            for row in range(14, horizon):
                half = (row - 14) // 3
                sky[row, max(base - half, 0) : base + half + 1] = World.PINE
        sky[horizon - 2 :] = World.GROUND["snow"]
    elif location == "desert":
        _disc(sky, 50, 6, 4.0, World.SUN)
        dune = horizon - 1 - np.round(3 + 3 * np.sin(cols / 9.0 + 1.0)).astype(int)
        for x in range(size):
            sky[dune[x] :, x] = World.DUNE
        sky[15:27, 18:20] = World.CACTUS
        sky[18:20, 15:18] = World.CACTUS
        sky[15:18, 15:16] = World.CACTUS
        sky[20:22, 20:23] = World.CACTUS
        sky[17:20, 22:23] = World.CACTUS
    elif location == "room":
        sky[4:19, 8:25] = World.WOOD
        sky[5:18, 9:24] = World.GLASS
        sky[11, 9:24] = World.WOOD
        sky[5:18, 16] = World.WOOD
        sky[8:17, 40:54] = World.WOOD
        sky[9:16, 41:53] = World.COLOURS["yellow"]
        sky[12:16, 41:53] = World.HILLS
        sky[horizon - 2 :] = World.WOOD
    canvas.setflags(write=False)
    return canvas


def background(location: str) -> np.ndarray:
    """The empty location, [64, 64, 3] uint8 (read-only; copy before drawing)."""
    if location not in World.LOCATIONS:
        raise ValueError(f"location must be one of {World.LOCATIONS} (got {location!r})")
    return _background(location)


# ---------------------------------------------------------------------------------------------------------
# Rendering


def draw_character(canvas: np.ndarray, character: Character, action: str, x: float, frame: int) -> None:
    """Paint one character into a [H, W, 3] canvas in place, centre column ``x``, at a scene frame index."""
    pose = pose_at(character.kind, action, frame)
    parts = sprite_parts(character.kind, character.trait, pose)
    paints = {
        "body": World.COLOURS[character.colour],
        "skin": World.SKIN,
        "hair": World.HAIR,
        "metal": World.METAL,
        "ink": World.INK,
    }
    centre = int(round(x))
    top = World.FEET_ROW - SPRITE_HEIGHT[character.kind] + 1 - pose.lift
    direction = facing(action) if character.kind == "dog" else 1
    height, width = canvas.shape[:2]
    for x0, x1, y0, y1, paint in parts:
        if direction < 0:
            x0, x1 = -x1, -x0
        c0, c1 = max(centre + x0, 0), min(centre + x1 + 1, width)
        r0, r1 = max(top + y0, 0), min(top + y1 + 1, height)
        if c0 < c1 and r0 < r1:
            canvas[r0:r1, c0:c1] = paints[paint]


def render_frame(story: Story, scene_index: int, frame: int) -> np.ndarray:
    """One frame of a scene, [64, 64, 3] uint8."""
    return render_scene(story, scene_index, num_frames=1, start_frame=frame)[0]


def render_scene(story: Story, scene_index: int, num_frames: int, start_frame: int = 0) -> np.ndarray:
    """Frames ``start_frame .. start_frame + num_frames - 1`` of a scene, [T, 64, 64, 3] uint8.

    Motion is a function of the frame index only, so rendering a scene in pieces gives the same frames as
    rendering it at once.
    """
    if not 0 <= scene_index < len(story.scenes):
        raise ValueError(f"scene_index must be in [0, {len(story.scenes)}) (got {scene_index})")
    if num_frames < 1 or start_frame < 0:
        raise ValueError(f"num_frames must be >= 1 and start_frame >= 0 (got {num_frames}, {start_frame})")
    scene = story.scenes[scene_index]
    bounds = lane_bounds(scene, story)
    frames = np.empty((num_frames, World.FRAME_SIZE, World.FRAME_SIZE, 3), dtype=np.uint8)
    base = background(scene.location)
    for i in range(num_frames):
        frame = start_frame + i
        canvas = frames[i]
        canvas[:] = base
        for char_id, action, start_x in scene.characters:
            x = character_x(action, start_x, bounds[char_id], frame)
            draw_character(canvas, story.character(char_id), action, x, frame)
    return frames


def render_story(story: Story, frames_per_scene: int | list[int]) -> list[np.ndarray]:
    """Every scene of a story, one [T_i, 64, 64, 3] uint8 array a scene (``np.concatenate`` for one video)."""
    if isinstance(frames_per_scene, int):
        counts = [frames_per_scene] * len(story.scenes)
    else:
        counts = list(frames_per_scene)
        if len(counts) != len(story.scenes):
            raise ValueError(
                f"frames_per_scene needs one count a scene ({len(story.scenes)} scenes, got {len(counts)} counts)"
            )
    return [render_scene(story, index, count) for index, count in enumerate(counts)]
