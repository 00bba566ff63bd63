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

from . import models
from .mentions import Mention, PromptAnalyzer, noun_info

logger = logging.getLogger(__name__)

CHARACTER_TYPES = ("person", "animal", "creature", "robot", "vehicle")
MAX_CHARACTERS = 20
MAX_ATTRIBUTES = 12

SYSTEM = (
    "You list the characters in a video scene description. Characters are people, animals, creatures, robots "
    "and vehicles that act; not objects or places. Answer with JSON only, in this form: "
    '{"characters": [{"text": "<the words naming the character, copied from the scene>", '
    '"type": "person|animal|creature|robot|vehicle", "attributes": ["<visual attribute>", ...]}], '
    '"location": "", "time_of_day": "", "lighting": ""}'
)
EXAMPLE_SCENE = "A young woman in a red coat walks her small white dog through a snowy park at night."
EXAMPLE_ANSWER = json.dumps({
    "characters": [
        {"text": "young woman", "type": "person", "attributes": ["young", "red coat"]},
        {"text": "small white dog", "type": "animal", "attributes": ["small", "white"]},
    ],
    "location": "snowy park", "time_of_day": "night", "lighting": "",
})
ANSWER_PREFIX = '{"characters": [{"text": "'


def build_messages(prompt: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_SCENE},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        {"role": "user", "content": prompt},
    ]


def parse_answer(answer: str, prompt: str) -> dict:
    """The answer as a checked dict, or ``ValueError`` saying what is wrong with it."""
    start = answer.find("{")
    if start < 0:
        raise ValueError("answer has no JSON object")
    try:
        data, _ = json.JSONDecoder().raw_decode(answer[start:])
    except json.JSONDecodeError as error:
        raise ValueError(f"answer is not valid JSON ({error.msg} at char {error.pos})") from None
    if not isinstance(data, dict):
        raise ValueError("answer must be a JSON object")
    characters = data.get("characters")
    if not isinstance(characters, list):
        raise ValueError("answer needs a 'characters' list")
    if len(characters) > MAX_CHARACTERS:
        raise ValueError(f"answer lists {len(characters)} characters (at most {MAX_CHARACTERS})")
    lower_prompt = prompt.lower()
    checked = []
    for i, entry in enumerate(characters):
        if not isinstance(entry, dict):
            raise ValueError(f"characters[{i}] must be an object")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 80:
            raise ValueError(f"characters[{i}].text must be a short non-empty string")
        if text.strip().lower() not in lower_prompt:
            raise ValueError(f"characters[{i}].text {text!r} does not occur in the prompt")
        kind = entry.get("type", "person")
        if kind not in CHARACTER_TYPES:
            raise ValueError(f"characters[{i}].type must be one of {', '.join(CHARACTER_TYPES)} (got {kind!r})")
        attrs = entry.get("attributes", [])
        if not isinstance(attrs, list) or len(attrs) > MAX_ATTRIBUTES or not all(
                isinstance(a, str) and 0 < len(a) <= 60 for a in attrs):
            raise ValueError(f"characters[{i}].attributes must be a list of at most {MAX_ATTRIBUTES} short strings")
        checked.append({"text": text.strip(), "type": kind, "attributes": [a.strip() for a in attrs]})
    context = {}
    for key in ("location", "time_of_day", "lighting"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"'{key}' must be a string")
        context[key] = value.strip()
    return {"characters": checked, "context": context}


def _mention_for(entry: dict, prompt: str, analyzer: PromptAnalyzer, rule_mentions: list[Mention]) -> Mention:
    match = re.search(re.escape(entry["text"]), prompt, re.IGNORECASE)
    start, end = match.span()
    doc = analyzer.doc
    tokens = [t for t in doc if start <= t.idx < end]
    heads = [t for t in tokens if t.pos_ in ("NOUN", "PROPN")] or tokens
    head = heads[-1]
    for m in rule_mentions:  # the same phrase as spaCy read it keeps its form, relation and possessor
        if m.token == head.i or start <= m.start < end:
            m.kind = entry["type"]
            m.attrs = list(dict.fromkeys(m.attrs + [a for a in entry["attributes"] if a.lower() in prompt.lower()]))
            return m
    info = noun_info(head)
    det = next((c for c in head.children if c.dep_ == "det"), None)
    form = "name" if head.pos_ == "PROPN" else "indefinite" if det is not None and det.lower_ in (
        "a", "an", "another") else "definite"
    return Mention(start=head.idx, end=head.idx + len(head.text), surface=entry["text"], form=form,
                   kind=entry["type"], base=info.base if info else ("person" if entry["type"] == "person"
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
                               answer_prefix=ANSWER_PREFIX)
    logger.debug("LLM answer: %s", answer)
    if not finished:
        raise ValueError(f"answer was cut off (limit {max_new_tokens} tokens or {timeout_s:.0f} s)")
    parsed = parse_answer(answer, prompt)
    rule_mentions = analyzer.mentions()
    named = [m for m in rule_mentions if m.form not in ("pronoun", "group") and m.appearance and not m.weak]
    if named and not parsed["characters"]:
        raise ValueError(f"answer lists no characters, but the prompt names {named[0].surface!r}")
    mentions = [_mention_for(e, prompt, analyzer, rule_mentions) for e in parsed["characters"]]
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
