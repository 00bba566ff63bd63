"""Stories of the storyworld: sampling casts and scenes, and captioning them as a person would type them.

A story has 2 to 6 scenes and a cast of up to four characters. The first scene introduces its characters
in full (kind and colour, sometimes a name); later scenes bring some of them back, referred to by name, by
pronoun, by role ("the man", "the protagonist") or by colour ("the one in red"), and sometimes a newcomer
("another woman, dressed in blue"). Captions never mention a character's trait. Every scene records which
characters it shows, the exact phrase that names each of them and how it names them: the ground truth of the
entity agent.
"""

from __future__ import annotations

import dataclasses
import logging
import re
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

    def refer(self, character: Character, scene_chars: list[str], previous: list[str], first: bool,
              pronoun_after_absence: bool = False) -> _Mention:
        """A later mention: by name, pronoun, role or colour, whichever is unambiguous here.

        ``pronoun_after_absence``: a character coming back after scenes away may also be "he" / "she" / "it",
        when it is named first, comes back alone and is the only one of the cast that pronoun fits."""
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
        elif (pronoun_after_absence and first and character.char_id not in previous
              and returning == [character.char_id]
              and [c.char_id for c in known if PRONOUNS[c.kind] == pronoun] == [character.char_id]):
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
             later: bool, places: dict = LOCATION_PHRASES, openers: tuple = LATER_OPENERS,
             joiners: tuple[str, str] = (", while ", " and ")) -> tuple[str, dict[str, str]]:
    """One caption from its mentions and verb phrases; returns the text and each mention's exact phrase."""
    place = _choice(rng, places[location]) if location else None
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
        pieces += [("t", _choice(rng, openers))]
    pieces += clauses[0]
    if place is not None and not place_first:
        pieces += [("t", f" {place}")]
    rest = clauses[1:]
    if rest:
        style = int(rng.integers(3))
        if style == 0:  # one sentence, "while"/"and"
            for j, clause in enumerate(rest):
                joiner = joiners[0] if j == 0 and rng.random() < 0.5 else (joiners[1] if j == len(rest) - 1 else ", ")
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


def _scene(rng: np.random.Generator, caster: _Caster, index: int, returning: list[str], newcomers: list[str],
           location: str, scenes: list[SceneSpec], previous: list[str], pronoun_after_absence: bool = False) -> SceneSpec:
    """One scene of a story whose cast and place are chosen: actions, the caption and the layout."""
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
            mentions.append(caster.refer(character, present, previous, first=position == 0,
                                         pronoun_after_absence=pronoun_after_absence))
    verbs = [_verb_phrase(rng, caster.character(cid).kind, a) for cid, a in zip(present, actions)]
    prompt, phrases = _compose(rng, mentions, verbs, location if location_mentioned else None, index > 0)
    order = rng.permutation(len(present))  # left-to-right order on screen
    kinds = [caster.character(present[i]).kind for i in order]
    xs = _layout(rng, kinds, [actions[i] for i in order])
    characters = [(present[i], actions[i], x) for i, x in zip(order, xs)]
    return SceneSpec(
        location=location,
        characters=characters,
        prompt=prompt,
        referring={m.char_id: m.form for m in mentions},
        mentions=phrases,
        newcomers=tuple(newcomers),
        location_mentioned=location_mentioned,
        time_of_day=World.TIME_OF_DAY[location],
    )


def story_from_seed(seed: int, num_scenes: int | None = None, phrasing: str = "plain") -> Story:
    """The story of a seed: the same seed, scene count and phrasing always give the same story.

    ``phrasing`` words its captions: ``plain`` (the world's own captions), ``train`` (the same story, captions
    drawn from the training phrasing: the plain words and many more) or ``held`` (the same story, captions from
    the held-apart phrasing no training sees; ``PHRASINGS``). The story itself (cast, scenes, who is named how)
    is the same under every phrasing; only ``prompt`` and ``mentions`` change."""
    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {', '.join(PHRASINGS)} (got {phrasing!r})")
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
        scenes.append(_scene(rng, caster, index, returning, newcomers, location, scenes, previous))
        previous = returning + newcomers
    story = Story(characters=list(caster.cast), scenes=scenes, seed=int(seed))
    return story if phrasing == "plain" else recaption(story, PHRASINGS[phrasing], _phrasing_rng(seed, phrasing))


# --- phrasings: the same story in other words ----------------------------------------------------------------
#
# A phrasing is a vocabulary and a set of templates for captions. ``train`` holds the plain words and many more
# (what training captions are drawn from); ``held`` holds other words and templates that no training caption
# uses (``test_held_phrasing_shares_no_words_with_training`` checks it): the evaluation's held-apart split.


def _union(*tables: dict) -> dict:
    keys = dict.fromkeys(k for table in tables for k in table)
    return {k: tuple(dict.fromkeys(w for table in tables for w in table.get(k, ()))) for k in keys}


@dataclass(frozen=True)
class Phrasing:
    """Words and templates of one way of captioning. Templates take ``{lead}`` ("a man", "another dog"),
    ``{noun}``, ``{colour}`` (a word for the colour), ``{a}`` (its article), ``{garment}``, ``{article}`` and
    ``{desc}`` / ``{name}`` (named introductions); each template is ``(text, is_aside, repeated_kind_only)``."""

    name: str
    nouns: dict[str, tuple[str, ...]]
    garments: dict[str, tuple[str, ...]]
    colours: dict[str, tuple[str, ...]]
    actions: dict[str, tuple[str, ...]]
    dog_actions: dict[str, tuple[str, ...]]
    robot_actions: dict[str, tuple[str, ...]]
    adverbs: dict[str, tuple[str, ...]]
    places: dict[str, tuple[str, ...]]
    openers: tuple[str, ...]
    joiners: tuple[str, str]
    protagonist_roles: tuple[str, ...]
    roles: dict[str, tuple[str, ...]]  # kind -> role phrases beside "the {noun}" ("the robot fellow")
    repeat_articles: tuple[str, ...]  # "another", "a {ordinal}"
    person_templates: tuple[tuple[str, bool, bool], ...]
    animal_templates: dict[str, tuple[tuple[str, bool, bool], ...]]
    named_templates: tuple[tuple[str, bool], ...]
    colour_refs: tuple[str, ...]  # "the {noun} in {colour}"
    unique_colour_refs: tuple[str, ...]  # when no one else wears that colour: "the one in {colour}"
    animal_colour_refs: tuple[str, ...]  # dogs and robots: "the {colour} {noun}"
    person_colour_refs: tuple[str, ...]  # the only one of its kind: "the {noun} in the {colour} {garment}"

    def words(self) -> dict[str, set[str]]:
        """Every word of every table and template, by table."""
        def split(texts) -> set[str]:
            return {w for t in texts for w in re.findall(r"[a-z]+", t.lower().replace("{", " {"))
                    if not re.fullmatch(r"lead|noun|colour|a|garment|article|desc|name|ordinal", w) or w == "a"}

        out = {}
        for field_name in ("nouns", "garments", "colours", "actions", "dog_actions", "robot_actions", "adverbs",
                           "places", "roles"):
            out[field_name] = split(t for v in getattr(self, field_name).values() for t in v)
        out["openers"], out["protagonist_roles"] = split(self.openers), split(self.protagonist_roles)
        out["templates"] = split([t for t, *_ in self.person_templates] + [t for v in self.animal_templates.values()
                                 for t, *_ in v] + [t for t, _ in self.named_templates] + list(self.colour_refs)
                                 + list(self.unique_colour_refs) + list(self.animal_colour_refs)
                                 + list(self.person_colour_refs) + list(self.joiners) + list(self.repeat_articles))
        return out


PLAIN = Phrasing(
    name="plain", nouns=NOUNS, garments=GARMENTS, colours={c: (c,) for c in World.COLOURS},
    actions=ACTION_PHRASES, dog_actions=DOG_ACTION_PHRASES, robot_actions=ROBOT_ACTION_PHRASES, adverbs=ADVERBS,
    places=LOCATION_PHRASES, openers=LATER_OPENERS, joiners=(", while ", " and "),
    protagonist_roles=PROTAGONIST_ROLES, roles={}, repeat_articles=("another", "a {ordinal}"),
    person_templates=(("{lead} in {a} {colour} {garment}", False, False),
                      ("{lead} wearing {a} {colour} {garment}", False, False),
                      ("{lead} dressed in {colour}", False, False), ("{lead} in {colour}", False, True),
                      ("{lead}, dressed in {colour}", True, True)),
    animal_templates={"dog": (("{article} {colour} {noun}", False, False), ("{lead} with {colour} fur", False, False),
                              ("{lead}, {a} {colour} one", True, True)),
                      "robot": (("{article} {colour} {noun}", False, False), ("{lead} with {colour} paint", False, False),
                                ("{lead} painted {colour}", False, False), ("{lead}, {a} {colour} one", True, True))},
    named_templates=(("{name}, {desc}", True), ("{desc} named {name}", False), ("{desc} called {name}", False)),
    colour_refs=("the {noun} in {colour}",), unique_colour_refs=("the one in {colour}",),
    animal_colour_refs=("the {colour} {noun}",), person_colour_refs=("the {noun} in the {colour} {garment}",),
)

TRAIN = dataclasses.replace(
    PLAIN, name="train",
    nouns=_union(NOUNS, {"man": ("dude", "gent"), "woman": ("young woman", "gal"), "boy": ("lad", "schoolboy"),
                         "girl": ("lass", "schoolgirl"), "dog": ("pooch", "doggy"), "robot": ("bot", "android")}),
    garments=_union(GARMENTS, {"man": ("top", "polo shirt"), "woman": ("blouse", "gown"), "boy": ("top", "tee"),
                               "girl": ("frock", "jumper")}),
    colours={"red": ("red", "crimson", "cherry"), "blue": ("blue", "navy", "cobalt"),
             "green": ("green", "emerald", "forest green"), "yellow": ("yellow", "golden", "lemon"),
             "purple": ("purple", "violet", "plum"), "orange": ("orange", "tangerine", "amber"),
             "pink": ("pink", "rose", "hot pink"), "teal": ("teal", "turquoise", "aqua")},
    actions=_union(ACTION_PHRASES, {
        "stand": ("stays put", "holds still"), "walk_left": ("goes left", "wanders to the left"),
        "walk_right": ("goes right", "wanders to the right"),
        "run_left": ("dashes off to the left", "sprints left", "bolts left"),
        "run_right": ("dashes off to the right", "sprints right", "bolts right"),
        "jump": ("bounces", "springs up"), "sit": ("has a seat", "sits down for a rest"),
        "wave": ("waves goodbye", "gives a wave")}),
    dog_actions=_union(DOG_ACTION_PHRASES, {"sit": ("lies on the ground", "curls up"), "wave": ("lifts a paw",)}),
    robot_actions=_union(ROBOT_ACTION_PHRASES, {"wave": ("swings an arm", "gives a wave")}),
    adverbs=_union(ADVERBS, {"walk_left": ("leisurely",), "walk_right": ("leisurely",), "jump": ("joyfully",)}),
    places=_union(LOCATION_PHRASES, {
        "park": ("in a garden", "on the lawn"), "beach": ("on the shore", "at the water's edge"),
        "city": ("on the street at night", "in town after dark"), "snow": ("on the frozen field", "in a winter field"),
        "desert": ("on the dunes", "in the scorching desert"), "room": ("in the lounge", "at home")}),
    openers=LATER_OPENERS + ("Next, ", "Soon "),
    protagonist_roles=PROTAGONIST_ROLES + ("the main character", "our friend"),
    roles={"robot": ("the robot fellow",), "dog": ("the little pooch",)},
    person_templates=PLAIN.person_templates + (("{lead} with {a} {colour} {garment}", False, False),
                                               ("{lead} who wears {a} {colour} {garment}", False, False)),
    animal_templates={"dog": PLAIN.animal_templates["dog"] + (("{lead} with a {colour} coat", False, False),),
                      "robot": PLAIN.animal_templates["robot"] + (("{lead} in {colour}", False, False),)},
    colour_refs=("the {noun} in {colour}", "the {colour} {noun}"),
)

HELD = Phrasing(
    name="held",
    nouns={"man": ("chap", "bloke"), "woman": ("dame", "madam"), "boy": ("youngster", "laddie"),
           "girl": ("maiden", "missy"), "dog": ("hound", "mutt"), "robot": ("automaton", "mech")},
    garments={"man": ("blazer", "cardigan"), "woman": ("cardigan", "tunic"), "boy": ("sweatshirt", "windbreaker"),
              "girl": ("pinafore", "tunic")},
    colours={"red": ("scarlet", "vermilion"), "blue": ("azure", "sapphire"), "green": ("jade", "olive"),
             "yellow": ("mustard", "canary"), "purple": ("grape", "lilac"), "orange": ("apricot", "pumpkin"),
             "pink": ("flamingo", "blush"), "teal": ("cyan", "peacock")},
    actions={"stand": ("remains motionless", "lingers"), "walk_left": ("ambles leftward", "treks leftward"),
             "walk_right": ("ambles rightward", "treks rightward"),
             "run_left": ("scurries leftward", "hurries leftward"),
             "run_right": ("scurries rightward", "hurries rightward"),
             "jump": ("skips", "vaults upward"), "sit": ("perches", "squats"),
             "wave": ("salutes", "gestures a greeting")},
    dog_actions={"sit": ("flops onto its belly", "reclines"), "wave": ("offers a forefoot",)},
    robot_actions={"wave": ("salutes", "signals a greeting")},
    adverbs={"walk_left": ("unhurriedly",), "walk_right": ("unhurriedly",), "run_left": ("briskly",),
             "run_right": ("briskly",), "jump": ("merrily",), "wave": ("warmly",)},
    places={"park": ("in the playground", "on a grassy common"), "beach": ("on the coast", "along the seafront"),
            "city": ("on a midnight avenue", "in the urban gloom"), "snow": ("on a frosty steppe", "in the wintry tundra"),
            "desert": ("in the arid badlands", "on a barren wasteland"), "room": ("in a parlour", "within the house")},
    openers=("Afterwards, ", "Eventually, "), joiners=(", whereas ", " as "),
    protagonist_roles=("the lead", "our star"), roles={"robot": ("the clanking automaton",)},
    repeat_articles=("one more", "an additional"),
    person_templates=(("{lead} sporting {a} {colour} {garment}", False, False), ("{lead} clad in {colour}", False, False)),
    animal_templates={"dog": (("{lead} whose pelt is {colour}", False, False),
                              ("{lead} of {colour} colouring", False, False)),
                      "robot": (("{lead} coated in {colour}", False, False), ("{lead} finished in {colour}", False, False))},
    named_templates=(("{desc} known as {name}", False), ("{desc} going by {name}", False)),
    colour_refs=("the {noun} clad in {colour}",), unique_colour_refs=("whoever sports {colour}",),
    animal_colour_refs=("the {noun} coated in {colour}",), person_colour_refs=("the {noun} sporting the {colour} {garment}",),
)

PHRASINGS = {"plain": PLAIN, "train": TRAIN, "held": HELD}
# every word naming a kind, in any phrasing: what the judge looks for to tell whether a phrase states the kind
KIND_WORDS = {kind: tuple(dict.fromkeys(w for ph in PHRASINGS.values() for w in ph.nouns[kind])) for kind in World.KINDS}


def _phrasing_rng(seed: int, phrasing: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), 1 + list(PHRASINGS).index(phrasing)])


def _phrased_description(rng: np.random.Generator, ph: Phrasing, character: Character, article: str | None,
                         asides: bool) -> tuple[str, bool]:
    """A first appearance in phrasing ``ph``: kind and colour; ``article`` None for a kind not seen before, else
    the repeat article ("another", "one more")."""
    kind, noun = character.kind, _choice(rng, ph.nouns[character.kind])
    colour = _choice(rng, ph.colours[character.colour])
    repeated = article is not None
    lead = f"{article} {noun}" if repeated else f"{_article(noun)} {noun}"
    templates = ph.person_templates if kind in GARMENTS else ph.animal_templates[kind]
    options = [(t, aside) for t, aside, repeat_only in templates if (repeated or not repeat_only) and (asides or not aside)]
    template, aside = _choice(rng, options)
    fields = {"lead": lead, "noun": noun, "colour": colour, "a": _article(colour),
              "article": article if repeated else _article(colour),
              "garment": _choice(rng, ph.garments[kind]) if kind in GARMENTS else ""}
    return template.format(**fields), aside


def recaption(story: Story, ph: Phrasing, rng: np.random.Generator) -> Story:
    """The same story captioned in phrasing ``ph``: every scene names the same characters in the same way (form
    of reference, name, place mentioned or not) with other words; ``prompt`` and ``mentions`` change."""
    seen: list[str] = []
    scenes = []
    for index, scene in enumerate(story.scenes):
        actions = {cid: action for cid, action, _ in scene.characters}
        present = list(scene.referring)
        known = [story.character(c) for c in dict.fromkeys(seen + present)]
        mentions = []
        for cid in present:
            character, form = story.character(cid), scene.referring[cid]
            if form == "full":
                earlier = sum(1 for c in seen if story.character(c).kind == character.kind)
                article = None
                if earlier:
                    article = _choice(rng, ph.repeat_articles).format(ordinal=ORDINALS[min(earlier, len(ORDINALS) - 1)])
                desc, aside = _phrased_description(rng, ph, character, article, asides=character.name is None)
                if character.name:
                    template, aside = _choice(rng, ph.named_templates)
                    desc = template.format(name=character.name, desc=desc)
                mentions.append(_Mention(cid, desc, form, aside))
                seen.append(cid)
                continue
            same_kind = sum(1 for c in known if c.kind == character.kind)
            same_colour = sum(1 for c in known if c.colour == character.colour)
            noun = _choice(rng, ph.nouns[character.kind])
            colour = _choice(rng, ph.colours[character.colour])
            if form == "name":
                text = character.name or ""
            elif form == "pronoun":
                text = PRONOUNS[character.kind]
            elif form == "role":
                roles = []
                if same_kind == 1:
                    roles += [f"the {n}" for n in ph.nouns[character.kind]] + list(ph.roles.get(character.kind, ()))
                if seen and cid == seen[0]:
                    roles += list(ph.protagonist_roles)
                text = _choice(rng, roles)
            else:
                options = list(ph.colour_refs)
                if same_colour == 1:
                    options += ph.unique_colour_refs
                if character.kind in ("dog", "robot"):
                    options += ph.animal_colour_refs
                elif same_kind == 1:
                    options += ph.person_colour_refs
                garment = _choice(rng, ph.garments[character.kind]) if character.kind in GARMENTS else ""
                text = _choice(rng, options).format(noun=noun, colour=colour, garment=garment)
            mentions.append(_Mention(cid, text, form))
        verbs = []
        for cid in present:
            kind, action = story.character(cid).kind, actions[cid]
            table = ph.actions
            if kind == "dog" and action in ph.dog_actions:
                table = ph.dog_actions
            elif kind == "robot" and action in ph.robot_actions:
                table = ph.robot_actions
            phrase = _choice(rng, table[action])
            if action in ph.adverbs and rng.random() < 0.2 and not phrase.startswith("is "):
                phrase = f"{phrase} {_choice(rng, ph.adverbs[action])}"
            verbs.append(phrase)
        prompt, phrases = _compose(rng, mentions, verbs, scene.location if scene.location_mentioned else None,
                                   index > 0, ph.places, ph.openers, ph.joiners)
        scenes.append(dataclasses.replace(scene, prompt=prompt, mentions=phrases))
    return Story(characters=list(story.characters), scenes=scenes, seed=story.seed)


# --- stories that exercise memory ------------------------------------------------------------------------------

MEMORY_STORY_SHARE = 0.5  # of the training stories (``training_story``)
CROWD_WEIGHTS = (0.2, 0.45, 0.35)  # one, two or three figures a scene in memory stories (plain stories: mostly one)


def memory_story(seed: int, phrasing: str = "train") -> Story:
    """A story of 4 to 6 scenes in which a character of the first scene leaves for at least two scenes and comes
    back, named first on its return (by name, pronoun, role or colour, whichever is unambiguous); scenes show
    two or three figures more often than the world's other stories (``CROWD_WEIGHTS``). The same seed and
    phrasing give the same story; it is not the story ``story_from_seed`` gives for that seed."""
    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {', '.join(PHRASINGS)} (got {phrasing!r})")
    rng = np.random.default_rng([int(seed), 101])
    num_scenes = int(rng.integers(4, 7))
    caster = _Caster(rng)
    first = [caster.new_character().char_id for _ in range(int(rng.choice([2, 3], p=[0.6, 0.4])))]
    leaver = _choice(rng, first)
    back = int(rng.integers(3, num_scenes))  # away in scenes 1 .. back - 1
    location = _choice(rng, World.LOCATIONS)
    scenes: list[SceneSpec] = []
    previous: list[str] = []
    for index in range(num_scenes):
        if index == 0:
            returning, newcomers = [], first
        else:
            wanted = int(rng.choice([1, 2, 3], p=CROWD_WEIGHTS))
            others = [c for c in caster.seen if c != leaver]
            rng.shuffle(others)
            head = [leaver] if index == back else []
            pool = others if index != back else others
            if index > back and rng.random() < 0.5:
                pool = others + [leaver]
                rng.shuffle(pool)
            returning = head + [c for c in pool if c not in head][: max(0, wanted - len(head))]
            returning = returning or [others[0]]
            newcomers = []
            if len(returning) < wanted and len(caster.cast) < MAX_CAST and rng.random() < 0.6:
                newcomers = [caster.new_character().char_id]
            if rng.random() >= 0.35:
                location = _choice(rng, [loc for loc in World.LOCATIONS if loc != location])
        scenes.append(_scene(rng, caster, index, returning, newcomers, location, scenes, previous,
                             pronoun_after_absence=True))
        previous = returning + newcomers
    story = Story(characters=list(caster.cast), scenes=scenes, seed=int(seed))
    return story if phrasing == "plain" else recaption(story, PHRASINGS[phrasing], _phrasing_rng(seed, phrasing))


def training_story(seed: int) -> Story:
    """The training story of a seed: a memory story (``memory_story``) ``MEMORY_STORY_SHARE`` of the time, else
    the world's story of the seed; captions in the training phrasing, never the held-apart one."""
    if np.random.default_rng([int(seed), 202]).random() < MEMORY_STORY_SHARE:
        return memory_story(seed, "train")
    return story_from_seed(seed, phrasing="train")


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
