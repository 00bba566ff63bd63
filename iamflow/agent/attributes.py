"""Attribute phrases: which slot a phrase fills (hair, age, clothing, ...), contradictions, and descriptions.

A character's attributes are short phrases as written ("yellow raincoat", "short brown hair", "late 20s").
Slots let the agent tell a *changed* attribute ("now bald") from a *different* character ("a dark-haired
woman" when the known woman is blonde), and let ``enrich`` write a readable descriptor.
"""

from __future__ import annotations

import re

from . import lexicon

CLOTHING_WORDS = set("""raincoat coat jacket overcoat trench parka hoodie sweater jumper cardigan turtleneck shirt
    t-shirt tshirt blouse dress gown tutu skirt jeans trousers pants shorts suit tuxedo uniform overalls
    coveralls apron robe cloak cape poncho vest waistcoat blazer scarf hat cap beanie helmet hood veil turban
    bandana boots shoes sneakers sandals slippers gloves mittens glasses spectacles sunglasses goggles mask
    tie bowtie necklace earrings bracelet ring watch backpack bag belt duster leotard wetsuit spacesuit
    swimsuit bikini pajamas pyjamas kimono sari tunic sundress bathrobe armor armour leggings stockings
    headphones earphones lanyard badge collar bow sash shawl gown bun hat fedora beret bonnet crown tiara
    windbreaker tracksuit jersey top camisole corset kilt""".split())
BODY_WORDS = set("""beard moustache mustache stubble goatee scar tattoo tattoos freckles eye eyes face skin shell
    wings tail mane fur feathers fins paws claws tusks horns arm forearms hands legs treads wheels""".split())
_AGE_NUMBER = re.compile(r"\b(\d{1,2}0s|teens|twenties|thirties|forties|fifties|sixties|seventies|eighties|"
                         r"nineties|\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty)\b")
_DECADE_WORDS = {"teens": 1, "twenties": 2, "thirties": 3, "forties": 4, "fifties": 5, "sixties": 6,
                 "seventies": 7, "eighties": 8, "nineties": 9}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                 "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20}


def words(phrase: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", phrase.lower())


def age_group_of_years(years: int) -> str:
    if years < 13:
        return "child"
    if years < 30:
        return "young"
    if years < 60:
        return "adult"
    return "old"


def age_group(phrase: str) -> str | None:
    """Age group a phrase states: child | young | adult | old, or None."""
    toks = words(phrase)
    for tok in toks:
        if tok in lexicon.AGE_WORDS and lexicon.AGE_WORDS[tok]:
            return lexicon.AGE_WORDS[tok]
    if any(w in toks for w in ("20s", "30s", "40s", "50s", "60s", "70s", "80s", "90s", "teens")) or any(
            w in _DECADE_WORDS for w in toks):
        for w in toks:
            if w in _DECADE_WORDS:
                return age_group_of_years(_DECADE_WORDS[w] * 10 + 5)
            if re.fullmatch(r"\d0s", w):
                return age_group_of_years(int(w[:-1]) + 5)
    if toks and toks[0] in ("about", "around", "aged", "age") or (len(toks) == 1):
        for w in toks:
            if w.isdigit():
                return age_group_of_years(int(w))
            if w in _NUMBER_WORDS:
                return age_group_of_years(_NUMBER_WORDS[w])
    return None


def is_age_phrase(phrase: str) -> bool:
    toks = words(phrase)
    return bool(toks) and (any(w in _DECADE_WORDS or re.fullmatch(r"\d0s", w) or w == "teens" for w in toks)
                           or (toks[0] in ("about", "around", "aged") and age_group(phrase) is not None)
                           or (len(toks) == 1 and (toks[0].isdigit() or toks[0] in _NUMBER_WORDS)))


def hair_color(phrase: str) -> str | None:
    """Hair colour a phrase states ("short brown hair", "silver-haired", "blonde", "bald" -> "none")."""
    toks = words(phrase)
    for tok in toks:
        if tok == "bald" or tok == "shaved-headed":
            return "none"
        if tok.endswith("-haired"):
            color = tok[: -len("-haired")]
            return _canonical_color(color)
        if tok == "redhead":
            return "red"
    if any(t in lexicon.HAIR_WORDS for t in toks) or (toks and toks[-1] in ("head",) and "shaved" in toks):
        if "shaved" in toks and toks[-1] == "head":
            return "none"
        for tok in toks:
            if tok in lexicon.HAIR_COLORS:
                return _canonical_color(tok)
    if len(toks) == 1 and toks[0] in ("blonde", "blond", "brunette", "redheaded", "dark-haired"):
        return _canonical_color(toks[0])
    return None


def _canonical_color(color: str) -> str:
    return {"blond": "blonde", "gray": "grey", "ginger": "red", "auburn": "red", "copper": "red",
            "brunette": "brown", "chestnut": "brown", "dark": "dark", "platinum": "blonde",
            "salt-and-pepper": "grey", "white": "grey", "silver": "grey"}.get(color, color)


def slot(phrase: str) -> str:
    """Slot of an attribute phrase: hair | age | build | clothing:<item> | body:<part> | other."""
    toks = words(phrase)
    if not toks:
        return "other"
    if hair_color(phrase) is not None or any(t in lexicon.HAIR_WORDS for t in toks):
        return "hair"
    if is_age_phrase(phrase):
        return "age_years"
    if len(toks) == 1 and toks[0] in lexicon.AGE_WORDS and lexicon.AGE_WORDS[toks[0]]:
        return "age"
    if len(toks) == 1 and toks[0] in lexicon.BUILD_WORDS:
        return "build"
    for tok in reversed(toks):
        if tok in CLOTHING_WORDS:
            return f"clothing:{tok}"
        if tok in BODY_WORDS:
            return f"body:{tok}"
    return "other"


def _hair_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    dark = {"black", "dark", "brown"}
    if a in dark and b in dark:
        return True
    return False


def _age_compatible(a: str, b: str) -> bool:
    order = {"child": 0, "young": 1, "adult": 2, "old": 3}
    return abs(order[a] - order[b]) <= 1 and not ({a, b} == {"child", "adult"})


# words for a person's skin or descent, written as the person's own adjective ("a Black woman", "an East Asian man")
ORIGIN_WORDS = {"black", "white", "asian", "caucasian", "african", "hispanic", "latino", "latina", "indian", "arab",
                "european", "brown-skinned", "dark-skinned", "fair-skinned", "pale-skinned"}


def origin_words(attrs: list[str]) -> set[str]:
    """The ``ORIGIN_WORDS`` among attributes that are a single adjective of the person ("Black"), not of a
    garment ("black suit")."""
    return {a.lower() for a in attrs if a.lower() in ORIGIN_WORDS}


def contradictions(mention_attrs: list[str], mention_age: str | None, entity_attrs: list[str],
                   entity_age: str | None) -> list[str]:
    """Stable attributes in which a mention and a known character disagree (hair colour, age group, origin)."""
    found = []
    m_origin, e_origin = origin_words(mention_attrs), origin_words(entity_attrs)
    if m_origin and e_origin and not m_origin & e_origin:
        found.append(f"origin {'/'.join(sorted(e_origin))} vs {'/'.join(sorted(m_origin))}")
    m_hair = [c for c in (hair_color(a) for a in mention_attrs) if c]
    e_hair = [c for c in (hair_color(a) for a in entity_attrs) if c]
    if m_hair and e_hair and not any(_hair_compatible(m_hair[-1], e) for e in e_hair[-1:]):
        found.append(f"hair {e_hair[-1]} vs {m_hair[-1]}")
    if mention_age and entity_age and not _age_compatible(mention_age, entity_age):
        found.append(f"age {entity_age} vs {mention_age}")
    return found


def content_words(attrs: list[str]) -> set[str]:
    stop = {"a", "an", "the", "of", "with", "in", "and", "his", "her", "its", "their", "long", "short"}
    out = set()
    for a in attrs:
        out.update(w for w in words(a) if w not in stop)
    return out


def describes_look(phrase: str) -> bool:
    """Whether an attribute gives a colour or a garment ("in purple", "a red coat"), not only age or build."""
    toks = words(phrase)
    return bool(toks) and (slot(phrase).startswith("clothing:") or any(t in lexicon.COLORS for t in toks))


def describe(base: str, attrs: list[str], gender: str | None) -> str:
    """Readable descriptor: "a young man in his late 20s with short brown hair in a denim jacket"."""
    pre, age_phrase, hair, wear, other, colours = [], None, None, [], [], []
    for a in attrs:
        s = slot(a)
        if s == "other" and words(a) and words(a)[-1] in lexicon.COLORS and len(words(a)) <= 2:
            colours.append(a)  # "green", "light blue": worn, not a kind of person ("a girl in green")
        elif s == "age_years":
            age_phrase = a
        elif s in ("age", "build") or (len(words(a)) == 1 and s == "other"):
            if a not in pre:
                pre.append(a)
        elif s == "hair" and len(words(a)) == 1:
            if a not in pre:
                pre.append(a)
        elif s == "hair":
            hair = a
        elif s.startswith("clothing:"):
            wear.append(a)
        elif s.startswith("body:"):
            other.append(a)
    noun = base.replace("_", " ")
    head = " ".join(pre[-3:] + [noun])
    article = "an" if head[:1].lower() in "aeiou" else "a"
    text = f"{article} {head}"
    pronoun = {"m": "his", "f": "her"}.get(gender or "", "their")
    if age_phrase:
        text += f" in {pronoun} {age_phrase}" if not age_phrase.startswith(("about", "around")) else \
            f" of {age_phrase}"
    extras = ([_hair_with_article(hair)] if hair else []) + [_with_article(o) for o in other[-1:]]
    if extras:
        text += " with " + " and ".join(extras)
    if wear:
        text += " in " + " and ".join(_with_article(w) for w in wear[-2:])
    elif colours:
        text += f" in {colours[-1]}"
    return text


def _hair_with_article(phrase: str) -> str:
    last = words(phrase)[-1] if words(phrase) else ""
    if last in ("hair", "curls", "locks", "dreadlocks", "cornrows", "braids", "bangs", "pigtails", "ringlets"):
        return phrase
    return _with_article(phrase)


def _with_article(phrase: str) -> str:
    if phrase.split()[-1].endswith("s") and phrase.split()[-1] not in ("dress", "glass"):
        return phrase
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase
