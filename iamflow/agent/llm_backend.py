"""The ``llm`` backend: a local causal LM lists the characters of a prompt as JSON.

The answer is parsed and checked against a schema; every character's text must occur in the prompt. Anything
else (bad JSON, wrong fields, invented text, a slow or cut-off answer) raises ``ValueError`` and the agent
uses the ``rules`` backend for that prompt. Pronouns and groups still come from spaCy: the LLM decides
*which phrases are characters* and their attributes, the shared resolver decides *who* they are.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np

from . import lexicon, models
from .mentions import Mention, PromptAnalyzer, noun_info

logger = logging.getLogger(__name__)

CHARACTER_TYPES = ("person", "animal", "creature", "robot", "vehicle")
MAX_CHARACTERS = 20
MAX_ATTRIBUTES = 12

# A small instruct model copies a short, concrete format far better than it follows a long schema: one line
# of rules, the exact output shape, one worked example, and the answer started for it. It is asked only which
# phrases are characters and of what type: attributes and scene context come from the rules backend (spaCy),
# and leaving them out makes the answer a third as long (fewer cut-off and broken answers).
SYSTEM = (
    "List the characters of a video scene: people, animals, creatures, robots, and vehicles that act. "
    "Not objects, body parts, places or crowds. "
    "Answer with one JSON object and nothing else, like: "
    '{"characters": [{"text": "...", "type": "..."}]}. '
    '"text": the words that name the character, copied exactly from the scene. '
    '"type": one of person, animal, creature, robot, vehicle.'
)
EXAMPLE_SCENE = "A young woman in a red coat walks her small white dog through a snowy park at night."
EXAMPLE_ANSWER = json.dumps({
    "characters": [
        {"text": "young woman", "type": "person"},
        {"text": "small white dog", "type": "animal"},
    ],
})
ANSWER_PREFIX = '{"characters": [{"text": "'

# A user's own instruct model (Qwen3-0.6B as in the original tool, or any transformers folder with a chat
# template) gets the same messages; Qwen3's thinking is switched off through its template.
CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}


class AnswerConstraint:
    """Keeps a small model's answer inside the schema while it is written: a "text" value may only grow into
    words of the scene (case aside) and a "type" value only into one of the five types. Elsewhere the model
    writes freely; the answer is still parsed and checked afterwards.

    The allowed tokens are looked up from the scene's own continuations (a token is allowed when it spells the
    next characters of the scene), so the cost does not grow with the vocabulary (Qwen3 has 151k tokens)."""

    _TEXT, _TYPE = '"text": "', '"type": "'

    def __init__(self, token_texts: list[str], prompt: str):
        self.size = len(token_texts)
        self.prompt = " ".join(prompt.split()).lower()
        self.by_text, self.by_head = _token_index(token_texts)
        self.longest = max((len(t) for t in self.by_text), default=1)

    def __call__(self, answer: str) -> np.ndarray | None:
        key, start = max((answer.rfind(self._TEXT), self._TEXT), (answer.rfind(self._TYPE), self._TYPE))
        if key < 0:
            return None
        value = answer[key + len(start):]
        if '"' in value:
            return None  # the value is closed: free writing until the next one opens
        value = value.lower()
        mask = np.zeros(self.size, dtype=bool)
        if start == self._TEXT:
            starts = [i + len(value) for i in _occurrences(self.prompt, value)] if value else [
                i for i, ch in enumerate(self.prompt) if ch != " " and (i == 0 or not self.prompt[i - 1].isalnum())]
            pairs = [(self.prompt, q) for q in starts]
        else:
            pairs = [(t, len(value)) for t in CHARACTER_TYPES if t.startswith(value)]
        for source, q in pairs:
            rest = source[q: q + self.longest]
            for length in range(1, len(rest) + 1):
                for i in self.by_text.get(rest[:length], ()):
                    mask[i] = True
            for length in range(0, len(rest) + 1):
                closed = value + rest[:length]
                if closed.strip() and closed.strip() == closed and self._whole(closed, start):
                    for i in self.by_head.get(rest[:length], ()):
                        mask[i] = True
        return mask

    def _whole(self, closed: str, start: str) -> bool:
        if start == self._TYPE:
            return closed in CHARACTER_TYPES
        return re.search(rf"(?<![\w-]){re.escape(closed)}(?![\w-])", self.prompt) is not None


def _occurrences(text: str, part: str) -> list[int]:
    out, i = [], text.find(part)
    while i >= 0:
        out.append(i)
        i = text.find(part, i + 1)
    return out


_INDEX_CACHE: dict[int, tuple[dict, dict]] = {}


def _token_index(token_texts: list[str]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Vocabulary ids by lower-cased text (tokens without a quote) and, for tokens holding a quote, by the
    text before it (they close a value). Built once per vocabulary."""
    key = id(token_texts)
    if key not in _INDEX_CACHE:
        by_text: dict[str, list[int]] = {}
        by_head: dict[str, list[int]] = {}
        for i, text in enumerate(token_texts):
            lower = text.lower()
            if '"' in lower:
                by_head.setdefault(lower.partition('"')[0], []).append(i)
            elif lower:
                by_text.setdefault(lower, []).append(i)
        _INDEX_CACHE[key] = (by_text, by_head)
    return _INDEX_CACHE[key]


def build_messages(prompt: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_SCENE},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        {"role": "user", "content": prompt},
    ]


_ENTRY = re.compile(r'\{\s*"text"\s*:\s*"([^"]{1,80})"\s*,\s*"type"\s*:\s*"([^"]{1,40})"'
                    r'(?:\s*,\s*"attributes"\s*:\s*\[((?:\s*"[^"]*"\s*,?)*)\])?\s*\}')


def _salvage(answer: str) -> dict | None:
    """Complete character entries of an answer whose JSON breaks later on (a small model often writes one good
    entry and then loses a comma); every entry is still checked like a parsed one."""
    entries = [{"text": t, "type": k, "attributes": re.findall(r'"([^"]*)"', a or "")}
               for t, k, a in _ENTRY.findall(answer)]
    return {"characters": entries} if entries else None


def _normalise_type(kind, text: str) -> str | None:
    """"man", "woman", "dog" for the type: the kind of that noun when the word list knows it."""
    if isinstance(kind, str) and kind.strip().lower() in CHARACTER_TYPES:
        return kind.strip().lower()
    if not (isinstance(kind, str) and kind.strip()):
        info = lexicon.CHARACTER_NOUNS.get(text.strip().lower().split(" ")[-1])
        return info.kind if info is not None else "person"  # no type given: the text's noun decides
    info = lexicon.CHARACTER_NOUNS.get(kind.strip().lower().split(" ")[-1])
    return info.kind if info is not None else None


def _text_in_prompt(text: str, prompt: str) -> str | None:
    """The answer's text as it occurs in the prompt; else its longest ending that does ("Surgical robot" for
    "surgical-assist robot" gives "robot"), which must still be a noun phrase's last word."""
    words = " ".join(text.split()).strip(" .,;:").split(" ")
    lower_prompt = " ".join(prompt.split()).lower()
    for i in range(len(words)):
        candidate = " ".join(words[i:])
        if candidate and re.search(rf"(?<![\w-]){re.escape(candidate.lower())}(?![\w-])", lower_prompt):
            return candidate
    return None


def parse_answer(answer: str, prompt: str) -> dict:
    """The answer as a checked dict, or ``ValueError`` saying what is wrong with it."""
    start = answer.find("{")
    if start < 0:
        raise ValueError("answer has no JSON object")
    try:
        data, _ = json.JSONDecoder().raw_decode(answer[start:])
    except json.JSONDecodeError as error:
        data = _salvage(answer[start:])
        if data is None:
            raise ValueError(f"answer is not valid JSON ({error.msg} at char {error.pos})") from None
    if not isinstance(data, dict):
        raise ValueError("answer must be a JSON object")
    characters = data.get("characters")
    if not isinstance(characters, list):
        raise ValueError("answer needs a 'characters' list")
    if len(characters) > MAX_CHARACTERS:
        raise ValueError(f"answer lists {len(characters)} characters (at most {MAX_CHARACTERS})")
    checked = []
    for i, entry in enumerate(characters):
        if not isinstance(entry, dict):
            raise ValueError(f"characters[{i}] must be an object")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 80:
            raise ValueError(f"characters[{i}].text must be a short non-empty string")
        found = _text_in_prompt(text, prompt)
        if found is None:
            raise ValueError(f"characters[{i}].text {text!r} does not occur in the prompt")
        kind = _normalise_type(entry.get("type"), found)
        if kind is None:
            raise ValueError(f"characters[{i}].type must be one of {', '.join(CHARACTER_TYPES)} "
                             f"(got {entry.get('type')!r})")
        attrs = entry.get("attributes", [])
        if isinstance(attrs, str):
            attrs = [attrs]
        if not isinstance(attrs, list):
            raise ValueError(f"characters[{i}].attributes must be a list of at most {MAX_ATTRIBUTES} short strings")
        # attributes are only hints (those not in the prompt are dropped later): keep the usable ones
        attrs = [a.strip() for a in attrs if isinstance(a, str) and 0 < len(a.strip()) <= 60][:MAX_ATTRIBUTES]
        if any(c["text"].lower() == found.lower() for c in checked):
            continue  # the same phrase twice
        checked.append({"text": found, "type": kind, "attributes": attrs})
    context = {}
    for key in ("location", "time_of_day", "lighting"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"'{key}' must be a string")
        context[key] = value.strip()
    return {"characters": checked, "context": context}


def _mention_for(entry: dict, prompt: str, analyzer: PromptAnalyzer,
                 rule_mentions: list[Mention]) -> Mention | None:
    pattern = r"\s+".join(re.escape(w) for w in entry["text"].split())
    match = re.search(rf"(?<![\w-]){pattern}(?![\w-])", prompt, re.IGNORECASE) or re.search(pattern, prompt,
                                                                                          re.IGNORECASE)
    start, end = match.span()
    doc = analyzer.doc
    tokens = [t for t in doc if start <= analyzer.in_prompt(t.idx) < end]
    heads = [t for t in tokens if t.pos_ in ("NOUN", "PROPN")] or tokens
    head = heads[-1]
    listed = noun_info(head)
    kind = listed.kind if listed is not None else entry["type"]  # a listed noun's kind outranks a small model's
    for m in rule_mentions:  # the same phrase as spaCy read it keeps its form, kind, relation and possessor
        if m.token == head.i or start <= m.start < end:
            m.attrs = list(dict.fromkeys(m.attrs + [a for a in entry["attributes"] if a.lower() in prompt.lower()]))
            return m
    lemma = head.lemma_.lower()
    if analyzer._is_excluded(head) or lemma in lexicon.NOT_CHARACTERS or lemma in lexicon.LOCATION_NOUNS or \
            lemma in lexicon.THING_NOUNS:
        return None  # a prop, place or depiction by the rules both backends share ("lifts a silver fish")
    info = noun_info(head)
    det = next((c for c in head.children if c.dep_ == "det"), None)
    form = "name" if head.pos_ == "PROPN" else "indefinite" if det is not None and det.lower_ in (
        "a", "an", "another") else "definite"
    return Mention(start=analyzer.in_prompt(head.idx), end=analyzer.in_prompt(head.idx + len(head.text) - 1) + 1,
                   surface=entry["text"], form=form,
                   kind=kind, base=info.base if info else ("person" if entry["type"] == "person"
                                                                     else head.lemma_.lower()),
                   gender=info.gender if info else None, age=info.age if info else None,
                   heads=[head.lemma_.lower()], names=[head.text] if form == "name" else [],
                   attrs=[a for a in entry["attributes"] if a.lower() in prompt.lower()],
                   newcomer=det is not None and det.lower_ == "another", token=head.i)


def llm_mentions(prompt: str, analyzer: PromptAnalyzer, model_path: str | None, max_new_tokens: int,
                 timeout_s: float) -> tuple[list[Mention], dict]:
    """Mentions from the LLM's checked answer, plus spaCy's pronouns and groups; ``ValueError`` if rejected."""
    lm = models.local_llm(model_path)
    answer, finished = lm.chat(build_messages(prompt), max_new_tokens=max_new_tokens, max_time_s=timeout_s,
                               answer_prefix=ANSWER_PREFIX, template_kwargs=CHAT_TEMPLATE_KWARGS,
                               allowed_next=AnswerConstraint(lm.token_texts(), prompt))
    logger.debug("LLM answer: %s", answer)
    if not finished and _salvage(answer) is None:
        raise ValueError(f"answer was cut off (limit {max_new_tokens} tokens or {timeout_s:.0f} s)")
    parsed = parse_answer(answer, prompt)
    rule_mentions = analyzer.mentions()
    named = [m for m in rule_mentions if m.form not in ("pronoun", "group") and m.appearance and not m.weak]
    mentions = [m for m in (_mention_for(e, prompt, analyzer, rule_mentions) for e in parsed["characters"])
                if m is not None]
    if named and not mentions:
        raise ValueError(f"answer lists no characters, but the prompt names {named[0].surface!r}")
    taken = {m.token for m in mentions}
    mentions += [m for m in rule_mentions if m.form in ("pronoun", "group") and m.token not in taken]
    # a possessor's mention index refers to the rules list; keep it only where that mention is kept
    for m in mentions:
        if m.possessor_index is not None:
            target = rule_mentions[m.possessor_index]
            m.possessor_index = mentions.index(target) if target in mentions else None
    mentions.sort(key=lambda m: m.token)
    for m in mentions:
        if m.possessor_index is not None:
            m.possessor_index = None if m.possessor_index >= len(mentions) else m.possessor_index
    return mentions, parsed["context"]
