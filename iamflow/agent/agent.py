"""``EntityAgent``: one per story. Reads each scene prompt, keeps the story's characters, writes mapping.json.

Backends: ``rules`` (spaCy mentions + MiniLM matching, offline, bundled models) and ``llm`` (a local causal
LM lists the characters as JSON; every answer is schema-checked, a bad or slow one falls back to ``rules``
for that prompt). Both feed the same resolver, so identities are decided the same way.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from iamflow.config import AGENT_BACKENDS as BACKENDS, LLM_BACKEND, MAX_AGENT_PROMPT_CHARS, RULES_BACKEND

from . import attributes, lexicon, models
from .mentions import Mention, PromptAnalyzer, appositions_without_commas, readable_markup, verbs_read_as_nouns
from .registry import EntityRegistry
from .resolver import Resolver, likely_gender

logger = logging.getLogger(__name__)



@dataclass
class SceneEntity:
    """A character in one scene."""

    global_id: int
    name: str  # registry name, "man_1"
    kind: str  # person | animal | creature | robot | vehicle
    surface: str  # the phrase that names it in this prompt
    attrs: list[str]
    is_new: bool
    spans: list[tuple[int, int]] = field(default_factory=list)  # character spans of its mentions


@dataclass
class SceneEntities:
    """What ``EntityAgent.observe`` found in one prompt."""

    prompt_index: int
    entities: list[SceneEntity]
    context: dict  # location, time_of_day, lighting
    backend: str = RULES_BACKEND  # the backend that produced the mentions (rules when the LLM fell back)

    def to_dict(self) -> dict:
        return asdict(self)


class NounClassifier:
    """Is an unlisted noun phrase ("the court jester", "a referee") a character, and of which kind?

    MiniLM compares the phrase with every listed character noun (people, animals, creatures, robots, vehicles)
    and with common things and places; the kind whose three nearest listed words are closest wins, when it is
    clearly closer than the things. The head noun alone is tried first, then the phrase with its compounds.
    """

    MARGIN = 0.1  # over the nearest things, for a noun in a subject's place
    OBJECT_MARGIN = 0.2  # for an object: props stand there far more often than characters
    FLOOR = 0.42  # a kind this far from every listed word is no evidence

    def __init__(self, encoder):
        self.encoder = encoder
        self.cache: dict[str, lexicon.NounInfo | None] = {}
        self._protos: np.ndarray | None = None
        self._kinds: np.ndarray | None = None

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._protos is None:
            words, kinds = [], []
            for word, info in sorted(lexicon.CHARACTER_NOUNS.items()):
                words.append(word)
                kinds.append(info.kind)
            for word in sorted((lexicon.THING_NOUNS | lexicon.LOCATION_NOUNS) - set(lexicon.CHARACTER_NOUNS)):
                words.append(word)
                kinds.append("thing")
            self._protos = _cached_embeddings(self.encoder, words)  # [N, 384]
            self._kinds = np.array(kinds)
        return self._protos, self._kinds

    def kind_scores(self, text: str) -> dict[str, float]:
        """Mean similarity of ``text`` to its three nearest listed words of each kind (and "thing")."""
        protos, kinds = self._prototypes()
        # einsum, not "@": past about 1,200 rows OpenBLAS splits this product over threads that then spin on
        # the shared cores for the rest of the prompt (twice the CPU time for the same wall time)
        sims = np.einsum("ij,j->i", protos, self.encoder.encode([text])[0])
        return {k: float(np.sort(sims[kinds == k])[-3:].mean()) for k in np.unique(kinds)}

    def prepare(self, texts: list[str]) -> None:
        """Encode the prompt's candidate nouns in one batch (one forward pass instead of one per noun)."""
        if texts:
            self._prototypes()
            self.encoder.encode(list(dict.fromkeys(texts)))

    EVIDENCE_MARGIN = {"dressed": -0.2, "acts": 0.0}  # person only: described by clothing or age / a person's verb
    EVIDENCE_FLOOR = 0.4

    def __call__(self, lemma: str, phrase: str = "", as_object: bool = False,
                 evidence: str | None = None) -> lexicon.NounInfo | None:
        """``evidence`` ("dressed", "acts"): the sentence shows a person; then "person" needs only to be the
        nearest kind and not far below the things."""
        key = f"{lemma}|{phrase}|{as_object}|{evidence}"
        if key in self.cache:
            return self.cache[key]
        info = None
        if lemma.isalpha() and len(lemma) > 2 and lemma not in lexicon.LOCATION_NOUNS and \
                lemma not in lexicon.NOT_CHARACTERS and lemma not in lexicon.THING_NOUNS and \
                lemma not in lexicon.ABSTRACT_NOUNS:
            for text in dict.fromkeys([lemma] + ([phrase] if phrase and phrase != lemma else [])):
                scores = self.kind_scores(text)
                kind = self._decide(dict(scores), self.OBJECT_MARGIN if as_object else self.MARGIN)
                if kind is None and evidence is not None:
                    thing = scores.pop("thing")
                    if max(scores, key=scores.get) == "person" and scores["person"] >= self.EVIDENCE_FLOOR and \
                            scores["person"] - thing >= self.EVIDENCE_MARGIN[evidence]:
                        kind = "person"
                    elif max(scores, key=scores.get) == "person" and lemma.endswith(_AGENT_SUFFIXES) and \
                            len(lemma) > 6:
                        kind = "person"  # "an old glassblower with a leather apron": one who does, dressed as one
                if kind is not None:
                    info = _classified_info(kind, lemma)
                    break
        self.cache[key] = info
        return info

    def _decide(self, scores: dict[str, float], margin: float) -> str | None:
        thing = scores.pop("thing")
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        kind, best = ranked[0]
        if best < self.FLOOR or best - thing < margin:
            return None
        # a role noun that also sounds like an animal ("jester") is a person
        if kind != "person" and scores.get("person", 0.0) >= best - 0.03 and scores["person"] - thing >= margin:
            kind = "person"
        return str(kind)


def _classified_info(kind: str, lemma: str) -> lexicon.NounInfo:
    if kind == "person":
        gender = "f" if lemma.endswith(("woman", "ess", "girl")) else "m" if lemma.endswith(("man", "boy")) else None
        return lexicon.NounInfo("person", lexicon.BASE_OF_SEX.get(gender or "", "person"), gender)
    if kind == "robot":
        return lexicon.NounInfo("robot", "robot")
    return lexicon.NounInfo(kind, lemma)


def _cached_embeddings(encoder, words: list[str]) -> np.ndarray:
    """Embeddings of the listed words, kept on disk by content so a new process does not recompute them."""
    digest = hashlib.sha1(("\n".join(words) + str(getattr(encoder, "model_id", ""))).encode()).hexdigest()[:16]
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iamflow"
    path = cache_dir / f"agent_prototypes_{digest}.npy"
    if path.exists():
        try:
            vecs = np.load(path)
            if vecs.shape[0] == len(words):
                return vecs
        except (OSError, ValueError):
            pass
    vecs = np.concatenate([encoder.encode(words[i:i + 256]) for i in range(0, len(words), 256)])
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vecs)
        os.replace(tmp, path)
    except OSError:
        logger.debug("could not write %s", path)
    return vecs


_classifier: NounClassifier | None = None


_NAME_QUESTION = re.compile(r"\bwhat(?:'|’)?s your name\b|\bwhat is your name\b|\byour name\?", re.IGNORECASE)
_AGENT_SUFFIXES = ("er", "or", "ist", "ian", "smith", "wright", "keeper", "maker")


# what belongs to one character and says who "her" is when it comes back ("the fairy's robe ... her missing robe")
_PERSONAL_ITEMS = (attributes.CLOTHING_WORDS - attributes.BODY_WORDS) | set(
    """bag backpack basket book bottle briefcase camera coin compass crown cup drink guitar gun helmet key knife
    lantern letter map medal mug necklace note pen pencil phone pistol purse rifle ring robe shield staff suitcase
    sword ticket torch trophy umbrella violin wallet watch wand flute drum bracelet badge bow arrow spear axe hammer
    cane stick lamp candle mirror doll toy ball kite""".split())


def _noun_classifier() -> NounClassifier:
    global _classifier
    if _classifier is None:
        _classifier = NounClassifier(models.sentence_encoder())
    return _classifier


class EntityAgent:
    """Knows who is in the story: ``observe`` each prompt, ``enrich`` a prompt, ``undo_last``, save and load."""

    def __init__(self, backend: str = RULES_BACKEND, llm_model_path: str | None = None,
                 similarity_threshold: float = 0.45, llm_max_new_tokens: int = 256, llm_timeout_s: float = 60.0):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
        if not 0.0 < similarity_threshold < 1.0:
            raise ValueError(f"similarity_threshold must be between 0 and 1 (got {similarity_threshold})")
        self.backend = backend
        self.llm_model_path = llm_model_path
        self.similarity_threshold = similarity_threshold
        self.llm_max_new_tokens = llm_max_new_tokens
        self.llm_timeout_s = llm_timeout_s
        self.registry = EntityRegistry()
        self.prompts: list[str] = []
        self.scenes: list[SceneEntities] = []
        self.fallbacks = 0  # prompts where the LLM answer was rejected and rules were used

    # -- public API -----------------------------------------------------------------------------------
    def observe(self, prompt: str) -> SceneEntities:
        """Analyse the story's next prompt, update the registry, return the scene's characters."""
        prompt = _check_prompt(prompt)
        index = len(self.prompts)
        start = time.perf_counter()
        mentions, context, used = self._mentions(prompt)
        scene = self._resolve_and_commit(self.registry, prompt, index, mentions, context, used)
        self.prompts.append(prompt)
        self.scenes.append(scene)
        logger.debug("prompt %d: %d characters in %.1f ms (%s)", index, len(scene.entities),
                     1000 * (time.perf_counter() - start), used)
        return scene

    def enrich(self, prompt: str) -> str:
        """The prompt with the known attributes of the characters it refers to written in.

        "The protagonist sits" -> "The protagonist, a young man in his late 20s in a denim jacket, sits".
        Works before or after ``observe`` of the same prompt; the registry is not changed.
        """
        prompt = _check_prompt(prompt)
        if self.prompts and prompt == self.prompts[-1]:
            scene = self.scenes[-1]
            registry = self.registry
            known_before = {gid for gid, r in registry.entities.items()
                            if any(i["prompt_index"] < scene.prompt_index for i in r.instances)}
        else:
            registry = copy.deepcopy(self.registry)
            mentions, context, used = self._mentions(prompt, rules_only=self.backend == RULES_BACKEND)
            scene = self._resolve_and_commit(registry, prompt, len(self.prompts), mentions, context, used)
            known_before = set(self.registry.entities)
        inserts: list[tuple[int, str]] = []
        for entity in scene.entities:
            if entity.global_id not in known_before or not entity.spans:
                continue
            record = registry.entities[entity.global_id]
            stated = [a for i in record.instances if i["prompt_index"] == scene.prompt_index for a in i.get("attrs", [])]
            if any(attributes.describes_look(a) for a in stated):
                continue  # the prompt gives this character's colours itself ("the girl in purple"): it says what it wants
            earlier = [i for i in record.instances if i["prompt_index"] < scene.prompt_index]
            attrs = []
            for inst in earlier:
                for a in inst.get("attrs", []):
                    if a not in attrs:
                        attrs.append(a)
            attrs = [a for a in _current(attrs) if a.lower() not in prompt.lower()]
            if not attrs:
                continue
            descriptor = attributes.describe(record.base, attrs, record.gender)
            start, end = min(entity.spans)
            inserts.append((end, f", {descriptor},"))
        text = prompt
        for pos, insert in sorted(inserts, reverse=True):
            if text[pos:pos + 1] in (",", ".", ";", ":", "!", "?", ""):
                insert = insert.rstrip(",")
            text = text[:pos] + insert + text[pos:]
        return text

    def undo_last(self) -> None:
        """Forget the last observed prompt (the story's "undo last scene")."""
        if not self.prompts:
            raise ValueError("nothing to undo: no prompt has been observed yet")
        index = len(self.prompts) - 1
        self.registry.forget_prompt(index)
        self.prompts.pop()
        self.scenes.pop()

    def state_dict(self) -> dict:
        """JSON-able state; ``load_state_dict`` resumes the story with the same ids."""
        return {"version": 1, "backend": self.backend, "prompts": list(self.prompts),
                "scenes": [s.to_dict() for s in self.scenes], "registry": self.registry.to_mapping()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "registry" not in state or "prompts" not in state:
            raise ValueError("agent state must be an object with 'prompts' and 'registry' (from state_dict())")
        self.registry = EntityRegistry.from_mapping(state["registry"])
        self.prompts = [str(p) for p in state["prompts"]]
        self.scenes = []
        for i, s in enumerate(state.get("scenes") or []):
            self.scenes.append(SceneEntities(
                prompt_index=int(s.get("prompt_index", i)), context=dict(s.get("context", {})),
                backend=s.get("backend", RULES_BACKEND),
                entities=[SceneEntity(**{**e, "spans": [tuple(x) for x in e.get("spans", [])]})
                          for e in s.get("entities", [])]))
        if len(self.scenes) != len(self.prompts):
            self.scenes = [SceneEntities(i, [], {}) for i in range(len(self.prompts))]

    def to_mapping(self, extra: dict | None = None) -> dict:
        return self.registry.to_mapping(extra)

    @classmethod
    def from_mapping(cls, mapping: dict, prompts: list[str] | None = None, **kwargs) -> "EntityAgent":
        agent = cls(**kwargs)
        agent.registry = EntityRegistry.from_mapping(mapping)
        last = max((i["prompt_index"] for r in agent.registry.entities.values() for i in r.instances), default=-1)
        agent.prompts = list(prompts) if prompts is not None else [""] * (last + 1)
        agent.scenes = [SceneEntities(i, [], {}) for i in range(len(agent.prompts))]
        return agent

    # -- internals ------------------------------------------------------------------------------------
    def _analyzer(self, prompt: str, registry: EntityRegistry) -> PromptAnalyzer:
        names = {n for r in registry.entities.values() for n in r.names for n in [n] + n.split()}
        known = {n.lower() for n in names}
        text, origin, tags = readable_markup(prompt, known_names=known)
        doc = models.spacy_pipeline()(text)
        appositions = appositions_without_commas(doc, origin, names)
        verbs = verbs_read_as_nouns(doc, origin, models.spacy_pipeline())
        if appositions or verbs:  # "Oscar the grey cat stares": read again as "Oscar, the grey cat, stares"; "The
            # man and Seth nod" (no verb): as "The man and Seth then nod"
            text, origin, tags = readable_markup(prompt, appositions, known, verbs)
            doc = models.spacy_pipeline()(text)
        # heads that name a character only once the story has one: vehicles, and animated depictions
        known_heads = {h for r in registry.entities.values() if r.kind == "vehicle" for h in r.heads + [r.base]}
        known_heads |= {h for r in registry.entities.values() if r.kind == "robot" for h in r.heads}
        known_heads |= {h for r in registry.entities.values() if r.base == "group" for h in r.heads}  # "the team"
        analyzer = PromptAnalyzer(doc, names, known_heads, classify_unknown=_noun_classifier(), origin=origin,
                                  tags=tags, prompt=prompt)
        analyzer.bare_appositions = {start for start, _, _ in appositions}
        encoder = models.sentence_encoder()
        analyzer.name_sex = lambda word: likely_gender(encoder, word)
        analyzer.word_pieces = lambda word: len(encoder.tokenizer.tokenize(word))
        analyzer.animal_heads = {h for r in registry.entities.values() if r.kind == "animal" for h in r.heads}
        analyzer.individual_heads = {h for r in registry.entities.values() if r.base != "group" and r.kind != "vehicle"
                                     for h in r.heads} | {
            word for r in registry.entities.values() if r.kind == "animal"
            for word, members in lexicon.HYPERNYMS.items() if r.base in members} | {
            word for r in registry.entities.values() if r.kind == "person" and r.base != "group"
            for word, members in lexicon.PERSON_HYPERNYMS.items() if r.base in members or set(r.heads) & members}
        analyzer.group_heads = {h for r in registry.entities.values()
                                if any(i.get("group") for i in r.instances) for h in r.heads}
        analyzer.known_roles = {h for r in registry.entities.values() if r.kind == "person" and r.base != "group"
                                for h in r.heads if h not in lexicon.CHARACTER_NOUNS}
        analyzer.name_asked = bool(self.prompts) and _NAME_QUESTION.search(self.prompts[-1]) is not None
        return analyzer

    def _mentions(self, prompt: str, rules_only: bool = False) -> tuple[list[Mention], dict, str]:
        analyzer = self._analyzer(prompt, self.registry)
        context = analyzer.context()
        if self.backend == LLM_BACKEND and not rules_only:
            from .llm_backend import llm_mentions

            try:
                mentions, llm_context = llm_mentions(prompt, analyzer, self.llm_model_path,
                                                     self.llm_max_new_tokens, self.llm_timeout_s)
                # scene context is kept only where the prompt says it (a small LLM likes to invent it)
                context.update({k: v for k, v in llm_context.items() if v and v.lower() in prompt.lower()})
                return mentions, context, LLM_BACKEND
            except ValueError as error:
                self.fallbacks += 1
                logger.warning("LLM answer for prompt %d rejected (%s); using rules for this prompt",
                               len(self.prompts), error)
        return analyzer.mentions(), context, RULES_BACKEND

    def _resolve_and_commit(self, registry: EntityRegistry, prompt: str, index: int, mentions: list[Mention],
                            context: dict, used: str) -> SceneEntities:
        resolver = Resolver(registry, index, prompt, models.sentence_encoder(), self.similarity_threshold)
        result = resolver.resolve(mentions)
        resolver.finish(mentions, result)
        per_entity: dict[int, list[Mention]] = {}
        owner_spans: dict[int, list[tuple[int, int]]] = {}
        for m, ids in zip(mentions, result.assignments):
            if m.place_owner:
                for gid in ids:  # "Allie's living room ... Allie spins": her first word, where she is seen anyway
                    owner_spans.setdefault(gid, []).append((m.start, m.end))
            if m.relation and m.relation_owner is not None and m.possessor_span is not None:
                # "we see his son looking back to see if his dad is looking": the first "his" is the dad, seen here
                owner_spans.setdefault(m.relation_owner, []).append(m.possessor_span)
            if not m.appearance and m.form != "pronoun" or m.place_owner:
                continue
            for gid in ids:
                per_entity.setdefault(gid, []).append(m)
        entities: list[SceneEntity] = []
        repeated = _repeated_group_spans(prompt, per_entity)
        for order, (gid, ms) in enumerate(per_entity.items()):
            record = registry.entities[gid]
            named = [m for m in ms if m.form not in ("pronoun", "group")]
            surface = named[0].surface if named else ms[0].surface
            attrs: list[str] = []
            for m in ms:
                attrs.extend(a for a in m.attrs if a not in attrs)
            aliases = []
            for m in named:
                for alias in [m.surface] + m.names:
                    if alias not in aliases and alias != surface:
                        aliases.append(alias)
            relations = [[m.relation, m.relation_owner] for m in ms
                         if m.relation and m.relation_owner is not None and m.relation_owner != gid]
            relations += [[rel, owner] for rel, owner in resolver.group_relations.get(gid, [])]
            gender = next((m.gender for m in ms if m.gender and m.form != "group" and
                           (m.gender != "p" or record.base == "group")), None) or resolver.pending_gender.get(gid)
            # (a plural says nothing of one member's sex)
            age = next((m.age for m in named if m.age), None)
            instance = {"prompt_index": index, "entity": surface, "attrs": attrs, "aliases": aliases,
                        # a group's noun is its members' when it brought them in ("Two soldiers drag ...")
                        "heads": sorted({h for m in ms if m.form not in ("pronoun", "group") or m.narrated or
                                         m.form == "group" and gid in resolver.group_members for h in m.heads} |
                                        ({"i"} if gid in resolver.narrators else set())),
                        "names": [n for m in named for n in m.names] + [a for m in ms for a in m.aliases],
                        "relations": relations, "gender": gender, "age": age,
                        "action": next((m.action for m in ms if m.action), ""), "order": order,
                        "owned": sorted({o for m in ms for o in (m.owns, m.possessed) if o in _PERSONAL_ITEMS})}
            if gid in resolver.group_members:
                instance["group"] = list(resolver.group_members[gid])
            registry.add_instance(gid, instance)
            entities.append(SceneEntity(global_id=gid, name=record.name, kind=record.kind, surface=surface,
                                        attrs=attrs, is_new=gid in result.new_ids,
                                        spans=sorted({(m.start, m.end) for m in ms} | set(owner_spans.get(gid, [])) |
                                                     set(repeated.get(gid, [])))))
        # a character created only as a possessor that never appeared is dropped
        for gid in result.new_ids:
            if gid in registry.entities and not registry.entities[gid].instances:
                del registry.entities[gid]
        return SceneEntities(prompt_index=index, entities=entities, context=context, backend=used)


_PLURALS = re.compile(r"[a-z]*(?:men|children|people)|[a-z]+s")


def _repeated_group_spans(prompt: str, per_entity: dict[int, list[Mention]]) -> dict[int, list[tuple[int, int]]]:
    """'Long shot of Cal, the children, and Fern. "YAY!" the children shout.': a group seen in the prompt is also
    every other "the children" of the prompt that no one else's mention covers."""
    taken = [(m.start, m.end) for ms in per_entity.values() for m in ms]
    found: dict[int, list[tuple[int, int]]] = {}
    for gid, ms in per_entity.items():
        words = {prompt[m.start:m.end] for m in ms if m.form != "pronoun" and _PLURALS.fullmatch(prompt[m.start:m.end])}
        for word in words:
            for match in re.finditer(rf"\b[Tt]he {re.escape(word)}\b", prompt):
                span = (match.end() - len(word), match.end())
                if not any(a < span[1] and span[0] < b for a, b in taken):
                    found.setdefault(gid, []).append(span)
                    taken.append(span)
    return found


def _current(attrs: list[str]) -> list[str]:
    """Latest attribute per slot, in first-seen order."""
    latest: dict[str, str] = {}
    for a in attrs:
        key = attributes.slot(a)
        latest[key if key != "other" else f"other:{a}"] = a
    keep = set(latest.values())
    return [a for a in attrs if a in keep]


def _check_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be text (got {type(prompt).__name__})")
    if not prompt.strip():
        raise ValueError("prompt is empty: type a scene description")
    if len(prompt) > MAX_AGENT_PROMPT_CHARS:
        raise ValueError(f"prompt is {len(prompt)} characters long: keep it under {MAX_AGENT_PROMPT_CHARS}")
    return prompt
