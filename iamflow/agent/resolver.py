"""Which character each mention is: an existing one in the registry, or a new one.

Shared by both backends (they differ only in how mentions are found). The rules, in the order a reader
applies them: names match names; "another"/"a second" make a newcomer; pronouns take the nearest compatible
character (in this prompt, then the previous ones); relations ("her partner", "the beekeeper's son") follow
what the story recorded, else a co-present companion for peer relations, else a new character; definite
descriptions ("the detective", "the man with the white beard") take the best compatible known character by
head noun, attributes and MiniLM similarity; indefinite descriptions match only a character re-described
with the same attributes. A candidate whose stable attributes (hair colour, age group, colour of an animal or
vehicle) contradict the mention is never silently merged.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field, replace

from . import attributes, lexicon
from .mentions import CAST_NOUNS, KIN_MODIFIERS, Mention
from .registry import EntityRecord, EntityRegistry

logger = logging.getLogger(__name__)

_NARRATED = {"you", "i"}  # the one a story is told to (second person) or by (first person)
_NARRATED_PRONOUNS = _NARRATED | {"we"}  # (resolved once the prompt's other characters are)
_TELLER = 0  # the owner of "my mum" in a story whose narrator is not one of its characters (no character has id 0)


def _narrated(rec: EntityRecord) -> bool:
    """The "you" a story is told to or the "I" telling it: only ever that."""
    return bool(_NARRATED & set(rec.heads))


# a title before a name says nothing of the name ("Detective Morrison"); the given name is what is read
_REFLEXIVES = {"himself", "herself", "itself", "themselves", "themself"}
_TITLES = {"detective", "officer", "captain", "doctor", "dr", "professor", "sheriff", "agent", "inspector",
           "sergeant", "lieutenant", "mr", "mrs", "ms", "miss", "lady", "lord", "sir", "king", "queen", "prince",
           "princess", "uncle", "aunt", "coach", "judge", "the", "great", "little", "old", "young", "big"}
_GENDER_PROBES = {"f": ["a woman", "a girl", "she", "her name"], "m": ["a man", "a boy", "he", "his name"]}
_PRONOUNS_OF_SEX = {"f": ("she", "her", "hers", "herself"), "m": ("he", "him", "his", "himself")}
_NAME_GENDER_MARGIN = 0.06
_name_genders: dict[str, str | None] = {}


def likely_gender(encoder, name: str) -> str | None:
    """"f" or "m" when MiniLM puts a given name clearly nearer to words for women or for men ("Vanessa",
    "Max"), else None (unisex or unknown names: "Jordan", "Harper", "Varos"). Only a fallback: whatever the
    story says of the character (a pronoun, a gendered noun) comes first."""
    if name not in _name_genders:
        probes = _GENDER_PROBES["f"] + _GENDER_PROBES["m"]
        vecs = encoder.encode([name] + probes)
        sims = vecs[1:] @ vecs[0]
        half = len(_GENDER_PROBES["f"])
        lean = float(sims[:half].mean() - sims[half:].mean())
        _name_genders[name] = "f" if lean > _NAME_GENDER_MARGIN else "m" if lean < -_NAME_GENDER_MARGIN else None
    return _name_genders[name]


_ANIMAL_PARTS = {"tail", "paw", "mane", "fur", "feather", "fin", "claw", "tusk", "horn", "snout", "muzzle", "hoof",
                 "whisker", "beak", "wing", "flipper", "trunk", "antler", "scale", "gill"}


def _kind_of(heads: list[str], base: str) -> bool:
    """Whether a word among ``heads`` names any animal of ``base``'s kind ("bug" for a beetle, "bird" for an owl)."""
    return any(base in lexicon.HYPERNYMS.get(h, ()) for h in heads)


def _person_kind_of(heads: list[str], rec) -> bool:
    """Whether a plural word among ``heads`` takes in a single person of ``rec``'s kind ("the children": the boy)."""
    return rec.kind == "person" and any(
        rec.base in lexicon.PERSON_HYPERNYMS.get(h, ()) or set(rec.heads) & lexicon.PERSON_HYPERNYMS.get(h, set())
        for h in heads)


_GENERIC_NONPERSON = {"animal", "creature", "beast", "machine", "robot", "thing", "vehicle"}
_COUPLE_HEADS = {"bride", "groom", "husband", "wife", "newlywed", "bridegroom", "lover", "girlfriend", "boyfriend"}
_SHOT_WORDS = re.compile(r"\b(close-up|close up|closeup|camera|shot|cuts? (?:back )?to|in frame|of the frame)\b", re.I)
_COUPLE_WORDS = {"newlywed", "newlyweds", "couple", "lover", "lovers"}  # two people who are together


@dataclass
class Resolution:
    """Outcome for one prompt: for each mention the global ids it refers to (empty: dropped)."""

    assignments: list[list[int]] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)


def _has_change_cue(text: str) -> bool:
    lower = text.lower()
    return any(re.search(rf"\b{re.escape(cue)}\b", lower) for cue in lexicon.CHANGE_CUES)


def _main_color(attrs: list[str]) -> set[str]:
    colors = set()
    for a in attrs:
        if attributes.slot(a) == "hair":
            continue
        for w in attributes.words(a):
            for part in w.split("-"):
                if part in lexicon.COLORS and part not in ("dark", "light", "pale"):
                    colors.add(part)
    return colors


class Resolver:
    """Resolves the mentions of one prompt against a registry (which it updates)."""

    def __init__(self, registry: EntityRegistry, prompt_index: int, prompt: str, encoder=None,
                 similarity_threshold: float = 0.45):
        self.registry = registry
        self.prompt_index = prompt_index
        self.prompt = prompt
        self.change_cue = _has_change_cue(prompt)
        self.shot = bool(_SHOT_WORDS.search(prompt))  # a shot list's caption ("a close-up of ...", "the camera cuts")
        self.encoder = encoder
        self.threshold = similarity_threshold
        self.assigned: list[tuple[int, Mention]] = []  # (global id, mention) in prompt order
        self.created: list[int] = []
        self.narrators: set[int] = set()  # narrators made here from "we" (their appearance is written with "i")
        self.pending_relations: dict[int, list[tuple[str, int]]] = {}
        self.pending_gender: dict[int, str] = {}
        self.group_members: dict[int, list[int]] = {}  # members of a group introduced here ("two kids")
        self.group_relations: dict[int, list[tuple[str, int]]] = {}  # "her grandparents": (role, her id)
        self.enumerated: dict[int, int] = {}  # "The second subject is ...": place -> id, in this prompt
        self.names_ahead: list[tuple[int, set[str]]] = []  # (token, names) of the prompt's named mentions
        self._order: list[list[int]] | None = None  # ``_prompt_order``'s answer, once worked out
        self._last_called: dict[int, str] = {}  # id -> what the last prompt called it, in lower case (with ``_order``)

    # -- helpers --------------------------------------------------------------------------------------
    def _sim(self, a: str, b: str) -> float:
        if self.encoder is None:
            return 0.0
        return self.encoder.similarity(a, b)

    def _records(self) -> list[EntityRecord]:
        return list(self.registry.entities.values())

    def _gender(self, rec: EntityRecord) -> str | None:
        """What the story says (a pronoun, a gendered noun), else what a person's given name suggests."""
        return self._stated_gender(rec) or self._name_gender(rec)

    def _stated_gender(self, rec: EntityRecord) -> str | None:
        return self.pending_gender.get(rec.global_id) or rec.gender

    def _name_gender(self, rec: EntityRecord) -> str | None:
        if rec.kind != "person" or rec.base == "group" or not rec.names or self.encoder is None:
            return None
        words = [w for w in rec.names[0].split() if w.lower().strip(".") not in _TITLES]
        return likely_gender(self.encoder, words[0]) if words else None

    def _subject_ids(self, m: Mention) -> set[int]:
        """Ids given to the subject of ``m``'s clause in this prompt ("he" in "he shows him a card")."""
        return {gid for gid, other in self.assigned if other.token == m.clause_subject}

    def _guessed_otherwise(self, gid: int, m: Mention) -> bool:
        """A person the story never gave a sex whose name suggests the other one than ``m``'s pronoun."""
        rec = self.registry.entities[gid]
        return self._stated_gender(rec) is None and self._name_gender(rec) not in (None, m.gender)

    def _called(self, m: Mention, rec: EntityRecord) -> bool:
        """Whether the story once called ``rec`` by ``m``'s phrase ("a cute sparrow" again)."""
        return m.surface.lower() in {e.lower() for e in rec.all_entities}

    def _in_prompt(self, gid: int, pronouns: bool = True) -> bool:
        return any(g == gid and (pronouns or m.form != "pronoun") for g, m in self.assigned)

    def _prompt_order(self) -> list[list[int]]:
        """Ids seen in each earlier prompt, most recent prompt first, mention order inside a prompt (read-only: the
        earlier prompts do not change while this one is resolved, so it is worked out once a prompt, not once a
        mention), from the registry's index of each prompt's cast."""
        if self._order is None:
            seen = self.registry.appearances()
            self._order = [[gid for _, gid in sorted((order, gid) for order, gid, _ in seen[index])]
                           for index in sorted((i for i in seen if i < self.prompt_index and seen[i]), reverse=True)]
            self._last_called = {gid: inst.get("entity", "").lower() for _, gid, inst in
                                 seen.get(self.prompt_index - 1, ())}
        return self._order

    def _compatible(self, m: Mention, rec: EntityRecord, strict: bool) -> bool:
        if _narrated(rec):
            return False  # the "you" of a story told in the second person is only ever "you" (and "I" only "I")
        if m.form == "pronoun":
            if m.pronoun == "it":
                return rec.kind != "person"
            if rec.base == "group" and m.pronoun != "they":
                return False  # a group acting as one is "they"
            if m.pronoun in ("he", "she"):
                g = self._gender(rec)
                if rec.kind == "person" or _personlike(rec):
                    return g in (None, m.gender)
                return g == m.gender
            return True
        if (rec.base == "group") != bool(m.collective):
            return False  # "the team" is not its lead archaeologist
        if m.heads == ["one"]:
            pass  # "the one in red" can be any kind of character
        elif m.kind != rec.kind:
            generic = set(m.heads) & _GENERIC_NONPERSON or "something" in rec.heads  # (what crept out: anything)
            if not (generic and rec.kind in ("robot", "creature", "animal") and m.kind in ("robot", "creature",
                                                                                         "animal")):
                return False
        g = self._gender(rec)
        if m.gender and g and m.gender != g:
            return False
        if m.kind in ("animal",) and m.base != rec.base and not set(m.heads) & set(rec.heads) and \
                not set(m.heads) & _GENERIC_NONPERSON and not _kind_of(m.heads, rec.base):
            return False
        if m.kind == "vehicle" and m.base != rec.base and not set(m.heads) & set(rec.heads):
            return False
        if m.kind in ("animal", "vehicle", "robot"):
            mc, rc = _main_color(m.attrs), _main_color(rec.current_attrs)
            if mc and rc and not mc & rc:
                return False
        if m.kind in ("animal", "creature"):
            mk, rk = _kin_generation(m.attrs), _kin_generation(rec.current_attrs)
            if mk and rk and not mk & rk:
                return False  # "Mother fox" is not the "Baby fox"
        if strict or not self.change_cue:
            found = attributes.contradictions(m.attrs, m.age, rec.current_attrs, rec.age)
            if found:
                logger.info("prompt %d: %r not merged with %s: contradicts (%s)", self.prompt_index, m.surface,
                            rec.name, "; ".join(found))
                return False
        return True

    def _head_score(self, m: Mention, rec: EntityRecord) -> float:
        if rec.kind == "animal" and _kind_of(m.heads, rec.base):
            return 1.5  # "a small orange beetle ... The bug"
        if "something" in rec.heads and rec.kind != "person" and m.kind in ("creature", "animal", "robot") and \
                m.form != "indefinite":
            return 1.5  # "Something creeps out of the darkness" ... "the monster approaches"
        heads = set(m.heads)
        if m.introduced:
            heads -= lexicon.GENERIC_PERSON
        if heads & set(rec.heads):
            return 2.0
        if m.introduced:
            return -1.0  # "the ballet mistress, a severe woman": a generic noun in an introduction proves nothing
        if rec.kind == "person" and heads & lexicon.GENERIC_PERSON:
            return 1.5 if m.base == rec.base else 1.0
        if rec.kind != "person" and (m.base == rec.base or heads & _GENERIC_NONPERSON):
            return 1.5
        return 0.0

    def _overlap(self, m: Mention, rec: EntityRecord) -> int:
        return len(attributes.content_words(m.attrs) & attributes.content_words(rec.all_attrs))

    # -- per mention ----------------------------------------------------------------------------------
    def resolve(self, mentions: list[Mention]) -> Resolution:
        result = Resolution()
        self.names_ahead = [(m.token, {n.lower() for n in m.names}) for m in mentions if m.names]
        ahead: dict[int, list[int]] = {}  # mentions resolved early, for a pronoun that comes before them
        order = [i for i, m in enumerate(mentions) if m.pronoun not in _NARRATED_PRONOUNS and not m.others] + \
            [i for i, m in enumerate(mentions) if m.pronoun in _NARRATED_PRONOUNS] + \
            [i for i, m in enumerate(mentions) if m.others]  # the one spoken to: once the speaker is known; "the
        # others": once everyone the prompt names is known
        assignments: dict[int, list[int]] = {}
        for index in order:
            m = mentions[index]
            ids = ahead.pop(index, None)
            if ids is None:
                if m.others:
                    ids = self._the_others()
                elif m.narrated:
                    ids = self._narrator(m, mentions)
                elif m.pronoun == "you":
                    ids = self._addressee(m, mentions)
                else:
                    ids = [g for g in self._resolve_one(m, mentions)
                           if g == -1 or not _narrated(self.registry.entities[g])]  # ("you" is only "you")
            if ids == [-1] and m.form == "pronoun" and m.pronoun in ("he", "she") and (m.owns or m.clause_subject
                                                                                       is not None):
                later = self._cataphor(m, mentions, index)
                if later is not None:
                    # "Having finished her brunch, KAJI rests on her rug": the pronoun looks ahead to the
                    # sentence's subject when the story has no one it could be yet
                    found = self._resolve_one(mentions[later], mentions)
                    if found == [-1]:
                        found = [self._create(mentions[later])]
                    ahead[later] = found
                    ids = found[:1]
            if len(ids) == 1 and ids[0] == -1:
                ids = [self._create(m)] if m.appearance else []
            assignments[index] = ids
            if m.enumerated and ids:
                self.enumerated.setdefault(m.enumerated, ids[0])
            for gid in ids:
                self.assigned.append((gid, m))
                if m.form == "pronoun" and m.gender and self._stated_gender(self.registry.entities[gid]) is None and \
                        (m.gender != "p" or self.registry.entities[gid].base == "group"):
                    # ("they", "the others" take in each member: a plural says nothing of one member's sex)
                    self.pending_gender[gid] = m.gender
        result.assignments = [assignments[i] for i in range(len(mentions))]
        result.new_ids = list(self.created)
        return result

    def _the_others(self) -> list[int]:
        """"The others": whom the last prompt with characters had, but for those this prompt has already."""
        here = {gid for gid, _ in self.assigned}
        recent = [g for g in next((ids for ids in self._prompt_order() if ids), [])
                  if not _narrated(self.registry.entities[g]) and self.registry.entities[g].kind != "vehicle"]
        found = [g for g in recent if g not in here]
        records = [self.registry.entities[g] for g in found]
        if len({r.kind for r in records}) != 1 or len(recent) < 3 and not any(r.base == "group" for r in records):
            return []  # ("the old farmer hid the fairy's cloak ... At dawn the others flew away": other fairies)
        return found

    def _narrator(self, m: Mention, mentions: list[Mention]) -> list[int]:
        """The "you" of a story told in the second person (or its "I" in the first): the one the story already has,
        else a new character when this prompt has "you" ("I") doing something; else (a stray "your") no one."""
        if m.pronoun == "we":
            return self._narrator_and_company(m)
        for rec in self._records():
            if rec.kind == "person" and m.pronoun in rec.heads:
                return [rec.global_id]
        return [-1] if any(o.narration_cue and o.pronoun == m.pronoun for o in mentions) else []

    def _story_narrator(self) -> int | None:
        """The character who tells the story ("I"), if the story has one."""
        return next((r.global_id for r in self._records() if r.kind == "person" and "i" in r.heads), None)

    def _relations_of(self, gid: int) -> list[tuple[str, int]]:
        """The relations the registry holds for ``gid``; none for the teller, who is no character."""
        rec = self.registry.entities.get(gid)
        return rec.relations if rec is not None else []

    def _narrator_and_company(self, m: Mention) -> list[int]:
        """"we"/"us" of a story told in the first person: its narrator (the story has one already: "I" did
        something) and whom the story was with in the last prompt with anyone else, but for those this prompt has
        apart ("The teacher encourages us", "I waved back to the teacher as she saw us out"); else no one."""
        narrator = self._story_narrator()
        if narrator is None and m.narration_cue:
            # "We continued on in this rhythmic pattern", "We went to the moving van": a story told in the past tense
            # by one of its characters, who has not said "I" yet
            narrator = self._create(replace(m, heads=["i"], pronoun="i", gender=None))
            self.narrators.add(narrator)
        if narrator is None:
            return []
        here = {gid for gid, other in self.assigned if other.pronoun != "we"}
        company = next((ids for ids in self._prompt_order() if set(ids) - {narrator}), [])
        return [narrator] + [g for g in dict.fromkeys(company) if g != narrator and g not in here and
                             self.registry.entities[g].kind != "vehicle" and
                             not _narrated(self.registry.entities[g])]

    def _addressee(self, m: Mention, mentions: list[Mention]) -> list[int]:
        """"you" in someone's words: the nearest other character of this prompt, else of the prompts before,
        that is not the speaker."""
        speakers = {gid for gid, other in self.assigned if other.speaker}
        if not speakers:
            return []
        kinds = ("person", "animal", "creature", "robot")
        here = [gid for gid, other in sorted(self.assigned, key=lambda a: -a[1].token)
                if gid not in speakers and other.token < m.token and not other.speaker and
                self.registry.entities[gid].kind in kinds and self.registry.entities[gid].base != "group"]
        if here:
            return here[:1]
        for ids in self._prompt_order()[:2]:
            others = [g for g in ids if g not in speakers and self.registry.entities[g].kind in kinds and
                      self.registry.entities[g].base != "group" and not self._in_prompt(g, pronouns=False)]
            if others:
                return others[:1]
        return []

    def _cataphor(self, m: Mention, mentions: list[Mention], index: int) -> int | None:
        """The index of the person a sentence-opening pronoun stands for: the first later mention of the same
        sentence that names or describes a person of a fitting sex, when it is the subject of its clause."""
        for j in range(index + 1, len(mentions)):
            other = mentions[j]
            if other.sentence != m.sentence:
                return None
            if other.form == "pronoun":
                continue
            if other.kind in ("person", "") and other.gender in (None, m.gender) and not other.collective and \
                    other.form in ("name", "definite", "indefinite") and other.clause_subject is None:
                return j
            return None
        return None

    def _create(self, m: Mention) -> int:
        base = m.base or (lexicon.BASE_OF_SEX.get(m.gender or "", "person") if m.form == "pronoun" else "person")
        rec = self.registry.create(m.kind or "person", base)
        # provisional until the instance is written, so later mentions in this prompt can match it
        rec.gender, rec.age, rec.heads, rec.names = m.gender, m.age, list(m.heads), list(m.names)
        rec.current_attrs = list(m.attrs)
        rec.all_attrs = list(m.attrs)
        self.created.append(rec.global_id)
        return rec.global_id

    def _resolve_one(self, m: Mention, mentions: list[Mention]) -> list[int]:
        """Ids for ``m``; ``[-1]`` means a new character, ``[]`` means not a character reference."""
        if m.form == "pronoun":
            return self._pronoun(m, mentions)
        if m.collective and m.heads == ["family"] and any(o is not m and o.kind == "person" and o.form != "pronoun"
                                                          for o in mentions):
            return []  # "The family has crossed the street ... George gives money to his sons": the ones it names
        if m.collective:
            return self._collective(m)
        if m.form == "group":
            if m.relation in lexicon.PAIR_RELATIONS:
                return self._pair_relation(m, mentions)
            if m.newcomer:
                return self._same_group(m) or self._new_group(m)
            found = self._group(m)
            if not found and m.heads and m.heads[0] in _PAIR_NOUNS:
                return self._new_group(m)  # "the elderly couple" that the story had not shown: two people
            if not found and m.action and m.group_size >= 2 and self._noun_unseen(m):
                return self._new_group(m)  # "The four friends quickly set up a tent": a cast the story had not shown
            return found
        if m.names:
            for gid, other in self.assigned:
                if other.names and other.names[0].lower() == m.names[0].lower():
                    return [gid]  # the same name twice in a prompt: the one it named the first time
            for name in m.names:
                rec = self.registry.by_name(name)
                if rec is not None:
                    return [rec.global_id]
            unnamed = self._known_only_by_pronouns(m)
            if unnamed is not None:
                return [unnamed]
            member = self._named_member(m, mentions)
            if member is None:
                member = self._named_one_of_them(m)
            if member is not None:
                return [member]
            misspelt = self._misspelt_name(m)
            if misspelt is not None:
                return [misspelt]
            shortened = self._shortened_name(m)
            if shortened is None:
                shortened = self._name_said_longer(m)
            if shortened is not None:
                return [shortened]
        if m.relation and (m.possessor_pronoun or m.possessor_index is not None):
            self.other_relation_seen = False
            found = self._relation(m, mentions)
            if found is not None:
                return [found]
            if self.other_relation_seen:
                return [-1]  # "her fiance" when the man with her so far was her first boyfriend
            kin = self._only_parent_called(m)
            if kin is not None:
                return [kin]
            if m.relation_owner != _TELLER and (m.names or m.introduced or m.relation not in lexicon.PEER_RELATIONS
                                                or m.kind != "person"):
                return [-1]  # (the teller's "our father" is the father the story has, as "the father" would be)
        if m.enumerated:
            return [self._enumerated(m)]
        if m.newcomer:
            return [-1]
        if m.ordinal:
            member = self._group_member(m)
            if member is not None:
                return [member]
            known = self._of_kind_in_order(m) if m.counted else []
            if known and len(known) >= m.ordinal:
                return [known[m.ordinal - 1]]  # "A crow ... Another crow ... Second crow puts heart in jar"
            if known and len(known) == m.ordinal - 1:
                return [-1]  # "Third crow approaches" where the story has two: the next one
        if m.protagonist and m.form != "indefinite":
            found = self._protagonist(m)
            if found is not None:
                return [found]
        if set(m.heads) & lexicon.NEWCOMER_NOUNS and m.form == "definite":
            for gid in reversed(self.created + sorted(self.registry.entities)):
                rec = self.registry.entities[gid]
                if not self._in_prompt(gid):
                    return [gid]
        if m.form == "indefinite":
            found = self._indefinite(m)
        else:
            found = self._definite(m)
        if found is None:
            return [] if m.weak else [-1]
        return [found]

    def _words_before(self, m: Mention) -> tuple[str, str]:
        """The word before a mention's span and the span, in lower case ("the boy"; "male character" against
        "females character")."""
        before = self.prompt[:m.start].split()
        return (before[-1].lower() if before else "", self.prompt[m.start:m.end].lower())

    def _definite(self, m: Mention) -> int | None:
        if "new" in m.surface.lower().split()[:-1] and m.heads and self._noun_unseen(m):
            return None  # "ready to greet the new customer": someone the story has not shown under that noun
        if m.possessed and m.clause_subject is not None and m.heads and not m.other:
            # "The dragon is opening the dragon's big, wide mouth": the noun said again where "its" would do
            for gid, other in self.assigned:
                if other.token == m.clause_subject and other.form not in ("pronoun", "group") and other.heads and \
                        m.heads[0] == other.heads[0] and not set(m.attrs) - set(other.attrs):
                    return gid
        # "A boy crouches ... The boy smiles": the one this prompt just brought in under that noun
        for gid in reversed(self.created):
            rec = self.registry.entities[gid]
            if m.heads and m.heads[0] in rec.heads and rec.kind == m.kind and not (m.names and rec.names) and \
                    (not m.attrs or self._overlap(m, rec)) and \
                    self._compatible(m, rec, strict=True) and not any(
                        g == gid and other.sentence == m.sentence for g, other in self.assigned):
                return gid
        # "It starts off with him ... The boy reflects ... as the boy leaves the chapel": the one this sentence already
        # took under the same words (the story knew it before by a pronoun only)
        for gid, other in reversed(self.assigned):
            if other.form == "definite" and m.heads and other.heads[:1] == m.heads[:1] and other.kind == m.kind and \
                    gid not in self.created and not (m.other or m.newcomer or m.names or m.ordinal) and \
                    other.sentence == m.sentence and self._words_before(m) == self._words_before(other) and \
                    self._compatible(m, self.registry.entities[gid], strict=True):
                return gid
        best, best_score = None, 0.0
        scored = []
        for rec in self._records():
            if m.other and self._in_prompt(rec.global_id):
                continue
            if rec.global_id in self.created and not self._in_prompt(rec.global_id):
                continue
            if m.relation_owner == rec.global_id or m.relation and m.relation_owner is not None and \
                    self._owner_is_theirs(m.relation_owner, rec.global_id,
                                          _RELATION_GROUP.get(m.relation, m.relation)):
                continue  # ("A farmer sends his daughter ... Her brother": not the farmer)
            if m.clause_subject is not None and any(g == rec.global_id and other.token == m.clause_subject
                                                    for g, other in self.assigned):
                continue  # "he orders a drink from the bartender": not himself
            if not m.relation and _other_generation(m.heads, rec.heads):
                continue  # "The father is sitting next to the mother. The son is sitting ...": not the father
            if m.names and rec.names:
                continue  # a new name is not someone already named otherwise
            if not m.names and rec.names and not self._in_prompt(rec.global_id) and any(
                    token > m.token and names & {n.lower() for n in rec.names} for token, names in self.names_ahead):
                continue  # "Doctor looms over Skye's stooped figure": Skye, named further on, is someone else
            if not self._compatible(m, rec, strict=False):
                continue
            hs = self._head_score(m, rec)
            if m.names and hs < 2.0 and self._overlap(m, rec) < 2:
                continue
            scored.append((rec, hs))
        if not scored:
            return None
        recent = self._prompt_order()[:2]
        recent_ids = {gid for ids in recent for gid in ids}
        need_sim = [rec for rec, hs in scored if hs < 1.0] or (
            [rec for rec, hs in scored] if sum(hs >= 1.0 for _, hs in scored) > 1 else [])
        sims = {}
        if need_sim and self.encoder is not None:
            texts = [m.description()] + [rec.description() for rec in need_sim]
            vecs = self.encoder.encode(texts)
            for rec, v in zip(need_sim, vecs[1:]):
                sims[rec.global_id] = float(vecs[0] @ v)
        same_sentence = {g for g, other in self.assigned if other.form not in ("pronoun", "group")
                         and other.sentence == m.sentence}
        # a parent's word written as a name ("Dad", "Mom"), with no article or owner before it
        titled_kin = bool(m.heads) and m.heads[0] in _KIN_TITLES and m.surface[:1].isupper() and \
            " " not in m.surface and self._words_before(m)[0] not in _ARTICLES_AND_OWNERS
        if m.heads and m.heads != ["one"] and any(rec.kind == m.kind and m.heads[0] in rec.heads for rec, _ in scored):
            # "the robot ... to the robot": one of its own kind under that noun, not the butterfly beside it
            scored = [(rec, hs) for rec, hs in scored if rec.kind == m.kind]
        for rec, hs in scored:
            sim = sims.get(rec.global_id, 0.0)
            overlap = self._overlap(m, rec)
            recency = 0.3 if rec.global_id in recent_ids or self._in_prompt(rec.global_id) else 0.0
            if self._in_prompt(rec.global_id, pronouns=False) and rec.global_id not in same_sentence:
                recency += 0.2  # "Zoom in on snowman 1. ... hits the snowman": the one this prompt just showed
            if hs >= 1.0:
                score = hs + 0.3 * min(overlap, 3) + sim + recency
            elif hs < 0:
                continue  # introduced here with a new role noun: a newcomer
            elif m.heads == ["one"]:
                # "the one with the curly hair": only what the registry knows of it decides
                if overlap == 0:
                    continue
                score = 1.0 + 0.5 * min(overlap, 3) + sim + recency
            elif m.kind != "person":
                # "the sheriff, a heavyset man": introduced here, so only a close match is the same character
                if sim < self.threshold:
                    continue
                score = 0.5 + sim + 0.3 * min(overlap, 3) + recency
            else:
                # a definite role ("the scientist", "the skater") refers back to someone recent, unless it
                # makes an entrance under a role nobody had ("the villain appears") or has no article at all
                # ("female model walks in": a shot list's way to bring someone in)
                if sim < self.threshold and not recency or m.entrance or m.bare:
                    continue
                if titled_kin and not rec.heads:
                    continue  # "Mom and Dad in the panel with Vivienne": "Dad" is not the one called Viv
                if m.action and self._other_role_here(m, rec):
                    continue  # "A male player ... sits at the table ... the dealer is seen dealing cards"
                score = 0.5 + sim + 0.3 * min(overlap, 3) + recency
            if rec.global_id in same_sentence:
                score -= 1.5
            if score > best_score:
                best, best_score = rec.global_id, score
        return best

    def _other_role_here(self, m: Mention, rec: EntityRecord) -> bool:
        """This prompt already calls ``rec`` by a role of its own (not man, woman, person) other than ``m``'s, and
        ``m`` acts (a subject) under its own."""
        for gid, other in self.assigned:
            if gid == rec.global_id and other.form not in ("pronoun", "group") and other.token < m.token:
                roles = set(other.heads) - lexicon.GENERIC_PERSON
                if roles and not roles & set(m.heads):
                    return True
        return False

    def _indefinite(self, m: Mention) -> int | None:
        best, best_key = None, None
        # "A cute sparrow, ..." opening prompt after prompt: the same phrase again is the character it named
        last = self._prompt_order()[:1]
        for gid in (last[0] if last else []):
            rec = self.registry.entities[gid]
            if rec.kind == m.kind and self._called(m, rec) and not self._in_prompt(gid) and \
                    self._compatible(m, rec, strict=True):
                return gid
        # ... also from a prompt or two before, when the story has one character so called ("a girl, a boy and a
        # man walking to school", "a man waving goodbye to the girl", "a girl argue with a boy")
        said = {gid for ids in self._prompt_order()[1:3] for gid in ids
                if self.registry.entities[gid].kind == m.kind and self._called(m, self.registry.entities[gid])}
        everyone = [r for r in self._records() if r.kind == m.kind and self._called(m, r)]
        if len(said) == 1 and len(everyone) == 1 and everyone[0].global_id in said and \
                not self._in_prompt(everyone[0].global_id) and self._compatible(m, everyone[0], strict=True) and \
                {a.lower() for a in m.attrs} <= {a.lower() for a in everyone[0].all_attrs}:
            return everyone[0].global_id
        # an image prompt's way: "a small robot" again, the one robot the last prompt showed (nothing contradicts)
        if m.heads and m.kind != "person":
            recent = [self.registry.entities[g] for g in (last[0] if last else [])]
            same_head = [r for r in recent if r.kind == m.kind and m.heads[0] in r.heads and not self._in_prompt(
                r.global_id)]
            if len(same_head) == 1 and len([r for r in recent if r.kind == m.kind and m.heads[0] in r.heads]) == 1 \
                    and not same_head[0].names and self._compatible(m, same_head[0], strict=True):
                return same_head[0].global_id
        if m.kind == "person" and m.base in ("man", "woman", "boy", "girl") and not m.newcomer and self.shot:
            # a shot list describes its cast anew in each shot: "a close-up of a woman with red hair" is the one
            # woman the story has, when nothing she is said to be contradicts it
            same = [r for r in self._records() if r.kind == "person" and r.base == m.base and r.base != "group"]
            if len(same) == 1 and not self._in_prompt(same[0].global_id) and \
                    self._compatible(m, same[0], strict=True):
                return same[0].global_id
        for rec in self._records():
            if self._in_prompt(rec.global_id) and rec.global_id not in self.created:
                continue
            head_score = self._head_score(m, rec)
            if not self._compatible(m, rec, strict=True) or head_score < 1.0:
                continue
            if attributes.origin_words(m.attrs) and not attributes.origin_words(rec.all_attrs):
                continue  # "One black man wearing black suit" is not "One man wearing black suit" described again
            shared = attributes.content_words(m.attrs) & attributes.content_words(rec.all_attrs)
            distinctive = {w for w in shared if w not in lexicon.AGE_WORDS and w not in lexicon.BUILD_WORDS}
            if len(shared) < 2 or not distinctive or head_score < 1.5 and len(distinctive) < 2:
                continue  # (another word for a person, "a teenager in a blue kimono" after "a girl in a blue
                # kimono", needs two distinctive words of the description)
            sim = self._sim(m.description(), rec.description())
            # each shared word past two is evidence the sentence encoder need not repeat ("a Black woman with
            # curly dark hair" after "a young Black woman ... with dark, curly, shoulder-length hair")
            same_phrase = any(len(a.split()) >= 2 for a in {x.lower() for x in m.attrs} &
                              {x.lower() for x in rec.all_attrs})
            # ("a blue kimono" word for word: the same garment said again, whatever the action around it)
            if sim < self.threshold - min(0.1, 0.05 * (len(shared) - 2)) - (0.05 if same_phrase else 0.0):
                continue
            key = (len(shared), sim)
            if best_key is None or key > best_key:
                best, best_key = rec.global_id, key
        return best

    def _misspelt_name(self, m: Mention) -> int | None:
        """"Kaiji jumps up onto one" in a story of Kaji: a new name one letter away from a known one (same first
        letter, four letters or more, nobody else's name as close) is that character, misspelt."""
        word = m.names[0].split()[0]
        if len(word) < 4 or m.newcomer:
            return None
        close = []
        for rec in self._records():
            if rec.kind != m.kind and m.kind != "person" or self._in_prompt(rec.global_id):
                continue
            for name in rec.names:
                known = name.split()[0]
                if len(known) >= 4 and known[0].lower() == word[0].lower() and known.lower() != word.lower() and \
                        difflib.SequenceMatcher(None, known.lower(), word.lower()).ratio() >= 0.85:
                    close.append(rec.global_id)
        return close[0] if len(set(close)) == 1 else None

    def _shortened_name(self, m: Mention) -> int | None:
        """"B.Fox" in a story of a "Baby fox" (and a "Mother fox"): an initial and a noun shorten the one character
        the story called by a word with that initial before that noun (nobody else fits)."""
        short = _SHORTENED.fullmatch(m.names[0])
        if short is None:
            return None
        initial, noun = short.group(1).lower(), short.group(2).lower()
        fits = set()
        for rec in self._records():
            if self._in_prompt(rec.global_id) or noun not in rec.heads:
                continue
            for phrase in rec.all_entities + rec.all_attrs:
                words = phrase.lower().split()
                if len(words) >= 2 and words[-1] == noun and words[-2][:1] == initial:
                    fits.add(rec.global_id)
        return fits.pop() if len(fits) == 1 else None

    def _name_said_longer(self, m: Mention) -> int | None:
        """"Tomek steps out ... My name is Tomek Voigt", "Viv ... Vivienne": a name whose first word is a one-word
        name the story knows, or starts with it, or is its start (three letters or more), is that character when
        no one else's name fits so and the sex the names suggest does not differ."""
        word = m.names[0].split()[0].lower()
        if len(word) < 3 or m.newcomer or not word.isalpha():
            return None
        fits = set()
        for rec in self._records():
            if rec.kind != m.kind and m.kind != "person":
                continue
            for name in rec.names:
                known = name.lower()
                if " " in known or len(known) < 3:
                    continue
                if known == word and " " in m.names[0] or known != word and (
                        known.startswith(word) or word.startswith(known)):
                    fits.add(rec.global_id)
        if len(fits) != 1:
            return None
        gid = fits.pop()
        guess = likely_gender(self.encoder, m.names[0].split()[0]) if self.encoder is not None else None
        return gid if guess is None or self._gender(self.registry.entities[gid]) in (None, guess) else None

    def _known_only_by_pronouns(self, m: Mention) -> int | None:
        """"She is walking down the dark street ... Jamie holds her hands up": a story that opened on a pronoun
        names that person when a first name comes; the one such person the story has, of a fitting sex."""
        if m.kind != "person" or m.newcomer or m.entrance or m.relation:
            return None
        born = [r for r in self._records() if r.kind == "person" and r.base in ("man", "woman", "person") and
                not r.names and not r.heads and r.global_id not in self.created and
                not self._in_prompt(r.global_id)]
        guess = likely_gender(self.encoder, m.names[0].split()[0]) if self.encoder is not None else None
        born = [r for r in born if guess is None or self._stated_gender(r) in (None, guess)]
        return born[0].global_id if len(born) == 1 else None

    def _named_member(self, m: Mention, mentions: list[Mention]) -> int | None:
        """"Three girls walk into the building. / Vanessa, Victoria and Veronica go to their lockers": as many new
        names, listed together, as a group an earlier prompt brought in whose members have no name yet name those
        members, in order (the latest such group; each name fitting its member)."""
        if m.newcomer or m.entrance or m.relation:
            return None
        listed = [o for o in mentions if o.form == "name" and o.names and o.sentence == m.sentence and
                  self.registry.by_name(o.names[0]) is None]
        listed.sort(key=lambda o: o.start)
        run = [listed[0]] if listed else []
        for before, after in zip(listed, listed[1:]):
            if self.prompt[before.end: after.start].strip(" ,").removeprefix("and").strip() != "":
                if m in run:
                    break
                run = []
            run.append(after)
        if len(run) < 2 or m not in run or any(o.form == "group" or o.surface.lower() == "them" for o in mentions):
            return None  # ("Anna and Marek walk past them", "... past the soldiers": the group is someone else)
        after = self.prompt[run[-1].end:].lstrip()
        if after.startswith((",", "and ", "&")) or self.prompt[:run[0].start].rstrip().endswith((",", " and")):
            return None  # the list goes on with someone the parse did not name: not these names alone

        def fits(o: Mention, rec: EntityRecord) -> bool:
            guess = likely_gender(self.encoder, o.names[0].split()[0]) if self.encoder is not None else None
            return self._compatible(o, rec, strict=False) and (guess is None or self._gender(rec) in (None, guess))

        taken = {gid for gid, o in self.assigned if any(o is named for named in run)}  # (earlier names of the list)
        for rec in sorted(self._records(), key=lambda r: -max((i["prompt_index"] for i in r.instances), default=-1)):
            for inst in rec.instances:
                members = inst.get("group") or []
                if len(members) != len(run) or inst["prompt_index"] >= self.prompt_index or \
                        not all(g in self.registry.entities for g in members):
                    continue
                records = [self.registry.entities[g] for g in members]
                if any((r.names or self._in_prompt(r.global_id)) and r.global_id not in taken for r in records) or \
                        not all(fits(o, r) for o, r in zip(run, records)):
                    return None
                return members[run.index(m)]
        return None

    def _named_one_of_them(self, m: Mention) -> int | None:
        """"Three girls went out to collect wood ... When they were nearly home, Nozibele put her hand to her neck":
        a new name, the subject of its clause, after "they" of this prompt stood for a group's members who have no
        name yet, is one of them (the first whose sex fits), not someone new."""
        if m.kind != "person" or m.newcomer or m.entrance or m.relation or m.clause_subject is not None or \
                self.encoder is None:
            return None
        here = {gid for gid, other in self.assigned if other.token < m.token and other.pronoun == "they"}
        groups = set()
        for gid in here:
            rec = self.registry.entities[gid]
            group = next((inst.get("group") for inst in rec.instances if inst.get("group")), None)
            if group and len(group) >= 2 and gid in group:
                groups.add(tuple(group))
        if len(groups) != 1:
            return None
        members = [self.registry.entities[g] for g in next(iter(groups)) if g in self.registry.entities]
        if not {r.global_id for r in members} <= here or any(r.names for r in members):
            return None
        guess = likely_gender(self.encoder, m.names[0].split()[0])
        fitting = [r for r in members if self._compatible(m, r, strict=False) and
                   (guess is None or self._gender(r) in (None, guess))]
        return fitting[0].global_id if fitting else None

    def _enumerated(self, m: Mention) -> int:
        """The n-th character this prompt has shown so far (people for a person), when it fits the description."""
        if m.enumerated in self.enumerated:
            return self.enumerated[m.enumerated]  # "a young adult, Black woman": what the parser joined to it
        shown: list[int] = []
        for gid, other in self.assigned:
            rec = self.registry.entities[gid]
            if other.form != "pronoun" and other.token < m.token and gid not in shown and rec.base != "group" and \
                    (rec.kind == "person") == (m.kind == "person"):
                shown.append(gid)
        free = [g for g in shown if g not in self.enumerated.values() and
                self._compatible(m, self.registry.entities[g], strict=False)]
        if len(shown) >= m.enumerated and shown[m.enumerated - 1] in free:
            return shown[m.enumerated - 1]
        # the caption's count and the parse disagree ("Three young adults, two men and a woman": the men are
        # not shown one by one): the first one of its kind not yet described, else someone new
        return free[0] if free else -1

    def _protagonist(self, m: Mention) -> int | None:
        people = [r for r in self._records() if r.kind == "person" and r.global_id not in self.created]
        for rec in people:
            if set(rec.heads) & lexicon.PROTAGONIST_NOUNS:
                return rec.global_id
        if not people:
            return None
        people.sort(key=lambda r: (-len(r.prompts_seen()), r.global_id))
        return people[0].global_id

    def _pronoun_candidates(self, m: Mention) -> list[int]:
        """Compatible ids in the order a reader tries them: this prompt (nearest first), then earlier prompts."""
        out: list[int] = []
        for gid, other in reversed(self.assigned):
            if other.token >= m.token or gid in out:
                continue
            if m.clause_subject is not None and other.token == m.clause_subject:
                continue
            if other.form == "pronoun" and other.pronoun != m.pronoun:
                continue
            if m.speaker and other.vocative:
                continue  # '"Amma, we have new neighbors!" she exclaimed': not Amma, the one spoken to
            if self._compatible(m, self.registry.entities[gid], strict=False) and not self._named_object(gid, m):
                out.append(gid)
        def of_no_known_sex(gid: int) -> bool:  # for "he"/"she": one the story never gave a sex comes after
            return m.pronoun in ("he", "she") and self._gender(self.registry.entities[gid]) is None

        # in the prompt too, one said (or named) to be a man or a woman before one of no known sex ("Elira small in
        # the foreground, held by soldiers. His eyes locked on her": Elira, not a soldier)
        out.sort(key=of_no_known_sex)
        subject_ids = self._subject_ids(m)
        order = self._prompt_order()[:4]
        words = _PRONOUNS_OF_SEX.get(m.gender or "", ())
        called = any(self._last_called.get(g) in words for g in order[0]) if order else False

        def brought_in_last(g: int) -> bool:
            return called and self.registry.entities[g].first_seen() == self.prompt_index - 1

        earlier = [gid for n, ids in enumerate(order)
                   for gid in (sorted(ids, key=brought_in_last) if n == 0 else ids)
                   if gid not in out and self._compatible(m, self.registry.entities[gid], strict=False)
                   and not self._named_object(gid, m)]
        # (within the last prompt, one it brought in comes after one it called "she"/"her": "her parents talking
        # while watching her" -> "We see her wandering through the church": her, not her mother)
        # "The official shows him a card": not the official, wherever the story showed him before; and the sex
        # again ("Two soldiers drag a girl ... Close-up of Varos gripping her wrist": the girl, not a soldier)
        earlier.sort(key=lambda gid: (gid in subject_ids, of_no_known_sex(gid)))
        out.extend(dict.fromkeys(earlier))
        return out

    def _named_object(self, gid: int, m: Mention) -> bool:
        """Whether ``gid`` is the one ``m``'s own clause names as its object ("She greets Anna": not Anna)."""
        names = {w for n in self.registry.entities[gid].names for w in n.split()}
        return any(o in names for o in m.object_names)

    def _pronoun(self, m: Mention, mentions: list[Mention]) -> list[int]:
        if m.surface.lower() in _REFLEXIVES and m.clause_subject is not None:
            # "The hoodlum has flattened himself against the wall": the one the clause is about
            subject = list(dict.fromkeys(gid for gid, other in self.assigned if other.token == m.clause_subject))
            if subject:
                return subject
        if m.pronoun == "they":
            return self._they(m)
        if m.pronoun == "it":
            if m.it_antecedent is not None:
                for gid, other in self.assigned:
                    if other.token == m.it_antecedent:
                        rec = self.registry.entities[gid]
                        return [gid] if rec.kind != "person" else []
                return []  # "it" is the preceding object, not a character
        candidates = self._pronoun_candidates(m)
        subject_ids = self._subject_ids(m)
        if m.pronoun in ("he", "she") and candidates and not m.owns:
            # "her parents talking while watching her": the "her" again is the one whose parents they are, not the
            # mother the possessive just brought in
            owners = [other.relation_owner for _, other in self.assigned if other.token < m.token and
                      other.sentence == m.sentence and other.relation_owner is not None and
                      lexicon.POSSESSIVE_DETERMINERS.get(other.possessor_pronoun or "") == m.gender]
            members = {gid for gid, other in self.assigned if other.relation_owner in owners}
            if owners and owners[-1] in candidates and candidates[0] in members:
                candidates = [owners[-1]] + [g for g in candidates if g != owners[-1]]
        if m.pronoun in ("he", "she") and candidates and set(candidates) <= subject_ids:
            # "Flip tries to push him out of the bath": not Flip; the animal of the story's last prompts whose sex
            # is not known yet, when there is one
            others = [g for ids in self._prompt_order()[:2] for g in ids if g not in subject_ids and
                      self._beast_of_no_known_sex(g)]
            if others:
                return others[:1]
        if m.pronoun in ("he", "she") and m.owns and not any(
                other.token < m.token and m.owns in (other.owns, other.possessed) for _, other in self.assigned):
            # "the wood cutter stole the fairy's robe ... only one was left because of her missing robe": the one
            # whose robe the story told of, also a fairy of no known sex
            owners = [r.global_id for r in self._records() if m.owns in r.owned and r.base != "group" and
                      (r.kind == "person" or r.kind == "creature") and self._gender(r) in (None, m.gender)]
            if len(owners) == 1 and owners[0] not in self._subject_ids(m):
                return owners
        if m.owns in _ANIMAL_PARTS:
            # "The puppy Max bounds into the room, his tail wagging": what has a tail is the animal
            animals = [gid for gid, other in reversed(self.assigned) if other.token < m.token and
                       self.registry.entities[gid].kind in ("animal", "creature") and
                       self._gender(self.registry.entities[gid]) in (None, m.gender)]
            if animals:
                return animals[:1]
        if m.pronoun in ("he", "she") and not candidates:
            guessed = list(dict.fromkeys(
                gid for gid, other in self.assigned if other.token < m.token and other.form != "pronoun" and
                self.registry.entities[gid].kind == "person" and self.registry.entities[gid].base != "group" and
                self._guessed_otherwise(gid, m)))
            if not guessed and not any(other.token < m.token and other.form != "pronoun" for _, other in self.assigned) \
                    and not self._animal_for_pronoun(m):
                # nobody named before it in this prompt: the last prompt's one person of a guessed sex ("Momotaro
                # grew up strong and brave." -> "One day, he decided to go ...")
                last = next(iter(self._prompt_order()[:1]), [])
                people = [g for g in last if self.registry.entities[g].kind == "person" and
                          self.registry.entities[g].base != "group"]
                guessed = [g for g in people if self._guessed_otherwise(g, m)]
                if len(people) != 1:
                    guessed = []
            if len(guessed) == 1:
                return guessed  # "Skye sits ... with his elbows on his knees": the text says more than the name
        if m.pronoun in ("he", "she") and not candidates and not self._animal_for_pronoun(m) and \
                not any(rec.kind == "person" and self._compatible(m, rec, strict=False)
                        for rec in self.registry.entities.values()):
            return [-1]  # a story that opens on "her hand on his chest": the pronoun is the character's first mention
        if m.pronoun in ("he", "she") and (not candidates or not self._in_prompt(candidates[0]) and
                                           self.registry.entities[candidates[0]].kind != "person"):
            # an animal of this shot whose sex is not yet known comes before an animal from an earlier shot
            candidates = self._animal_for_pronoun(m) or candidates
        elif m.pronoun in ("he", "she") and candidates and not self._in_prompt(candidates[0]):
            # "the dog, Ben, became a hero because he risked his life": the animal this sentence is about, not
            # a man of an earlier prompt
            subjects = [gid for gid, other in self.assigned if other.token < m.token and other.sentence == m.sentence
                        and other.action and other.form != "pronoun" and self._beast_of_no_known_sex(gid) and
                        (self.registry.entities[gid].kind != "robot" or m.action or m.owns)]
            # (a robot is "it" as often as "he": only its own "he ... his", not "rolls toward her")
            if subjects:
                return subjects[:1]
        return candidates[:1]

    def _animal_for_pronoun(self, m: Mention) -> list[int]:
        """"The young wolf ..., her fur ...", "She races across the sky": with no person about, "he"/"she" is the
        animal (or creature) the shot is about, nearest first, when its sex is not yet known."""
        def could_be(gid: int) -> bool:  # a person this pronoun could stand for ("he" is not the woman)
            rec = self.registry.entities[gid]
            return rec.kind == "person" and self._gender(rec) in (None, m.gender)

        here = [gid for gid, other in reversed(self.assigned) if other.token < m.token and other.form != "pronoun"]
        if here:
            if any(could_be(g) for g in here):
                return []
            found = [g for g in here if self._beast_of_no_known_sex(g)][:1]
            if found:
                return found
            # "But did Grandma put on her shoes and let him in?": only a woman here, so the wolf at her door
        last = self._prompt_order()[:1]
        ids = last[0] if last else []
        if any(could_be(g) for g in ids):
            return []
        return [g for g in ids if self._beast_of_no_known_sex(g)][:1]

    def _they(self, m: Mention) -> list[int]:
        single = self._singular_their(m)
        if single is None:
            single = self._singular_they(m)
        if single is not None:
            return [single]
        found = self._they_of(m, ("person",))
        size = _CAST_SIZES.get(m.surface.lower())
        if found and size and len(found) < size:
            # "Mia and her brother walk in with their dog ... The trio escapes": a number says who else is counted
            wider = self._they_of(m, ("person", "animal", "creature", "robot"))
            if len(found) < len(wider) <= size:
                found = wider
        if not found and (m.surface.lower() in ("both", "two") or not self._people_about()):
            # "the two", "both" with fewer than two people about, and "they" in a story of animals (a dog and a
            # grasshopper): any two characters ("a boy and his dog ... The two run")
            found = self._they_of(m, ("person", "animal", "creature", "robot"))
        if not found and m.pronoun == "they":
            # "The kid is in the loft ... Looking over the grounds they see a greenhouse": with one character in the
            # whole story, a person, "they" is that person
            cast = [r for r in self._records() if r.kind != "vehicle"]
            subject_ids = self._subject_ids(m)
            if m.unseen_them and cast and subject_ids and {r.global_id for r in cast} <= subject_ids and m.appearance:
                # "Eddy lets them inside the home" with no one else in the story yet: people who come with the
                # verb, a group the next "They watch the robot" is about
                return [self._create(replace(m, form="definite", base="group", kind="person", collective=True,
                                             heads=["people"], pronoun=None))]
            if len(cast) == 1 and cast[0].kind == "person" and cast[0].base != "group" and \
                    cast[0].global_id not in subject_ids:  # (not "Tyler ... browns them": the onions)
                found = [cast[0].global_id]
            if not cast and not self.assigned and m.surface.lower() == "they" and m.clause_subject is None and \
                    m.appearance:
                # "They look out a small window to see a mob outside." opening a story: people not named yet, a
                # group the story will tell more of
                return [self._create(replace(m, form="definite", base="group", kind="person", collective=True,
                                             heads=["people"], pronoun=None))]
        return found

    def _singular_their(self, m: Mention) -> int | None:
        """"The mouse lowers their sign": "their" on the direct object of the one subject of its clause, with no
        one else named before it in the sentence, is that subject (a singular "they")."""
        if m.surface.lower() != "their" or not m.owns or m.owner_subject is None:
            return None
        subject = [(gid, other) for gid, other in self.assigned if other.token == m.owner_subject]
        others = {gid for gid, other in self.assigned if other.sentence == m.sentence and other.token < m.token}
        if len(subject) != 1 or others != {subject[0][0]}:
            return None
        gid, other = subject[0]
        return None if other.form in ("pronoun", "group") or self.registry.entities[gid].base == "group" else gid

    def _singular_they(self, m: Mention) -> int | None:
        """"The character feels like they are being followed", "The child ... takes refuge in an alley. They've
        stolen something": "they" after one person the text gives no sex, the only character of its sentence and
        the one before, who was named there by a noun, is that person (a singular "they"); not the subject of its own
        clause ("The keeper watches them")."""
        if m.surface.lower() not in ("they", "them") or m.collective:  # (the tokenizer splits "they've")
            return None
        before = [(gid, other) for gid, other in self.assigned
                  if other.token < m.token and other.sentence in (m.sentence, m.sentence - 1)]
        ids = {gid for gid, _ in before}
        if len(ids) != 1:
            return None
        gid = next(iter(ids))
        rec = self.registry.entities[gid]
        named = [other for _, other in before if other.form in ("definite", "indefinite") and other.heads or
                 other.form == "name" and m.surface.lower() == "they"]
        # (a name too, for a subject "they": "The Champion spots a wave. They paddle", "As #1 sits down they ...")
        if rec.kind != "person" or rec.base == "group" or rec.gender is not None or not named or \
                gid in self._subject_ids(m) or any(other.group_size or other.collective for _, other in before):
            return None
        return gid

    def _people_about(self) -> bool:
        """Whether this prompt, or the last one with characters, has a person in it."""
        ids = [g for g, _ in self.assigned] or next(iter(self._prompt_order()[:1]), [])
        return any(self.registry.entities[g].kind == "person" for g in ids)

    def _they_of(self, m: Mention, kinds: tuple[str, ...]) -> list[int]:
        subject_ids = self._subject_ids(m)
        for gid, other in reversed(self.assigned):
            if other.token < m.token and other.collective and gid not in subject_ids:
                return [gid]  # "the politicians ... as they navigate"
        def of_kind(gid: int) -> bool:  # a fairy who marries is one of "they" as a person is
            rec = self.registry.entities[gid]
            return rec.kind in kinds or "person" in kinds and _personlike(rec)

        before = [other for _, other in self.assigned if other.pronoun == "they" and other.token < m.token and
                  other.sentence == m.sentence]
        if before:
            # "He gave each of them a dumpling, and they joined him": the ones "them" just stood for
            last = max(before, key=lambda o: o.token)
            ids = list(dict.fromkeys(gid for gid, other in self.assigned if other is last))
            if len(ids) >= 2 and not set(ids) & subject_ids:
                return ids

        here = []
        for gid, other in self.assigned:
            if other.token < m.token and gid not in here and of_kind(gid) and gid not in subject_ids:
                here.append(gid)
        if len(here) >= 2:
            return here
        if len(here) == 1 and "person" in kinds:
            # "Bella and Ben (her dog) looked up ... They stared up at the sky": the one person of the prompt so far
            # and the animals with her, before anyone of an earlier prompt
            wide = list(dict.fromkeys(
                gid for gid, other in self.assigned if other.token < m.token and gid not in subject_ids and
                self.registry.entities[gid].kind in ("person", "animal", "creature", "robot") and
                self.registry.entities[gid].base != "group"))
            if len(wide) >= 2:
                return wide
        if not here:
            # "he met a dog, a monkey, and a pheasant." -> "He gave each of them a dumpling": the animals the last
            # prompt brought in, when its people are only the one who acts now
            last = next(iter(self._prompt_order()[:1]), [])
            beasts = [g for g in last if self.registry.entities[g].kind in ("animal", "creature", "robot") and
                      self.registry.entities[g].base != "group"]
            people = [g for g in last if self.registry.entities[g].kind == "person" and g not in subject_ids]
            if len(beasts) >= 2 and not people and "person" in kinds:
                return beasts
            # a group acting as one in the latest prompt that had characters: "The team sets up camp." ->
            # "At night, they gather around a fire"
            for ids in self._prompt_order()[:2]:
                groups = [g for g in ids if self.registry.entities[g].base == "group" and g not in subject_ids]
                if groups:
                    return groups[-1:]
                if any(self.registry.entities[g].kind == "person" for g in ids):
                    break
            cast = [g for g in last if self.registry.entities[g].kind in ("person", "animal", "creature", "robot")
                    and self.registry.entities[g].base != "group" and g not in subject_ids]
            if "person" in kinds and len(cast) >= 2 and len(people) == 1 and len(cast) > len(people):
                # "he met a dog, a monkey, and a pheasant ... they joined him" -> "They arrived at Demon Island":
                # the one person of the last prompt and the animals with him
                return cast
        out = [g for g in here]
        for ids in self._prompt_order()[:4]:
            for gid in ids:
                if gid not in out and gid not in subject_ids and of_kind(gid):
                    out.append(gid)
            if len(out) >= 2:
                break
        return out if len(out) >= 2 else []

    def _same_group(self, m: Mention) -> list[int]:
        """"Two children" again, prompt after prompt: the two the story brought in together as a group of that
        size and kind, none of them in this prompt yet (an image prompt describes its cast anew each time)."""
        if m.attrs or set(m.surface.lower().split()) & {"different", "another", "new", "other"}:
            return []  # ("Carolyn stands with a different couple": not the couple of the last shot)
        for ids in self._prompt_order()[:2]:
            for gid in ids:
                rec = self.registry.entities[gid]
                groups = [inst.get("group") for inst in rec.instances if inst.get("group")]
                if not groups or rec.kind != m.kind:
                    continue
                members = [g for g in groups[0] if g in self.registry.entities]
                if len(members) == m.group_size == len(groups[0]) and \
                        (set(m.heads) & set(self.registry.entities[members[0]].heads) or
                         m.base == self.registry.entities[members[0]].base) and \
                        not any(self._in_prompt(g) for g in members):
                    return members
        return []

    def _new_group(self, m: Mention) -> list[int]:
        """"Two kids in red raincoats": each member becomes a character, in order, so the story can split them."""
        members = []
        for _ in range(m.group_size):
            members.append(self._create(m))
        for gid in members:
            self.group_members[gid] = members
        return members

    def _pair_relation(self, m: Mention, mentions: list[Mention]) -> list[int]:
        """"Her grandparents": the two the story recorded as hers, else two new people related to her."""
        owners = self._possessor_ids(m, mentions)
        if not owners:
            return []
        owner = owners[0]
        roles = lexicon.PAIR_RELATIONS[m.relation]
        self._record_relation(m, owner)
        known = [rec.global_id for rec in self._records() if any(other == owner and rel in roles
                                                                  for rel, other in rec.relations)]
        # (or made earlier in this prompt: "her parents talking ... her sitting with her parents")
        known += [gid for gid, rels in self.group_relations.items() if gid not in known and
                  any(other == owner and rel in roles for rel, other in rels)]
        if len(known) >= 2:
            return known[:2]
        members = self._new_pair(m, roles)
        for gid, role in zip(members, roles):
            self.group_relations[gid] = [(role, owner)]
        return members

    def _new_pair(self, m: Mention, roles: tuple[str, str]) -> list[int]:
        """Two new people for ``m`` ("her parents", "the parents"), a woman then a man with the roles' words as
        their nouns, recorded as one group."""
        members = []
        for role, gender in zip(roles, ("f", "m")):
            member = Mention(start=m.start, end=m.end, surface=m.surface, form="indefinite", kind="person",
                             base=lexicon.BASE_OF_SEX[gender], gender=gender, heads=[role],
                             attrs=list(m.attrs), token=m.token, sentence=m.sentence)
            members.append(self._create(member))
        for gid in members:
            self.group_members[gid] = members
        return members

    def _of_kind_in_order(self, m: Mention) -> list[int]:
        """The story's characters (not groups) under the mention's noun, in the order they came in."""
        return [gid for gid in sorted(self.registry.entities) if (rec := self.registry.entities[gid]).kind == m.kind
                and rec.base != "group" and m.heads and m.heads[0] in rec.heads]

    def _group_member(self, m: Mention) -> int | None:
        """"The second kid": the member at that place in the latest group the story introduced of that kind."""
        best, best_prompt = None, -1
        for rec in self._records():
            for inst in rec.instances:
                members = inst.get("group") or []
                if len(members) < m.ordinal or inst["prompt_index"] <= best_prompt:
                    continue
                if m.heads != ["one"] and (not (set(m.heads) & set(rec.heads) or m.base == rec.base) or
                                           rec.kind != m.kind):
                    continue  # (a bare "One", "the other": a member of any group)
                if members[m.ordinal - 1] in self.registry.entities:
                    best, best_prompt = members[m.ordinal - 1], inst["prompt_index"]
        for gid, members in self.group_members.items():
            rec = self.registry.entities[gid]
            if len(members) >= m.ordinal and (set(m.heads) & set(rec.heads) or m.base == rec.base or
                                              m.heads == ["one"]):
                return members[m.ordinal - 1]
        return best

    def _collective(self, m: Mention) -> list[int]:
        """"The kids" without a number: the members of the latest group of kids the story introduced, else the
        group the story treats as one character ("the politicians"), else a new such group."""
        members: list[int] = []
        latest = -1
        for rec in self._records():
            if rec.kind != m.kind or not set(m.heads) & set(rec.heads):
                continue
            if rec.base == "group":
                return [rec.global_id]
            for inst in rec.instances:
                group = [g for g in inst.get("group") or [] if g in self.registry.entities]
                if len(group) >= 2 and inst["prompt_index"] > latest:
                    members, latest = group, inst["prompt_index"]
        for gid, group in self.group_members.items():
            if set(m.heads) & set(self.registry.entities[gid].heads):
                return list(group)
        if not members and m.recalled and m.heads and m.heads[0] in lexicon.PEER_RELATIONS:
            # "her friends": the other people of the story's last prompts, not the ones this prompt has named
            here = {gid for gid, _ in self.assigned}
            recent = [g for ids in self._prompt_order()[:3] for g in ids]
            members = [g for g in dict.fromkeys(recent) if g not in here and
                       self.registry.entities[g].kind == "person" and self.registry.entities[g].base != "group"]
            return members if len(members) >= 2 else [-1]
        if not members and (m.recalled or m.form == "definite"):
            # "Shot from behind the pigeons", "look head-on at the birds": the story's own of that kind, lately seen;
            # also when they act ("the boy ... the girl ... To escape, the kids climb the tree")
            for window in ((None,) if m.heads == ["family"] else (2, 4)):
                # (further back when the last two prompts had fewer than two: "A crow ... Another crow ... Third
                # crow approaches ... Third finally places his heart ... the crows flit")
                recent = [g for ids in self._prompt_order()[:window] for g in ids]
                members = [g for g in dict.fromkeys(recent) if self.registry.entities[g].base != "group" and
                           (set(m.heads) & set(self.registry.entities[g].heads) or
                            m.heads == ["animal"] and self.registry.entities[g].kind in ("animal", "creature") or
                            _kind_of(m.heads, self.registry.entities[g].base) or
                            _person_kind_of(m.heads, self.registry.entities[g]))]
                if len(members) >= 2:
                    break
            if len(members) >= 2:
                return members
            if m.recalled or m.heads == ["animal"]:
                return []  # ("the animals" with fewer than two about: the farm's, not characters)
            members = []  # (fewer than two: "the kids" who act are a group of their own, as below)
        pair = lexicon.PAIR_RELATIONS.get(m.heads[0] + "s") if m.heads and m.kind == "person" else None
        if not members and pair:
            # "The father ... the mother ... The parents are having bacon": the story's only mother and father
            known = [self._only_one_called(role) for role in pair]
            if all(gid is not None for gid in known):
                return known
        if not members and pair:
            # "the parents standing by the door": a mother and a father, each a character the story can name later
            members = self._new_pair(m, pair)
        return members or [-1]

    def _only_one_called(self, role: str) -> int | None:
        """The one person of the story called by ``role`` (or a word for it: "mom" for "mother"), if only one is."""
        words = _ROLE_WORDS.get(role, {role})
        found = [rec.global_id for rec in self._records() if rec.kind == "person" and rec.base != "group" and
                 words & set(rec.heads)]
        return found[0] if len(found) == 1 else None

    def _group(self, m: Mention) -> list[int]:
        def fits(rec: EntityRecord) -> bool:
            if m.heads and m.heads[0] in _COUPLE_WORDS:
                return bool(set(rec.heads) & _COUPLE_HEADS) or rec.kind == "person"
            if rec.kind != m.kind:
                return False
            if m.kind != "person" and m.base != rec.base and not _kind_of(m.heads, rec.base):
                return False  # ("Both birds": the robin and the jay)
            if m.kind == "person" and m.gender and self._gender(rec) not in (None, m.gender):
                return False
            return True

        order = [gid for ids in self._prompt_order()[:4] for gid in ids]
        order = list(dict.fromkeys(order))
        if m.heads and m.heads[0] in _COUPLE_WORDS:
            order.sort(key=lambda g: not set(self.registry.entities[g].heads) & _COUPLE_HEADS)
        chosen = []
        for gid in order:
            rec = self.registry.entities[gid]
            if self._in_prompt(gid, pronouns=False) or not fits(rec):
                continue
            chosen.append(gid)
            if len(chosen) == m.group_size:
                break
        return chosen if len(chosen) == m.group_size else []

    def _possessor_ids(self, m: Mention, mentions: list[Mention]) -> list[int]:
        if m.possessor_index is not None:
            for gid, other in self.assigned:
                if other is mentions[m.possessor_index]:
                    return [gid]
            return []
        word = m.possessor_pronoun or ""
        if word in ("my", "our"):
            if m.possessor_quoted:
                return []  # ('"Sure hope my parents come"': the speaker's, whoever speaks)
            # "my mum ringing the vet ... my mum walks to the phone": the story's narrator's, the same one each time
            # (also what was the teller's before "I" became a character of the story)
            narrator = self._story_narrator()
            return [_TELLER] if narrator is None else [narrator, _TELLER]
        gender = lexicon.POSSESSIVE_DETERMINERS.get(word)
        probe = Mention(start=m.start, end=m.end, surface=word, form="pronoun", gender=gender if gender in
                        ("m", "f") else None, pronoun={"m": "he", "f": "she", "n": "it", "p": "they"}.get(gender, ""),
                        token=m.token if m.possessor_token is None else m.possessor_token, sentence=m.sentence)
        if probe.pronoun in ("they", ""):
            return []
        return self._pronoun_candidates(probe)

    def _relation(self, m: Mention, mentions: list[Mention]) -> int | None:
        owners = self._possessor_ids(m, mentions)
        if not owners:
            return None
        groups = _RELATION_GROUP
        wanted = groups.get(m.relation, m.relation)
        for gid, other in self.assigned:  # "John's mom walks in ... John's mom places the present": said again
            if other.relation and other.relation_owner in owners[:1] and groups.get(other.relation, other.relation) \
                    == wanted and self._compatible(m, self.registry.entities[gid], strict=False):
                self._record_relation(m, other.relation_owner)
                return gid
        for owner in owners[:3]:
            for rec in self._records():
                if rec.global_id == owner or not self._compatible(m, rec, strict=False):
                    continue
                for rel, other in rec.relations:  # recorded: rec is <rel> of other
                    if other == owner and groups.get(rel, rel) == wanted:
                        self._record_relation(m, owner)
                        return rec.global_id
                for rel, other in self._relations_of(owner):  # inverse: owner is <rel> of rec
                    if other == rec.global_id and _INVERSE.get(groups.get(rel, rel)) == wanted:
                        self._record_relation(m, owner)
                        return rec.global_id
        owner = owners[0]
        self._record_relation(m, owner)
        if m.relation not in lexicon.PEER_RELATIONS:
            return None
        # a peer relation names a companion the story already shows with the owner
        with_owner: list[int] = []
        owner_rec = self.registry.entities.get(owner)
        owner_seen = set(owner_rec.prompts_seen()) if owner_rec is not None else set()  # (the teller: no prompts)
        named = {n.lower() for n in m.names}

        def named_otherwise(rec: EntityRecord) -> bool:  # "her friend Chloe": not the friend called Viv
            return bool(named) and bool(rec.names) and not named & {n.lower() for n in rec.names}

        for rec in self._records():
            if rec.global_id == owner or named_otherwise(rec):
                continue
            if any(other == owner and _other_relation(groups.get(rel, rel), wanted) for rel, other in rec.relations):
                self.other_relation_seen = True
                continue  # already someone else to the owner ("her first boyfriend" is not her fiance)
            if self._owner_is_theirs(owner, rec.global_id, wanted):
                continue  # the owner is already rec's own ("A farmer sent his daughter ... her brother": not him)
            shared = set(rec.prompts_seen()) & owner_seen
            if shared and self._compatible(m, rec, strict=False) and (m.relation != "owner" or rec.kind == "person"):
                with_owner.append(rec.global_id)
        if len(with_owner) == 1:
            return with_owner[0]
        previous = self._prompt_order()[:1]
        near = [g for g in (previous[0] if previous else []) if g != owner and
                not named_otherwise(self.registry.entities[g]) and
                self._compatible(m, self.registry.entities[g], strict=False) and not any(
                    other == owner and _other_relation(groups.get(rel, rel), wanted)
                    for rel, other in self.registry.entities[g].relations) and
                not self._owner_is_theirs(owner, g, wanted)]
        if with_owner:
            near = [g for g in near if g in with_owner]
        if len(near) == 1:
            return near[0]
        return None

    def _only_parent_called(self, m: Mention) -> int | None:
        """"His mother is pressing on the door ... Jeff is standing over his mom's crushed head": a parent or
        grandparent the story has one person called by (any word for it), said to be no one else's and not already
        the owner's other kin, is that one ("A girl and her mother ... A boy and his mother": another mother)."""
        role = next((r for r, words in _ROLE_WORDS.items() if m.relation in words), None)
        if role is None or m.relation_owner is None or m.kind != "person":
            return None
        gid = self._only_one_called(role)
        wanted = _RELATION_GROUP.get(m.relation, m.relation)
        if gid is None or gid == m.relation_owner or self._in_prompt(gid) or \
                not self._compatible(m, self.registry.entities[gid], strict=False) or \
                any(_RELATION_GROUP.get(rel, rel) == wanted and other != m.relation_owner
                    for rel, other in self.registry.entities[gid].relations) or \
                self._owner_is_theirs(m.relation_owner, gid, wanted):
            return None
        return gid

    def _beast_of_no_known_sex(self, gid: int) -> bool:
        """A single animal, creature or robot the story has not given a sex: one "he"/"she" may turn out to be."""
        rec = self.registry.entities[gid]
        return rec.kind in ("animal", "creature", "robot") and rec.base != "group" and self._gender(rec) is None

    def _noun_unseen(self, m: Mention) -> bool:
        """No character of the story has been called by ``m``'s noun yet."""
        return not any(set(m.heads) & set(r.heads) for r in self._records())

    def _owner_is_theirs(self, owner: int, gid: int, wanted: str) -> bool:
        """Whether ``owner`` is already ``gid``'s relation of another kind than ``wanted`` (the daughter of a farmer: he
        is not her brother), as the registry or this prompt recorded it."""
        held = [rel for rel, other in self._relations_of(owner) if other == gid] + [
            other.relation for g, other in self.assigned if g == owner and other.relation and other.relation_owner == gid]
        return any(_other_relation(_INVERSE.get(_RELATION_GROUP.get(rel, rel), rel), wanted) for rel in held)

    def _record_relation(self, m: Mention, owner: int) -> None:
        m.relation_owner = owner  # read by the agent when it writes the instance
        sex = lexicon.POSSESSIVE_DETERMINERS.get(m.possessor_pronoun or "")
        rec = self.registry.entities.get(owner)
        if sex in ("m", "f") and rec is not None and rec.kind == "person" and rec.base != "group" and \
                self._stated_gender(rec) is None:
            self.pending_gender[owner] = sex  # "A farmer sent his daughter": the farmer is a man

    # -- finishing ------------------------------------------------------------------------------------
    def finish(self, mentions: list[Mention], result: Resolution) -> None:
        """Name new characters now that the whole prompt is read (a later "she" can tell "person" apart)."""
        fresh = [self.registry.entities[g] for g in result.new_ids if g in self.registry.entities]
        for rec in fresh:
            rec.name = "__pending__"  # provisional names must not push the numbering of this prompt's others
        for rec in fresh:
            gid = rec.global_id
            gender = self.pending_gender.get(gid)
            if rec.kind == "person" and rec.base in ("person", "teenager", "child") and gender:
                if rec.base == "person":
                    rec.base = lexicon.BASE_OF_SEX[gender]
                elif rec.base == "child":
                    rec.base = {"m": "boy", "f": "girl"}[gender]
            rec.name = self.registry.next_name(rec.base)


_CAST_SIZES = {**CAST_NOUNS, "three": 3, "four": 4, "five": 5, "six": 6}  # "the trio", "all four"
_PAIR_NOUNS = {"couple", "newlyweds", "newlywed", "twins", "twin", "pair", "lovers", "lover"}
_RELATION_GROUP = {
    "son": "child", "daughter": "child", "child": "child", "kid": "child", "baby": "child",
    "father": "parent", "mother": "parent", "dad": "parent", "mom": "parent", "mum": "parent", "parent": "parent",
    "husband": "spouse", "wife": "spouse", "spouse": "spouse", "brother": "sibling", "sister": "sibling",
    "sibling": "sibling", "twin": "sibling", "girlfriend": "lover", "boyfriend": "lover", "lover": "lover",
    "fiance": "lover", "fiancee": "lover", "fiancé": "lover", "fiancée": "lover", "coworker": "colleague",
    "colleague": "colleague",
    "grandson": "grandchild", "granddaughter": "grandchild", "grandfather": "grandparent",
    "grandmother": "grandparent", "coach": "coach", "trainer": "coach", "owner": "owner",
}
_INVERSE = {"child": "parent", "parent": "child", "spouse": "spouse", "sibling": "sibling", "lover": "lover",
            "colleague": "colleague", "partner": "partner", "friend": "friend", "grandchild": "grandparent",
            "grandparent": "grandchild", "companion": "companion", "cousin": "cousin"}


_SHORTENED = re.compile(r"([A-Z])\.\s?([A-Za-z]{3,})")  # "B.Fox", "M. Fox": an initial and a noun
# an animal's generation as a word before its noun says it ("Mother fox", "the baby elephant")
_ANIMAL_KIN = {**dict.fromkeys(KIN_MODIFIERS - {"baby"}, "parent"),
               **dict.fromkeys(("baby", "cub", "pup", "calf", "chick", "young"), "young")}


def _kin_generation(attrs: list[str]) -> set[str]:
    return {_ANIMAL_KIN[w] for a in attrs for w in a.lower().split() if w in _ANIMAL_KIN}


_PARTNER_GROUPS = {"lover", "spouse", "partner"}
# a family's generations as its members are called without an owner ("the father", "the son", "the sister"): one
# character is not called by two of them
_GENERATION = {
    **dict.fromkeys(("father", "mother", "dad", "mom", "mum", "daddy", "mommy", "mummy", "papa", "mama", "parent"),
                    "parents"),
    **dict.fromkeys(("son", "daughter", "brother", "sister"), "children"),
    **dict.fromkeys(("grandfather", "grandmother", "grandpa", "grandma", "granny", "grandparent"), "grandparents"),
    **dict.fromkeys(("grandson", "granddaughter", "grandchild"), "grandchildren"),
}


_ARTICLES_AND_OWNERS = {"the", "a", "an", "his", "her", "their", "my", "our", "your", "its", "this", "that"}
_ROLE_WORDS = {"mother": {"mother", "mom", "mum", "mommy", "mummy", "mama"},
               "father": {"father", "dad", "daddy", "papa"},
               "grandmother": {"grandmother", "grandma", "granny"}, "grandfather": {"grandfather", "grandpa"}}
# a parent's word that can be written as a name ("Dad", "Mom"): the roles' other words, and a few more
_KIN_TITLES = {w for words in _ROLE_WORDS.values() for w in words} - set(_ROLE_WORDS) | {
    "ma", "pa", "nana", "gran", "grandad", "granddad"}


def _other_generation(heads: list[str], known: list[str]) -> bool:
    """``heads`` call someone by a family generation (unowned) that none of the ``known`` heads of a character has,
    while those put the character in another one."""
    mine = {_GENERATION[h] for h in heads if h in _GENERATION}
    theirs = {_GENERATION[h] for h in known if h in _GENERATION}
    return bool(mine and theirs and not mine & theirs)


def _personlike(rec: EntityRecord) -> bool:
    """A single creature of tales that lives as people do (a fairy, an elf, a ghost)."""
    return rec.kind == "creature" and rec.base in lexicon.HUMANOID_CREATURES


def _other_relation(held: str, wanted: str) -> bool:
    """Is a relation already held to the owner a different one from ``wanted``? A fiance who becomes the husband
    is the same partner; "her first boyfriend" (a past one) or her brother is not her fiance."""
    return held != wanted and not (held in _PARTNER_GROUPS and wanted in _PARTNER_GROUPS)
