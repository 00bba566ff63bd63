"""Stories of the storyworld: sampling casts and scenes, and captioning them as a person would type them.

A story has 2 to 6 scenes and a cast of up to four characters. The first scene introduces its characters
in full (kind and colour, sometimes a name); later scenes bring some of them back, referred to by name, by
pronoun, by role ("the man", "the protagonist") or by colour ("the one in red"), and sometimes a newcomer
("another woman, dressed in blue"). Captions never mention a character's trait. Every scene records which
characters it shows, the exact phrase that names each of them and how it names them: the ground truth of the
entity agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from iamflow.storyworld.world import HALF_WIDTH, Character, SceneSpec, Story, World, render_scene

logger = logging.getLogger(__name__)

MAX_CAST = 4
MAX_SEED = 2**31 - 1

NOUNS = {
    "man": ("man", "guy", "gentleman"),
    "woman": ("woman", "lady"),
    "boy": ("boy", "little boy", "young boy"),
    "girl": ("girl", "little girl", "young girl"),
    "dog": ("dog", "puppy", "pup"),
    "robot": ("robot", "droid"),
}
GARMENTS = {
    "man": ("shirt", "jacket", "sweater", "t-shirt"),
    "woman": ("dress", "coat", "jacket"),
    "boy": ("t-shirt", "hoodie", "jacket"),
    "girl": ("dress", "coat", "raincoat"),
}
PRONOUNS = {"man": "he", "boy": "he", "woman": "she", "girl": "she", "dog": "it", "robot": "it"}
NAMES = {
    "man": ("Tom", "Leo", "Ben", "Omar", "Ravi", "Jack"),
    "boy": ("Sam", "Finn", "Noah", "Kai", "Eli", "Max"),
    "woman": ("Anna", "Lucy", "Nora", "Emma", "Sara", "Ines"),
    "girl": ("Mia", "Zoe", "Lily", "Ava", "Ella", "Ruby"),
    "dog": ("Rex", "Buddy", "Luna", "Pepper", "Biscuit", "Scout"),
    "robot": ("Bolt", "Zip", "Gizmo", "Cog", "Sprocket", "Beep"),
}
ORDINALS = ("first", "second", "third", "fourth")
PROTAGONIST_ROLES = ("the protagonist", "our hero", "the hero")

ACTION_PHRASES = {
    "stand": ("stands still", "stands there", "is standing", "stands quietly", "waits"),
    "walk_left": ("walks to the left", "walks left", "strolls to the left", "heads to the left"),
    "walk_right": ("walks to the right", "walks right", "strolls to the right", "heads to the right"),
    "run_left": ("runs to the left", "runs left", "dashes to the left", "races to the left"),
    "run_right": ("runs to the right", "runs right", "dashes to the right", "races to the right"),
    "jump": ("jumps", "jumps up and down", "hops", "leaps into the air", "is jumping"),
    "sit": ("sits down", "takes a seat", "sits"),
    "wave": ("waves", "waves hello", "waves a hand", "is waving"),
}
DOG_ACTION_PHRASES = {"sit": ("lies down", "sits down", "settles down"), "wave": ("raises a paw", "waves a paw")}
ROBOT_ACTION_PHRASES = {"wave": ("waves", "waves an arm", "is waving")}
ADVERBS = {
    "walk_left": ("slowly", "calmly"),
    "walk_right": ("slowly", "calmly"),
    "run_left": ("quickly", "fast"),
    "run_right": ("quickly", "fast"),
    "jump": ("happily", "excitedly"),
    "wave": ("cheerfully", "happily"),
}
LOCATION_PHRASES = {
    "park": ("in the park", "in a sunny park", "at the park", "in the green park"),
    "beach": ("on the beach", "at the beach", "by the sea", "on a sunny beach"),
    "city": ("in the city at night", "on a city street at night", "downtown at night", "in the city after dark"),
    "snow": ("in the snowy field", "in a snowy field", "in the snow", "on a snowy meadow"),
    "desert": ("in the desert", "in the hot desert", "out in the desert", "among the desert dunes"),
    "room": ("in a room", "in the living room", "indoors", "inside a cozy room"),
}
LATER_OPENERS = ("Then ", "Later, ", "Now ", "After that, ")
# Words that would give a trait away; captions must contain none of them.
TRAIT_WORDS = ("band", "stripe", "striped", "stripes", "hat", "cap", "bag", "backpack", "pack", "satchel", "plain",
               "pattern")


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class _Mention:
    """A noun phrase for one character, and whether it is an aside that needs a comma after it."""

    char_id: str
    text: str
    form: str
    aside: bool = False


class _Caster:
    """Keeps the story's cast and what has been said about whom, and words the references."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.cast: list[Character] = []
        self.seen: list[str] = []  # introduced, in order

    # --- the cast --------------------------------------------------------------------------------------
    def new_character(self) -> Character:
        rng = self.rng
        seen_kinds = [c.kind for c in self.cast]
        if seen_kinds and rng.random() < 0.35:
            kind = _choice(rng, seen_kinds)  # "another woman", "a second dog"
        else:
            kind = _choice(rng, World.KINDS)
        taken_same_kind = {c.colour for c in self.cast if c.kind == kind}
        taken = {c.colour for c in self.cast}
        free = [c for c in World.COLOURS if c not in taken]
        allowed = [c for c in World.COLOURS if c not in taken_same_kind]
        colour = _choice(rng, free if free and rng.random() < 0.8 else allowed)
        trait = _choice(rng, World.TRAITS)
        name = None
        used_names = {c.name for c in self.cast}
        if rng.random() < 0.45:
            names = [n for n in NAMES[kind] if n not in used_names]
            name = _choice(rng, names) if names else None
        index = sum(1 for c in self.cast if c.kind == kind) + 1
        character = Character(char_id=f"{kind}_{index}", kind=kind, colour=colour, trait=trait, name=name)
        self.cast.append(character)
        return character

    def character(self, char_id: str) -> Character:
        return next(c for c in self.cast if c.char_id == char_id)

    # --- references ------------------------------------------------------------------------------------
    def _colour_description(self, character: Character, article: str, asides: bool) -> tuple[str, bool]:
        """``(phrase, is_aside)`` for a first appearance, e.g. "a man in a red shirt".

        ``article`` is "a" for a new kind, or "another" / "a second" / "a third" for a repeated one.
        """
        rng, kind, colour = self.rng, character.kind, character.colour
        noun = _choice(rng, NOUNS[kind])
        repeated = article != "a"
        lead = f"{article} {noun}" if repeated else f"{_article(noun)} {noun}"
        if kind in GARMENTS:
            garment = _choice(rng, GARMENTS[kind])
            options = [
                (f"{lead} in {_article(colour)} {colour} {garment}", False),
                (f"{lead} wearing {_article(colour)} {colour} {garment}", False),
                (f"{lead} dressed in {colour}", False),
            ]
            if repeated:
                options.append((f"{lead} in {colour}", False))
            if repeated and asides:
                options.append((f"{lead}, dressed in {colour}", True))
        else:
            material = "fur" if kind == "dog" else "paint"
            coloured = f"{article} {colour} {noun}" if repeated else f"{_article(colour)} {colour} {noun}"
            options = [(coloured, False), (f"{lead} with {colour} {material}", False)]
            if kind == "robot":
                options.append((f"{lead} painted {colour}", False))
            if repeated and asides:
                options.append((f"{lead}, {_article(colour)} {colour} one", True))
        return _choice(rng, options)

    def introduce(self, character: Character, scene_chars: list[str]) -> _Mention:
        """The first mention of a character: kind and colour, maybe a name; "another ..." for a repeat kind."""
        rng = self.rng
        earlier_same_kind = sum(1 for cid in self.seen if self.character(cid).kind == character.kind)
        if earlier_same_kind:
            article = "another" if rng.random() < 0.6 else f"a {ORDINALS[earlier_same_kind]}"
        else:
            article = "a"
        # a named character's description never carries its own comma aside ("Mia, a girl in yellow,")
        text, aside = self._colour_description(character, article, asides=character.name is None)
        if character.name:
            if rng.random() < 0.5:
                text, aside = f"{character.name}, {text}", True
            else:
                text = f"{text} {_choice(rng, ('named', 'called'))} {character.name}"
                aside = False
        self.seen.append(character.char_id)
        return _Mention(character.char_id, text, "full", aside)

    def refer(self, character: Character, scene_chars: list[str], previous: list[str], first: bool) -> _Mention:
        """A later mention: by name, pronoun, role or colour, whichever is unambiguous here."""
        rng = self.rng
        known = [self.character(cid) for cid in dict.fromkeys(self.seen + scene_chars)]
        same_kind = sum(1 for c in known if c.kind == character.kind)
        same_colour = sum(1 for c in known if c.colour == character.colour)
        forms: list[tuple[str, float]] = [("colour", 2.0)]
        if character.name:
            forms.append(("name", 3.0))
        if same_kind == 1 or character.char_id == self.seen[0]:
            forms.append(("role", 3.0))
        pronoun = PRONOUNS[character.kind]
        previous_same_pronoun = [cid for cid in previous if PRONOUNS[self.character(cid).kind] == pronoun]
        returning = [cid for cid in scene_chars if cid in self.seen]
        if first and previous_same_pronoun == [character.char_id] and returning == [character.char_id]:
            forms.append(("pronoun", 3.0))
        weights = np.array([w for _, w in forms])
        form = forms[int(rng.choice(len(forms), p=weights / weights.sum()))][0]
        if form == "name":
            return _Mention(character.char_id, character.name or "", "name")
        if form == "pronoun":
            return _Mention(character.char_id, pronoun, "pronoun")
        if form == "role":
            roles = []
            if same_kind == 1:
                roles += [f"the {noun}" for noun in NOUNS[character.kind]]
            if character.char_id == self.seen[0]:
                roles += list(PROTAGONIST_ROLES)
            return _Mention(character.char_id, _choice(rng, roles), "role")
        colour = character.colour
        noun = _choice(rng, NOUNS[character.kind])
        options = [f"the {noun} in {colour}"]
        if same_colour == 1:
            options.append(f"the one in {colour}")
        if character.kind in ("dog", "robot"):
            options.append(f"the {colour} {noun}")
        elif same_kind == 1:
            options.append(f"the {noun} in the {colour} {_choice(rng, GARMENTS[character.kind])}")
        return _Mention(character.char_id, _choice(rng, options), "colour")


def _verb_phrase(rng: np.random.Generator, kind: str, action: str) -> str:
    table = ACTION_PHRASES
    if kind == "dog" and action in DOG_ACTION_PHRASES:
        table = DOG_ACTION_PHRASES
    elif kind == "robot" and action in ROBOT_ACTION_PHRASES:
        table = ROBOT_ACTION_PHRASES
    phrase = _choice(rng, table[action])
    if action in ADVERBS and rng.random() < 0.2 and not phrase.startswith("is "):
        phrase = f"{phrase} {_choice(rng, ADVERBS[action])}"
    return phrase


def _compose(rng: np.random.Generator, mentions: list[_Mention], verbs: list[str], location: str | None,
             later: bool) -> tuple[str, dict[str, str]]:
    """One caption from its mentions and verb phrases; returns the text and each mention's exact phrase."""
    place = _choice(rng, LOCATION_PHRASES[location]) if location else None
    # A caption is a list of pieces; mentions are ("m", index) so their final spelling can be recorded.
    clauses = []
    for i, (mention, verb) in enumerate(zip(mentions, verbs)):
        clauses.append([("m", i), ("t", ", " if mention.aside else " "), ("t", verb)])
    pieces: list[tuple[str, object]] = []
    place_first = place is not None and rng.random() < 0.45
    opener = later and not place_first and rng.random() < 0.3
    if place_first:
        pieces += [("t", _capitalise(place) + ", ")]
    elif opener:
        pieces += [("t", _choice(rng, LATER_OPENERS))]
    pieces += clauses[0]
    if place is not None and not place_first:
        pieces += [("t", f" {place}")]
    rest = clauses[1:]
    if rest:
        style = int(rng.integers(3))
        if style == 0:  # one sentence, "while"/"and"
            for j, clause in enumerate(rest):
                joiner = ", while " if j == 0 and rng.random() < 0.5 else (" and " if j == len(rest) - 1 else ", ")
                pieces += [("t", joiner)] + clause
            pieces += [("t", ".")]
        else:  # one sentence a character
            pieces += [("t", ".")]
            for clause in rest:
                pieces += [("t", " "), ("cap", None)] + clause + [("t", ".")]
    else:
        pieces += [("t", ".")]

    text, phrases, capitalise_next = "", {}, True
    for kind, value in pieces:
        if kind == "cap":
            capitalise_next = True
            continue
        piece = mentions[value].text if kind == "m" else value
        if capitalise_next and piece.strip():
            piece = _capitalise(piece)
            capitalise_next = False
        elif piece.strip():
            capitalise_next = False
        if kind == "m":
            phrases[mentions[value].char_id] = piece
        text += piece
    return text, phrases


def _layout(rng: np.random.Generator, kinds: list[str], actions: list[str]) -> list[float]:
    """Start columns left to right: lanes with room for every walker to walk the way it faces."""
    size = World.FRAME_SIZE
    half = [HALF_WIDTH[k] for k in kinds]
    needed = sum(2 * h + 1 for h in half) + World.MIN_GAP * (len(kinds) - 1) + 2
    free = size - needed
    weights = rng.uniform(0.2, 1.0, size=len(kinds) + 1)
    for i, action in enumerate(actions):
        if action.endswith("_right"):
            weights[i + 1] += 2.0
        elif action.endswith("_left"):
            weights[i] += 2.0
    slack = np.floor(free * weights / weights.sum())
    xs, cursor = [], 1.0 + slack[0]
    for i, h in enumerate(half):
        xs.append(cursor + h)
        cursor += 2 * h + 1 + World.MIN_GAP + slack[i + 1]
    return [float(x) for x in xs]


def story_from_seed(seed: int, num_scenes: int | None = None) -> Story:
    """The story of a seed: the same seed and scene count always give the same story."""
    rng = np.random.default_rng(seed)
    if num_scenes is None:
        num_scenes = int(rng.integers(2, 7))
    if not 2 <= num_scenes <= 6:
        raise ValueError(f"a story has 2 to 6 scenes (got num_scenes={num_scenes})")
    caster = _Caster(rng)
    scenes: list[SceneSpec] = []
    previous: list[str] = []
    location = _choice(rng, World.LOCATIONS)
    for index in range(num_scenes):
        if index == 0:
            count = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
            returning: list[str] = []
            newcomers = [caster.new_character().char_id for _ in range(count)]
        else:
            protagonist = caster.seen[0]
            others = [cid for cid in caster.seen if cid != protagonist]
            returning = [protagonist] if rng.random() < 0.75 else []
            rng.shuffle(others)
            extra = int(rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15]))
            returning += others[:extra]
            # scene 1 always brings someone back; later ones may show newcomers only
            if not returning and (index == 1 or rng.random() < 0.8):
                returning = [_choice(rng, caster.seen)]
            returning = returning[:3]
            room = 3 - len(returning)
            want_new = room > 0 and len(caster.cast) < MAX_CAST and (rng.random() < 0.35 or not returning)
            newcomers = [caster.new_character().char_id] if want_new else []
            if not returning and not newcomers:
                returning = [protagonist]
            if rng.random() >= 0.35:  # otherwise the story stays where it is
                location = _choice(rng, [loc for loc in World.LOCATIONS if loc != location])
        present = returning + newcomers
        location_changed = index == 0 or location != scenes[-1].location
        location_mentioned = location_changed or rng.random() < 0.5
        actions = [_choice(rng, World.ACTIONS) for _ in present]
        mentions = []
        for position, cid in enumerate(present):
            character = caster.character(cid)
            if cid in newcomers:
                mentions.append(caster.introduce(character, present))
            else:
                mentions.append(caster.refer(character, present, previous, first=position == 0))
        verbs = [_verb_phrase(rng, caster.character(cid).kind, a) for cid, a in zip(present, actions)]
        prompt, phrases = _compose(rng, mentions, verbs, location if location_mentioned else None, index > 0)
        order = rng.permutation(len(present))  # left-to-right order on screen
        kinds = [caster.character(present[i]).kind for i in order]
        xs = _layout(rng, kinds, [actions[i] for i in order])
        characters = [(present[i], actions[i], x) for i, x in zip(order, xs)]
        scenes.append(
            SceneSpec(
                location=location,
                characters=characters,
                prompt=prompt,
                referring={m.char_id: m.form for m in mentions},
                mentions=phrases,
                newcomers=tuple(newcomers),
                location_mentioned=location_mentioned,
                time_of_day=World.TIME_OF_DAY[location],
            )
        )
        previous = present
    return Story(characters=list(caster.cast), scenes=scenes, seed=int(seed))


def sample_story(rng: np.random.Generator, num_scenes: int | None = None) -> Story:
    """A random story; ``story.seed`` regenerates it with ``story_from_seed``."""
    return story_from_seed(int(rng.integers(MAX_SEED)), num_scenes)


def entity_ground_truth(story: Story) -> list[list[dict]]:
    """For every scene, who is shown and how the prompt names them (what the entity agent should find)."""
    result = []
    for scene in story.scenes:
        entries = []
        for char_id in scene.mentions:
            character = story.character(char_id)
            entries.append(
                {
                    "char_id": char_id,
                    "kind": character.kind,
                    "colour": character.colour,
                    "name": character.name,
                    "phrase": scene.mentions[char_id],
                    "referring": scene.referring[char_id],
                    "is_new": char_id in scene.newcomers,
                }
            )
        result.append(entries)
    return result


@dataclass
class TrainingClip:
    frames: np.ndarray  # [T, 64, 64, 3] uint8
    prompt: str
    story: Story
    scene_index: int
    start_frame: int


def iter_training_clips(
    rng: np.random.Generator, num_frames: int = 33, max_start_frame: int = 48, num_scenes: int | None = None
) -> Iterator[TrainingClip]:
    """Endless random clips for training: a random scene of a random story, from a random start frame.

    ``start_frame`` is 0 half of the time (a scene's opening) and otherwise a later frame, so that both a
    scene's start and its continuation are seen.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 (got {num_frames})")
    while True:
        story = sample_story(rng, num_scenes)
        scene_index = int(rng.integers(len(story.scenes)))
        start = 0 if rng.random() < 0.5 else int(rng.integers(max_start_frame + 1))
        frames = render_scene(story, scene_index, num_frames, start_frame=start)
        yield TrainingClip(frames, story.scenes[scene_index].prompt, story, scene_index, start)
