"""Mentions of characters in one prompt, found with spaCy (the ``rules`` backend's extraction step).

A ``Mention`` is one place where a prompt names a character: a described noun phrase ("a weathered fisherman
in a yellow raincoat"), a name ("Nora"), a pronoun ("he"), a relation ("her partner") or a group ("the two
women"). Appositions and predicates ("Nora, a tall woman", "revealing a sun-tanned woman") are folded into
one mention. Deciding *which* character a mention is belongs to ``resolver``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import attributes, lexicon

# listed things, places and not-characters: capitalised at a fragment's start, they are still common nouns
_COMMON_WORDS = lexicon.THING_NOUNS | lexicon.LOCATION_NOUNS | lexicon.NOT_CHARACTERS
_FRAGMENT_MARKS = {".", "!", "?", ":", ";", "—", "–", "-", "--", "(", '"', "“"}
_SPEAKERLESS_HEADINGS = {"scene", "shot", "caption", "description", "note", "title", "setting", "panel", "page",
                         "frame", "location", "time", "action", "dialogue", "narrator", "narration", "sfx", "fx", "vfx",
                         "music", "sound", "text", "content", "effects", "transition", "audio", "duration", "notes",
                         "lighting", "props", "camera", "movement", "type", "angle"}
_SPEECH_PERSONS = {"i", "me", "my", "we", "us", "our", "you", "your"}  # (the tokenizer splits "I'm", "you're")
# what "you" does as the viewer or as anyone, not as a story's second-person character ("you see the birds flying",
# "you never know you love her", "What big ears you've got")
_VIEWER_VERBS = {"see", "hear", "watch", "view", "know", "think", "love", "figure", "recognize", "recognise",
                 "understand", "guess", "remember", "believe", "like", "want", "have", "get", "be"}
# what "I" does as a prompt's writer or in an aside, not as a story's first-person character ("I want the boy to be
# ...", "I'm afraid that she did!", "I think", "I guess")
_ASIDE_VERBS = _VIEWER_VERBS | {"need", "wish", "hope", "mean", "suppose", "wonder", "imagine", "prefer", "expect",
                                "say", "tell", "ask", "request", "let", "feel", "would"}
# a prompt's writer speaking of the video being made ("my idea", "I want the first image to be", "in this scene")
_MAKING_WORDS = {"scene", "shot", "panel", "frame", "image", "camera", "storyboard", "video", "clip", "film",
                 "footage", "audience", "idea", "editing", "caption", "page", "animation", "script", "story",
                 "prompt", "viewer"}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_ENUMERATED_NOUNS = {"subject", "character", "one", "person", "figure", "individual", "protagonist", "man", "woman"}
_TITLE_WORDS = {"detective", "officer", "captain", "doctor", "dr", "professor", "sheriff", "agent", "inspector",
                "sergeant", "lieutenant", "mr", "mrs", "ms", "miss", "lady", "lord", "sir", "king", "queen",
                "prince", "princess", "uncle", "aunt", "father", "mother", "brother", "sister", "coach", "judge"}
_WEAR_VERBS = {"wear", "don", "sport"}
# what only someone has: "Alexandra's black silhouette", "Max's head snaps toward her" (a possessive name before it)
_PERSONAL_PARTS = {"head", "face", "hand", "hands", "eye", "eyes", "gaze", "smile", "smirk", "jaw", "shoulder",
                   "shoulders", "silhouette", "shadow", "voice", "expression", "finger", "fingers", "grip", "posture",
                   "stillness", "arm", "arms", "hair", "lips", "mouth", "chin", "knuckles", "body", "reflection",
                   "footsteps", "feet", "wrist", "cheek", "brow", "frown", "stare", "glance", "heart"}
_DRESS_VERBS = {"dress", "clad", "clothe"}
_VERBS_READ_AS_NOUNS = {"ride", "walk", "run", "sit", "stand", "swim", "dance", "jump", "play", "sleep", "rest", "wait",
                        "watch", "look", "climb", "race", "fight", "chase", "hug", "kiss", "talk", "laugh", "cry",
                        "smile", "nap", "drive", "fly", "roll", "stare", "wave", "shout", "sing", "stroll", "march",
                        "approach", "arrive", "gather", "enter", "wander", "emerge", "hide", "return"}
_ADVERB_WORDS = {"down", "up", "out", "off", "away", "back", "then", "there", "here", "now", "soon", "later",
                 "suddenly", "meanwhile", "finally", "afterwards", "still", "again", "once", "luckily", "sadly"}
_QUOTE_MARKS = ('"', "“", "”")
_PET_NAMES = {"dear", "honey", "sweetie", "sweetheart", "darling", "kiddo", "buddy", "pal", "love"}
_MEETING_VERBS = {"find", "see", "spot", "watch", "follow", "visit", "join", "approach", "face", "chase", "call",
                  "invite", "grab", "push", "pull", "carry", "lift", "wake", "tickle", "kick", "punch", "hit", "attack",
                  "lead", "guide", "escort", "drag", "protect", "shield", "tease", "beat", "defeat", "betray"}
_CAMERA_VERBS = {"click", "take", "snap", "shoot", "film", "record", "photograph"}  # pictures taken in the scene
_HOLD_VERBS = {"hold", "carry", "wield", "brandish", "clutch"}  # "the boy with the gun": what someone was holding
_PREDICATE_VERBS = {"reveal", "become"}
_NON_NAME_ENTS = {"GPE", "LOC", "FAC", "ORG", "NORP", "DATE", "TIME", "MONEY", "QUANTITY", "ORDINAL",
                  "CARDINAL", "PERCENT", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE"}
_TOY_MODIFIERS = {"stuffed", "toy", "plush", "wooden", "plastic", "ceramic", "paper", "origami", "inflatable",
                  "cardboard", "porcelain", "glass", "bronze", "marble", "stone", "dead", "roast", "roasted",
                  "grilled", "fried", "cooked", "stuffed-animal", "rubber", "cuddly", "teddy",
                  "baseball", "softball", "computer", "wireless"}  # (also a thing named after an animal: "a baseball bat")
_HANDLED_VERBS = {"lift", "hold", "carry", "cook", "eat", "sell", "fillet", "grill", "fry", "serve", "hook",
                  "reel", "gut", "clean", "weigh", "wrap", "buy"}
_STATE_ADJECTIVES = {"bald", "clean-shaven", "bearded", "barefoot", "blindfolded", "masked", "hooded"}
_GROUP_SIZE = {"two": 2, "both": 2, "three": 3, "four": 4, "five": 5, "couple": 2, "pair": 2, "newlyweds": 2, "twins": 2,
               "lovers": 2}
_CAST_NUMBERS = {"three", "four", "five", "six"}  # "All four are seated", "The three walk on": the story's cast
CAST_NOUNS = {"duo": 2, "trio": 3}  # "The trio escapes": the story's cast, so many of them
_RUN_TO_VERBS = {"run", "rush", "hurry", "race", "dash", "go", "walk", "head", "fly", "swim", "come", "return", "sprint"}
_FRAME_SUBJECTS = {"image", "picture", "shot", "scene", "frame", "panel", "illustration", "page", "video", "clip"}
_ANIMATED_DEPICTIONS = {"hologram", "puppet", "doll", "mannequin", "statue", "scarecrow", "figurine"}
_ALIVE_MODIFIERS = {"talking", "speaking", "living", "sentient", "animated", "walking", "dancing", "singing"}
_CAMERA_SEEING_VERBS = {"see", "hear", "watch", "follow", "cut", "fade", "pan", "zoom", "view", "glimpse"}
# ("we saw him earlier", "we cut to": the camera or the reader, even in the past tense)
_COLLECTIVE_NOUNS = {"group", "team", "gang", "band", "troupe", "squad", "crew", "pack", "flock", "herd"}
_ENTRANCE_VERBS = {"appear", "enter", "arrive", "emerge", "join", "materialize", "materialise"}
_SEX_WORDS = {"male": "m", "female": "f"}
_SPEECH_VERBS = {"say", "respond", "reply", "ask", "answer", "whisper", "shout", "yell", "speak", "think", "narrate",
                 "explain", "mutter", "exclaim", "call", "cry", "scream", "sing", "add", "continue", "grumble",
                 "roar", "bellow", "growl", "snap", "murmur", "mumble", "declare", "announce", "insist", "plead",
                 "beg", "warn", "demand", "tell", "sigh", "laugh", "giggle", "chuckle", "stammer", "bark", "hiss"}
_TEAM_WORDS = {"team", "crew", "squad", "gang", "band", "troupe"}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_GROUP_NOUNS = {"newlyweds": lexicon.NounInfo("person", "person"), "siblings": lexicon.NounInfo("person", "person"),
                "couple": lexicon.NounInfo("person", "person"), "pair": lexicon.NounInfo("person", "person"),
                "lovers": lexicon.NounInfo("person", "person")}


# telegraphic shot lists ("bright daylight - businesswoman walks to desk, sets down briefcase") parse far better
# read as sentences with articles: " - " ends a sentence and a bare character noun gets "the"
# what a vehicle does when it is a character of the shot ("A helicopter flies over the rainforest")
_VEHICLE_MOTION_VERBS = {"fly", "land", "drive", "race", "speed", "sail", "hover", "soar", "zoom", "cruise", "glide",
                         "crash", "swerve", "skid", "roar", "rumble", "chug", "taxi", "dive", "circle", "take",
                         "appear", "arrive", "pull", "stop", "approach", "depart", "pass", "park", "honk", "screech",
                         "roll", "accelerate", "brake", "barrel", "drift", "float", "smoke", "burn", "explode",
                         "overtake", "careen", "career", "hurtle", "weave", "tailgate", "chase", "follow", "rush",
                         "head", "turn", "veer", "slide", "crawl", "hang", "exit", "drop", "descend", "climb"}
_PHASE_VERBS = {"begin", "start", "continue", "keep"}  # "The Mazda begins to roll": the verb after it says


def _vehicle_moves(verb) -> bool:
    """A vehicle's verb is one of a vehicle that moves as a character ("the chopper just hangs there", "the chopper
    exits"), also after "begins to", "keeps" ("The Mazda begins to roll down the hill")."""
    if verb.lemma_.lower() in _PHASE_VERBS:
        verb = next((c for c in verb.children if c.dep_ == "xcomp" and c.pos_ == "VERB"), verb)
    return verb.lemma_.lower() in _VEHICLE_MOTION_VERBS


_ADJECTIVE_NOUNS = {"giant", "dwarf", "baby", "monster", "mammoth", "titan"}  # also adjectives: "giant ferns"
_HEADING_FUNCTION_WORDS = {"of", "the", "a", "an", "and", "in", "on", "at", "to", "for", "with", "from", "by"}
_NAME_AGE_WORDS = {"young", "little", "old", "older", "younger", "baby", "teenage", "adult", "elderly"}
_SHOT_BREAK = re.compile(r"\s+[-–—]{1,2}\s+")
# a storyboard line's field labels after the first ("... Effects: None", "... Transition: Fade out")
_FIELD_LABEL = re.compile(r"(?<=\S)\s+(?:Shot Type|Camera Movement|Camera Angle|Camera|Action|Content|Effects|"
                          r"Transition|Sound|Audio|Music|Dialogue|Duration|Notes?|Lighting|Props|Shot):\s*")
# "1.2 LS Ezra sitting ...", "CU Ezra's hand ...": a shot number and a shot-size code head a shot-list line
# "Panel 3 Doctor looms over ...", "Panel one: side view of ...", "Page 2, panel 4:": a comic script's panel heading
# (also abbreviated: "P6: Vivenne is on the podium", "P12 (Setting is ...)", "Pg. 2, Pnl 3:")
_PANEL_HEADING = re.compile(r"^\s*(?:(?:(?:page|panel|frame|screen)\s+(?:\d+|one|two|three|four|five|six|seven|eight|"
                            r"nine|ten)|(?:p|pg|pnl)\.?\s?\d{1,3}[a-z]?)[,:.]?\s*)+(?=\S)", re.I)
# a screenplay's forced heading (".THE TRUCK begins to pick up speed", "Scott watches as .THE TRUCK ...") and a list's
# dash glued to the line's first word ("-A figure turns ..."): markup, not part of the words
_FORCED_HEADING_DOT = re.compile(r"(?:(?<=\s)|^)\.(?=[A-Z]{2})")
_GLUED_BULLET = re.compile(r"^\s*[-–—•](?=[A-Z(“\"])")
_STYLE_WORDS = {"style", "look", "aesthetic", "animation", "render", "anime"}
_SHOT_CODE = re.compile(r"^\s*(?:\d+(?:\.\d+)*\s+)?(?:ECU|XCU|CU|MCU|MS|MLS|LS|ELS|XLS|WS|EWS|OTS|POV)\s+(?=\S)")
# nouns of a shot heading whose "of"/"on" object is what the shot shows ("Close-up of Gandalf")
_SHOT_NOUNS = {"shot", "closeup", "close-up", "view", "angle", "take"}
_FILMING_NOUNS = _SHOT_NOUNS | {"cut", "pan", "zoom"}  # "Shot of the kids ...", "a zoom on the twins": who is shown
# camera moves and shot kinds written in capitals in a shot list ("Tilt down Wide Shot on ...", "Reaction Shot –")
_CAMERA_WORDS = {"tilt", "pan", "zoom", "dolly", "track", "tracking", "reaction", "follow", "establishing", "crane",
                 "wide", "close", "low", "high", "aerial", "overhead", "handheld", "medium", "long", "mid", "full",
                 "extreme", "quick", "smash", "jump", "match", "hard"}
# "Upwards pan from dying persons point of view": the way a camera move goes
_DIRECTION_WORDS = {"upwards", "upward", "downwards", "downward", "sideways", "backwards", "forwards", "slow", "fast"}
_CAMERA_AFTER = {"shot", "up", "down", "in", "out", "left", "right", "angle", "cut"}  # ("Quick cut to Owl 2")
_WORD = re.compile(r"[A-Za-z][\w'-]*")
_BARE_NOUN_AFTER = {"to", "with", "at", "from", "by", "behind", "beside", "toward", "towards", "for", "near",
                    "past", "around", "between"}
_PAIR_WORDS = {"couple", "pair", "newlyweds", "twins"}
_NOUN_MODIFIERS = {"male", "female", "young", "old", "elderly", "little", "tall", "short", "small", "big", "new"}
_ARTICLE_BLOCKERS = {"a", "an", "the", "this", "that", "these", "those", "his", "her", "their", "its", "my",
                     "your", "our", "another", "one", "each", "every", "some", "no", "any", "two", "three", "both"}


# bracket markup of story tools: "[character1]" (a placeholder that names a character), "[Bob]" (a name in
# brackets, maybe glued to the next word: "[Kitty]at home"), "[NC]" (no character in this frame); "#" before a
# caption ("[Bob] at home #He reads")
_TAG = re.compile(r"\[([A-Za-z][\w' .-]{0,40})\]")
_DESCRIBED_BRACKET = re.compile(r"\[([^\[\]]{8,})\]")  # a bracketed description, not a tag
_NAME_PARTICLES = {"of", "the", "de", "van", "von", "da", "le", "la", "el", "del", "di", "du", "bin", "al"}


def _name_like(inner: str) -> bool:
    """"[Bob]", "[Mrs. Lincoln]", "[King of Birds]": a name; "[Megan speaking to Hairy.]" is a description."""
    words = inner.split()
    if inner.rstrip().endswith(".") and len(words) >= 3:
        return False
    return len(words) <= 3 or len(words) <= 5 and all(
        w[:1].isupper() or w.lower() in _NAME_PARTICLES or w[:1].isdigit() for w in words)
_PLACEHOLDER = re.compile(r"^(?:character|char|person|subject|actor|role|protagonist|hero|id)[ _-]?(\d{1,2})$", re.I)
_SOUND_CUE_WORDS = {"piano", "bass", "drums", "drum", "trumpet", "saxophone", "sax", "guitar", "violin", "cello",
                    "flute", "organ", "harp", "music", "sound", "sounds", "sfx", "song", "applause", "laughter",
                    "thunder", "silence", "bells", "bell", "static", "noise", "orchestra", "strings", "choir"}
_NO_CHARACTER_TAGS = {"nc", "no character", "none", "empty"}


def _sound_cue(inner: str) -> bool:
    """"[Piano continues playing]", "[Piano, bass & drums play]", "[Music swells]": a bracket that opens with what is
    heard."""
    return re.split(r"[\s,&]+", inner.strip().lower())[0] in _SOUND_CUE_WORDS
_CAPTION_MARK = re.compile(r"\s*#\s*")
_HTML_MARK = re.compile(r"</?[a-zA-Z][^<>]{0,200}>|\*\*|==")
# a bold or highlighted title before a sentence ("==**Taming Gollum**== Frodo takes pity"): a heading of its own
_TITLE_MARKS = re.compile(r"(?:\*\*|==)+(?=[^\s*=])[^*=\n]{1,80}?(?<=\S)((?:\*\*|==)+)(?=\s+[A-Z\"“])")
_FRAMED_PANEL_HEADING = re.compile(r"(?:\*\*)?\b(?:Panel|Scene|Shot|Page|Frame)\s*\d+[a-z]?\s*\([^()]{0,80}\)(?:\*\*)?")
_SOMEONE = {"someone", "somebody"}
_AT_SOMEONE_VERBS = {"look", "smile", "stare", "glance", "glare", "shout", "yell", "laugh", "point", "wave", "bark",
                     "grin", "wink", "scream", "snap", "growl", "frown", "gaze", "peer", "nod", "hiss", "swing",
                     "lunge", "shoot", "fire", "throw", "aim", "jump", "leap", "sneer", "scowl", "beam", "squint",
                     "pounce", "strike", "charge", "sniff", "blink", "gawk", "gape", "marvel", "giggle", "chuckle"}
# a verb and a preposition whose object is someone ("gives the book to", "dances with", "fights against")
_PERSON_PREP_VERBS = {
    "to": {"give", "hand", "pass", "show", "say", "talk", "speak", "whisper", "wave", "nod", "shout", "yell", "explain",
           "introduce", "bow", "listen", "reply", "apologize", "apologise", "propose", "offer", "lend", "toss", "throw",
           "confess", "lie", "mutter", "murmur", "sing", "read", "signal", "gesture", "wink", "kneel", "cling"},
    "with": {"talk", "speak", "fight", "argue", "dance", "chat", "flirt", "plead", "negotiate", "trade", "spar", "duel",
             "wrestle", "struggle", "quarrel", "bicker", "converse", "collide", "cuddle", "elope", "reunite"},
    "against": {"fight", "battle", "war", "duel", "compete", "rebel", "plot", "conspire", "testify", "struggle"},
    "upon": {"spy", "prey", "pounce", "smile", "gaze", "call"},
    "at": _AT_SOMEONE_VERBS,
    "from": {"steal", "grab", "snatch", "receive", "borrow", "inherit", "accept"},
}
_WAR_NOUNS = {"war", "attack", "revenge", "vengeance"}
_BESIDE_SOMEONE = {"at", "with", "beside", "behind", "towards", "toward"}  # "smiles at Ella": where a person stands
_LURKING_VERBS = {"creep", "crawl", "lurk", "slither", "emerge", "approach", "stalk", "prowl", "scuttle", "scurry", "growl",
                  "snarl", "stir", "watch", "spy", "peer", "follow", "hiss", "howl"}
_NAMED_AS_KNOWN = re.compile(r"[‘'\"“](?P<name>[A-Z][a-z]+)[’'\"”],?\s+as\s+(?:it|he|she|they)\s+(?:will|would|shall)\s+"
                             r"be\s+(?:known|called|named)")
# an outline's index after its prose: "#frodo #emyn_muil <!-- sid:qgiq1g5ca -->" (hashtags, then a comment)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_HASHTAG_RUN = re.compile(r"(?<!\S)#[A-Za-z_]\w*(?:\s+#[A-Za-z_]\w*)*(?=\s*(?:<!--|$))")
_LABELLED_BRACKET = re.compile(r"\*?\[[A-Z][A-Za-z ]{0,30}:\s*")
_LAYOUT_NOTE = re.compile(r"(?<=[A-Za-z]) ?\(([^()]{1,60})\)")
_CAST_NOTE_SEX = {"male", "female", "man", "woman", "boy", "girl"}
_LAYOUT_WORDS = {"left", "right", "center", "centre", "middle", "foreground", "background", "large", "small", "smaller",
                 "larger", "medium", "size", "close", "up", "top", "bottom", "corner", "edge", "frame", "behind"}
# a scene's cast in brackets ("[Sofia, The man]", "[John, John's mom]"), and its place ("[Living Room (Indoor)]")
_CAST_LIST = re.compile(r"\[([A-Z][\w' .-]{0,40}(?:\s*,\s*[A-Z][\w' .-]{0,40})+)\]")
_PLACE_BRACKET = re.compile(r"\[[^\[\]]{1,80}\((?:indoor|outdoor|interior|exterior|int|ext)\.?\)\s*\]", re.I)
# names the parser reads well, standing in for placeholder tags while parsing ("[character2]" -> "Sam")
STAND_IN_NAMES = ("Alex", "Sam", "Robin", "Jamie", "Chris", "Taylor", "Jordan", "Casey", "Riley")


def _replaced_at(replaced: dict[int, tuple[int, str, list[int]]], at: int) -> bool:
    """Whether index ``at`` of the prompt lies in a span already rewritten."""
    return any(start <= at < end for start, (end, _, _) in replaced.items())


def _markup(text: str) -> tuple[dict[int, tuple[int, str, list[int]]], dict[int, str]]:
    """Replacements for bracket and caption markup (original start -> (original end, new text, origin of each
    new character)), and the placeholder tags: original start of the tag -> the tag as written."""
    replaced: dict[int, tuple[int, str, list[int]]] = {}
    tags: dict[int, str] = {}
    for match in _LABELLED_BRACKET.finditer(text):
        # "*[Illustration: Gran-Gran (right) and Pepper (left) sitting ...]*": a picture's description, unwrapped
        close = text.find("]", match.end())
        replaced[match.start()] = (match.end(), "", [])
        if close >= 0:
            replaced[close] = (close + 1 + (text[close + 1: close + 2] == "*"), "", [])
    for match in _LAYOUT_NOTE.finditer(text):
        # "Pepper (center-left, medium size) floating ...": where the figure stands in the picture, said in passing
        items = [i.strip() for i in match.group(1).split(",")]
        if any(w in _LAYOUT_WORDS for w in re.findall(r"[a-z]+", match.group(1).lower())):
            replaced[match.start()] = (match.end(), "", [])
        elif re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?(?:\s*;.*)?", match.group(1).strip()) and \
                re.search(r"\b[a-z]+$", text[: match.start()].rstrip()):
            # "man (John; The Paladin)", "hot chick (Sara)": the character's name
            name = match.group(1).split(";")[0].strip()
            at = match.start(1) + match.group(1).index(name)
            replaced[match.start()] = (at, " named ", [at - 1] * 7)  # read as "a boy named Oren"
            replaced[at] = (at + len(name), name, list(range(at, at + len(name))))
            tags[at] = name  # a name, whatever the parser makes of it
            replaced[at + len(name)] = (match.end(), "", [])
        elif len(items) >= 2 and any(i.lower() in _CAST_NOTE_SEX for i in items) and \
                all(re.fullmatch(r"[A-Za-z-]+|\d{1,3}", i) for i in items):
            # "John (18, male, tall, athletic) is the star player": a cast note, read as an apposition
            sex = next(i for i in items if i.lower() in _CAST_NOTE_SEX)
            words = [i for i in items if i.isalpha() and i is not sex] + [sex]
            new = ", a " + " ".join(words) + ","
            replaced[match.start()] = (match.end(), new, [match.start()] * len(new))
    for match in _HTML_COMMENT.finditer(text):
        replaced[match.start()] = (match.end(), "", [])
    for match in _HASHTAG_RUN.finditer(text):
        tags_here = match.group().split()
        if len(tags_here) >= 2 or "_" in match.group() or match.group()[1:].islower():
            replaced[match.start()] = (match.end(), "", [])
    for match in _FRAMED_PANEL_HEADING.finditer(text):
        # "**Panel 2 (Mid, Snickers at Door)**": a panel's number and framing note, an index of the panel
        replaced[match.start()] = (match.end(), "", [])
    for match in _TITLE_MARKS.finditer(text):
        if _replaced_at(replaced, match.start()) or text[match.start(1) - 1] in ":;,.!?":
            continue  # ("**Art direction:** Medium shot of ...": a field's name, not a title)
        replaced[match.start(1)] = (match.end(1), ".", [match.start(1)])
    for match in _HTML_MARK.finditer(text):
        if _replaced_at(replaced, match.start()):
            continue
        # "<strong><span style=...>mouse</span></strong> is holding a book.<br>", "**Scene 1**:": formatting
        glued = match.start() > 0 and text[match.start() - 1].isalnum() and text[match.end(): match.end() + 1].isalnum()
        replaced[match.start()] = (match.end(), " " if glued else "", [match.start()] if glued else [])
    after_cast = -1
    for match in _CAST_LIST.finditer(text):
        # "[Sofia, The man][Sofia's house (Outdoor)] ...": who is in the scene, then where; read as a sentence,
        # "Sofia and The man are here.", each name a name whatever the parser makes of it
        parts = [(match.start(1) + m.start() + len(m.group()) - len(m.group().lstrip()), m.group().strip())
                 for m in re.finditer(r"[^,]+", match.group(1))]
        replaced[match.start()] = (parts[0][0], "", [])
        for n, (start, part) in enumerate(parts):
            words = part.split()
            if all(w[:1].isupper() for w in words) and words[0].lower() not in ("the", "a", "an"):
                replaced[start] = (start + len(part), part, list(range(start, start + len(part))))
                tags[start] = part
            elif len(words) >= 2 and words[-1][:1].isupper() and words[-1].isalpha():
                # "The puppy Max": the name is a name
                name_at = start + part.rindex(words[-1])
                replaced[start] = (name_at, part[: name_at - start], list(range(start, name_at)))
                replaced[name_at] = (start + len(part), words[-1], list(range(name_at, start + len(part))))
                tags[name_at] = words[-1]
            else:
                replaced[start] = (start + len(part), part, list(range(start, start + len(part))))
            if n + 1 < len(parts):
                replaced[start + len(part)] = (parts[n + 1][0], " and ", [start + len(part)] * 5)
        tail = " are here. " if len(parts) > 1 else " is here. "
        last_end = parts[-1][0] + len(parts[-1][1])
        replaced[last_end] = (match.end(), tail, [match.end() - 1] * len(tail))
        after_cast = match.end()
    for match in _PLACE_BRACKET.finditer(text):
        new = "" if match.start() in (after_cast, 0) else ". "
        replaced[match.start()] = (match.end(), new, [match.start()] * len(new))
    for match in _TAG.finditer(text):
        if match.start() in replaced:
            continue
        inner = match.group(1).strip()
        start, end = match.start(1), match.end(1)
        after = text[match.end(): match.end() + 1]
        if inner.lower() in _NO_CHARACTER_TAGS or not inner[:1].isupper() and " " in inner and \
                not re.search(r"\s[A-Z]", inner) or inner.lower().split()[-1] in _STYLE_WORDS or \
                _sound_cue(inner):
            # (but "[close-up of Kih's face]" is a panel that shows someone)
            # also "[Ukiyo-e style]", "[Pixar look]": how the picture is drawn, no one in it
            # "[NC]": no one is in this frame; "[shot cut]": a marker between shots; "[Piano continues playing]",
            # "[Music swells]": what is heard
            new = "" if match.start() == 0 or inner.lower() in _NO_CHARACTER_TAGS else ". "
            end_at = match.end()
            while not text[: match.start()].strip() and text[end_at: end_at + 1].isspace():
                end_at += 1  # at the start of the prompt, with the spaces after it
            replaced[match.start()] = (end_at, new, [match.start()] * len(new))
            continue
        placeholder = _PLACEHOLDER.match(inner)
        if placeholder:
            name = STAND_IN_NAMES[(int(placeholder.group(1)) - 1) % len(STAND_IN_NAMES)]
            tags[match.start()] = inner
            # the name's first and last characters come from the tag's: a mention spans the whole tag
            origin = [min(start + i, end - 2) for i in range(len(name) - 1)] + [end - 1]
        elif inner[:1].isupper() and _name_like(inner):
            name = inner  # "[Bob]": a name, whatever the parser makes of it
            tags[match.start()] = inner
            origin = list(range(start, end))
        else:
            continue
        new = name + (" " if after.isalnum() else "")
        replaced[match.start()] = (match.end(), new, origin + [end] * (len(new) - len(name)))
    for match in _DESCRIBED_BRACKET.finditer(text):
        if _replaced_at(replaced, match.start()) or len(match.group(1).split()) < 3:
            continue
        if _sound_cue(match.group(1)):
            replaced[match.start()] = (match.end(), "", [])  # "[Piano, bass & drums play]": what is heard
            continue
        # "[Megan on the ground, with Cueball off screen.]": a transcript's panel description, unwrapped
        replaced[match.start()] = (match.start() + 1, "", [])
        replaced[match.end() - 1] = (match.end(), "", [])
    for match in _CAPTION_MARK.finditer(text):
        if match.start() in replaced or "#" not in match.group() or _replaced_at(replaced, match.start() +
                                                                                  match.group().index("#")):
            continue
        before = text[: match.start()].rstrip()
        if not before or before[-1] in ".!?:;":
            new = " " if before else ""
        else:
            new = ". "
        replaced[match.start()] = (match.end(), new, [match.start()] * len(new))
    return replaced, tags


# a robot's or droid's designation: capitals and digits joined by a hyphen ("GREET-0", "PLAY-7", "R2-D2"); read
# through a stand-in name like a placeholder tag, and reported as written
_DESIGNATION = re.compile(r"(?<![\w-])(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+-[A-Z0-9]+(?![\w-])")
# screenplay capitals: "KING ARTHUS", "THE WITCH", "ROYAL MESSENGER" (two or more capitalised words, outside quotes)
_CAPS_RUN = re.compile(r"(?<![\w'-])[A-Z]{2,}(?:[ ]+[A-Z]{2,})+(?![\w'-])")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
# a comic panel's narration box, to the next box or panel heading: "Caption one: OH. GOD. Caption two: ..."
_NARRATION = re.compile(r"\bCaption(?:\s+(?:one|two|three|four|\d))?\s*:.*?(?=\bCaption\b|\bPanel\b|$)", re.S)
# capitalised words of scripts that are not names: headings, camera and sound notes, shouting
_CAPS_NOT_NAMES = set("""page panel scene shot cut fade int ext pov ecu mcu cont day night sfx vfx fx ceo fbi cia nasa
    usa nyc lol omg god off splash close wide angle end title card insert montage flashback dissolve smash match
    beat later continuous caption narrator note notes the and not yes no hey wow oh stop help now what why who how
    boom bang crash pow zap thud slam whoosh crack snap rumble""".split())
_CAPS_WORD = re.compile(r"(?<![\w'’-])[A-Z]{3,}(?![\w-])(?!\s+[A-Z]{2,}\b)")
_UNSEEN_VOICE = re.compile(r"\bCAPTION\s*(?:\([^()]{0,30}\))?\s*:|\b[A-Z]{2,}(?:\s[A-Z]{2,})*\s*\((?:OFF|O\.S\.|V\.O\.|OS|VO|O\.C\.)\)\s*:")


def _stand_in_names(text: str) -> list[str]:
    """The stand-in names a prompt does not use already (all of them if it uses every one)."""
    used = set(re.findall(r"[A-Z][a-z]+", text))
    return [n for n in STAND_IN_NAMES if n not in used] or list(STAND_IN_NAMES)


def _put_stand_in(replaced: dict, tags: dict, start: int, end: int, label: str, name: str) -> None:
    """Read ``text[start:end]`` as the stand-in ``name``; the character is reported as ``label``."""
    tags[start] = label
    origin = [min(start + i, end - 2) for i in range(len(name) - 1)] + [end - 1]
    replaced[start] = (end, name, origin)


def _designations(text: str, replaced: dict, tags: dict) -> None:
    names = _stand_in_names(text)
    given: dict[str, str] = {}
    for match in _DESIGNATION.finditer(text):
        if _replaced_at(replaced, match.start()):
            continue
        name = given.setdefault(match.group(), names[len(given) % len(names)])
        _put_stand_in(replaced, tags, *match.span(), match.group(), name)


_TITLED_WORD = re.compile(r"(?<![\w'’-])([A-Z][a-z]+)(?![\w-])(?!\s+[A-Z])")
_BEFORE_A_NAME_NOT = {"the", "a", "an", "this", "that", "his", "her", "their", "its", "my", "our", "your", "whose",
                      "another", "every", "each", "no", "any", "some", "one"}
_LAST_WORD = re.compile(r"([\w'’]+)(\W*)$")
# how far before a word the words before it are looked for (the whole prefix, for every word, is quadratic in the
# length of a long prompt)
_LOOK_BACK = 200


def _word_before(text: str, start: int) -> re.Match | None:
    """The word before ``text[start]`` (group 1) and what stands between (group 2), or None."""
    return _LAST_WORD.search(text, max(0, start - _LOOK_BACK), start)


def _titled_roles(text: str, replaced: dict, tags: dict) -> None:
    """"Guy is facing away from audience, looking at Man. Man is stood, pointing upwards.", "Thief and Criminal are
    running away": a singular role written with a capital and no article inside a sentence is the name the script
    gives that character, and so is any such role at a sentence's start in the same prompt. Not a kin word, a word
    of a longer name ("Black Hat Guy", "Doctor Smith"), a role the prompt also writes in lower case, or a plural."""
    found = list(_TITLED_WORD.finditer(text))
    lowered = set(re.findall(r"\b[a-z]+\b", text))

    def role(word: str) -> bool:
        info = lexicon.CHARACTER_NOUNS.get(word)
        return info is not None and info.kind == "person" and info.base != "group" and \
            word not in lexicon.RELATION_NOUNS and word not in lowered and \
            not (word.endswith("s") and word[:-1] in lexicon.CHARACTER_NOUNS) and word not in ("men", "women", "people")

    def inside(match) -> bool:  # after a lower-case word of its own sentence that is no article
        previous = _word_before(text, match.start())
        return previous is not None and previous.group(1).islower() and not re.search(r"[.!?:;{\[(\"“]",
                                                                                       previous.group(2)) and \
            previous.group(1) not in _BEFORE_A_NAME_NOT

    if not any(role(m.group(1).lower()) and inside(m) for m in found):
        return
    names = _stand_in_names(text)
    given: dict[str, str] = {}
    for match in found:
        word = match.group(1).lower()
        if not role(word) or _replaced_at(replaced, match.start()):
            continue
        previous = _word_before(text, match.start())
        if previous is not None and (
                previous.group(1).lower() in _BEFORE_A_NAME_NOT or previous.group(1)[:1].isupper() and
                not re.search(r"[.!?:;{\[(]", text[previous.end(1): match.start()])):
            continue
        name = given.setdefault(word, names[(len(given) + 8) % len(names)])
        _put_stand_in(replaced, tags, *match.span(1), match.group(1), name)


_NUMBERED = re.compile(r"(?<![\w-])([A-Za-z]+) ?(\d{1,2})(?![\w%/-])(?!:\S)(?!\.\d)"
                       r"(?! ?(?:s|sec|secs|seconds?|min|minutes?|years?|"
                       r"am|pm|ft|feet|m|km|miles?)\b)")


_NUMBERED_LABEL = re.compile(r"([A-Z][a-z]+) \d{1,2}")  # how a numbered character is reported: "Snowman 1"


def _numbered_characters(text: str, replaced: dict, tags: dict, known: set[str] = frozenset()) -> None:
    """"Snowman 1 is facing the camera, snowman 2 is facing towards snowman 1", "Guard 2 raises his hand", "KICKS
    Thug2 in the face": a character noun with a number is a name of its own (read as a stand-in name, reported as
    written, in one capitalisation whatever the prompt's). So is any capitalised word with a number that speaks
    ("Woodlouse 1: What is it?"), and that word and number again in the prompt or in a later one (``known``: the
    story's names, in lower case)."""
    names = _stand_in_names(text)
    given: dict[str, str] = {}
    speaking = {m.group(1).lower() + " " + m.group(2) for m in _NUMBERED.finditer(text)
                if text[m.end(): m.end() + 1] == ":" and m.group(1)[:1].isupper() and
                m.group(1).lower() not in _NOT_NUMBERED_SPEAKERS}
    for match in _NUMBERED.finditer(text):
        word = match.group(1).lower()
        info = lexicon.CHARACTER_NOUNS.get(word)
        if _replaced_at(replaced, match.start()):
            continue
        if (info is None or info.kind == "vehicle") and f"{word} {match.group(2)}" not in speaking | known:
            continue
        label = f"{word.capitalize()} {match.group(2)}"
        name = given.setdefault(label, names[(len(given) + 4) % len(names)])
        _put_stand_in(replaced, tags, *match.span(), label, name)


_CONJUNCTIONS = {"and", "or", "but", "nor", "yet", "so", "because", "although", "though", "unless", "whereas"}
# words with a number and a colon that head a script's line without being a speaker ("Scene 2:", "Step 3:")
_NOT_NUMBERED_SPEAKERS = set("""page panel scene shot frame chapter act part step day take episode season book camera
    cam room level round track line option version slide card table figure fig note tip rule verse chorus beat sequence
    segment stage phase week month year hour minute image picture prompt illustration spread plate screen clip cut
    board storyboard sketch set location sc ep pg p pnl no number lesson question answer example case test""".split())
# what only someone does (a place word as their subject is a given name: "Lane stands", "Brooke smiles")
_PERSON_ONLY_VERBS = {"stand", "look", "say", "smile", "walk", "turn", "nod", "hold", "watch", "reply", "laugh", "cry",
                      "shout", "sit", "grin", "stare", "glance", "shrug", "frown", "sigh", "whisper", "answer", "ask",
                      "start", "blurt", "hear", "see", "wave", "point", "grab", "jump", "kneel", "gasp", "yell"}
# what a prompt's closing fragment describes ("Calm, controlled atmosphere."): the picture, no one in it
_PICTURE_QUALITIES = {"atmosphere", "mood", "lighting", "light", "tone", "style", "feel", "vibe", "ambience",
                      "ambiance", "palette", "aesthetic", "look", "composition", "texture", "colors", "colours",
                      "background", "realism", "detail", "details", "focus", "contrast", "shadows", "quality"}
_SUBJECT_PRONOUNS = {"he", "she", "it", "they", "we", "i", "you", "who"}
_OBJECT_STARTS = {"the", "a", "an", "his", "her", "their", "its", "my", "your", "our", "him", "them", "it", "me", "us",
                  "this", "that", "these", "those", "one", "both"}


_IRREGULAR_PLURALS = {"men": "man", "women": "woman", "children": "child", "people": "person"}


def _caps_noun(lower: str) -> lexicon.NounInfo | None:
    """What character a word written in capitals names, in the singular or plural ("WORKER", "HIKERS", "MEN")."""
    single = _IRREGULAR_PLURALS.get(lower) or (lower[:-1] if lower.endswith("s") else "")
    return lexicon.CHARACTER_NOUNS.get(lower) or lexicon.CHARACTER_NOUNS.get(single)


_VIEWPOINT = re.compile(r"(?:'s|’s|‟s|'|’)\s+(?:[A-Za-z]+\s+)?(?:pov|perspective|point of view|eye[ -]level|eyeline|"
                        r"viewpoint)\b", re.IGNORECASE)


def _viewpoint_owner(token) -> bool:
    """"(child's eye level)", "from parents' fleeing POV", "the mouse's point of view": whose view the shot takes."""
    return _VIEWPOINT.match(token.doc.text, token.idx + len(token.text)) is not None


def _noun_and_loud_verb(noun: str, verb: str) -> bool:
    """"The WORKER THUDS": a character noun in capitals, then a screenplay's loud verb in capitals."""
    return _caps_noun(noun.lower()) is not None and noun.lower() not in _TITLE_WORDS and \
        verb.endswith(("S", "ED")) and _caps_noun(verb.lower()) is None


_NAME_LEADS = {"to", "and", "at", "with", "for", "from", "of", "by", "but", "or", "then", "as", "like", "than"}


def _caps_sound(text: str, start: int, lower: str) -> bool:
    """A screenplay's capitals that are no name: a noun after a noun of its phrase ("an alarm BUZZER sounds") or a
    participle after a plain word ("arcs of current CRACKING through the air")."""
    before = re.findall(r"[A-Za-z']+|[^\sA-Za-z']", text[max(0, start - _LOOK_BACK): start])
    if len(before) < 2 or not before[-1].isalpha() or not before[-1].islower() or before[-1] in _NAME_LEADS:
        return False
    return lower.endswith("ing") or before[-2].lower() in _ARTICLE_BLOCKERS and before[-1] not in _ARTICLE_BLOCKERS


_NEXT_WORD = re.compile(r"\s*([A-Za-z']+)")


def _caps_verb(text: str, start: int, end: int) -> bool:
    """A word in capitals where a verb stands, a comic script's emphasis ("She GRABS the arm", "and KICKS Thug2 in
    the face", "then THROWS him"): after a subject pronoun, or after "and"/"then" with a verb's ending and an object
    after it. Not "KAJI rests", "and JAMES walks" (the verb follows)."""
    before = re.findall(r"[A-Za-z']+|[.!?;:,]", text[max(0, start - _LOOK_BACK): start])
    if not before:
        return False
    previous, word = before[-1].lower(), text[start:end]
    if previous in _SUBJECT_PRONOUNS and (previous != "it" or word.endswith("S")):
        return True
    if before[-1].isupper() and _noun_and_loud_verb(before[-1], word):
        return True  # "The WORKER THUDS to the floor"
    after = _NEXT_WORD.match(text, end)
    return previous in ("and", "then", "but") and word.endswith(("S", "ED")) and after is not None and (
        after.group(1).lower() in _OBJECT_STARTS or after.group(1)[:1].isupper() and not after.group(1).isupper())


_OPENING_BRACKET = re.compile(r"\s*\(")


def _screenplay_capitals(text: str, replaced: dict, inserts: dict) -> None:
    """"KING ARTHUS, a majestic king" -> "King Arthus, a majestic king"; "THE WITCH" -> "the witch": a run of
    capitalised words in a prompt that is otherwise in mixed case is read in ordinary case (a character noun or
    function word in lower case, a name or title capitalised). Signs in quotes keep their capitals."""
    if sum(c.islower() for c in text) < sum(c.isupper() for c in text):
        return
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    for caption in _NARRATION.finditer(text):
        # "Caption: I first met Sara in Professor Oglesnort's classroom.": a narrator's words over the picture
        if not _replaced_at(replaced, caption.start()):
            replaced[caption.start()] = (caption.end(), " ", [caption.start()])
    for voice in _UNSEEN_VOICE.finditer(text):
        # "CAPTION (GIRL): Says here ...", "GUY (OFF): Yeah": a voice from outside the picture, no one in it
        if not _replaced_at(replaced, voice.start()):
            replaced[voice.start()] = (voice.end(), "", [])
    for word in _CAPS_WORD.finditer(text):
        # one capitalised word: "two young HIKERS", "CLOSE on the GUY", "GIRL: I guess." (a character noun, read
        # in lower case) and "ALEX's hands" (a name before its possessive)
        start, end = word.span()
        if any(s <= start < e for s, e in quoted) or _replaced_at(replaced, start):
            continue
        lower = word.group().lower()
        info = _caps_noun(lower)
        if _caps_verb(text, start, end) or _caps_sound(text, start, lower):
            replaced[start] = (end, lower, list(range(start, end)))  # "She GRABS the arm": a comic's loud verb
        elif info is not None and info.kind in ("person", "animal", "creature") and lower not in _TITLE_WORDS:
            replaced[start] = (end, lower, list(range(start, end)))
        elif text[end: end + 2] in ("'s", "’s") and lower not in _HEADING_FUNCTION_WORDS:
            replaced[start] = (end, lower.capitalize(), list(range(start, end)))
        elif lower not in _CAPS_NOT_NAMES and lower not in _HEADING_FUNCTION_WORDS and not (
                lower in lexicon.THING_NOUNS or lower in lexicon.LOCATION_NOUNS or lower in lexicon.NOT_CHARACTERS
                or lower in lexicon.PRONOUNS) and text[end: end + 1] not in ("!", ":") and \
                not _OPENING_BRACKET.match(text, end):
            # "the figure of EVE at the edge of an alley", "KAJI rests on her rug": a script brings a character
            # in with the name in capitals; read as a name, the parse decides whether it is one
            replaced[start] = (end, lower.capitalize(), list(range(start, end)))
    for run in _CAPS_RUN.finditer(text):
        if any(s <= run.start() < e for s, e in quoted):
            continue
        words = run.group().split()
        if len(words) == 2 and _noun_and_loud_verb(*words):  # "The WORKER THUDS to the jungle floor"
            for word in re.finditer(r"[A-Z]+", run.group()):
                start, end = run.start() + word.start(), run.start() + word.end()
                if not _replaced_at(replaced, start):
                    replaced[start] = (end, word.group().lower(), list(range(start, end)))
            continue
        last = words[-1].lower()
        # "ROYAL MESSENGER", "Four YOUNG GUYS": a description (all lower case); "KING ARTHUS": a name with its title
        noun = last if last in lexicon.CHARACTER_NOUNS else last[:-1] if last.endswith("s") and \
            last[:-1] in lexicon.CHARACTER_NOUNS else None
        described = noun is not None and noun not in _TITLE_WORDS
        before = re.findall(r"[A-Za-z']+", text[: run.start()])
        if described and noun == last and (not before or before[-1].lower() not in _ARTICLE_BLOCKERS) and \
                run.group().split()[0].lower() not in _ARTICLE_BLOCKERS:
            inserts[run.start()] = "a "  # capitals bring a character in: "shot of ROYAL MESSENGER" is someone new
        for word in re.finditer(r"[A-Z]+", run.group()):
            start, end = run.start() + word.start(), run.start() + word.end()
            if _replaced_at(replaced, start):
                continue
            lower = word.group().lower()
            thing = last in lexicon.THING_NOUNS or last in lexicon.LOCATION_NOUNS  # "The SCREEN DOOR slides open"
            plain = described or thing or lower in _HEADING_FUNCTION_WORDS or any(
                w.lower() in _CAPS_NOT_NAMES for w in run.group().split())  # "{RECALL INSERT - Prairie (day).}"
            new = lower if plain else lower.capitalize()
            replaced[start] = (end, new, list(range(start, end)))


def appositions_without_commas(doc, origin: list[int], names: set[str]) -> tuple[tuple[int, int, int | None], ...]:
    """"Oscar the solid grey Scottish Fold cat stares at the book", "Max the dog runs": a name, "the" and a
    character noun with only its modifiers between, written without the commas of an apposition (the parser then
    reads the name as a verb and the noun as its object). For each, in the original text: the name's start and
    end, and the noun's end unless punctuation follows it (where the two commas go). Not "Feed the cat" (no name),
    "Ivan the Terrible"."""
    spots: list[tuple[int, int, int | None]] = []
    for tok in doc[:-2]:
        if not re.fullmatch(r"[A-Z][a-z]+", tok.text) or doc[tok.i + 1].lower_ != "the" or tok.is_stop or not (
                tok.pos_ == "PROPN" or tok.ent_type_ == "PERSON" or tok.text in names) or \
                tok.whitespace_ != " " or tok.i > 0 and doc[tok.i - 1].lower_ in ("the", "a", "an"):
            continue
        for noun in doc[tok.i + 2: tok.i + 9]:
            info = lexicon.CHARACTER_NOUNS.get(noun.text)
            if info is not None and noun.text not in _TITLE_WORDS and noun.text not in lexicon.NOT_CHARACTERS:
                after = doc[noun.i + 1] if noun.i + 1 < len(doc) else None
                if after is not None and (after.text in lexicon.CHARACTER_NOUNS or after.text in lexicon.THING_NOUNS):
                    break  # "Tom the cat food ...": a noun of a longer phrase
                spots.append((origin[tok.idx], origin[tok.idx + len(tok.text)],
                              origin[noun.idx + len(noun.text)] if after is not None and not after.is_punct else None))
                break
            if noun.is_punct and noun.text != "-" or noun.pos_ in ("VERB", "AUX", "ADP", "DET", "PRON") or \
                    noun.text[:1].islower() and noun.pos_ not in ("ADJ", "NOUN", "NUM"):
                break
    return tuple(spots)


def verbs_read_as_nouns(doc, origin: list[int], parse) -> tuple[int, ...]:
    """"The man and Seth nod.", "The parents and Seth wave goodbye.": after subjects joined by "and", the parser
    often reads the verb as one more noun, and the sentence has no verb at all. For each such sentence, the place in
    the original text (the start of the verb) before which a "then" makes ``parse`` find the verb there; the
    sentence is then read again with it."""
    spots: list[int] = []
    for sent in doc.sents:
        if any(t.pos_ in ("VERB", "AUX") for t in sent) or not any(t.lower_ == "and" for t in sent):
            continue
        first_and = next(t.i for t in sent if t.lower_ == "and")
        for tok in doc[first_and + 2: sent.end]:
            before = doc[tok.i - 1]
            if not tok.is_alpha or not tok.text.islower() or tok.pos_ in ("DET", "ADP", "CCONJ", "PRON", "ADV") or \
                    before.pos_ not in ("NOUN", "PROPN") or before.whitespace_ != " ":
                continue
            text = sent.text
            at = tok.idx - sent.start_char
            again = parse(text[:at] + "then " + text[at:])
            verb = next((t for t in again if t.idx == at + len("then ")), None)
            if verb is not None and verb.dep_ == "ROOT" and any(c.dep_ == "nsubj" for c in verb.children):
                spots.append(origin[tok.idx])
                break
    return tuple(spots)


def readable_text(text: str) -> tuple[str, list[int]]:
    """``text`` rewritten for the parser, and for each of its characters the index it comes from in ``text``."""
    new, origin, _ = readable_markup(text)
    return new, origin


_CURLY_APOSTROPHE = re.compile(r"(?<=[A-Za-z])(?<!\b[YyCc])[’‟](?=[a-z])")  # (not "Y’know", "C’mon")
# "catís", "mouseís", "doesnít": a right quote saved in one code page and read in another (0x92 read as Mac Roman)
_MISREAD_APOSTROPHE = re.compile(r"(?<=[a-z])í(?=(?:s|t|ll|re|ve|d|m)\b)")
_CLOSE_UP = re.compile(r"\b(close|Close|CLOSE) (up|UP)(?= (?:of|on|shot)\b)")


def readable_markup(text: str, appositions: tuple[tuple[int, int, int | None], ...] = (),
                    known_names: set[str] = frozenset(),
                    verbs: tuple[int, ...] = ()) -> tuple[str, list[int], dict[int, str]]:
    """``text`` rewritten for the parser, and for each of its characters the index it comes from in ``text``;
    and the placeholder tags it replaced (start of the stand-in name in the new text -> tag).

    Bracket markup goes first: "[Bob]" -> "Bob", "[Kitty]at" -> "Kitty at", "[character1]" -> a stand-in
    name, "[NC]" and caption "#" marks dropped (a "#" between two clauses becomes ". ").

    A shot break " - " becomes ". "; a lower-case listed character noun (with a few plain modifiers before it)
    that starts a clause or follows a preposition, with no article, gets "the" ("male colleague approaches
    desk, hands documents to businesswoman" -> "the male colleague approaches desk, hands documents to the
    businesswoman"). Mentions found in the rewritten text are mapped back through the indices. ``appositions``:
    (start and end of a name, end of its noun or None) in the original text, from ``appositions_without_commas``:
    the name is read as a name and the apposition gets its commas. ``known_names``: the story's names in lower case.
    ``verbs``: where a verb the parser read as a noun starts (``verbs_read_as_nouns``): "then " goes before it.
    """
    inserts: dict[int, str] = {at: "then " for at in verbs}  # original index -> text inserted before it
    for _, name_end, noun_end in appositions:
        inserts[name_end] = ","
        if noun_end is not None:
            inserts[noun_end] = ","
    # original start -> (original end, replacement, origin of each replacement character)
    text = text.replace("«", " ").replace("»", " ")  # a game script's «stage directions»: read as plain text
    text = _CURLY_APOSTROPHE.sub("'", text)  # "B’utz", "Furiosa’s": the tagger knows the plain apostrophe
    text = _MISREAD_APOSTROPHE.sub("'", text)  # "A catís paw": a page's apostrophe read in the wrong code page
    text = _CLOSE_UP.sub(r"\1-\2", text)  # "Close up of Fern": a shot's noun, not "close" and a place "of Fern"
    replaced, tags = _markup(text) if any(c in text for c in "[#<*(") else ({}, {})
    for name_start, name_end, _ in appositions:
        if not _replaced_at(replaced, name_start):  # "Spark the cat": a name, whatever the parser makes of it
            replaced[name_start] = (name_end, text[name_start:name_end], list(range(name_start, name_end)))
            tags[name_start] = text[name_start:name_end]
    if "-" in text:
        _designations(text, replaced, tags)
    if any(c.isdigit() for c in text):
        _numbered_characters(text, replaced, tags, known_names)
    _screenplay_capitals(text, replaced, inserts)
    _titled_roles(text, replaced, tags)
    for match in _NAMED_AS_KNOWN.finditer(text):
        # "'Alley', as it will be known, stretches its front half": the name the story gives, whatever word it is
        if not _replaced_at(replaced, match.start("name")):
            at = match.start("name")
            replaced[at] = (match.end("name"), match.group("name"), list(range(at, match.end("name"))))
            tags[at] = match.group("name")
    for match in re.finditer(r"(?<=[a-z])\((?=[\w/ ]{1,20}\))", text):
        inserts[match.start()] = " "  # "the cat(1/2 screen)": a glued parenthesis is its own word
    for match in re.finditer(r"(?<=[A-Za-z]):(?=[(\"“])", text):
        inserts[match.end()] = " "  # "John:(The shot misses.)": a speaker's colon glued to the direction
    for match in re.finditer(r"(?<![\w.])\d{1,2}\.(?=[A-Z][a-z])", text):
        inserts[match.end()] = " "  # "5.Boy completely skips the park": a list's number glued to its first word
    for match in _FORCED_HEADING_DOT.finditer(text):
        if not _replaced_at(replaced, match.start()):
            replaced[match.start()] = (match.end(), "", [])  # ".THE MAZDA begins to roll": the dot is markup
    code = _SHOT_CODE.match(text) or _PANEL_HEADING.match(text) or _GLUED_BULLET.match(text)
    if code and not any(s < code.end() for s in replaced):
        replaced[0] = (code.end(), "", [])
    for match in _SHOT_BREAK.finditer(text):
        if match.start() > 0 and text[match.start() - 1] not in ".!?:;" and \
                not _replaced_at(replaced, match.start()):
            replaced[match.start()] = (match.end(), ". ", [match.start()] * 2)
    for match in _FIELD_LABEL.finditer(text):
        # "Action: Someone opens the door making the main character jump Effects: None": each field of a
        # storyboard's line is a sentence of its own, its label left out
        if ":" in text[: match.start()] and not _replaced_at(replaced, match.start()):  # (the first is a heading's)
            stop = "" if text[match.start() - 1] in ".!?:;" else "."
            replaced[match.start()] = (match.end(), stop + " ", [match.start()] * (len(stop) + 1))
    words = list(_WORD.finditer(text))
    for i, word in enumerate(words):
        lower = word.group().lower()
        listed = lower in lexicon.CHARACTER_NOUNS and lower not in lexicon.NOT_CHARACTERS or lower in _PAIR_WORDS
        if not word.group()[:1].islower() or not listed:
            continue
        following = words[i + 1].group().lower() if i + 1 < len(words) else ""
        if following and text[word.end(): words[i + 1].start()] == " " and following in \
                lexicon.THING_NOUNS | lexicon.LOCATION_NOUNS | set(lexicon.CHARACTER_NOUNS):
            continue  # a modifier of the next noun ("king bed")
        first = i
        while first > 0 and words[first - 1].group() in _NOUN_MODIFIERS and \
                text[words[first - 1].end(): words[first].start()] == " ":
            first -= 1
        between = text[words[first - 1].end(): words[first].start()] if first > 0 else text[: words[first].start()]
        previous = words[first - 1].group().lower() if first > 0 else ""
        clause_start = first == 0 or bool(re.search(r"[,;:.!?]|\s[-–—]{1,2}\s", between))
        if previous in _ARTICLE_BLOCKERS and not clause_start:
            continue
        if _replaced_at(replaced, words[first].start()):
            continue  # "look at snowman 1": a numbered character, a name
        if clause_start or (between.strip() == "" and previous in _BARE_NOUN_AFTER):
            inserts[words[first].start()] = inserts.get(words[first].start(), "") + "the "
    if not inserts and not replaced:
        return text, list(range(len(text) + 1)), {}
    placed: dict[int, str] = {}
    out: list[str] = []
    origin: list[int] = []
    i = 0
    while i < len(text):
        if i in replaced:
            end, new, where = replaced[i]
            if i in tags:
                placed[len(origin)] = tags[i]
            sentence_start = not out or bool(re.search(r"[.!?]\s*$", "".join(out[-3:])))
            if i in inserts:
                out.append(inserts[i].capitalize() if sentence_start else inserts[i])
                origin.extend([i] * len(inserts[i]))
                sentence_start = False
            out.append(new[:1].upper() + new[1:] if sentence_start and new.strip() else new)
            origin.extend(where)
            i = end
            continue
        sentence_start = not out or bool(re.search(r"[.!?]\s*$", "".join(out[-3:])))
        if i in inserts:
            out.append(inserts[i].capitalize() if sentence_start else inserts[i])
            origin.extend([i] * len(inserts[i]))
            sentence_start = False
        out.append(text[i].upper() if sentence_start and i not in inserts and i > 0 else text[i])
        origin.append(i)
        i += 1
    origin.append(len(text))
    return "".join(out), origin, placed


@dataclass
class Mention:
    """One reference to a character in a prompt."""

    start: int  # character span of the head word or name, used to align with labels and to enrich
    end: int
    surface: str  # the phrase that names the character here ("young man", "Nora", "he")
    form: str  # pronoun | name | definite | indefinite | group
    kind: str = "person"  # person | animal | creature | robot | vehicle
    base: str = "person"
    gender: str | None = None
    age: str | None = None
    heads: list[str] = field(default_factory=list)  # head lemmas ("fisherman", "man", "detective")
    names: list[str] = field(default_factory=list)
    attrs: list[str] = field(default_factory=list)
    pronoun: str = ""  # he | she | it | they (pronoun mentions)
    newcomer: bool = False  # "another", "a second", "a new"
    same: bool = False  # "the same"
    other: bool = False  # "the other"
    relation: str | None = None  # relation noun when a possessor is given ("partner", "son")
    possessor_pronoun: str | None = None  # "his" | "her" | "its" | "their"
    possessor_token: int | None = None  # where that pronoun stands ("her aunt and uncle": before both)
    possessor_span: tuple[int, int] | None = None  # that pronoun's place in the prompt
    possessor_index: int | None = None  # index of the possessor's mention in the prompt's list
    appearance: bool = True  # False for a possessor of a relation ("the girl's mother": the girl)
    weak: bool = False  # resolves to a known character only (a vehicle as a place, "it")
    group_size: int = 0
    action: str = ""
    token: int = 0  # index of the head token
    sentence: int = 0
    clause_subject: int | None = None  # token of the subject of the mention's clause (pronoun binding)
    it_antecedent: int | None = None  # for "it": token of the nearest preceding subject/object noun
    protagonist: bool = False
    introduced: bool = False  # an indefinite apposition introduces it here ("the sheriff, a heavyset man")
    relation_owner: int | None = None  # set by the resolver: global id of the relation's possessor
    ordinal: int = 0  # "the second kid": 2, picks a member of a group the story introduced
    counted: bool = False  # an ordinal with no article ("Second crow puts heart in jar"): the story's second crow
    entrance: bool = False  # subject of "appears", "enters", "arrives": someone may be new to the story
    collective: bool = False  # "the politicians", "a group of reporters": a group that acts as one character
    bare: bool = False  # written with no article ("photographer enters"): known by its noun, or new
    enumerated: int = 0  # "The second subject is a young woman ...": the prompt's second character, described
    owns: str = ""  # a possessive pronoun's noun ("his tail": "tail")
    owner_subject: int | None = None  # the clause subject of a possessive pronoun's object ("The mouse lowers their
    # sign": the mouse)
    possessed: str = ""  # what a noun's possessive owns ("the fairy's robe": "robe")
    place_owner: bool = False  # only named as whose place it is ("raced to Grandma's house", "into their cottage")
    # a subject pronoun's clause objects named after it ("She greets Anna", "she said, embracing Marina"): not her
    object_names: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # "presents himself as Keanu Tana": a name it goes by
    speaker: bool = False  # says the prompt's quoted words ("his mom said", "Jane: ...")
    possessor_quoted: bool = False  # its "my"/"our" stands in someone's words ('"Sure hope my parents come"')
    recalled: bool = False  # "the pigeons" where the story has pigeons one by one: those, if any
    vocative: bool = False  # called by name in someone's words ('"Amma, we have new neighbors!"')
    # "them" as a verb's object with no plural noun before it in its sentence ("Eddy lets them inside the home"):
    # people the story may not have shown yet
    unseen_them: bool = False
    # "you" of a story told in the second person, outside anyone's words ("As you reach the counter, ...")
    narrated: bool = False
    # the prompt has that "you" doing something ("you reach", "You kneel"; not "you can see", "if you asked")
    narration_cue: bool = False
    # "the others": the characters the story just had, but for those this prompt names
    others: bool = False

    def description(self) -> str:
        """Text the sentence encoder compares with known characters."""
        parts = [self.surface] + [a for a in self.attrs if a not in self.surface]
        if self.action:
            parts.append(self.action)
        return ", ".join(parts)


def noun_info(token) -> lexicon.NounInfo | None:
    lemma = token.lemma_.lower()
    text = token.text.lower()
    if lemma in lexicon.NOT_CHARACTERS or text in lexicon.NOT_CHARACTERS:
        if lemma in _ANIMATED_DEPICTIONS and any(c.lower_ in _ALIVE_MODIFIERS for c in token.lefts):
            return lexicon.NounInfo("robot", "robot")  # "a talking hologram" acts: an artificial character
        return None
    info = lexicon.CHARACTER_NOUNS.get(lemma) or lexicon.CHARACTER_NOUNS.get(text)
    if info is None and token.i > 0:
        # a person noun written in two words: "the wood cutter", "a bee keeper"
        before = token.doc[token.i - 1]
        if before.dep_ == "compound" and before.head.i == token.i and before.is_alpha:
            info = lexicon.CHARACTER_NOUNS.get(before.lower_ + lemma) or lexicon.CHARACTER_NOUNS.get(before.lower_ + text)
    return info


def _joined(tokens) -> str:
    """Text of tokens, hyphenated pieces kept together ("black-and-white")."""
    out = ""
    for i, tok in enumerate(tokens):
        out += tok.text
        if i + 1 < len(tokens):
            nxt = tokens[i + 1]
            out += tok.whitespace_ if nxt.i == tok.i + 1 else " "
    return out.strip()


def _phrase(token, include_of: bool = True) -> str:
    """A noun phrase without determiners or possessives ("charcoal trench coat", "sprig of lavender")."""
    left = [t for t in token.subtree if t.i <= token.i]
    in_left = {t.i for t in left}
    start = token.i
    for t in sorted(left, key=lambda t: -t.i):
        if t.i == start - 1 and t.dep_ not in ("det", "poss", "predet", "case", "punct", "cc", "prep") or (
                t.i == start - 1 and t.text == "-") or (
                t.i == start - 1 and t.text == "," and t.i - 1 in in_left and token.doc[t.i - 1].pos_ == "ADJ"):
            start = t.i  # also a list of adjectives: "dark, curly, shoulder-length hair"
        elif t.i < start - 1:
            break
    if start == token.i and token.i > 0 and _kin_before(token.doc[token.i - 1], token):
        start = token.i - 1  # "Baby fox wiggles": the kin word is the phrase's, though the parser hung it elsewhere
    toks = [t for t in token.doc[start: token.i + 1]
            if t.i == token.i or t.dep_ not in ("det", "poss", "predet", "case")]
    text = _joined(toks)
    if include_of:
        for child in token.children:
            if child.dep_ == "prep" and child.lower_ == "of":
                objs = [c for c in child.children if c.dep_ == "pobj"]
                if objs and objs[0].tag_ != "CD":
                    text += " of " + _phrase(objs[0], include_of=False)
    return text


def _of_the_frame(token) -> bool:
    """"An illustration of three llamas leaping out of a book", "Wide shot of two boys": what the prompt's own picture
    shows (the noun after "of" of the frame word the sentence is about), not "a photo of two dogs" on a wall."""
    frame = token.head.head
    return token.head.lower_ == "of" and frame.lemma_.lower() in _FRAME_SUBJECTS | _SHOT_NOUNS and \
        (frame.dep_ == "ROOT" or frame.i == frame.sent.start or frame.head.dep_ == "ROOT" and frame.dep_ == "appos")


def _photographed(picture) -> bool:
    """"clicking photos of a woman", "takes a picture of Anna": pictures taken in the scene (a camera verb just before),
    whose subject is there, in front of the camera."""
    return any(t.lemma_.lower() in _CAMERA_VERBS for t in picture.doc[max(0, picture.i - 3): picture.i])


def _in_a_depiction(token) -> bool:
    """"a statue of a warrior stands ...", "picks up a picture of Joe and Kate smiling into the camera. Another of
    Joe, Kate, and Matthew at Disneyland.": someone in a picture, not in the scene; not "A realistic photo of a
    tiger, ..." (the shot itself), nor "clicking photos of a woman" (she is there, in front of the camera)."""
    while token.dep_ == "conj" and token.head.pos_ in ("NOUN", "PROPN"):
        token = token.head  # ("Joe and Kate": each in the picture)
    if token.dep_ == "pobj" and token.head.lower_ == "of":
        depiction = token.head.head
    elif token.dep_ == "nsubj" and token.head.dep_ == "pcomp" and token.head.head.lower_ == "of":
        depiction = token.head.head.head  # "a picture of Joe smiling": Joe is the subject of "smiling"
    else:
        return False
    sent = depiction.sent
    if depiction.lower_ in ("another", "one") and depiction.i == sent.start and sent.start > 0:
        # "Another of Joe, Kate, and Matthew": another of the pictures the sentence before names
        return any(t.lemma_.lower() in lexicon.DEPICTION_NOUNS for t in token.doc[sent.start - 1].sent)
    if depiction.lemma_.lower() not in lexicon.DEPICTION_NOUNS:
        return False
    if _photographed(depiction):
        return False
    opens = depiction.i - sent.start <= 3 or depiction.left_edge.i == sent.start
    return not (opens and depiction.dep_ in ("ROOT", "nsubj", "npadvmod", "dep"))


def _camera_word(token) -> bool:
    """"Shot" and a camera word before another ("Follow Shot Toby's footsteps", "Tilt down", "Upwards pan"): the
    camera."""
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    return token.lower_ in ("shot", "camera", "zoomed", "screen") or token.lower_ == "switch" and nxt is not None and \
        nxt.lower_ in ("angles", "angle", "to", "shots") or token.lower_ in _CAMERA_WORDS and nxt is not None and (
        nxt.lower_ in _CAMERA_AFTER) or token.lower_ in _DIRECTION_WORDS and nxt is not None and \
        nxt.lower_ in _CAMERA_WORDS or token.lower_ in ("fade", "dissolve") and nxt is not None and \
        nxt.lower_ in ("in", "out", "from", "to", "up", "into") or token.lower_ in ("title", "titles", "credits") and \
        nxt is not None and nxt.lower_ in ("fade", "fades", "appear", "appears", "card", "roll", "rolls", "come")
    # "Fade from black", "Dissolve to the park", "Title fades from the black background": the film's editing


def _shot_size(token) -> bool:
    """"L/S of ...", "M/S of Ms Bryan", "C/U": a shot's size written as capitals around a slash, not a name."""
    doc, i = token.doc, token.i

    def letters(t) -> bool:
        return t.is_alpha and t.text.isupper() and len(t.text) <= 3

    if not letters(token):
        return False
    return i >= 2 and doc[i - 1].text == "/" and not doc[i - 2].whitespace_ and not doc[i - 1].whitespace_ and \
        letters(doc[i - 2]) or i + 2 < len(doc) and doc[i + 1].text == "/" and not token.whitespace_ and \
        not doc[i + 1].whitespace_ and letters(doc[i + 2])


def _letter_name(token) -> bool:
    """A capital letter standing for a person in a shot list or schedule ("X walks to the door", "shot of Y as X
    speaks"), where a person stands; not "A" or "I"."""
    if len(token.text) != 1 or not token.text.isupper() or token.text in ("A", "I") or not token.whitespace_ or \
            token.i > 0 and not token.doc[token.i - 1].whitespace_:
        return False  # ("V-shaped", "4K", "K-pop")
    subject = token.dep_ == "nsubj" and token.head.pos_ == "VERB" and token.head.i > token.i
    shown = token.dep_ == "pobj" and token.head.lower_ == "of" and token.head.head.lemma_.lower() in _SHOT_NOUNS
    return subject or shown


def _owned_noun(token) -> str:
    """The noun a possessive pronoun owns: "his tail high" ("tail", where the parser hangs "his" on "high")."""
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    if nxt is not None and nxt.pos_ == "NOUN":
        return nxt.lemma_.lower()
    return token.head.lemma_.lower()


# verbs whose "to"-object is where one goes ("go to Onigashima"), and verbs whose "at"-object is someone
_TRAVEL_VERBS = {"go", "travel", "fly", "sail", "journey", "head", "move", "transport", "drive", "ride", "march",
                 "relocate", "emigrate", "voyage", "trek", "bring", "take", "carry", "return", "arrive", "set", "lead",
                 "flee", "retreat", "escape", "sneak", "hurry"}
_WAY_VERBS = {"find", "make", "push", "wind", "elbow", "fight", "thread", "weave", "pick", "feel", "work", "edge"}
_REACH_VERBS = {"reach", "enter", "invade", "conquer", "besiege", "rule"}
# besides the place nouns, words whose "of"-object is a place: a ruler's title ("king of Wesnoth") and a few more
_PLACE_OF_HEADS = {"king", "queen", "prince", "princess", "emperor", "empress", "lord", "duke", "duchess", "ruler",
                   "sultan", "governor", "mayor", "count", "countess", "baron", "tsar", "czar", "pharaoh", "ford",
                   "empire", "lands", "shores", "capital"}


_OWNED_PLACES = (lexicon.LOCATION_NOUNS | {"yard", "backyard", "lawn", "driveway", "land", "property"}) - {
    "path", "trail", "lane", "road", "street", "stage", "ring", "seat", "platform", "station", "aisle"}
_GIVING_VERBS = {"give", "hand", "feed", "offer", "bring", "pass", "show", "throw", "toss", "serve", "carry", "take",
                 "drag", "lead"}
_NOT_PEOPLE_ENTS = ("GPE", "LOC", "FAC", "ORG", "NORP", "EVENT", "WORK_OF_ART", "PRODUCT", "LAW", "LANGUAGE", "DATE",
                    "TIME")
_ABSTRACT_ENDINGS = ("tion", "sion", "ment", "ness", "ing", "ity", "ance", "ence", "ure", "ogy", "ics", "ism")


def _fragment_subject(token, given_name: bool = False) -> bool:
    """A capitalised word opening a short caption, before the caption's verb, that the parser made a modifier or
    an adverb ("Spiderman swings through the skyline", "Friday find European ship", "Milo nearby with seaweed in
    his feathers"): the caption's subject, a name."""
    if token.i != token.sent.start or not token.text[:1].isupper() or not token.is_alpha or \
            token.text.isupper() and len(token.text) > 1:
        return False
    lower = token.lower_
    if lower in _COMMON_WORDS or lower in lexicon.CHARACTER_NOUNS or lower in lexicon.PRONOUNS or \
            lower in _TITLE_WORDS or lower in _ARTICLE_BLOCKERS or lower in _HEADING_FUNCTION_WORDS or \
            token.ent_type_ in ("GPE", "LOC", "FAC", "NORP") and not given_name or _camera_word(token):
        return False
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    if nxt is None or not nxt.text.islower():
        return False
    if token.ent_type_ == "ORG" and not given_name and not (nxt.tag_ == "VBG" and nxt.dep_ == "ROOT"):
        return False  # a company that acts; but "Leo watching TV", a shot of someone, whatever the NER says
    verb_after = nxt.tag_ in ("VBZ", "VBP", "VBD") and nxt.dep_ == "ROOT" and (token.dep_ in (
        "amod", "compound", "npadvmod", "advmod", "nmod") or token.dep_ == "nsubj" and token.pos_ in ("ADJ", "ADV"))
    # (also "Ilse looks up", the name tagged an adjective)
    after = token.doc[nxt.i + 1] if nxt.i + 1 < len(token.doc) else None
    verb_after = verb_after or (token.pos_ == "PROPN" and token.dep_ in ("compound", "npadvmod") or
                                token.pos_ == "ADJ" and token.dep_ == "amod" and given_name) and \
        nxt.dep_ == "ROOT" and (nxt.tag_ == "VBG" or nxt.tag_ == "NNS" and after is not None and
                                after.tag_ in ("PRP$", "DT", "RP", "RB", "IN")) and \
        (token.ent_type_ not in ("GPE", "LOC", "FAC", "NORP") or given_name)
    # ("Leo watching TV contentedly", "Tyler bumps his head": the caption's verb read as a plural noun)
    root_itself = token.dep_ == "ROOT" and token.tag_ in ("RB", "NNP") and nxt.lower_ in ("nearby", "alone", "too")
    # "Megan speaking to Hairy.", "Megan on the ground, with Cueball off screen.": a transcript's panel, a given name
    root_itself = root_itself or given_name and token.dep_ == "ROOT" and token.pos_ in ("NOUN", "PROPN") and (
        nxt.tag_ == "VBG" and nxt.dep_ == "acl" or nxt.dep_ == "prep" and nxt.lower_ in ("on", "at", "in", "with"))
    # "Snickers barks at the darkness": a capitalised "plural" whose verb says it is one
    agrees_as_one = token.tag_ == "NNS" and token.dep_ == "nsubj" and token.head.tag_ == "VBZ" and \
        token.head.i == token.i + 1
    return verb_after or root_itself or agrees_as_one


def _name_before_description(token) -> bool:
    """A capitalised name opening a shot fragment, then how it is seen ("Elira small in the foreground"), that the
    parser made a modifier of the next word."""
    head = token.head
    return token.dep_ == "compound" and token.i == token.sent.start and token.pos_ == "PROPN" and \
        token.ent_type_ not in ("GPE", "LOC", "FAC", "ORG") and head.dep_ == "ROOT" and head.i == token.i + 1 and \
        head.text.islower() and (head.pos_ == "ADJ" or head.pos_ == "NOUN" and head.tag_ == "NN" and
                                 head.lower_ not in _COMMON_WORDS and head.lower_ not in lexicon.CHARACTER_NOUNS)


# words before an animal's noun that make it one of its kind and not another ("Mother fox", "baby fox")
KIN_MODIFIERS = frozenset({"mother", "father", "baby", "mama", "papa", "mom", "dad", "daddy", "mommy", "mummy"})


def _kin_before(word, token) -> bool:
    """"Baby fox wiggles", "Mother fox breathing": the kin word just before the noun, both hung on the verb the
    parser read as a noun."""
    return word.i == token.i - 1 and word.dep_ == "compound" and token.dep_ == "compound" and \
        word.head.i == token.head.i and word.pos_ == "NOUN" and word.lower_ in KIN_MODIFIERS


def _misparsed_verb(token) -> bool:
    """"The old man kneels" parsed as the compound noun "man kneels": the noun is really the subject."""
    head = token.head
    if token.dep_ == "amod" and token.tag_ == "JJ" and head.pos_ in ("VERB", "AUX") and head.i == token.i + 1 \
            and token.lower_ in lexicon.CHARACTER_NOUNS:
        return True  # "The protagonist steps": the noun was tagged as an adjective
    if token.dep_ == "amod" and head.tag_ == "NN" and head.lower_.endswith("ing") and head.i == token.i + 1 and \
            token.lower_ in lexicon.CHARACTER_NOUNS:
        return True  # "the female opening a letter": the participle was read as the noun, the noun as its adjective
    if token.dep_ == "compound" and head.tag_ == "VBZ" and head.i == token.i + 1 and token.pos_ == "NOUN":
        return True  # "The taxi speeds off": the noun hung on its own verb
    if token.dep_ == "compound" and token.tag_ == "NN" and head.i == token.i + 1 and head.text.islower() and \
            head.lower_.endswith("ing") and head.tag_ in ("NN", "VBG") and head.dep_ in ("ROOT", "pobj", "dobj") and \
            not any(c.dep_ in ("det", "amod", "compound") and c.i < token.i - (c.dep_ == "det") for c in head.children) \
            and any(c.dep_ in ("prep", "advmod", "dobj", "prt", "npadvmod") for c in head.children) and \
            noun_info(token) is not None and noun_info(token).kind in ("person", "animal", "creature", "robot") and \
            head.lower_ not in lexicon.THING_NOUNS | lexicon.NOT_CHARACTERS:
        return True  # "Story opens to bird singing on tree branch": a shot list's bare noun and what it does
    if token.dep_ == "compound" and token.tag_ == "NN" and head.i == token.i + 1 and head.dep_ == "ROOT" and \
            head.text.islower() and head.lower_.endswith("ing") and head.tag_ in ("NN", "VBG") and \
            all(t.is_punct for t in head.doc[head.i + 1 : head.sent.end]) and \
            all(c.i == token.i or c.dep_ in ("compound", "amod", "det") and c.i < token.i for c in head.children) and \
            noun_info(token) is not None and noun_info(token).kind in ("animal", "creature", "robot") and \
            head.lower_ not in lexicon.THING_NOUNS | lexicon.NOT_CHARACTERS:
        return True  # "Mother fox breathing": a shot list's whole caption, an animal and what it does
    if token.dep_ == "compound" and token.tag_ == "NNS" and head.tag_ == "NN" and head.i == token.i + 1 and \
            noun_info(token) is not None and noun_info(head) is None and head.dep_ in ("ROOT", "pobj") and \
            head.lower_ not in lexicon.THING_NOUNS | lexicon.LOCATION_NOUNS | lexicon.NOT_CHARACTERS:
        return True  # "The dwarfs cheer joyfully", "a group of villagers recoil": a plural hung on its verb
    if token.dep_ == "compound" and token.tag_ == "NNS" and head.tag_ == "NN" and head.i == token.i + 1 and \
            noun_info(token) is not None and any(c.dep_ == "prt" for c in head.children):
        return True  # "Four cops storm in": a "noun" with a verb's particle is the plural's verb
    if token.dep_ == "compound" and head.tag_ == "NN" and head.i == token.i + 1 and noun_info(token) is not None \
            and head.dep_ in ("ROOT", "conj", "appos") and (head.lower_ in _VERBS_READ_AS_NOUNS or head.dep_ == "conj" and (
                head.head.pos_ == "PROPN" or noun_info(head.head) is not None) and head.i + 1 < len(head.doc) and
                head.doc[head.i + 1].pos_ == "ADP" and noun_info(head) is None and
                head.lower_ not in lexicon.THING_NOUNS | lexicon.LOCATION_NOUNS) and \
            not any(c.dep_ == "det" for c in head.children if c.i > token.i):
        return True  # "his amused pet dog ride in the back of the car", "Luna and the fox embark on a quest": the
        # verb in the plural read as a noun
    clause_as_object = head.dep_ == "pobj" and head.head.lower_ in ("as", "while", "when", "until", "before", "after")
    return (token.dep_ in ("compound", "amod") and head.tag_ == "NNS" and head.i == token.i + 1
            and (head.dep_ in ("ROOT", "nsubj", "nsubjpass", "conj", "advcl", "npadvmod") or clause_as_object or
                 head.dep_ == "appos" and token.dep_ == "compound" and token.tag_ == "NN" and
                 noun_info(token) is not None)  # "..., a lone police car races through"
            and (noun_info(head) is None or head.dep_ == "ROOT")
            and head.lower_ not in lexicon.NOT_CHARACTERS)


def _trim_misparse(phrase: str) -> str:
    """"yellow raincoat hauls nets" (a verb read as a noun) -> "yellow raincoat"; "in brown runs" -> "brown"."""
    parts = phrase.split()
    for i, part in enumerate(parts[:-1]):
        word, nxt = part.lower(), parts[i + 1].lower()
        known = attributes.CLOTHING_WORDS | attributes.BODY_WORDS | lexicon.HAIR_WORDS
        if (word in known or word in lexicon.COLORS) and nxt not in known and nxt.endswith("s") and not nxt.endswith("ss"):
            return " ".join(parts[: i + 1])
    return phrase


def _adjective_for_noun(token) -> bool:
    """"A barefoot street urchin in ...": a listed noun tagged as an adjective, not modifying a noun."""
    if token.lower_ not in lexicon.CHARACTER_NOUNS or token.lower_ in lexicon.AGE_WORDS:
        return False
    if token.dep_ == "amod" and token.head.pos_ == "NOUN" and token.head.i > token.i:
        return False  # "giant, glowing mushrooms": an adjective of the noun after it
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    return nxt is None or nxt.pos_ not in ("NOUN", "PROPN", "ADJ")


def _bare_plural_acts(tok, info: lexicon.NounInfo, det_word: str, owned: bool) -> bool:
    """"Children are working hard in their patches", "Kids play in the park": a plural of people written bare, the
    subject of what the scene shows them doing (not "Farmers catches up": one farmer; not "Kids don't ...")."""
    verb = tok.head
    return info.kind == "person" and tok.tag_ == "NNS" and not det_word and not owned and \
        verb.pos_ in ("VERB", "AUX") and verb.tag_ != "VBZ" and \
        not any(c.dep_ == "neg" or c.dep_ == "aux" and c.tag_ == "VBZ" for c in verb.children)


def _determiner(token):
    """The determiner of a noun phrase, also when the parser hung it elsewhere."""
    det = next((c for c in token.children if c.dep_ in ("det", "predet")), None)
    if det is not None:
        return det
    j = token.i - 1
    while j >= 0 and token.doc[j].tag_ in ("JJ", "NN", "NNP", "HYPH", "VBN", "VBG", "RB", "JJR", "JJS"):
        j -= 1
    if j >= 0 and token.doc[j].tag_ == "DT" and j < token.i - 1:
        return token.doc[j]
    return None


def _descriptive_one(token) -> bool:
    """"the one in red", "the one with the curly hair": a back-reference made only of attributes."""
    return token.lower_ == "one" and any(c.dep_ == "det" and c.lower_ in ("the", "that") for c in token.children) \
        and any(c.dep_ in ("prep", "acl", "relcl") and c.lower_ in ("in", "with", "wearing", "holding", "carrying")
                for c in token.rights)


def _before_a_thing(token) -> bool:
    """"both hands down", "both ends": a word that goes with the body part or thing after it."""
    if token.i + 1 >= len(token.doc):
        return False
    after = token.doc[token.i + 1]
    word = after.lower_
    if after.tag_.startswith("VB") and after.tag_ != "VBZ":
        return False  # "both looking at the screen"
    return word in attributes.BODY_WORDS or word.rstrip("s") in attributes.BODY_WORDS or \
        after.lemma_.lower() in lexicon.THING_NOUNS or word in ("ends", "sides", "feet", "knees", "shoulders")


def _singular(tok) -> str:
    """The token's lemma; for a capitalised plural the tagger kept whole ("the Chicks"), the listed noun."""
    lemma = tok.lemma_.lower()
    if lemma not in lexicon.CHARACTER_NOUNS and tok.lower_.endswith("s") and tok.lower_[:-1] in lexicon.CHARACTER_NOUNS:
        return tok.lower_[:-1]
    return lemma


_STYLE_SUFFIXES = {"inspired", "themed", "style", "styled", "shaped", "print", "patterned", "branded", "esque"}
_CONTROL_VERBS = {"urge", "ask", "tell", "order", "force", "invite", "encourage", "persuade", "beg", "allow",
                  "remind", "warn", "convince", "teach", "dare", "challenge", "command", "instruct", "pressure",
                  "signal", "motion", "beckon", "implore", "coax", "push", "help", "expect", "want", "need"}


def _urged_to(token) -> bool:
    """A capitalised proper noun that a verb of telling or making has as its object, with the "to" clause of
    what it is to do: a someone ("urges Gregory to take a slice", "tells Mara to wait")."""
    head = token.head
    return token.dep_ == "dobj" and token.pos_ == "PROPN" and token.text[:1].isupper() and token.text[1:].islower() \
        and head.lemma_.lower() in _CONTROL_VERBS and token.ent_type_ not in ("GPE", "LOC", "FAC") and any(
            c.dep_ == "xcomp" and c.i > token.i and any(a.dep_ == "aux" and a.lower_ == "to" for a in c.children)
            for c in head.children)


def _name_before_its_apposition(token) -> bool:
    """A capitalised proper noun opening its sentence, then a comma and an indefinite character noun that the
    parser made the subject of the verb the name hangs on: the apposition of a name the parse lost."""
    doc = token.doc
    if token.pos_ != "PROPN" or token.i != token.sent.start or not token.text[:1].isupper() or \
            token.dep_ not in ("advmod", "npadvmod", "dep", "intj", "nsubj") or token.i + 2 >= len(doc) or \
            doc[token.i + 1].text != ",":
        return False
    subject = next((c for c in token.head.children if c.dep_ == "nsubj" and c.i > token.i), None)
    return subject is not None and subject.left_edge.i == token.i + 2 and noun_info(subject) is not None and \
        noun_info(subject).kind == "person" and any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in subject.children)


def _listed_apart(head, appos) -> bool:
    """"they enlist the dog, then the cat": two definite nouns of other kinds or bases, one after the other, or
    nouns of a list, are characters the parser hung one on the other, not one character said twice."""
    if head.pos_ == "PROPN" and appos.pos_ == "PROPN" and appos.i == head.i + 2 and \
            head.doc[head.i + 1].text == "," and head.lower_ != appos.lower_:
        return True  # "Dog, Cat, and Pig watched from the fence": names listed
    a, b = noun_info(head), noun_info(appos)
    if a is None or b is None:
        return False
    if any(c.dep_ == "conj" and noun_info(c) is not None for t in (head, appos) for c in t.children):
        return True  # "farmer, wife, granddaughter, dog, cat, and mouse": a list
    if (a.kind, a.base) == (b.kind, b.base) or a.kind == "person" and b.kind == "person":
        return False
    return all(any(c.dep_ == "det" and c.lower_ == "the" for c in t.children) for t in (head, appos)) or \
        all(any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in t.children) for t in (head, appos))
    # ("he met a dog, a monkey, and a pheasant")


def _conjuncts(token) -> list:
    out = [token]
    for child in token.children:
        if child.dep_ == "conj" and child.pos_ in ("NOUN", "PROPN", "ADJ"):
            out.extend(_conjuncts(child))
    return out


class PromptAnalyzer:
    """Turns a spaCy ``Doc`` into mentions and scene context."""

    def __init__(self, doc, known_names: set[str], known_heads: set[str], classify_unknown=None,
                 origin: list[int] | None = None, tags: dict[int, str] | None = None, prompt: str | None = None):
        self.doc = doc
        self._quoted: frozenset[int] | None = None  # ``_quoted_tokens``, once worked out
        self.origin = origin  # for a rewritten text (``readable_text``): index in the prompt of each character
        self.prompt = prompt  # the prompt as written, where ``doc`` is a rewritten text
        self.known_names = {n.lower() for n in known_names}
        # placeholder tags ("[character1]"): the stand-in name's tokens, each a name, reported as the tag
        self.tags = {t.i: tags[t.idx] for t in doc if tags and t.idx in tags}
        self.bare_appositions: set[int] = set()  # prompt indices of names written "Pip the hedgehog" (no commas)
        self.known_roles: set[str] = set()  # unlisted role nouns of the story's people ("historian")
        self.name_asked = False  # the story's last prompt asked someone's name ('"What's your name, child?"')
        self.group_heads: set[str] = set()  # nouns of the members of the story's numbered groups ("soldier")
        self.animal_heads: set[str] = set()  # nouns of the story's animals ("fawn")
        self.individual_heads: set[str] = set()  # nouns (and kind words: "birds") of the story's single characters
        # heads that name a character only once the story has one: its vehicles, its talking holograms
        self.known_heads = known_heads
        self.classify_unknown = classify_unknown  # callable(lemma) -> NounInfo | None
        self.name_sex = None  # callable(word) -> "f" | "m" | None: the sex a given name suggests, if it is one
        self.word_pieces = None  # callable(word) -> how many pieces MiniLM's vocabulary cuts the word into
        self.person_tokens = {t.i for ent in doc.ents if ent.label_ == "PERSON" for t in ent}
        # a shot heading before a colon ("Match cut: ...", "Musical duel: ...") names no one
        colon = next((t.i for t in doc[:4] if t.text == ":"), None)
        # but a speaker label does: 'Evan responding: "..."', "Architect manifesting digitally: ..."
        self.speaker_tokens: set[int] = set()
        if colon is not None and colon >= 2 and doc[0].text[:1].isupper() and doc[0].is_alpha and \
                doc[0].pos_ in ("PROPN", "NOUN") and doc[0].lower_ not in lexicon.CHARACTER_NOUNS and \
                (doc[1].tag_ == "VBG" or doc[1].lower_.endswith("ing") and doc[1].is_lower or
                 doc[1].lemma_.lower() in _SPEECH_VERBS) and \
                all(t.pos_ in ("VERB", "ADV", "AUX") for t in doc[2:colon]):
            self.speaker_tokens = {0}
            colon = None
        elif colon == 1 and len(doc) > 2 and doc[2].text in ("(", '"', "“") and doc[0].text[:1].isupper() and \
                doc[0].is_alpha and doc[0].lower_ not in lexicon.CHARACTER_NOUNS and \
                doc[0].lower_ not in _SPEAKERLESS_HEADINGS:
            # a screenplay's dialogue line: 'John:(The shot misses.) Argh!', 'Jane: (smiling) Good job, John!'
            self.speaker_tokens = {0}
            colon = None
        elif colon == 1 and len(doc) > 3 and doc[0].text[:1].isupper() and doc[0].text[1:].islower() and \
                doc[0].is_alpha and doc[0].lower_ not in _SPEAKERLESS_HEADINGS | _CAPS_NOT_NAMES and \
                doc[0].pos_ == "PROPN" and doc[0].lower_ not in lexicon.CHARACTER_NOUNS and \
                any(t.lower_ in _SPEECH_PERSONS for t in doc[2:14]):
            # a comic's dialogue line opening the prompt: "Jen: Right? I mean, remember when ..." (what follows the
            # colon speaks as "I", "we" or to "you"; a heading does not)
            self.speaker_tokens = {0}
            colon = None
        if colon is None:
            # "Birth of First Child: A close-up of Mary ...": a title-case heading at the line start
            colon = next((t.i for t in doc[:8] if t.text == ":"), None)
            if colon is not None and not all(t.text[:1].isupper() or t.lower_ in _HEADING_FUNCTION_WORDS or
                                             t.is_punct for t in doc[:colon]):
                colon = None
        self.heading_tokens = set(range(colon)) if colon is not None else set()
        self.non_name_tokens = {t.i for ent in doc.ents if ent.label_ in _NON_NAME_ENTS for t in ent}
        # a comic panel's or script's later speaker: "Nicole waving, walking toward the crowd. Adam: Be right back!"
        self.line_speakers = {
            t.i for t in doc[1:-2] if doc[t.i + 1].text == ":" and doc[t.i - 1].text in (".", "!", "?", "…", "”") and
            t.is_alpha and t.text[:1].isupper() and t.text[1:].islower() and t.i not in self.heading_tokens and
            t.lower_ not in _SPEAKERLESS_HEADINGS | _CAPS_NOT_NAMES | _COMMON_WORDS | _HEADING_FUNCTION_WORDS and
            t.lower_ not in lexicon.CHARACTER_NOUNS and t.lower_ not in lexicon.LOCATION_NOUNS and
            t.lower_ not in lexicon.THING_NOUNS and not _camera_word(t)}

    # -- token classification ------------------------------------------------------------------------
    def character_info(self, token) -> lexicon.NounInfo | None:
        if token.i in self.heading_tokens or _viewpoint_owner(token):
            return None
        if token.lower_ in _SOMEONE and token.dep_ in ("nsubj", "nsubjpass") and \
                token.head.dep_ in ("ROOT", "conj") and not any(c.lower_ == "else" for c in token.children):
            # "Someone was on the path up ahead", "someone in the background plucks at a leaf": someone there,
            # not yet known (but not "surprised someone came", "someone else shifts their bag")
            return lexicon.NounInfo("person", "person")
        if token.lower_ == "something" and token.dep_ == "nsubj" and token.head.lemma_.lower() in _LURKING_VERBS and \
                not any(c.dep_ == "mark" and c.lower_ in ("if", "though") for c in token.head.children):
            # "Something creeps out of the darkness": a creature not yet seen (later "the monster"); not "as if
            # something is following her"
            return lexicon.NounInfo("creature", "creature")
        if token.lower_ in ("spirit", "spirits", "soul", "souls") and any(
                c.dep_ == "poss" and c.tag_ == "PRP$" for c in token.children):
            return None  # "working hard ... on his spirit": someone's inner self, not a spirit of tales
        if token.lower_ in _ADJECTIVE_NOUNS and token.i + 2 < len(token.doc) and token.doc[token.i + 1].text == "," \
                and token.doc[token.i + 2].dep_ == "amod" and token.doc[token.i + 2].head.i > token.i + 2:
            return None  # "giant, glowing mushrooms": an adjective in a list before the noun
        if _descriptive_one(token):
            return lexicon.NounInfo("person", "person")
        if token.lemma_.lower() in _ANIMATED_DEPICTIONS and token.lemma_.lower() in self.known_heads:
            return lexicon.NounInfo("robot", "robot")  # "the hologram" once the story has a talking one
        if token.pos_ not in ("NOUN", "PROPN") and not (token.pos_ == "ADJ" and (
                token.dep_ in ("nsubj", "dobj") or _misparsed_verb(token) or _adjective_for_noun(token))) and not (
                token.pos_ == "INTJ" and token.dep_ in ("nsubj", "nsubjpass") and token.lower_ in ("boy", "man")):
            return None  # ("Boy completely skips the park": the subject, not the exclamation "Boy!")
        info = noun_info(token)
        if info is None and token.pos_ == "NOUN" and token.lemma_.lower() in self.known_roles and \
                _determiner(token) is not None and _determiner(token).lower_ in ("the", "this", "that"):
            return lexicon.NounInfo("person", "person")  # "the historian" the story introduced
        if info is None and any(c.dep_ == "compound" and _misparsed_verb(c) for c in token.children):
            return None  # "Three young chicks approach": the verb the parser took for the chicks' noun
        if info is None and self._unlisted_candidate(token):
            as_object = token.dep_ in ("dobj", "pobj") or token.dep_ == "conj" and token.head.dep_ == "dobj"
            info = self.classify_unknown(token.lemma_.lower(), self._compound_phrase(token), as_object,
                                         self._person_evidence(token))
        return info

    @staticmethod
    def _person_evidence(token) -> str | None:
        """What the sentence says of an unlisted noun that only fits a person: "dressed" when it is described by
        clothing or an age ("a glassblower with a leather apron", "in his late 30s"), "acts" when it does or
        undergoes what people do ("the damsel" kidnapped, "the official shows him a card")."""
        for child in token.rights:
            if child.dep_ == "prep" and child.lower_ in ("with", "in", "wearing") or child.lemma_ in ("wear", "dress"):
                for obj in child.subtree:
                    if obj.lemma_.lower() in attributes.CLOTHING_WORDS or obj.lower_ in lexicon.HAIR_WORDS or \
                            attributes.is_age_phrase(obj.text) and obj.dep_ == "pobj":
                        return "dressed"
        verb = token.head
        if token.dep_ in ("nsubj", "nsubjpass") and (verb.lemma_.lower() in lexicon.PERSON_VERBS or any(
                c.dep_ in ("xcomp", "advcl") and c.lemma_.lower() in lexicon.PERSON_VERBS for c in verb.children)):
            return "acts"  # also "the dealer is seen dealing cards"
        if token.dep_ == "nsubj" and any(c.dep_ == "dative" for c in verb.children):
            return "acts"  # gives someone something
        if token.dep_ in ("dobj", "conj") and verb.lemma_.lower() in lexicon.PERSON_OBJECT_VERBS:
            return "acts"
        return None

    def _unlisted_candidate(self, token) -> bool:
        return token.pos_ == "NOUN" and self.classify_unknown is not None and token.tag_ == "NN" \
            and self._classifiable_role(token)

    @staticmethod
    def _compound_phrase(token) -> str:
        compounds = [c.text.lower() for c in token.lefts if c.dep_ == "compound" and c.pos_ == "NOUN"]
        return " ".join(compounds + [token.lemma_.lower()])

    def _classifiable_role(self, token) -> bool:
        """An unlisted noun is asked about where a character would stand: acting, acted on, or set beside one."""
        if token.dep_ in ("nsubj", "nsubjpass", "appos", "dobj"):
            return True
        if token.dep_ == "attr" and token.head.lemma_ == "be" and any(
                c.dep_ == "nsubj" and c.i in self.tags for c in token.head.children):
            return True  # "[character1] is a modern-day historian": what the placeholder is
        if _misparsed_verb(token):
            # "a fishmonger waves to him": only a noun that starts its clause, not "round tortoiseshell glasses"
            return not any(t.dep_ == "amod" for t in token.head.lefts) and token.head.dep_ in ("ROOT", "conj")
        if token.dep_ == "conj":
            return token.head.dep_ in ("nsubj", "nsubjpass", "dobj", "appos")
        if token.dep_ == "pobj":
            return token.head.lower_ in ("with", "beside", "behind", "toward", "towards", "to", "at", "for")
        return False

    def _lower_case_in_prompt(self, token) -> bool:
        """Written in lower case where the prompt has it: a shot break's rewrite capitalised it ("Max — smile
        frozen" is read as "Max. Smile frozen")."""
        if self.prompt is None or self.origin is None or not token.text[:1].isupper():
            return False
        where = self.origin[token.idx] if token.idx < len(self.origin) else None
        return where is not None and where < len(self.prompt) and self.prompt[where].islower()

    def _capitals_in_prompt(self, token) -> bool:
        """Written in capitals where the prompt has it ("TYLER skillfully maneuvers"): how a script brings a
        character in, whatever place the small NER model knows by that name."""
        if self.prompt is None or self.origin is None or len(token.text) < 2:
            return False
        where = [self.origin[i] for i in range(token.idx, token.idx + len(token.text)) if i < len(self.origin)]
        return all(w is not None and w < len(self.prompt) and self.prompt[w].isupper() for w in where) and \
            bool(where)

    def _place_by_position(self, token) -> bool:
        """A proper noun the story does not know, standing where only a place stands: where someone goes ("go to
        Onigashima (Demon Island)", "bring the plans to Alderaan"), where something happens ("the breaking at Amon
        Hen", "across the plains of Gorgoroth", "Battle of Bywater"), whatever the small NER model calls it."""
        if token.pos_ != "PROPN" or token.dep_ not in ("pobj", "compound", "dobj") or token.lower_ in self.known_names:
            return False  # ("returns to Kenobi": the story's names, each word of them too)
        if token.dep_ == "dobj":  # "reached Weldyn first": where someone gets to
            return token.head.lemma_.lower() in _REACH_VERBS and not any(c.dep_ == "det" for c in token.children)
        if token.dep_ == "compound":
            if token.head.pos_ != "PROPN" or token.head.dep_ != "pobj" or token.head.i != token.i + 1:
                return False
            token = token.head
        if any(c.dep_ == "appos" and c.lemma_.lower() in lexicon.LOCATION_NOUNS for c in token.children):
            return True  # "Onigashima (Demon Island)"
        prep, verb = token.head, token.head.head
        word = prep.lower_
        if word == "of":
            # "across the plains of Gorgoroth", "Battle of Bywater", "the ford of Abez"; a ruler's land written
            # without an article ("Garard II, king of Wesnoth", not "king of the Elves")
            head = verb.lemma_.lower()
            return head in lexicon.LOCATION_NOUNS or verb.lower_ in ("battle", "siege", "war") or \
                head in _PLACE_OF_HEADS and not any(c.dep_ == "det" for c in token.children)
        if word in ("to", "toward", "towards", "into"):
            if verb.lower_ in ("back", "home", "away", "off", "out", "over") and verb.dep_ == "advmod":
                verb = verb.head  # "led his army back to Weldyn"
            return verb.pos_ == "VERB" and verb.lemma_.lower() in _TRAVEL_VERBS
        if word in ("at", "in", "across", "through", "near", "inside", "outside", "within", "beyond"):
            return not (word == "at" and verb.lemma_.lower() in _AT_SOMEONE_VERBS)
        return False

    def _given_name(self, token) -> bool:
        """A word the NER model calls a place or a company that is also a given name with a clear sex ("Nadia",
        "Tyler", "Leo"); "London", "Tokyo", "Jordan" are not."""
        return token.ent_type_ in ("GPE", "LOC", "FAC", "ORG", "NORP") and token.text[:1].isupper() and \
            token.text[1:].islower() and token.lower_ not in lexicon.LOCATION_NOUNS and self._sexed_name(token)

    def _whole_line(self, token) -> bool:
        """"Owl: Hoo.", "Guard: Halt!": one word a speaker's label gives as the whole line is what is said, a cry or
        a call, not someone there (a name the story knows stays a name)."""
        doc, i = token.doc, token.i
        if not (2 <= i < len(doc) - 1 and doc[i - 1].text == ":" and doc[i + 1].text in (".", "!", "?", "…")) or \
                token.lower_ in self.known_names:
            return False
        label = i - 3 if doc[i - 2].like_num and i >= 3 else i - 2  # ("Owl 2: Hoo.")
        return doc[label].text[:1].isupper() and doc[label].is_alpha and \
            (label == 0 or doc[label - 1].is_punct or doc[label - 1].text[:1].isupper())

    def _sexed_name(self, token) -> bool:
        """MiniLM puts the word clearly among women's or men's given names."""
        return self.name_sex is not None and self.name_sex(token.text) is not None

    @staticmethod
    def _said_alone(token) -> bool:
        """The word opens a quotation and the quotation holds nothing else but punctuation and one more word."""
        doc, i = token.doc, token.i
        if i == 0 or doc[i - 1].text not in ('"', "“"):
            return False
        rest = []
        for t in doc[i + 1: i + 5]:
            if t.text in ('"', "”"):
                return len(rest) <= 1
            if not t.is_punct:
                rest.append(t)
        return False

    def is_name(self, token) -> bool:
        if token.i in self.tags or token.i in self.speaker_tokens:
            return True
        if _shot_size(token):
            return False
        if token.lower_ in _SPEAKERLESS_HEADINGS and token.i + 1 < len(token.doc) and \
                token.doc[token.i + 1].text == ":":
            return False  # "Sound FX: SLAM!", "SFX: HaHa!": a field's label, no one speaking
        if _viewpoint_owner(token):
            return False  # "From Alley's POV, we see a grey cat": the one who looks is out of the picture
        if self._said_alone(token):
            return False  # '"YAY!" the children shout', '"Boo!"': a cry, what is said
        if token.i in self.line_speakers and (
                token.ent_type_ == "PERSON" or token.lower_ in self.known_names or self._sexed_name(token) or
                token.pos_ == "PROPN" and not token.lower_.endswith(_ABSTRACT_ENDINGS)):
            return True  # a given name ("Adam:", "Roald:"), not a field's heading ("Narration:", "Animation:")
        if self._place_by_position(token):
            return False
        if self._whole_line(token):
            return False
        if token.is_sent_start and token.i + 1 < len(token.doc) and token.doc[token.i + 1].text == "," and \
                len(token) > 5 and token.lower_.endswith(("less", "ful", "ous")) and token.lower_ not in self.known_names:
            return False  # "Powerless, the boy and his band wring their hands": how they are, opening the sentence
        if token.lower_ in _ADVERB_WORDS or token.lower_ in _CONJUNCTIONS:
            return False  # "Down fell the cheese", "Later, ...": an adverb opening the sentence; "Or judge us?"
        if self._lower_case_in_prompt(token):
            return False
        if token.lower_ in _COMMON_WORDS and token.lower_ not in self.known_names and (
                token.is_sent_start or token.i > 0 and token.doc[token.i - 1].text in _FRAGMENT_MARKS):
            return False  # "Crowd blurred between them.", "Foreground shows ...": capitalised as a fragment's start
        if token.i in self.heading_tokens:
            return False
        if _camera_word(token):
            return False  # "Tilt down Wide Shot on children ...", "Reaction Shot – Ezra looks up": the camera
        if token.lower_ in ("side", "half", "corner") and token.i > 0 and \
                token.doc[token.i - 1].lower_ in ("left", "right", "top", "bottom", "upper", "lower"):
            return False  # "Left Side (Steve): ...": a split screen's half, headed by who is in it
        if _name_before_its_apposition(token):
            return True  # "Lily, a 4-year-old girl with messy hair wears ...": the parser hung the name on the verb
        if token.pos_ == "NOUN" and token.text[:1].isupper() and token.lower_ in self.known_names and \
                token.lower_ not in lexicon.CHARACTER_NOUNS:
            return True  # a name the story already knows, whatever the tagger made of it ("Florence hands ...")
        if token.dep_ == "attr" and token.head.lemma_ == "be" and token.pos_ in ("PROPN", "NOUN") and \
                token.text[:1].isupper() and token.text[1:].islower() and not token.is_sent_start and \
                not any(c.dep_ in ("det", "poss", "compound", "amod") for c in token.children) and \
                any(c.dep_ == "nsubj" and c.lower_ == "this" for c in token.head.children) and \
                token.lower_ not in lexicon.LOCATION_NOUNS | lexicon.CHARACTER_NOUNS.keys() and \
                token.ent_type_ not in ("GPE", "LOC", "FAC", "DATE", "TIME", "EVENT") and (
                    token.ent_type_ != "ORG" or any(t.lower_ in ("he", "she", "his", "her", "him")
                                                    for t in token.doc[token.i + 1: token.sent.end])):
            return True  # "This is Trench, so named for the coat he always wears": how a script presents its hero
            # (a company the tagger knows only when "he" or "she" follows)
        if token.pos_ == "NOUN" and token.text[:1].isupper() and token.text[1:].islower() and \
                token.lower_ not in lexicon.CHARACTER_NOUNS and token.lower_ not in _COMMON_WORDS and any(
                    c.dep_ == "appos" and noun_info(c) is not None and noun_info(c).kind == "person" and
                    any(d.dep_ == "det" for d in c.children) for c in token.children):
            return True  # "Beatrix, the soccer mom, is wearing ...": the tagger's noun is a name set beside its role
        if self._name_read_as_a_word(token):
            return True
        if token.pos_ != "PROPN" or token.dep_ == "compound" and token.head.pos_ == "PROPN":
            return False
        if token.lower_ in self.known_names or any(p.lower() in self.known_names for p in token.text.split()):
            return True
        if token.lower_ in lexicon.CHARACTER_NOUNS and self._title_case_name(token):
            return True  # "The White Witch, with her icy crown, stands ...": a title-case epithet is her name
        if token.lower_ in lexicon.CHARACTER_NOUNS and token.i > 0 and token.doc[token.i - 1].lower_ == "the" and \
                token.text[1:].islower() and token.text[:1].isupper() and token.i not in self.heading_tokens and \
                (token.i + 1 == len(token.doc) or not token.doc[token.i + 1].text[:1].isupper()) and \
                not self._lower_case_in_prompt(token) and not self._capitals_in_prompt(token) and \
                lexicon.CHARACTER_NOUNS[token.lower_].kind == "person" and token.lower_ not in _TITLE_WORDS:
            return True  # "The Veteran drops down a steep wave", "Cut to The Stylist": capitals make it a name
        if token.lower_ in lexicon.LOCATION_NOUNS and not token.is_sent_start and token.text[1:].islower() and \
                token.dep_ == "nsubj" and token.head.lemma_.lower() in _PERSON_ONLY_VERBS and \
                not any(c.dep_ in ("det", "poss", "compound", "amod") for c in token.children):
            return True  # "... and Lane stands to the right, holding up her left fist": a place word as a given name
        if token.lower_ in lexicon.CHARACTER_NOUNS or token.lower_ in lexicon.LOCATION_NOUNS:
            return False
        if any(c.dep_ == "det" and c.lower_ == "the" for c in token.children) and token.text[:1].isupper() and any(
                c.dep_ == "appos" and noun_info(c) is not None and noun_info(c).kind in ("animal", "creature", "robot")
                for c in token.children):
            return True  # "The Alpha, a majestic wolf": a title the story goes on to use as a name
        if any(c.dep_ == "det" for c in token.children) and not self._stage_name(token) and \
                not self._epithet_name(token):
            return False
        if token.dep_ == "conj" and token.head.pos_ == "PROPN" and token.head.i < token.i and (
                token.head.i in self.person_tokens or self.is_name(token.head)):
            return True
        if token.is_sent_start and token.lower_ not in self.known_names and any(
                c.dep_ in ("appos", "conj") and c.lemma_.lower() in _PICTURE_QUALITIES for c in token.children):
            return False  # "Calm, controlled atmosphere.", "Warm, golden lighting.": how the picture feels
        if token.i in self.person_tokens or self._epithet_name(token):
            return True
        if _urged_to(token):
            return True  # "Jacob ... urges Gregory to take a slice": someone told to do something, whatever NER says
        if token.i in self.non_name_tokens and not any(
                c.dep_ == "appos" and noun_info(c) for c in token.children) \
                and not self._acts_like_a_name(token) and not (
                token.dep_ == "appos" and token.head.i < token.i and token.head.tag_ == "NN" and (
                    noun_info(token.head) is not None or self._classified_person(token.head))):
            # ("His dark cat, Spark, is watching", "The other arguer, Addison, ...": a name set beside its noun)
            return False
        if self._acts_like_a_name(token):
            return True  # "Sydney points up the ridge": a capitalised subject is a name whatever NER says
        has_person_appos = any(c.dep_ == "appos" and (noun_info(c) or c.pos_ == "PROPN") for c in token.children)
        is_appos_of_person = token.dep_ == "appos" and (noun_info(token.head) is not None or
                                                        token.head.tag_ == "NN" and self._classified_person(token.head))
        # ("The other arguer, Addison, isn't having it": a role the noun classifier takes for a person's)
        return has_person_appos or is_appos_of_person

    def _name_read_as_a_word(self, token) -> bool:
        """A given name the small tagger read as a common noun or an adverb: "Cumin looks sadder than the rest"
        (a noun, though NER calls it a person), "Rafiki watches soccer on TV with his aunt" (a noun that opens the
        sentence and does what people do), "rings up Elly's purchase", "a panicked Elly yells" (an adverb, for its
        "-ly"), "Eldred made war" (an adjective as a subject). Only a title-case word the lexicon does not know,
        without a determiner."""
        text = token.text
        if not (text[:1].isupper() and text[1:].islower() and token.is_alpha and len(text) > 2) or \
                token.lower_ in lexicon.CHARACTER_NOUNS or token.lower_ in _COMMON_WORDS or \
                token.lower_ in lexicon.PRONOUNS or token.lower_ in _ADVERB_WORDS or token.lower_ in _TITLE_WORDS or \
                token.lower_ in _SPEAKERLESS_HEADINGS or token.i in self.heading_tokens or _camera_word(token) or \
                any(c.dep_ in ("det", "poss", "nummod") for c in token.children):
            return False
        after_mark = token.i > 0 and token.doc[token.i - 1].text in _FRAGMENT_MARKS
        if token.pos_ == "NOUN":
            if token.ent_type_ == "PERSON" and token.dep_ in ("nsubj", "dobj", "pobj"):
                return True
            return token.tag_ == "NN" and token.dep_ == "nsubj" and (token.is_sent_start or after_mark) and \
                token.head.pos_ == "VERB" and token.head.lemma_.lower() in _PERSON_ONLY_VERBS | {"wear"} and \
                not any(c.dep_ in ("compound", "amod") for c in token.children) and \
                (token.i + 1 == len(token.doc) or token.doc[token.i + 1].text != ":")
        if token.pos_ == "ADJ" and token.dep_ in ("nsubj", "nsubjpass") and token.head.pos_ == "VERB" and \
                token.head.lemma_ != "be" and self.word_pieces is not None and self.word_pieces(token.lower_) > 1:
            return True  # "Eldred made war upon Delfador": a name the tagger took for an adjective, as a subject
        if token.tag_ == "RB" and not token.is_sent_start and not after_mark and token.i + 1 < len(token.doc) and \
                self.word_pieces is not None and self.word_pieces(token.lower_) > 1:
            nxt = token.doc[token.i + 1]  # (an adverb the vocabulary does not hold whole: "Elly", not "Already")
            return token.dep_ in ("nsubj", "advmod", "poss", "pobj", "dobj") and not nxt.text[:1].isupper() and \
                (nxt.tag_ == "POS" or token.dep_ != "advmod" or nxt.pos_ == "VERB")
        return False

    def _classified_person(self, token) -> bool:
        """An unlisted noun ("the other arguer") with a capitalised name set beside it: is it a person's role (the
        name is the evidence)?"""
        if self.classify_unknown is None or not token.is_alpha or token.pos_ != "NOUN" or not any(
                c.dep_ == "det" for c in token.children) or not any(
                c.dep_ == "appos" and c.text[:1].isupper() and c.text[1:].islower() and c.i > token.i
                for c in token.children):
            return False
        info = self.classify_unknown(token.lemma_.lower(), self._compound_phrase(token), False, "acts")
        return info is not None and info.kind == "person"

    def _acts_like_a_name(self, token) -> bool:
        """A capitalised proper noun that does something or is given something is someone, even when the
        small NER model calls it a place ("Florence", "Jordan", "Sydney")."""
        if not token.text[:1].isupper() or token.lower_ in _TITLE_WORDS or token.lower_ in lexicon.PRONOUNS:
            return False
        contracted = token.dep_ == "nsubj" and any(c.dep_ == "case" and c.lower_ in ("'s", "’s")
                                                   for c in token.children)  # "Blake's even managed": Blake has
        if token.text.isupper() and len(token.text) > 1 or token.head.tag_ == "VBN" and not contracted and not any(
                c.dep_ in ("aux", "auxpass") for c in token.head.children):
            return False  # "POP—two toasts shoot up" (a sound), "Vision blocked, ..." (an absolute phrase)
        if token.lower_ in lexicon.LOCATION_NOUNS or token.lower_ in lexicon.CHARACTER_NOUNS:
            return False
        if any(c.dep_ == "det" for c in token.children) and not self._stage_name(token):
            return False
        place = token.ent_type_ in ("GPE", "LOC", "FAC") and not self._capitals_in_prompt(token) and not (
            token.dep_ in ("dobj", "nsubj", "pobj") and self._given_name(token))  # "chasing Tobin", "shot of Collin"
        if token.pos_ == "PROPN" and any(
                c.dep_ == "compound" and c.i == token.i - 1 and c.lower_ in _TITLE_WORDS and c.text[:1].isupper()
                for c in token.children):
            return True  # "Clone sat across from Detective Morrison", "Lord Brentan": a title makes it a name
        if not place and token.pos_ == "PROPN" and token.dep_ == "ROOT" and any(
                c.dep_ == "acl" and c.tag_ == "VBG" for c in token.children) and not any(
                t.lower_ in _SPEAKERLESS_HEADINGS | {"duration", "act", "card", "second", "first", "third"}
                for t in [token] + [c for c in token.children if c.dep_ == "compound"]):
            return True  # "Chaotic Alteon, standing still, ...": a stage direction that shows someone
        if not place and token.dep_ == "poss" and token.head.lower_ in _PERSONAL_PARTS:
            return True  # "Alexandra's black silhouette framed in doorway", "studied Clone's face"
        if not place and token.dep_ == "ROOT" and any(c.dep_ in ("appos", "dobj") and c.lower_ in _PERSONAL_PARTS
                                                      for c in token.children):
            return True  # "Varos a dark silhouette on the throne": a shot fragment that shows someone
        if not place and any(c.dep_ == "relcl" and any(w.dep_ in ("nsubj", "nsubjpass") and w.lower_ == "who"
                                                         for w in c.children) for c in token.children):
            return True  # "And poor Little Red Riding Hood, who reached the cottage far too late": "who" says someone
        if not place and _name_before_description(token):
            return True  # "Elira small in the foreground, held by soldiers": a fragment that says how she is seen
        if token.dep_ in ("nsubj", "nsubjpass") and token.head.pos_ in ("VERB", "AUX") and \
                token.head.lemma_ not in ("be", "lie", "stretch", "glow", "rise", "loom", "sprawl") and \
                not (token.head.lemma_ in ("sit", "stand") and place):
            return True  # "Ellie stands in the doorway" (but "Florence sits on the Arno", a place the NER knows)
        if not place and token.dep_ == "nsubj" and token.head.lemma_ == "be" and token.pos_ == "PROPN" and \
                token.text[1:].islower() and not any(c.dep_ in ("det", "poss", "compound") for c in token.children) \
                and self._sexed_name(token) and not any(t.lower_ in ("off", "offscreen", "off-screen", "gone", "absent")
                                                        for t in token.head.subtree if t.i > token.head.i):
            return True  # "Miranda is on foot, accompanied by her squad": a given name, as the subject of "is"
        if not place and token.dep_ == "nsubj" and token.head.dep_ == "ROOT" and token.head.i > token.i and (
                token.head.tag_ == "NNS" and token.head.text.islower() or token.head.pos_ == "ADJ" and
                token.i == token.sent.start):
            return True  # "Tyler skillfully maneuvers" (the verb read as a plural), "Gabe increasingly frustrated"
        if token.dep_ == "compound" and token.head.tag_ == "VBG" and token.head.dep_ in ("pobj", "dobj", "ROOT"):
            return True  # "Close-up of Vera Claythorne standing ...": the parser made the name a modifier of the verb
        if token.dep_ == "pobj" and token.head.lower_ in _BESIDE_SOMEONE and token.ent_type_ in ("ORG", "NORP") and \
                self._given_name(token):
            return True  # "jabbing its pole towards Ella", "smiles at Ella": a given name the NER took for a company
        if (token.dep_ in ("conj", "appos") or token.dep_ == "dobj" and token.head.lemma_.lower() not in (
                "do", "make", "name", "call", "play") or token.dep_ == "pobj" and token.head.lower_ in _BESIDE_SOMEONE) \
                and token.pos_ == "PROPN" and \
                token.text[1:].islower() and token.ent_type_ not in ("GPE", "LOC", "FAC") and \
                not any(c.dep_ in ("det", "poss") for c in token.children) and self._sexed_name(token):
            return True  # "Following Nina and Gabe", "my mum taking Archie home": a given name, where someone stands
        if self._told_or_fought(token, place):
            return True  # "gives the book to Tarquin", "made war upon Delfador": a name no list knows
        if token.dep_ == "pobj" and token.head.lower_ in ("of", "on", "at") and not place:
            shot = token.head.head
            if shot.lower_ in _SHOT_NOUNS or shot.lower_ == "up" and shot.i >= 2 and \
                    self.doc[shot.i - 2].lower_ == "close":
                return True  # "Close-up of Gandalf, with his wise eyes ...": what the shot shows
        if token.dep_ == "dobj" and token.head.pos_ == "VERB" and token.ent_type_ != "WORK_OF_ART" and (
                token.head.lemma_.lower() in lexicon.PERSON_OBJECT_VERBS or not place and
                token.head.lemma_.lower() in _MEETING_VERBS) and (any(
                    c.dep_ == "nsubj" and (c.lower_ in lexicon.PRONOUNS or c.pos_ in ("PROPN", "NOUN"))
                    for c in token.head.children) or token.head.tag_ == "VBG" and token.head.dep_ in ("advcl", "xcomp")
                    and any(c.dep_ == "nsubj" for c in token.head.head.children)):
            # (also "Sam nearly drowns chasing Frodo": the participle's subject is the sentence's)
            return True  # "He finds Lara in the living room", "the droids hire Han Solo" (whatever the NER says
            # of a name only a person can be hired as)
        return token.dep_ in ("dative",) or token.dep_ == "dobj" and token.head.pos_ == "VERB" and any(
            c.dep_ == "dobj" and c.i != token.i for c in token.head.children)

    def _told_or_fought(self, token, place: bool) -> bool:
        """A capitalised word no list knows, the object of a preposition that with its verb takes a person: given or
        said to ("hands the book to Tarquin", "whispers to Zorblax"), done with ("dances with Zorblax"), fought
        ("fights against Delfador", "made war upon Delfador"), looked or smiled at."""
        if token.dep_ != "pobj" or token.pos_ != "PROPN" or not token.text[1:].islower() or \
                token.is_sent_start or token.i in self.heading_tokens or \
                token.ent_type_ not in ("", "PERSON", "GPE", "NORP") or \
                token.lower_ in lexicon.LOCATION_NOUNS or token.lower_ in lexicon.CHARACTER_NOUNS or \
                any(c.dep_ in ("det", "poss", "compound") for c in token.children):
            return False  # (the small NER model calls most names it does not know a place, a people or a company)
        prep = token.head
        verb = prep.head
        nation = token.ent_type_ in ("GPE", "NORP")
        if verb.pos_ == "NOUN" and verb.dep_ == "dobj" and prep.lower_ == "from":
            verb = verb.head  # "takes the key from Tarquin"
        waged = verb.lemma_.lower() in _WAR_NOUNS or verb.pos_ == "VERB" and any(
            c.dep_ == "dobj" and c.lemma_.lower() in _WAR_NOUNS for c in verb.children)
        if waged:
            return prep.lower_ in ("upon", "on") and not place  # "made war upon Delfador", "revenge on Kai"
        if verb.pos_ != "VERB" or nation and (prep.lower_ in ("against", "from") or prep.lower_ == "at" and
                                               verb.lemma_.lower() in ("look", "stare", "glance", "gaze", "peer")):
            return False  # ("fights against Rome", "receives a letter from Paris", "looks at Paris")
        return verb.lemma_.lower() in _PERSON_PREP_VERBS.get(prep.lower_, ())

    @staticmethod
    def _epithet_name(token) -> bool:
        """"joins forces with the cunning Valentina": "the", lower-case adjectives, then a capitalised name."""
        det = next((c for c in token.children if c.dep_ == "det"), None)
        if det is None or det.lower_ != "the" or token.pos_ != "PROPN" or token.lower_ in lexicon.LOCATION_NOUNS \
                or token.ent_type_ in ("LOC", "FAC", "ORG", "EVENT", "WORK_OF_ART", "PRODUCT"):
            return False
        between = token.doc[det.i + 1: token.i]
        nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
        return len(between) >= 1 and all(t.pos_ == "ADJ" and t.text.islower() for t in between) and \
            (nxt is None or nxt.pos_ in ("PUNCT", "VERB", "AUX", "ADP", "CCONJ", "SCONJ", "PART")) and \
            token.dep_ in ("nsubj", "dobj", "pobj", "conj")

    @staticmethod
    def _title_case_name(token) -> bool:
        """"The White Witch", "the Evil Queen": "the", capitalised words, then a capitalised character noun,
        standing where a character stands."""
        det = next((c for c in token.children if c.dep_ == "det"), None)
        if det is None or det.lower_ != "the" or not token.text[:1].isupper() or token.text.isupper():
            return False
        between = token.doc[det.i + 1: token.i]
        return len(between) >= 1 and all(t.text[:1].isupper() and t.pos_ in ("PROPN", "ADJ") and
                                         t.lower_ not in lexicon.CHARACTER_NOUNS for t in between) and \
            token.dep_ in ("nsubj", "nsubjpass", "dobj", "appos", "pobj", "conj") and \
            token.ent_type_ not in ("GPE", "LOC", "FAC")

    def _stage_name(self, token) -> bool:
        """"The Great Orlando": "the" before capitalised words that end in a proper noun that is not a place."""
        det = next((c for c in token.children if c.dep_ == "det"), None)
        if det is None or det.lower_ != "the" or token.pos_ != "PROPN" or token.lower_ in lexicon.LOCATION_NOUNS:
            return False
        between = token.doc[det.i + 1: token.i]
        place = {t.i for ent in token.doc.ents if ent.label_ in ("GPE", "LOC") for t in ent}
        if not between and token.text[:1].isupper() and token.text[1:].islower() and \
                token.ent_type_ not in _NOT_PEOPLE_ENTS and token.lower_ not in lexicon.THING_NOUNS and \
                (token.dep_ in ("nsubj", "nsubjpass", "dobj", "appos", "pobj") or token.dep_ == "compound" and
                 token.head.i == token.i + 1 and token.head.text.islower()) and not token.is_sent_start:
            return True  # "The Rookie catches a wave", "Cut to The Stylist": a nickname used as a name
        return len(between) >= 1 and all(t.text[:1].isupper() and t.pos_ in ("PROPN", "ADJ") for t in between) \
            and token.dep_ in ("nsubj", "nsubjpass", "dobj", "appos") and token.i not in place

    def _name_text(self, token) -> str:
        if token.i in self.tags:
            return self.tags[token.i]
        if token.lower_ in lexicon.CHARACTER_NOUNS and self._title_case_name(token):
            det = next(c for c in token.children if c.dep_ == "det")
            return _joined(token.doc[det.i + 1: token.i + 1])  # "Evil Queen", whatever the tagger made of "Evil"
        parts = [c for c in token.children if c.dep_ == "compound" and c.pos_ == "PROPN"
                 and c.lower_ not in _TITLE_WORDS and not _camera_word(c) and c.i < token.i]
        toks = sorted(parts + [token], key=lambda t: t.i)
        first = toks[0].i
        while first >= 2 and token.doc[first - 1].text == "-" and not token.doc[first - 1].whitespace_ and \
                not token.doc[first - 2].whitespace_ and token.doc[first - 2].text[:1].isupper():
            first -= 2  # "Gran-Gran", "Jean-Luc": one name in three tokens
        if first < toks[0].i:
            return token.doc[first: toks[0].i].text + _joined(toks)
        return _joined(toks)

    def _given_a_thing(self, token) -> bool:
        """"girl gives dog water", "girl must carry dog home": the story's own dog, written bare before the thing it
        is given or the place it is carried to, read by the parser as a modifier of that noun."""
        head = token.head
        return token.dep_ == "compound" and head.i == token.i + 1 and head.dep_ == "dobj" and \
            _determiner(token) is None and token.lemma_.lower() in self.individual_heads and \
            (head.head.lemma_.lower() in _GIVING_VERBS or head.lower_ in ("home", "inside", "outside", "upstairs",
                                                                         "downstairs", "away", "back"))

    def _is_excluded(self, token) -> bool:
        """Depictions, comparisons, compounds and plain modifiers are not characters."""
        doc = token.doc
        if token.i + 2 < len(doc) and doc[token.i + 1].text == "-" and doc[token.i + 2].lower_ in _STYLE_SUFFIXES:
            return True  # "a Hello Kitty-inspired outfit", "a cat-shaped pillow": a style, not someone there
        if token.dep_ in ("compound", "amod", "nmod") and token.head.pos_ in ("NOUN", "PROPN") \
                and not _misparsed_verb(token) and not _name_before_description(token) and \
                not self._given_a_thing(token):
            return True
        if _in_a_depiction(token):
            return True
        if token.dep_ == "poss" and token.head.dep_ == "pobj" and token.head.head.lower_ in ("like", "than", "unlike") \
                and any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.children):
            return True  # "looks like a child's game of pick-up-sticks": a comparison's owner, no one there
        if token.dep_ == "pobj":
            prep = token.head
            if prep.lower_ in ("like", "than", "unlike"):
                return True
            photographed = prep.lower_ == "of" and prep.head.lemma_.lower() in lexicon.DEPICTION_NOUNS and \
                _photographed(prep.head)
            shot_of = prep.lower_ == "of" and (prep.head.lemma_.lower() in _SHOT_NOUNS or prep.head.lower_ == "up" and
                                               prep.head.i >= 2 and prep.head.doc[prep.head.i - 2].lower_ == "close")
            # "a close-up of a woman with red hair": the shot is of her
            if prep.lower_ == "of" and token.i > 0 and token.doc[token.i - 1].lower_ in ("a", "an") and \
                    not photographed and not shot_of and \
                    prep.head.pos_ == "NOUN" and noun_info(prep.head) is None and \
                    prep.head.lemma_.lower() not in _COLLECTIVE_NOUNS:
                return True  # "with the precision of an artist": a comparison, no one in the scene
        if token.dep_ in ("dobj", "conj") and token.head.lemma_.lower() in lexicon.DEPICTION_VERBS:
            return True
        if token.dep_ == "poss" and token.head.lemma_.lower() in attributes.CLOTHING_WORDS and any(
                c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.children):
            return True  # "a man in a doctor's coat": a kind of coat, no doctor in the scene
        if token.dep_ == "pobj" and token.head.lower_ == "as" and token.head.i > 0 and \
                token.doc[token.head.i - 1].pos_ in ("PROPN", "NOUN") and \
                any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.children):
            return True  # "a shot of Mary as an infant": Mary, at that age; "his growth as an inventor": his role
        if token.dep_ == "attr" and token.head.lower_ == "being" and not any(
                c.dep_ in ("nsubj", "nsubjpass") for c in token.head.children):
            return True  # "indicative of being a good guy": what someone is, not someone in the scene
        if token.tag_ == "NN" and any(c.dep_ == "det" and c.lower_ in ("any", "every", "no") for c in token.children):
            return True  # "different from any other squirrel": no one in particular
        info = noun_info(token)
        if info is not None and info.kind == "animal":
            if any(c.lower_ in _TOY_MODIFIERS for c in token.lefts):
                return True  # "a stuffed rabbit"
            if token.dep_ == "dobj" and token.head.lemma_.lower() in _HANDLED_VERBS and \
                    token.lemma_.lower() not in self.animal_heads:
                return True  # "lifts a silver fish from the net": a catch, not a character (but "carries the
                # small, orphaned fawn": the fawn the story has)
        return False

    # -- attributes -----------------------------------------------------------------------------------
    def attributes(self, token) -> list[str]:
        attrs: list[str] = []
        left = [t for t in token.lefts if t.dep_ in ("amod", "compound", "nmod", "npadvmod", "nummod", "advmod")]
        if _misparsed_verb(token):
            # "A yellow taxi screeches": the parser hung "yellow" on the verb it took for the noun
            left += [t for t in token.head.lefts
                     if t.i < token.i and (t.dep_ in ("amod", "nmod") or _kin_before(t, token))]
            # ("Baby fox wiggles": "Baby" hung on the verb read as a noun, as "fox" is)
        if left:
            # adjectives and hyphenated modifiers, e.g. "scruffy black-and-white" -> two attributes
            span = token.doc[min(t.left_edge.i for t in left): token.i]
            chunk = _joined([t for t in span if t.dep_ not in ("det", "poss", "predet", "case")])
            for piece in re.split(r",\s*|\s+and\s+|\s+", chunk):
                piece = piece.strip()
                if not piece or piece.lower() in lexicon.NON_VISUAL_ADJECTIVES or piece.lower() in (
                        "a", "an", "the", "-"):
                    continue
                attrs.append(piece)
            compounds = [t for t in left if t.dep_ == "compound" and t.pos_ == "NOUN"]
            if compounds and token.pos_ == "NOUN":
                attrs = [a for a in attrs if a not in {c.text for c in compounds}]
                attrs.append(_joined(sorted(compounds, key=lambda t: t.i)) + " " + token.text)
        rights = list(token.rights)
        for child in list(rights):
            if child.dep_ == "punct":  # "A woman ..., wearing a mustard sweater, stands": hung on the comma
                rights += [c for c in child.children if c.dep_ == "prep" and c.lower_ == "wearing"]
            if child.dep_ == "prep" and child.lower_ == "in":
                # "A woman in her early thirties with shoulder-length auburn hair": hung on the age phrase
                rights += [c for obj in child.children if obj.dep_ == "pobj" and attributes.is_age_phrase(_phrase(obj))
                           for c in obj.rights if c.dep_ == "prep" and c.lower_ in ("with", "wearing")]
        for child in rights:
            if child.dep_ == "prep" and child.lower_ in ("with", "in", "of", "wearing"):
                for obj in (c for c in child.children if c.dep_ in ("pobj", "dobj")):
                    for conj in _conjuncts(obj):
                        phrase = _phrase(conj)
                        if child.lower_ == "of" and not attributes.is_age_phrase(phrase):
                            continue
                        if conj.lemma_.lower() in lexicon.LOCATION_NOUNS or conj.ent_type_ in ("GPE", "LOC", "FAC") \
                                and not token.lower_ == "one":
                            continue
                        if child.lower_ == "of":
                            phrase = "about " + phrase if not phrase.startswith(("about", "around")) else phrase
                        attrs.append(_trim_misparse(phrase))
            elif child.dep_ in ("acl", "relcl") and child.lemma_.lower() in _WEAR_VERBS | _DRESS_VERBS:
                attrs.extend(self._worn(child))
            elif child.dep_ in ("amod", "appos", "acomp") and child.pos_ == "ADJ" and token.pos_ == "PROPN":
                for adj in _conjuncts(child):
                    attrs.append(_joined(list(adj.doc[adj.left_edge.i: adj.i + 1])))
                    attrs.extend(self.attributes(adj))
        return attrs

    def _worn(self, verb) -> list[str]:
        return [_trim_misparse(p) for p in self._worn_raw(verb)]

    def _worn_raw(self, verb) -> list[str]:
        out = []
        for c in verb.children:
            if c.dep_ == "dobj":
                out.extend(_phrase(x) for x in _conjuncts(c))
            elif c.dep_ == "prep" and c.lower_ == "in":
                for obj in (x for x in c.children if x.dep_ == "pobj"):
                    out.extend(_phrase(x) for x in _conjuncts(obj))
        return out

    def _action(self, token) -> str:
        if _misparsed_verb(token):
            return token.head.text
        node = token
        while node.dep_ in ("appos", "conj", "compound") and node.head.i != node.i:
            node = node.head
        if node.dep_ in ("nsubj", "nsubjpass") and node.head.pos_ in ("VERB", "AUX"):
            verb = node.head
            objs = [c for c in verb.children if c.dep_ in ("dobj", "prt")]
            extra = [c for c in verb.children if c.dep_ in ("xcomp", "advcl", "conj") and c.tag_ == "VBG"]
            words = [verb.text] + [o.text for o in objs] + [e.text for e in extra]
            return " ".join(words)
        return ""

    def _clause_subject(self, token) -> int | None:
        verb = token.head
        while verb.pos_ not in ("VERB", "AUX") and verb.head.i != verb.i:
            verb = verb.head
        first = token
        while first.dep_ in ("conj", "appos") and first.head.i not in (first.i, verb.i):
            first = first.head
        listed = first.dep_ in ("dep", "appos", "npadvmod") and first.head.i == verb.i  # "they all pull together—farmer, wife,
        # dog": the list after the verb says who "they" are
        for _ in range(2):
            for c in verb.children:
                if c.dep_ in ("nsubj", "nsubjpass") and c.i != token.i:
                    if listed and c.lower_ in ("they", "we"):
                        return None
                    if c.lower_ in ("who", "that", "which") and verb.dep_ == "relcl":
                        return verb.head.i  # "a cook ..., who hands him a bowl": the subject is the cook
                    return c.i
            if verb.dep_ not in ("conj", "xcomp") or verb.head.pos_ not in ("VERB", "AUX"):
                break
            verb = verb.head  # "they open the door and hug her": the subject of "open" hugs; "Flip tries to
            # push him": the one who tries pushes
        return None

    # -- extraction -----------------------------------------------------------------------------------
    def mentions(self) -> list[Mention]:
        doc = self.doc
        prepare = getattr(self.classify_unknown, "prepare", None)
        if prepare is not None:
            unlisted = [t for t in doc if noun_info(t) is None and self._unlisted_candidate(t)]
            prepare([t.lemma_.lower() for t in unlisted] + [self._compound_phrase(t) for t in unlisted])
        sent_of = {}
        for si, sent in enumerate(doc.sents):
            for t in sent:
                sent_of[t.i] = si
        groups: dict[int, list] = {}  # primary token -> tokens folded into it
        claimed: set[int] = set()
        candidates = []
        for tok in doc:
            if tok.i in claimed:
                continue
            info = self.character_info(tok)
            name = self.is_name(tok)
            if (info is None and not name) or self._is_excluded(tok) and tok.i not in self.tags and \
                    tok.i not in self.speaker_tokens:
                continue
            if tok.tag_ in ("NNS", "NNPS") and not name:
                continue
            candidates.append(tok)
        cand_ids = {t.i for t in candidates}
        # fold appositions into the first token of the chain
        for tok in candidates:
            if tok.i in claimed:
                continue
            chain = [tok]
            stack = [tok]
            while stack:
                cur = stack.pop()
                for c in cur.children:
                    if c.dep_ == "appos" and c.i in cand_ids and c.i not in claimed and c not in chain and \
                            not _listed_apart(cur, c):
                        chain.append(c)
                        stack.append(c)
            if tok.dep_ == "appos" and tok.head.i in cand_ids and not _listed_apart(tok.head, tok):
                continue  # handled from its head
            comma_before = tok.i > 0 and doc[max(0, tok.left_edge.i - 1)].text == ","
            named = doc[tok.left_edge.i - 2] if comma_before and tok.left_edge.i >= 2 else None
            if named is not None and tok.dep_ == "nsubj" and named.i in groups and named.i == named.sent.start and \
                    named.head.i == tok.head.i and self.is_name(named) and any(
                        c.dep_ == "det" and c.lower_ in ("a", "an") for c in tok.children):
                # "Lily, a 4-year-old girl with messy hair wears ...": read with the girl as the subject and the
                # name hung on the verb; an apposition all the same
                groups[named.i].extend(chain)
                claimed.update(c.i for c in chain)
                continue
            if tok.dep_ in ("appos", "dobj", "npadvmod") and tok.head.i not in cand_ids and comma_before and any(
                    c.dep_ == "det" and c.lower_ in ("a", "an") for c in tok.children):
                # "A young student enters through the back door, a shy girl in ...": the comma phrase
                # describes the clause subject, not the door
                # fold into the nearest character noun before it in the sentence ("the bartender, a tall
                # woman"; "a young student enters through the back door, a shy girl")
                before = [i for i in groups if i < tok.i and doc[i].sent.start == tok.sent.start]
                subj = doc[max(before)] if before else None
                if subj is not None and (self.character_info(subj) or lexicon.NounInfo("person", "person")).kind == (
                        self.character_info(tok) or lexicon.NounInfo("person", "person")).kind:
                    groups[subj.i].extend(chain)
                    for c in chain:
                        claimed.add(c.i)
                    continue
            for c in chain:
                claimed.add(c.i)
            groups[tok.i] = chain
        # predicates: "revealing a sun-tanned woman", "is a tall man" fold into the clause subject
        folded_into: dict[int, int] = {}
        for primary, chain in list(groups.items()):
            tok = doc[primary]
            verb = tok.head
            if (tok.dep_ == "dobj" and verb.lemma_.lower() in _PREDICATE_VERBS) or (
                    tok.dep_ == "attr" and verb.lemma_.lower() in ("be", "become")):
                subj = self._subject_of(verb)
                if subj is not None and (subj.i in groups or subj.lower_ in lexicon.PRONOUNS):
                    folded_into[primary] = subj.i
            elif tok.dep_ in ("nsubj", "npadvmod", "appos", "dep") and tok.left_edge.i == tok.sent.start and \
                    _determiner(tok) is not None and _determiner(tok).lower_ in ("a", "an"):
                # "A very well-put together woman of forty, she wears ...": a fronted description of "she"
                pronoun = next((c for c in verb.children if c.dep_ == "nsubj" and c.i > tok.i and c.lower_ in (
                    "he", "she") and doc[c.i - 1].text == ","), None)
                if pronoun is not None:
                    folded_into[primary] = pronoun.i
        mentions: list[Mention] = []
        index_of_token: dict[int, int] = {}
        folded_members: set[int] = set()  # "scientists" in "a team of scientists": the team is the mention
        for tok in doc:
            if tok.i in groups and tok.i not in folded_into:
                mention = self._noun_mention(tok, groups[tok.i], sent_of)
                if mention is not None:
                    index_of_token[tok.i] = len(mentions)
                    mentions.append(mention)
            elif tok.tag_ == "PRP" and tok.lower_ in lexicon.PRONOUNS or self._owner_pronoun(tok) or \
                    tok.lower_ == "hers" and tok.dep_ in ("pobj", "dobj", "nsubj", "conj") or \
                    tok.lower_ == "both" and (tok.dep_ in ("nsubj", "ROOT", "dobj", "pobj", "dep") or
                                             tok.dep_ == "appos" and tok.head.pos_ != "PRON") and \
                    not _before_a_thing(tok) or \
                    tok.lower_ == "two" and tok.pos_ == "NUM" and tok.dep_ in ("nsubj", "nsubjpass", "dobj", "pobj") \
                    and any(c.dep_ == "det" and c.lower_ == "the" for c in tok.children) or \
                    tok.lower_ in CAST_NOUNS and tok.dep_ in ("nsubj", "nsubjpass", "dobj", "pobj") and \
                    doc[tok.i - 1].lower_ == "the" and not any(c.dep_ == "prep" and c.lower_ == "of" for c in tok.children) or \
                    tok.lower_ in _CAST_NUMBERS and tok.pos_ == "NUM" and tok.dep_ in ("nsubj", "nsubjpass") and \
                    tok.i > 0 and doc[tok.i - 1].lower_ in ("all", "the") and \
                    not any(c.dep_ == "prep" and c.lower_ == "of" for c in tok.children) or \
                    tok.lower_ == "two" and 0 < tok.i < len(doc) - 1 and doc[tok.i - 1].lower_ == "the" and \
                    doc[tok.i + 1].tag_ in ("VBP", "VBD") or \
                    self._everyone(tok) or \
                    self._cast_noun(tok):
                mention = self._pronoun_mention(tok, sent_of)
                if mention is not None:
                    index_of_token[tok.i] = len(mentions)
                    mentions.append(mention)
            elif tok.i in folded_members:
                continue
            elif self._collective_noun(tok, sent_of, folded_members, mentions, index_of_token):
                continue
            elif tok.lower_ == "family" and "family" in self.individual_heads and \
                    (det := _determiner(tok)) is not None and det.lower_ == "the" and \
                    tok.dep_ not in ("poss", "compound"):
                # "the entire family eating ice cream": every one of the story's family shown so far
                index_of_token[tok.i] = len(mentions)
                mentions.append(Mention(start=tok.idx, end=tok.idx + len(tok.text),
                                        surface=_phrase(tok, include_of=False),
                                        form="definite", kind="person", base="group", heads=["family"], token=tok.i,
                                        sentence=sent_of.get(tok.i, 0), collective=True, recalled=True,
                                        action=self._action(tok)))
            elif self._owner_without_apostrophe(tok):
                info = noun_info(tok)
                index_of_token[tok.i] = len(mentions)
                mentions.append(Mention(start=tok.idx, end=tok.idx + len(tok.text), surface=tok.text, form="definite",
                                        kind=info.kind, base=info.base, gender=info.gender, heads=[_singular(tok)],
                                        token=tok.i, sentence=sent_of.get(tok.i, 0), weak=True))
            elif (one_of := self._one_of(tok)) is not None:
                # "One of the enforcers lunges forward": one of them, a character of its own beside the group
                index_of_token[tok.i] = len(mentions)
                mentions.append(Mention(start=tok.idx, end=tok.idx + len(tok.text),
                                        surface=doc[tok.i: one_of[0].i + 1].text, form="indefinite",
                                        kind=one_of[1].kind, base=one_of[1].base, gender=one_of[1].gender,
                                        heads=[_singular(one_of[0]) if one_of[0].lower_ != "them" else "person"],
                                        token=tok.i, sentence=sent_of.get(tok.i, 0),
                                        action=self._action(tok)))
            elif (tok.tag_ in ("NNS", "NNPS") or tok.lower_ in ("couple", "pair") and any(
                    c.dep_ == "det" and c.lower_ in ("the", "a", "an") for c in tok.children)) and (
                    not self._is_excluded(tok) or tok.lower_ in ("couple", "pair")):
                mention = self._group_mention(tok, sent_of)
                if mention is not None:
                    index_of_token[tok.i] = len(mentions)
                    mentions.append(mention)
        for primary, subj in folded_into.items():
            if subj in index_of_token:
                target = mentions[index_of_token[subj]]
                extra = self._noun_mention(doc[primary], groups[primary], sent_of)
                if extra is not None:
                    target.attrs.extend(a for a in extra.attrs if a not in target.attrs)
                    target.heads.extend(h for h in extra.heads if h not in target.heads)
                    if target.gender is None:
                        target.gender = extra.gender
                    if target.age is None:
                        target.age = extra.age
                    if target.base == "person" and extra.base != "person":
                        target.base = extra.base
        mentions = self._names_missed(mentions, index_of_token, sent_of)
        mentions = self._members_named_here(mentions, index_of_token)
        self._link_possessors(mentions, index_of_token)
        for m in mentions:
            if (m.owns or m.possessed) in _OWNED_PLACES:
                m.place_owner = True  # the owner of a house is not seen by being its owner
        self._wearing_predicates(mentions, index_of_token)
        self._speaker_portrait(mentions)
        self._self_introductions(mentions)
        self._spoken_of(mentions)
        self._aliases(mentions)
        self._identified(mentions)
        self._nowhere(mentions)
        mentions = self._addressed(mentions, sent_of)
        mentions = self._narrated_you(mentions, sent_of)
        mentions = self._narrated_i(mentions, sent_of)
        mentions = self._the_others(mentions, sent_of)
        mentions = self._one_and_the_other(mentions, sent_of)
        self._titled_names(mentions)
        self._enumerated(mentions)
        mentions = self._numbered(mentions)
        self._titled(mentions)
        for m in mentions:
            m.start, m.end = self.in_prompt(m.start), self.in_prompt(m.end - 1) + 1
            if m.possessor_pronoun and m.possessor_token is not None:
                word = self.doc[m.possessor_token]
                m.possessor_span = (self.in_prompt(word.idx), self.in_prompt(word.idx + len(word.text) - 1) + 1)
        return mentions

    def _one_of(self, tok):
        """For "One of the soldiers" that acts or is acted on: the plural word and what kind of character it is."""
        shown = tok.dep_ == "pobj" and (tok.head.lower_ in ("at", "to", "toward", "towards", "with") or
                                        tok.head.lower_ in ("of", "on") and tok.head.head.lower_ in _FILMING_NOUNS)
        # ("a shot of one of the soldiers", "cuts back to one of the two boys", "pointing it at one of them")
        if tok.lower_ != "one" or tok.dep_ not in ("nsubj", "nsubjpass", "dobj") and not shown:
            return None
        for of in tok.children:
            if of.dep_ == "prep" and of.lower_ == "of":
                for group in of.children:
                    if group.dep_ == "pobj" and group.lower_ == "them" and tok.dep_ == "nsubj":
                        return group, lexicon.NounInfo("person", "person")  # "One of them turns to him and asks"
                    if group.dep_ == "pobj" and group.lower_ in _COLLECTIVE_NOUNS and any(
                            c.dep_ in ("det", "poss") for c in group.children):
                        return group, lexicon.NounInfo("person", "person")  # "One of the Cool Cat Crew points"
                    if group.dep_ == "pobj" and group.tag_ in ("NNS", "NNPS") and \
                            any(c.dep_ == "det" and c.lower_ in ("the", "these", "those") or c.dep_ == "poss"
                                for c in group.children):
                        info = lexicon.CHARACTER_NOUNS.get(_singular(group)) or self.character_info(group)
                        if info is None and self.classify_unknown is not None and group.is_alpha:
                            info = self.classify_unknown(_singular(group), "", False, "acts")  # "one of" them acts
                        if info is not None and info.kind in ("person", "animal", "creature", "robot"):
                            return group, info
        return None

    def _titled(self, mentions: list[Mention]) -> None:
        """"Guy", "Thief", "Warrior" read as names (``_titled_roles``) are still a man, a thief, a warrior: the
        kind and the noun a later "the thief" finds them by."""
        tagged = set(self.tags.values())
        for m in mentions:
            word = m.names[0].lower() if m.form == "name" and m.names and m.names[0] in tagged else ""
            info = lexicon.CHARACTER_NOUNS.get(word)
            if info is not None and info.kind == "person" and info.base != "group" and m.names[0].isalpha() and \
                    word not in lexicon.RELATION_NOUNS:  # (not "[Kitty]", a cat's name)
                m.kind, m.base, m.heads = info.kind, info.base, [word]
                m.gender, m.age = m.gender or info.gender, m.age or info.age

    def _numbered(self, mentions: list[Mention]) -> list[Mention]:
        """"Snowman 1" (a numbered character, ``_numbered_characters``) is a snowman by kind; and the prompt's
        "two snowmen" are those numbered ones, not a group of their own."""
        numbered = {}
        for tag in self.tags.values():
            match = _NUMBERED_LABEL.fullmatch(tag)
            if match and match.group(1).lower() in lexicon.CHARACTER_NOUNS:  # ("Woodlouse 1": a name, of no kind)
                numbered[match.group(1).lower()] = lexicon.CHARACTER_NOUNS[match.group(1).lower()]
        if not numbered:
            return mentions
        kept = []
        for m in mentions:
            label = _NUMBERED_LABEL.fullmatch(m.names[0]) if m.names else None
            word = label.group(1).lower() if label else None
            if word in numbered:
                info = numbered[word]
                m.kind, m.base, m.heads = info.kind, info.base, [word]
                m.gender = m.gender or info.gender
            elif m.form == "group" and m.heads and m.heads[0] in numbered:
                continue
            kept.append(m)
        return kept

    def _enumerated(self, mentions: list[Mention]) -> None:
        """"There are two main subjects in the video. The first is a middle-aged, bald man ... The second subject
        is a young adult, Black woman": a caption that goes through the people it has just shown, one by one.
        The predicate (and what the parser joined to it) is the n-th of them, described again."""
        for m in mentions:
            tok = self.doc[m.token]
            attr = tok
            while attr.dep_ == "conj" and attr.head.i < attr.i:
                attr = attr.head
            if attr.dep_ != "attr" or attr.head.lemma_ != "be" or m.form not in ("indefinite", "definite"):
                continue
            subject = next((c for c in attr.head.children if c.dep_ == "nsubj"), None)
            if subject is None:
                continue
            if subject.lower_ in _ORDINALS:
                place = _ORDINALS[subject.lower_]
            elif subject.lemma_.lower() in _ENUMERATED_NOUNS | {"object"}:
                place = next((_ORDINALS[c.lower_] for c in subject.children if c.lower_ in _ORDINALS), 0) or \
                    next((1 for c in subject.children if c.lower_ in ("main", "central", "primary")), 0)
                # "The main object is a young adult East Asian woman ...": the one the caption opened on
            else:
                place = 0
            if place:
                m.enumerated = place
                m.newcomer = False  # "The second is another young adult male": the second one shown, not a new one

    def _titled_names(self, mentions: list[Mention]) -> None:
        """"Pip the hedgehog sniffs ...", "Spark the cat": the name and the noun after "the" are one animal."""
        by_token = {m.token: m for m in mentions}
        for m in mentions:
            if m.form != "name" or m.token + 2 >= len(self.doc) or self.doc[m.token + 1].lower_ != "the":
                continue
            noun = by_token.get(m.token + 2)
            if noun is None or noun.names or noun.kind not in ("animal", "creature", "robot"):
                continue
            m.kind, m.base, m.gender = noun.kind, noun.base, m.gender or noun.gender
            m.heads = list(dict.fromkeys(m.heads + noun.heads))
            noun.names = list(m.names)
        covered = {m.token for m in mentions}
        for m in mentions:
            # "Pyter the Python snake sits at ...": the parser left the name out (it hung it on the verb)
            if m.names or m.kind not in ("animal", "creature", "robot") or m.form == "pronoun":
                continue
            det = next((c for c in self.doc[m.token].lefts if c.dep_ == "det" and c.lower_ == "the"), None)
            if det is None or det.i == 0:
                continue
            name = self.doc[det.i - 1]
            if name.pos_ == "PROPN" and name.is_alpha and name.text[:1].isupper() and name.i not in covered and \
                    name.i not in self.heading_tokens and name.lower_ not in lexicon.CHARACTER_NOUNS and \
                    name.lower_ not in _COMMON_WORDS and name.ent_type_ not in ("GPE", "LOC", "FAC", "ORG", "NORP"):
                m.names, m.form = [name.text], "name"
                m.start = name.idx

    def _quoted_tokens(self) -> frozenset[int]:
        """Indices of the tokens inside quotation marks, the marks included (marks paired in order); worked out once
        for the prompt (eight readings ask for it)."""
        if self._quoted is None:
            marks = [t.i for t in self.doc if t.text in _QUOTE_MARKS]
            self._quoted = frozenset(i for a, b in zip(marks[::2], marks[1::2]) for i in range(a, b + 1))
        return self._quoted

    def _spoken_of(self, mentions: list[Mention]) -> None:
        """'"But I've never cooked for a dog before," Nozibele answered': "a dog" in someone's words is any dog,
        not one who comes into the scene (the story's own dog is "the dog"). Only where the prompt also tells
        something outside the quotes."""
        quoted = self._quoted_tokens()
        for m in mentions:
            m.possessor_quoted = bool(m.possessor_pronoun) and m.token in quoted  # (its noun stands there too)
        if not quoted or sum(1 for t in self.doc if t.is_alpha and t.i not in quoted) < 3:
            return
        for m in mentions:
            det = _determiner(self.doc[m.token])
            if m.form == "indefinite" and m.token in quoted and det is not None and det.lower_ in ("a", "an") and \
                    self.doc[m.token].dep_ != "attr":  # ('"That's a changeling!"' points at someone there)
                m.appearance = False

    def _self_introductions(self, mentions: list[Mention]) -> None:
        """'"Hello!" said the squirrel. "My name is Squeaky ..."': a name given in the speaker's own words
        ("my name is", "I am", "I'm") is the speaker's, the one said to speak in the prompt."""
        doc = self.doc
        quoted = self._quoted_tokens()
        speakers = [m for m in mentions if m.form not in ("pronoun", "group") and doc[m.token].dep_ == "nsubj"
                    and m.token not in quoted
                    and doc[m.token].head.lemma_.lower() in _SPEECH_VERBS | {"chirp", "bark", "squeak", "croak"}]
        if len(speakers) != 1:
            return
        by_token = {m.token: m for m in mentions}
        if self.name_asked:
            # '"What's your name, child?"' then '"Lily," said the girl.': a quoted name alone is the answer
            for tok in doc:
                if tok.i in quoted and tok.i > 0 and doc[tok.i - 1].text in ('"', "“") and tok.is_alpha and \
                        tok.text[:1].isupper() and tok.lower_ not in lexicon.PRONOUNS and \
                        tok.lower_ not in lexicon.CHARACTER_NOUNS and tok.i + 2 < len(doc) and \
                        doc[tok.i + 1].text in (",", ".", "!") and doc[tok.i + 2].text in ('"', "”"):
                    speakers[0].names = speakers[0].names or [tok.text]
                    if tok.i in by_token and by_token[tok.i] is not speakers[0]:
                        by_token[tok.i].appearance = False
                    break
        for tok in doc:
            if tok.i not in quoted or not tok.text[:1].isupper() or not tok.is_alpha or tok.dep_ != "attr" or \
                    tok.head.lemma_ != "be" or tok.lower_ in lexicon.PRONOUNS:
                continue
            subject = next((c for c in tok.head.children if c.dep_ == "nsubj"), None)
            if subject is not None and (subject.lower_ == "i" or subject.lower_ == "name" and any(
                    c.lower_ == "my" for c in subject.children)):
                speakers[0].names = speakers[0].names or [tok.text]
                if tok.i in by_token and by_token[tok.i] is not speakers[0]:
                    by_token[tok.i].appearance = False

    def _addressed(self, mentions: list[Mention], sent_of) -> list[Mention]:
        """"His mom smiled and said, "Yes, you can go"", "Jane:(Walks over.) Your elbow is drifting out": "you" in
        the words someone says is the one spoken to (the resolver takes someone else than the speaker)."""
        doc = self.doc
        quoted = self._quoted_tokens()
        dialogue = bool(self.speaker_tokens) and not any(t.text in _QUOTE_MARKS for t in doc)  # a line after "Jane:"
        speech = [t for t in doc if t.lemma_.lower() in _SPEECH_VERBS and t.pos_ == "VERB"]
        # 'Mid Shot Thomas: “What are you sitting here for?”': a name, a colon, then the words in quotes (one such
        # line: where several speak, whose words hold the "you" is not read here)
        lines = [t for t in doc if t.text == ":" and 0 < t.i < len(doc) - 1 and t.i not in quoted and
                 doc[t.i + 1].text in _QUOTE_MARKS]
        labels = {t.i - 1 for t in lines if doc[t.i - 1].pos_ == "PROPN"} if len(lines) == 1 else set()
        if not (quoted and (speech or labels)) and not dialogue:
            return mentions
        subjects = {subject.i for verb in speech if verb.i not in quoted
                    for subject in [self._subject_of(verb)] if subject is not None}  # "His mom smiled and said"
        subjects |= labels
        for m in mentions:
            if m.token in self.speaker_tokens or m.token in subjects:
                m.speaker = True
            if m.token in quoted and m.form == "name" and m.token > 0 and doc[m.token - 1].text in ('"', "“") and \
                    m.token + 1 < len(doc) and doc[m.token + 1].text in (",", "!"):
                m.vocative = True
        def vocative(t) -> bool:  # '"Yes, dear."', '"Thank you, little one."': a pet name for the one spoken to
            if t.i not in quoted or t.lower_ not in _PET_NAMES and not (
                    t.lower_ == "one" and t.i > 0 and doc[t.i - 1].lower_ == "little"):
                return False
            start = t.i - 1 if t.lower_ == "one" else t.i
            return start > 0 and doc[start - 1].text in (",", "“", '"') and t.i + 1 < len(doc) and \
                doc[t.i + 1].text in (",", ".", "!", "?", "”", '"')

        added = [Mention(start=t.idx if t.lower_ != "one" else doc[t.i - 1].idx, end=t.idx + len(t.text),
                         surface=t.text, form="pronoun", kind="", base="", pronoun="you", token=t.i,
                         sentence=sent_of.get(t.i, 0))
                 for t in doc if t.lower_ in ("you", "your", "yourself") and (t.i in quoted or dialogue) or vocative(t)]
        return sorted(mentions + added, key=lambda m: m.token) if added else mentions

    def _one_and_the_other(self, mentions: list[Mention], sent_of) -> list[Mention]:
        """"Two scientists run past. One is holding a microscope", "One slides down, followed by the other": the
        first and the second member of the group the story just brought in (the resolver finds none, no one)."""
        quoted = self._quoted_tokens()
        taken = {m.token for m in mentions}
        added = []
        for t in self.doc:
            if t.i in quoted or t.i in taken or any(c.dep_ in ("prep", "amod", "compound", "poss") for c in t.children):
                continue
            if t.text == "One" and t.pos_ == "NUM" and t.dep_ in ("nsubj", "nsubjpass") and t.is_sent_start:
                rank = 1
            elif t.lower_ == "other" and t.dep_ in ("nsubj", "dobj", "pobj") and \
                    any(c.dep_ == "det" and c.lower_ == "the" for c in t.children):
                rank = 2
            else:
                continue
            start = t.idx if rank == 1 else next(c.idx for c in t.children if c.dep_ == "det")
            added.append(Mention(start=start, end=t.idx + len(t.text), surface=self.doc.text[start: t.idx + len(t.text)],
                                 form="definite", kind="person", base="person", heads=["one"], ordinal=rank, weak=True,
                                 token=t.i, sentence=sent_of.get(t.i, 0), action=self._action(t)))
        return sorted(mentions + added, key=lambda m: m.token) if added else mentions

    def _the_others(self, mentions: list[Mention], sent_of) -> list[Mention]:
        """"Helen puts her glass down loudly and the others look at her", "bigger than the others": the rest of the
        characters the story just had (which, the resolver says once the prompt's others are known)."""
        quoted = self._quoted_tokens()
        taken = {m.token for m in mentions}
        added = [Mention(start=t.idx, end=t.idx + len(t.text), surface=t.text, form="pronoun", kind="", base="",
                         gender="p", pronoun="they", token=t.i, sentence=sent_of.get(t.i, 0), others=True,
                         action=self._action(t))
                 for t in self.doc if t.lower_ == "others" and t.tag_ == "NNS" and t.i not in taken and
                 t.i not in quoted and t.dep_ in ("nsubj", "nsubjpass", "dobj", "pobj", "conj") and
                 any(c.dep_ == "det" and c.lower_ == "the" for c in t.children) and
                 not any(c.dep_ == "prep" and c.lower_ == "of" for c in t.children)]
        return sorted(mentions + added, key=lambda m: m.token) if added else mentions

    def _narrated_you(self, mentions: list[Mention], sent_of) -> list[Mention]:
        """"As you reach the counter, you're greeted with a busy bee", "Glen hugs you": a story told in the second
        person has a character, "you", outside anyone's words. Each such "you" is a mention the resolver keeps when
        the story is told that way (this prompt has "you" doing something, or an earlier one had). A "you" that
        only describes a thing ("a remote control -- the kind you use for model airplanes") is anyone."""
        doc = self.doc
        quoted = self._quoted_tokens()
        if self._whose_words_unclear(quoted):
            return mentions

        if any(t.is_alpha and t.is_upper and len(t) >= 3 and t.lower_ not in _CAPS_NOT_NAMES for t in doc):
            return mentions  # a screenplay's or comic's capitals: "SOTHERN (whisper) Laura, you're going off script"
        if any((t.text == "I" or t.lower_ in ("me", "my", "myself")) and t.i not in quoted for t in doc):
            return mentions  # someone's thoughts in the first person: their "you" is anyone ("You don't touch people
            # that are bleeding in the 3rd Sector. ... I should shake my head")

        yous = [t for t in doc if t.lower_ in ("you", "your", "yourself") and t.i not in quoted and
                not self._after_a_label(t)]
        if not yous:
            return mentions

        def acts(t) -> bool:
            verb = t.head
            return t.dep_ in ("nsubj", "nsubjpass") and verb.pos_ in ("VERB", "AUX") and \
                verb.lemma_.lower() not in _VIEWER_VERBS and verb.dep_ != "relcl" and \
                not (verb.dep_ == "advcl" and verb.head.lemma_.lower() in _VIEWER_VERBS) and \
                not any(c.tag_ == "MD" or c.dep_ == "neg" or c.dep_ == "mark" and c.lower_ in ("if", "unless")
                        for c in verb.children)

        named = {m.token for m in mentions if m.form == "name"}

        def acted_on(t) -> bool:  # "Frank looks over at you", "Glen hugs you": someone in the story does it to you
            if t.dep_ not in ("dobj", "pobj", "dative") or t.lower_ != "you":
                return False
            verb = t.head
            while verb.pos_ in ("ADP", "ADV", "PART") and verb.head.i != verb.i:
                verb = verb.head
            subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
            while subject is None and verb.dep_ == "conj" and verb.head.pos_ == "VERB":
                verb = verb.head  # "Frank and Braxton look over at you, and turn ..."
                subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
            # (a named character, not "The woman smiles at you", which a video prompt says of its viewer)
            return verb.pos_ == "VERB" and subject is not None and subject.i in named and \
                not any(c.tag_ == "MD" or c.dep_ == "neg" for c in verb.children)

        cue = any(acts(t) or acted_on(t) for t in yous)
        added = [Mention(start=t.idx, end=t.idx + len(t.text), surface=t.text, form="pronoun", kind="person",
                         base="person", pronoun="you", heads=["you"], token=t.i, sentence=sent_of.get(t.i, 0),
                         narrated=True, narration_cue=cue) for t in yous]
        return sorted(mentions + added, key=lambda m: m.token)

    def _whose_words_unclear(self, quoted: set[int]) -> bool:
        """A dialogue line, or quotes the prompt does not close: whose words a "you" or an "I" is in is not clear."""
        return bool(self.speaker_tokens or self.line_speakers or
                    any(t.text in _QUOTE_MARKS for t in self.doc) and not quoted)

    def _after_a_label(self, t) -> bool:
        """After a speaker's label ("Shane: It's been too long! How've you been?", 'Mom (Viv is beaming): Wow Viv!',
        "Caption: I first met Sara")."""
        doc = self.doc
        return any(w.text == "):" or w.text == ":" and w.i > 0 and (doc[w.i - 1].text[:1].isupper() or
                                                                     doc[w.i - 1].text == ")") for w in doc[: t.i])

    def _narrated_i(self, mentions: list[Mention], sent_of) -> list[Mention]:
        """"I reach out my hand for Guoliang to grab, but he doesn't take it": a story told in the first person has a
        character, "I", outside anyone's words. Each such "I" (and "me", "myself", "my" with a part of the body) is a
        mention the resolver keeps when the story is told that way (this prompt has "I" doing something, or an
        earlier one had). Not the prompt's writer: "I want the first image to be the boy", "my idea", a caption,
        "(yes, I just made that name up!)"."""
        doc = self.doc
        quoted = self._quoted_tokens()
        # 'NARRATOR: "I feel very tired this morning ..."': what a narrator's label opens is the story told, quotes
        # or not (a visual novel's narration), not someone's line
        narration = len(doc) > 2 and doc[0].lower_ == "narrator" and doc[1].text == ":"
        # the word "I" is not a name: outside quotes it is the narrator (below) or no one, in quotes the one the
        # prompt says speaks ('Mark said, "James you stay with Sally and I will go get my dad"'); kept only in words
        # no one is said to speak ('NARRATOR: "I feel very tired this morning"', whose "I" is the narrator on screen)
        speaking = any(m.speaker for m in mentions)
        mentions = [m for m in mentions if not (m.form == "name" and m.surface == "I" and
                                                 (m.token not in quoted or speaking or narration))]
        if narration:
            quoted = set()
        elif self._whose_words_unclear(quoted):
            return mentions
        written = re.findall(r"[^\W\d_]+", self.prompt if self.prompt is not None else doc.text)  # (before headings
        # and capitals were rewritten)
        if any(w.isupper() and len(w) >= 3 and w.lower() not in _CAPS_NOT_NAMES for w in written):
            return mentions  # a screenplay's or comic's capitals: "MRS. LINCOLN My husband is dead!"
        if any(w.lower() in _MAKING_WORDS or w.lower()[:-1] in _MAKING_WORDS for w in written):
            return mentions  # the writer of a storyboard ("my mum ringing Kit Wilson in this scene"), a panel's words
        aside = set()  # between brackets or dashes
        for sent in doc.sents:
            opened, dashes = None, [t.i for t in sent if t.text in ("–", "—", "--")]
            for t in sent:
                if t.text == "(":
                    opened = t.i
                elif t.text == ")" and opened is not None:
                    aside.update(range(opened, t.i))
                    opened = None
            for a, b in zip(dashes[::2], dashes[1::2]):
                aside.update(range(a, b))

        def outside_lines(t) -> bool:
            return t.i not in quoted and t.i not in aside and (narration or not self._after_a_label(t))

        def first_person(t) -> bool:
            if not outside_lines(t):
                return False
            if t.text == "I" or t.lower_ in ("me", "myself"):
                return True
            return t.lower_ == "my" and (t.head.lower_ in _PERSONAL_PARTS or _way_made(t))
            # ("my ear", "find my way to the house"; not "my luck" or "my way of seeing")

        def _way_made(t) -> bool:  # "to find my way to the house", "I make my way through the crowd": going there
            return t.head.lower_ == "way" and t.head.dep_ == "dobj" and t.head.head.lemma_.lower() in _WAY_VERBS and \
                not any(c.lower_ == "of" for c in t.head.children)

        selves = [t for t in doc if first_person(t)]
        # "We were both out of breath", "she saw us out": the narrator and whom the story was just with (the
        # resolver keeps them only in a story that has its narrator already)
        ours = [t for t in doc if t.lower_ in ("we", "us") and outside_lines(t)]

        def tells(t) -> bool:  # "We continued on", "We went to the moving van": told in the past, not "We see"
            verb = t.head
            return t.lower_ == "we" and t.dep_ == "nsubj" and verb.tag_ == "VBD" and \
                verb.lemma_.lower() not in _CAMERA_SEEING_VERBS and not any(c.tag_ == "MD" for c in verb.children)

        mentions = mentions + [Mention(start=t.idx, end=t.idx + len(t.text), surface=t.text, form="pronoun",
                                       kind="person", base="person", pronoun="we", token=t.i,
                                       sentence=sent_of.get(t.i, 0), narrated=True, narration_cue=tells(t))
                               for t in ours]
        if not selves:
            return sorted(mentions, key=lambda m: m.token) if ours else mentions

        def acts(t) -> bool:  # "I land in a nearby alley", "Rin and I both pick the flower vase", "was I staring?"
            subject = t
            while subject.dep_ == "conj" and subject.head.i != subject.i:
                subject = subject.head
            verb = subject.head
            return t.text == "I" and subject.dep_ in ("nsubj", "nsubjpass") and verb.pos_ == "VERB" and \
                verb.lemma_.lower() not in _ASIDE_VERBS and verb.lower_.replace("’", "'") not in ("'m", "am", "'d") and \
                not any(c.tag_ == "MD" or c.dep_ == "neg" or c.dep_ == "mark" and c.lower_ in ("if", "unless")
                        for c in verb.children)

        cue = any(acts(t) or t.lower_ == "my" and _way_made(t) for t in selves)
        added = [Mention(start=t.idx, end=t.idx + len(t.text), surface=t.text, form="pronoun", kind="person",
                         base="person", pronoun="i", heads=["i"], token=t.i, sentence=sent_of.get(t.i, 0),
                         narrated=True, narration_cue=cue) for t in selves]
        return sorted(mentions + added, key=lambda m: m.token)

    def _identified(self, mentions: list[Mention]) -> None:
        """"Suddenly, a figure appears in the sky ... It's Superman!": the name is the one just brought in; so is the
        name in "a grey cat ... From here on, it will be called Cone" (or "she is known as Ace"). A screenplay
        names the one it just described the same way: "A man in a grey suit ... this must be JACOB BILLUPS", "the
        DRIVER, a man in his forties ... This is SPALDING JEAGER", "a woman ... Her name is NANCY" (not a place:
        "This is Paris")."""
        quoted = self._quoted_tokens()
        for tok in self.doc:
            verb = tok.head.head if tok.dep_ == "pobj" and tok.head.lower_ == "as" else tok.head
            subject = next((c for c in verb.children if c.dep_ == "nsubj"), None) if tok.dep_ == "attr" and \
                verb.lemma_ == "be" else None
            it_is = subject is not None and (subject.lower_ == "it" or tok.i not in quoted and tok.ent_type_ not in (
                "GPE", "LOC", "FAC", "ORG", "NORP") and (subject.lower_ in ("this", "that") or subject.lower_ == "name"
                and any(c.dep_ == "poss" and c.lower_ in ("his", "her") for c in subject.children)))
            called = tok.dep_ in ("oprd", "pobj") and verb.lemma_.lower() in ("call", "name", "know", "dub") and any(
                c.dep_ == "nsubjpass" and c.lower_ in ("it", "he", "she") for c in verb.children)
            if tok.pos_ != "PROPN" or not tok.text[:1].isupper() or not (it_is or called):
                continue
            name = " ".join(t.text for t in tok.subtree if t.pos_ == "PROPN" and t.is_alpha)
            before = [o for o in mentions if o.token < tok.i and o.form in ("indefinite", "definite") and
                      not o.names and o.kind in ("person", "creature", "robot", "animal") and o.base != "group"]
            if name and before:
                before[-1].names = [name]

    def _nowhere(self, mentions: list[Mention]) -> None:
        """"But Nak is nowhere to be seen", "The girl is nowhere to be found": the text says it is not there."""
        for m in mentions:
            tok = self.doc[m.token]
            if m.form != "pronoun" and tok.dep_ == "nsubj" and tok.head.lemma_ == "be" and any(
                    c.lower_ == "nowhere" for c in tok.head.children):
                m.appearance = False

    def _owner_without_apostrophe(self, tok) -> bool:
        """"Close up- boys same shoes from earlier", "boys shoes walking towards Grace's": a plural-looking noun with
        no article right before a garment or a body part is one known character's, the apostrophe left out."""
        info = noun_info(tok)
        # ("my mums hands": a relation with its possessive word is one person too)
        related = _singular(tok) in lexicon.RELATION_NOUNS and any(
            c.dep_ == "poss" and c.tag_ == "PRP$" and c.i == tok.i - 1 for c in tok.children)
        if tok.tag_ != "NNS" or info is None or info.kind not in ("person", "animal") or any(
                c.dep_ in ("det", "nummod") or c.dep_ == "poss" and not related for c in tok.children) or \
                tok.i > 0 and tok.doc[tok.i - 1].lower_ in _ARTICLE_BLOCKERS and not related:
            return False
        nxt = tok.i + 1
        if nxt < len(tok.doc) and tok.doc[nxt].lower_ in ("same", "own", "little", "left", "right"):
            nxt += 1
        return nxt < len(tok.doc) and (tok.doc[nxt].lower_ in attributes.CLOTHING_WORDS or
                                       tok.doc[nxt].lower_ in _PERSONAL_PARTS or tok.doc[nxt].lower_ == "legs")

    def _aliases(self, mentions: list[Mention]) -> None:
        """"He presents himself as “Keanu Tana”", "She introduces herself as Mara", "calls himself Ace": the name
        the subject goes by from now on (a mention of that name later is the same character)."""
        by_token = {m.token: m for m in mentions}
        for tok in self.doc:
            verb = tok.head
            if tok.lower_ not in ("himself", "herself") or tok.dep_ != "dobj" or \
                    verb.lemma_.lower() not in ("present", "introduce", "call", "name", "announce"):
                continue
            named = next((c for prep in verb.children if prep.dep_ == "prep" and prep.lower_ == "as"
                          for c in prep.children if c.dep_ == "pobj"), None) or \
                next((c for c in verb.children if c.dep_ in ("oprd", "xcomp") and c.pos_ == "PROPN"), None)
            if named is None or named.pos_ != "PROPN":
                continue
            words = [t.text for t in named.subtree if t.pos_ == "PROPN" and t.is_alpha]
            subject = self._subject_of(verb)
            if words and subject is not None and subject.i in by_token:
                by_token[subject.i].aliases.append(" ".join(words))
            if named.i in by_token and by_token[named.i] is not by_token.get(subject.i if subject is not None
                                                                           else -1):
                by_token[named.i].appearance = False

    def _speaker_portrait(self, mentions: list[Mention]) -> None:
        """'Evan responding: "..." Young man in contemplative pose, ...': after a speaker's quoted line, the bare
        description that follows (no article) pictures the speaker."""
        speaker = next((m for m in mentions if m.token in self.speaker_tokens and m.names), None)
        quotes = [t.i for t in self.doc if t.text in ('"', "”", "“")]
        if speaker is None or len(quotes) < 2:
            return
        for m in mentions:
            if m.token > quotes[1] and m.form in ("definite", "indefinite") and not m.names and \
                    _determiner(self.doc[m.token]) is None and not m.collective:
                if self.doc[m.token].left_edge.i == quotes[1] + 1:
                    m.names = list(speaker.names)
                    speaker.attrs.extend(a for a in m.attrs if a not in speaker.attrs)
                break

    def in_prompt(self, index: int) -> int:
        """Index in the prompt of character ``index`` of the parsed text."""
        return self.origin[index] if self.origin is not None else index

    @staticmethod
    def _cast_noun(tok) -> bool:
        """"The characters never look into the camera", "the main characters": everyone in the story, like "they"."""
        if tok.lower_ == "subjects":
            # a shot caption's "subjects" ("Behind subjects, sky appears", "the subjects recede"), not "There are
            # two main subjects in the video"
            return tok.tag_ == "NNS" and not any(c.dep_ == "nummod" or c.dep_ == "amod" and c.lower_ not in
                                                 lexicon.LOCATION_PREPS for c in tok.children) and all(
                c.lower_ in ("the", "both") for c in tok.children if c.dep_ in ("det", "predet"))
        return tok.lower_ == "characters" and any(c.dep_ == "det" and c.lower_ == "the" for c in tok.children)

    @staticmethod
    def _owner_pronoun(tok) -> bool:
        """"his ear", "their hair": the owner of a body part, clothing or a held thing takes part in the scene
        (a relation's owner, "her son", does not by that alone)."""
        if tok.tag_ != "PRP$" or tok.lower_ not in ("his", "her", "their") or tok.dep_ != "poss":
            return False
        owned = [tok.head, tok.doc[tok.i + 1]] + [c for c in tok.head.children if c.dep_ == "compound"]
        return tok.head.pos_ != "PROPN" and not any(
            t.lemma_.lower() in lexicon.RELATION_NOUNS or t.lower_ in lexicon.PAIR_RELATIONS or noun_info(t)
            for t in owned)

    def _names_missed(self, mentions: list[Mention], index_of_token: dict[int, int], sent_of) -> list[Mention]:
        """Names the parse hid: a name the story knows wherever it stands ("wheels Tom cat-parcel"), and a
        capitalised word before a character noun ("Spike bulldog's silhouette": a bulldog named Spike)."""
        spans = [(m.start, m.end) for m in mentions]
        covered = {t.i for t in self.doc if any(s <= t.idx < e for s, e in spans)} | set(index_of_token)
        # a one-word name found in this prompt is a name at each of its places ("Romeo and Juliet lock eyes ...
        # Romeo's gaze fixed on Juliet")
        names_here = self.known_names | {n.lower() for m in mentions for n in m.names if " " not in n}
        name_tokens = {m.token for m in mentions if m.names} | {
            t.i for t in self.doc if t.text[:1].isupper() and t.lower_ in names_here}
        listed = self._listed_with_names(name_tokens)
        names_here |= {self.doc[i].lower_ for i in listed}
        added = False
        for tok in self.doc:
            lower = tok.lower_
            if tok.i not in covered and tok.is_alpha and tok.text.islower() and lower in self.known_names and \
                    lower not in lexicon.CHARACTER_NOUNS and _determiner(tok) is None and \
                    not any(c.dep_ in ("amod", "compound") for c in tok.children) and (
                    tok.dep_ in ("nsubj", "dobj") or tok.dep_ == "pobj" and tok.head.lower_ not in ("with", "of", "in")):
                # "Pan- upwards to reveal grace holding her drink": a name the story knows, written in lower case
                mentions.append(Mention(start=tok.idx, end=tok.idx + len(tok.text), surface=tok.text, form="name",
                                        names=[tok.text], token=tok.i, sentence=sent_of.get(tok.i, 0),
                                        action=self._action(tok)))
                added = True
                continue
            if tok.i in covered or not tok.text[:1].isupper() or not tok.is_alpha or lower in _TITLE_WORDS or \
                    _camera_word(tok) or tok.pos_ == "ADP" or _in_a_depiction(tok) or \
                    lower in lexicon.PRONOUNS or lower in lexicon.CHARACTER_NOUNS or lower in lexicon.LOCATION_NOUNS \
                    or lower in _ARTICLE_BLOCKERS or lower in _HEADING_FUNCTION_WORDS or lower in _ADVERB_WORDS or \
                    lower in _CONJUNCTIONS:
                continue
            nxt = tok.doc[tok.i + 1] if tok.i + 1 < len(tok.doc) else None
            titled = False
            if nxt is not None and nxt.lower_ == "the" and tok.i + 2 < len(tok.doc) and \
                    tok.doc[tok.i + 2].tag_ == "NN" and noun_info(tok.doc[tok.i + 2]) is not None and \
                    noun_info(tok.doc[tok.i + 2]).kind in ("animal", "creature", "robot"):
                nxt, titled = tok.doc[tok.i + 2], True  # "Ferdinand the frog is perched ...": a frog named Ferdinand
            noun = noun_info(nxt) if nxt is not None and nxt.text[:1].islower() else None
            j = tok.i - 1
            while j >= 0 and tok.doc[j].tag_ in ("JJ", "RB", "NNP", "HYPH", "VBN", "``", "''"):
                j -= 1
            if tok.ent_type_ in ("NORP", "LANGUAGE", "DATE", "TIME") or lower in lexicon.COLORS or j >= 0 and (
                    tok.doc[j].lower_ in ("a", "an") or tok.doc[j].lower_ == "the" and j < tok.i - 1):
                noun = None  # "a German shepherd", "a slightly overweight Black adult man", 'a "Good guy"', "the
                # white Miniature Schnauzer puppy"
            given = noun is not None and noun.kind != "vehicle" and (tok.tag_ == "NNP" or not tok.is_sent_start or titled)
            if not given and lower not in names_here and tok.i not in listed and \
                    not _fragment_subject(tok, self._given_name(tok) or tok.ent_type_ in ("", "PERSON") and
                                          self._sexed_name(tok)) and \
                    not _letter_name(tok):
                continue
            if given and nxt.i in index_of_token:
                target = mentions[index_of_token[nxt.i]]
                if not target.names:
                    target.names.insert(0, tok.text)
                    target.surface, target.form, target.start = tok.text, "name", tok.idx
                continue
            info = noun or lexicon.NounInfo("person", "person")
            mentions.append(Mention(start=tok.idx, end=tok.idx + len(tok.text), surface=tok.text, form="name",
                                    kind=info.kind, base=info.base, gender=info.gender, names=[tok.text],
                                    heads=[nxt.lemma_.lower()] if noun else [], token=tok.i,
                                    sentence=sent_of.get(tok.i, 0), action=self._action(tok)))
            added = True
        if added:
            mentions.sort(key=lambda m: m.token)
            index_of_token.clear()
            index_of_token.update({m.token: i for i, m in enumerate(mentions)})
        return mentions

    def _listed_with_names(self, name_tokens: set[int]) -> set[int]:
        """"Anna, Elsa, Kristoff, Olaf, and Mattias embark ...": capitalised words listed (three or more, by
        commas and "and") with a name are names too, whatever the parser and NER made of each."""
        doc, out, i = self.doc, set(), 0
        capital = lambda t: t.is_alpha and t.text[:1].isupper() and t.lower_ not in _ARTICLE_BLOCKERS and \
            t.lower_ not in lexicon.PRONOUNS and t.lower_ not in _TITLE_WORDS and \
            not (t.tag_ in ("RB", "RBR", "RBS", "IN", "UH", "WRB") and t.ent_type_ != "PERSON")  # "Soon, Kaji and Peter"
        while i < len(doc):
            if not capital(doc[i]):
                i += 1
                continue
            run, j = [i], i + 1
            while j < len(doc):
                k = j
                if doc[k].text == ",":
                    k += 1
                if k < len(doc) and doc[k].lower_ in ("and", "&"):
                    k += 1
                if k == j or k >= len(doc) or not capital(doc[k]):
                    break
                run.append(k)
                j = k + 1
            pair = len(run) == 2 and doc[run[0] + 1].lower_ in ("and", "&") and all(
                doc[r].ent_type_ not in ("GPE", "LOC", "FAC") for r in run)  # "Romeo and Juliet lock eyes"
            if (len(run) >= 3 or pair) and any(r in name_tokens for r in run):
                out.update(r for r in run if r not in name_tokens and doc[r].lower_ not in lexicon.LOCATION_NOUNS)
            i = run[-1] + 1
        return out

    def _members_named_here(self, mentions: list[Mention], index_of_token: dict[int, int]) -> list[Mention]:
        """"Two brothers ...: Luis, ... and Mateo": when the sentence goes on to name or describe the members,
        they are the characters and the numbered group introduces nobody."""
        keep = []
        for m in mentions:
            if m.form == "group" and m.newcomer:
                members = [o for o in mentions if o.sentence == m.sentence and o.token > m.token
                           and o.form not in ("pronoun", "group") and o.kind == m.kind]
                colon = members and any(t.text == ":" for t in self.doc[m.token: members[0].token])
                if len(members) >= m.group_size or colon:
                    continue  # "Two brothers unload crates: Luis, ..., and Mateo"
            keep.append(m)
        if len(keep) != len(mentions):
            index_of_token.clear()
            index_of_token.update({m.token: i for i, m in enumerate(keep)})
        return keep

    def _subject_of(self, verb):
        node = verb
        for _ in range(3):
            for c in node.children:
                if c.dep_ in ("nsubj", "nsubjpass"):
                    return c
            if node.dep_ in ("advcl", "xcomp", "conj", "acl") and node.head.i != node.i:
                node = node.head
            else:
                break
        return None

    def _noun_mention(self, tok, chain, sent_of) -> Mention | None:
        doc = self.doc
        if tok.lemma_.lower() == "character" and len(chain) == 1 and not any(
                c.dep_ in ("amod", "compound", "det", "nummod") for c in tok.children) and any(
                c.dep_ == "poss" and c.pos_ in ("NOUN", "PROPN") for c in tok.children):
            return None  # "Shows friend's character", "the boy's character": who someone is, not someone else
        heads, names, attrs = [], [], []
        kind, base, gender, age = None, None, None, None
        name_token = None
        for t in chain:
            if self.is_name(t):
                names.append(self._name_text(t))
                name_token = name_token or t
                attrs.extend(a for a in self.attributes(t) if a not in attrs)
                titled = noun_info(t) if self._title_case_name(t) else None
                if titled is not None:  # "the Evil Queen" is a woman, "the White Rabbit" a rabbit
                    heads.append(t.lemma_.lower())
                    if kind is None:
                        kind, base, gender = titled.kind, titled.base, titled.gender
                for c in t.children:
                    # "puppy Max" (compound), "The kitten Biscuit" (the tagger's adjective): what the name names
                    if c.dep_ in ("compound", "amod") and c.i < t.i and (c.lower_ in _TITLE_WORDS or noun_info(c)) and \
                            (c.dep_ == "compound" or c.i == t.i - 1 and noun_info(c) is not None):
                        heads.append(c.lower_)
                        info = noun_info(c)
                        if info and kind is None:
                            kind, base, gender = info.kind, info.base, info.gender
                continue
            info = self.character_info(t)
            if info is None:
                continue
            heads.append(t.lemma_.lower())
            if kind is None or (base in ("person", "teenager") and info.base not in ("person",)):
                kind = info.kind if kind is None else kind
                base = info.base if base in (None, "person", "teenager") else base
            gender = gender or info.gender
            age = age or info.age
            attrs.extend(a for a in self.attributes(t) if a not in attrs)
        for t in chain:
            if t.lemma_.lower() in ("character", "figure") and kind == "person" and base == "person":
                kinds = [(c, noun_info(c)) for c in t.lefts if c.dep_ == "compound" and c.pos_ == "NOUN"]
                kinds = [(c, info) for c, info in kinds if info is not None and info.kind != "person"]
                if kinds:  # "Simon, a secondary robot character": a robot, what "the two robots" counts
                    kind, base = kinds[-1][1].kind, kinds[-1][1].base
                    heads.insert(0, kinds[-1][0].lemma_.lower())
        given_name: list = []
        if name_token is None:
            # "Tom cat", "Jerry mouse": a capitalised proper noun right before a character noun is its name
            for t in chain:
                given = [c for c in t.lefts if c.dep_ == "compound" and c.pos_ == "PROPN" and c.text[:1].isupper()
                         and c.lower_ not in _TITLE_WORDS and c.lower_ not in lexicon.CHARACTER_NOUNS
                         and c.i not in self.non_name_tokens and c.lower_ not in _CONJUNCTIONS]
                if given and self.character_info(t) is not None:
                    names.append(_joined(given))
                    given_name = given
                    attrs = [a for a in attrs if a not in {c.text for c in given} and a != names[-1]]
                    break
        if not names:  # "A young girl named Luna discovers ...": the name given right after the noun is its name
            named = next((o for t in chain for c in t.children if c.dep_ == "acl" and c.lemma_ in ("name", "call")
                          for o in c.children if o.dep_ in ("oprd", "dobj", "attr") and o.pos_ == "PROPN"
                          and o.text[:1].isupper()), None)
            if named is not None and self.character_info(chain[0]) is not None:
                names.append(named.text)
        if kind is None:
            kind, base = "person", "person"
        sex = next((_SEX_WORDS[c.lower_] for t in chain for c in t.lefts if c.lower_ in _SEX_WORDS), None)
        if kind == "person" and sex and gender in (None, sex):
            gender = sex  # "a male colleague", "the female detective"
            base = lexicon.BASE_OF_SEX[sex] if base == "person" else base
        for i, n in enumerate(names):
            first, _, rest = n.partition(" ")
            if first.lower() in _NAME_AGE_WORDS and rest.lower() in self.known_names:
                names[i] = rest  # "Young Mary" is the story's Mary
                if first.lower() not in attrs:
                    attrs.append(first.lower())
        if name_token is not None:
            attrs = [a for a in attrs if a.lower() not in {w.lower() for n in names for w in n.split()}]
        head_token = chain[0]
        for a in attrs:
            group = attributes.age_group(a)
            if group:
                age = group if age in (None, "adult") or group != "adult" else age
        det = _determiner(head_token)
        poss = next((c for c in head_token.children if c.dep_ == "poss"), None)
        if poss is None:
            for t in chain:
                for c in t.children:
                    if c.dep_ == "compound" and noun_info(c) and poss is None:
                        poss = next((x for x in c.children if x.dep_ == "poss"), None)
        if poss is None and head_token.dep_ == "conj" and head_token.lower_ in lexicon.RELATION_NOUNS and \
                head_token.head.lower_ in lexicon.RELATION_NOUNS and _determiner(head_token) is None:
            # "his Aunt and Uncle", "her mother and father": the second relation is the same one's
            poss = next((x for x in head_token.head.children if x.dep_ == "poss"), None)
        modifiers = {c.lower_ for c in head_token.children if c.dep_ in ("amod", "det", "nummod", "advmod")}
        det_word = det.lower_ if det is not None else ""
        # "Second crow puts heart in jar": a shot list's count of the story's crows (or the next one), no article
        counted = not det_word and head_token.tag_ == "NN" and poss is None and bool(modifiers & set(_ORDINALS))
        newcomer = det_word == "another" or bool(modifiers & (lexicon.NEWCOMER_MARKERS - {"other"})) and \
            det_word in ("a", "an", "another", "") and not counted or "other" in modifiers and not det_word and \
            head_token.tag_ == "NN" and poss is None  # "Reaction shot- other boy with baseball cap frowning"
        other = "other" in modifiers and det_word in ("the", "this", "that")
        ordinal = next((_ORDINALS[w] for w in modifiers if w in _ORDINALS), 0) if det_word == "the" or counted else 0
        same = bool(modifiers & lexicon.SAME_MARKERS) and det_word in ("the", "this", "that") and not ordinal
        if names and (det is None or det_word in ("the",) and (head_token.pos_ == "PROPN" or given_name)):
            form = "name"
        elif det_word in ("a", "an", "another", "some", "one") or not det_word and any(
                c.dep_ == "nummod" and c.lower_ == "one" for c in head_token.children) or \
                head_token.lower_ in _SOMEONE:
            form = "indefinite"  # also "One man wearing black suit, playing a piano", "Someone was on the path"
        else:
            form = "definite"
        if form == "name" and det_word in ("a", "an"):
            form = "indefinite"
        weak = False
        if heads and set(heads) <= {"machine"} and not names:
            weak = True  # "the jammed machine": only a robot the story already has
        elif kind == "vehicle" and not names:
            # a vehicle is a character when it acts ("a red muscle car tears through"), else only if known
            acting = (head_token.dep_ == "nsubj" or _misparsed_verb(head_token)) and bool(
                attrs or head_token.lemma_.lower() in self.known_heads or
                head_token.dep_ == "nsubj" and _vehicle_moves(head_token.head))
            if not acting and not set(heads) & self.known_heads:
                return None
            weak = not acting
        if name_token is not None:
            span_tok = name_token
            start = min(t.idx for t in [span_tok] + [c for c in span_tok.children if c.dep_ == "compound"
                                                      and c.pos_ == "PROPN" and c.i < span_tok.i
                                                      and not _camera_word(c)])
            # (a title before the name is part of the span, "Prince Charming", not of the name)
            roles = [c for c in span_tok.children if c.dep_ == "compound" and c.pos_ == "NOUN" and c.i < span_tok.i
                     and c.lower_ in heads and not _camera_word(c)]
            if roles:
                start = min(start, roles[0].idx)  # "paranormal investigator Ravi": the role names him as well
            end = span_tok.idx + len(span_tok.text)
            described = next((c for c in span_tok.children if c.dep_ == "appos" and c.i > span_tok.i), None)
            if described is not None and self.in_prompt(span_tok.idx) in self.bare_appositions:
                end = described.idx + len(described.text)  # "Pip the hedgehog": one phrase, as written
            if span_tok.dep_ == "appos" and span_tok.head.i < span_tok.i and \
                    span_tok.head in chain:
                start = span_tok.head.idx  # "a young painter, [character1], ...": the noun and its tag
            surface = names[0]
        else:
            start, end = head_token.idx, head_token.idx + len(head_token.text)
            surface = _phrase(head_token, include_of=False)
            sex_words = [c for c in head_token.lefts if c.lower_ in _SEX_WORDS and c.dep_ in ("amod", "compound")]
            if sex_words:
                start = min(start, sex_words[0].idx)  # "the female character": the word that says who it is
            if given_name:
                start = min(start, min(c.idx for c in given_name))
        relation = None
        possessor_pronoun = possessor_token = None
        if poss is not None:
            for h in heads:
                if h in lexicon.RELATION_NOUNS:
                    relation = h
                    break
            if relation and "first" in modifiers | {c.lower_ for c in head_token.lefts}:
                relation = f"first {relation}"  # "her first boyfriend": a past one, not her later fiance
            if poss.tag_ == "PRP$":
                possessor_pronoun, possessor_token = poss.lower_, poss.i
        protagonist = any(h in lexicon.PROTAGONIST_NOUNS for h in heads)
        introduced = any(t.i != head_token.i and any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in t.children)
                         for t in chain)
        mention = Mention(
            introduced=introduced, start=start, end=end, surface=surface, form=form, kind=kind, base=base or "person", gender=gender,
            age=age, heads=heads, names=names, attrs=attrs, newcomer=newcomer, same=same, other=other,
            relation=relation, possessor_pronoun=possessor_pronoun, possessor_token=possessor_token, weak=weak,
            action=self._action(head_token),
            token=head_token.i, sentence=sent_of.get(head_token.i, 0),
            clause_subject=self._clause_subject(head_token), protagonist=protagonist, ordinal=ordinal, counted=counted,
            entrance=head_token.dep_ == "nsubj" and head_token.head.lemma_.lower() in _ENTRANCE_VERBS,
            bare=det is not None and self.in_prompt(det.idx) == self.in_prompt(det.idx + len(det.text) + 1))
        if poss is not None and poss.tag_ != "PRP$":
            mention.possessor_index = -poss.i - 1  # a token index, turned into a mention index later
        if head_token.dep_ == "poss" and head_token.head.pos_ == "NOUN":
            mention.possessed = head_token.head.lemma_.lower()
        return mention

    @staticmethod
    def _everyone(tok) -> bool:
        """"Ben ends up saving everyone", "clears everyone from the house": everyone the story has there, like "they";
        not "everyone in the café" (a crowd the prompt places), nor "everyone else"."""
        return tok.lower_ in ("everyone", "everybody") and tok.dep_ in ("nsubj", "nsubjpass", "dobj", "pobj") and \
            not any(c.dep_ in ("prep", "amod", "advmod", "acl", "relcl") for c in tok.children)

    def _pronoun_mention(self, tok, sent_of) -> Mention | None:
        word = tok.lower_
        owner = tok.tag_ == "PRP$"
        if word in ("both", "characters", "subjects", "two", "everyone", "everybody") or word in CAST_NOUNS or \
                word in _CAST_NUMBERS:
            # ("two": "The two are leaning over the table", "The two walk west"; "The trio escapes ...")
            gender = "p"
        else:
            gender = lexicon.POSSESSIVE_DETERMINERS[word] if owner else lexicon.PRONOUNS[word]
        if word in ("it", "itself"):
            if tok.dep_ not in ("nsubj", "dobj", "pobj", "dative", "nsubjpass"):
                return None
            head = tok.head
            if tok.dep_ == "nsubj" and head.lemma_ in ("be", "seem", "rain", "snow", "take", "get") and \
                    any(c.dep_ in ("acomp", "attr", "ccomp", "xcomp") for c in head.children):
                return None
        pronoun = {"m": "he", "f": "she", "n": "it", "p": "they"}[gender]
        if pronoun == "they" and word in ("they", "them", "themselves") and self._things_before(tok):
            return None  # "she will walk towards the double doors and they will open": the doors
        start = tok.idx
        if word in ("them", "us") and tok.dep_ == "pobj" and tok.head.lower_ == "of" and \
                tok.head.head.lower_ in ("two", "three", "four", "five", "both", "all", "each"):
            start = tok.head.head.idx  # "The three of them": the whole phrase names them
        mention = Mention(start=start, end=tok.idx + len(tok.text), surface=tok.text, form="pronoun",
                          kind="person" if gender in ("m", "f") else "", base="", gender=gender if gender in
                          ("m", "f") else None, pronoun=pronoun, token=tok.i, sentence=sent_of.get(tok.i, 0),
                          clause_subject=self._clause_subject(tok) if tok.dep_ != "nsubj" and not owner else None,
                          action=self._action(tok), weak=(pronoun == "it"),
                          owns=_owned_noun(tok) if owner else "",
                          owner_subject=self._clause_subject(tok) if owner and tok.head.dep_ == "dobj" else None)
        if pronoun == "it":
            mention.it_antecedent = self._nearest_noun_before(tok)
        if tok.lower_ == "them" and tok.dep_ == "dobj" and not any(
                t.tag_ in ("NNS", "NNPS") for t in tok.sent if t.i < tok.i):
            mention.unseen_them = True
        if pronoun in ("he", "she") and tok.dep_ == "nsubj":
            verbs = [tok.head] + [c for c in tok.head.children if c.dep_ == "advcl" and c.tag_ == "VBG"]
            mention.object_names = [o.text for v in verbs for o in v.children
                                    if o.dep_ == "dobj" and o.pos_ == "PROPN" and o.text[:1].isupper()]
        return mention

    def _things_before(self, tok) -> bool:
        """The nearest plural noun before "they" in its sentence names things, with no one named between, no
        plural of characters before them in the sentence ("A crew of sailors hoists the sails, ..."), and "they"
        does nothing only people do: "walks towards the double doors and they will open"."""
        plural = next((t for t in reversed(list(tok.sent[: tok.i - tok.sent.start]))
                       if t.tag_ in ("NNS", "NNPS")), None)
        if plural is None or plural.pos_ != "NOUN" or plural.dep_ not in ("nsubj", "nsubjpass", "dobj", "pobj", "conj") or \
                noun_info(plural) is not None or _singular(plural) not in lexicon.THING_NOUNS | lexicon.DEPICTION_NOUNS or \
                _singular(plural) in self.known_heads or plural.i in self.heading_tokens or \
                tok.head in plural.ancestors:
            return False  # ("With torches in hand, they descend": their own clause's torches)
        if any(t.tag_ in ("NNS", "NNPS") and noun_info(t) is not None or t.lemma_.lower() in _COLLECTIVE_NOUNS or
               t.dep_ == "conj" and (t.pos_ == "PROPN" or noun_info(t) is not None) for t in tok.sent if t.i < tok.i):
            return False
        between = tok.doc[plural.i + 1: tok.i]
        if any(t.pos_ == "PROPN" or noun_info(t) is not None or t.lower_ in lexicon.PRONOUNS and t.lower_ != "it"
               for t in between):
            return False
        return not (tok.dep_ == "nsubj" and tok.head.lemma_.lower() in _PERSON_ONLY_VERBS)

    def _nearest_noun_before(self, tok) -> int | None:
        sent = tok.sent
        own_subject = self._clause_subject(tok)
        for t in reversed(list(sent[: tok.i - sent.start])):
            if t.pos_ in ("NOUN", "PROPN") and t.dep_ in ("nsubj", "nsubjpass", "dobj", "appos") \
                    and t.i != own_subject and t.tag_ not in ("NNS", "NNPS") \
                    and not (t.dep_ == "appos" and t.head.i == own_subject):
                return t.i
        if tok.dep_ not in ("dobj", "pobj"):
            return None
        # "Connie catches you looking at the drink and lifts it up": a thing named after a preposition; "A girl
        # leaves her scarf on the bench. Bolt reaches for it.": the thing the sentence before was about
        earlier = [t for t in reversed(list(sent[: tok.i - sent.start])) if t.dep_ == "pobj" and
                   t.head.head.pos_ == "VERB"]  # (not "a tired woman with a buzz cut, asks it": her look)
        if tok.sent.start > 0:
            earlier += [t for t in reversed(list(self.doc[tok.sent.start - 1].sent))
                        if t.dep_ in ("nsubj", "nsubjpass", "dobj")]
        for t in earlier:
            if t.pos_ in ("NOUN", "PROPN") and t.tag_ not in ("NNS", "NNPS"):
                return t.i if t.pos_ == "NOUN" and noun_info(t) is None and t.i not in self.tags else None
        return None

    def _group_mention(self, tok, sent_of) -> Mention | None:
        if _viewpoint_owner(tok):
            return None  # "from parents' fleeing POV"
        lemma = _singular(tok)
        info = lexicon.CHARACTER_NOUNS.get(lemma) or _GROUP_NOUNS.get(tok.lower_)
        if info is None and tok.text[:1].isupper() and tok.is_alpha and not tok.is_sent_start and \
                tok.i not in self.heading_tokens and lemma not in lexicon.NOT_CHARACTERS | lexicon.THING_NOUNS | \
                lexicon.LOCATION_NOUNS and tok.ent_type_ not in ("NORP", "GPE", "LOC", "ORG", "DATE") and \
                _determiner(tok) is not None and _determiner(tok).lower_ == "the":
            # "the ever-loyal Minions", "the original Emotions": a capitalised plural is a named band of characters
            return self._collective_mention(tok, lexicon.NounInfo("person", "person"), "the", sent_of)
        if info is None and self.classify_unknown is not None and tok.pos_ == "NOUN" and tok.tag_ == "NNS" and \
                lemma.replace("-", "").isalpha() and lemma not in lexicon.NOT_CHARACTERS | lexicon.THING_NOUNS | \
                lexicon.LOCATION_NOUNS and self._classifiable_role(tok) and \
                not (tok.dep_ == "dobj" and any(c.dep_ == "poss" for c in tok.children)):
            # "The enforcers move with cold efficiency", "the two rovers park": an unlisted plural noun, asked as its
            # singular is ("a hooded enforcer"); not what someone has ("embrace their destinies")
            phrase = " ".join(self._compound_phrase(tok).split()[:-1] + [lemma])  # ("beetle bot")
            info = self.classify_unknown(lemma, phrase, tok.dep_ in ("dobj", "pobj"), self._person_evidence(tok))
        if lemma == "people" and tok.lower_ == "people":
            info = lexicon.NounInfo("person", "person")  # a crowd unless it acts (``_collective_mention``)
        elif tok.lower_ == "animals" and any(c.dep_ == "det" and c.lower_ == "the" for c in tok.children):
            info = lexicon.NounInfo("animal", "animal")  # "All of the animals open their eyes": the story's animals
        elif info is None or lemma in lexicon.NOT_CHARACTERS and tok.lower_ not in _GROUP_NOUNS:
            return None
        # ("all the fairies": the article, not "all")
        det = next((c for c in tok.children if c.dep_ == "det"), None) or \
            next((c for c in tok.children if c.dep_ == "predet"), None)
        if det is None and _misparsed_verb(tok):  # "The dwarfs cheer": "the" hangs on the verb read as a noun
            det = next((c for c in tok.head.children if c.dep_ == "det" and c.i < tok.i), None)
        num = next((c for c in tok.children if c.dep_ == "nummod"), None)
        if num is None and _misparsed_verb(tok):  # "Three young chicks approach": the number hangs on the verb
            num = next((c for c in tok.head.children if c.dep_ == "nummod" and c.i < tok.i), None)
        det_word = det.lower_ if det is not None else ""
        vague = next((c for c in tok.children
                      if c.dep_ in ("nummod", "amod") and c.lower_ in ("few", "several", "many")), None)
        if vague is not None and det_word in ("", "a"):
            det_word = vague.lower_  # "A few priests ... are praying", "Several men wait": no number, a group
            num = None if num is not None and num.i == vague.i else num
        if det is None and num is not None and num.i > 0 and tok.doc[num.i - 1].lower_ in ("the", "these", "those"):
            det_word = "the"  # "the two women": the parser hangs "the" on the number
        introduces = not det_word and num is not None and num.lower_ in _GROUP_SIZE and (tok.dep_ in (
            "nsubj", "nsubjpass", "dobj", "appos", "ROOT") or _misparsed_verb(tok) or
            tok.dep_ == "pobj" and (tok.head.lower_ not in ("of", "like", "than") or _of_the_frame(tok)) or \
            tok.dep_ == "conj" and (noun_info(tok.head) is not None or tok.head.pos_ in (
            "VERB", "AUX"))) or \
            det_word in ("a", "an") and tok.lower_ in _GROUP_NOUNS and tok.dep_ != "appos"
        # ("a man in a yellow hat, a lady in a pink dress, and two other children": listed with the others)
        if det_word not in ("the", "both", "these", "those") and not introduces and not any(
                c.dep_ == "poss" for c in tok.children):
            return self._collective_mention(tok, info, det_word, sent_of) if num is None else None
        if any(_misparsed_verb(c) for c in tok.children):
            return None
        size = _GROUP_SIZE.get(num.lower_ if num is not None else det_word) or _GROUP_SIZE.get(tok.lower_)
        poss = next((c for c in tok.children if c.dep_ == "poss"), None)
        if not size and poss is not None and tok.lower_ in lexicon.PAIR_RELATIONS:
            # "her grandparents": two people, each related to her
            return Mention(start=tok.idx, end=tok.idx + len(tok.text), surface=_phrase(tok, include_of=False),
                           form="group", kind="person", base="person", heads=[lemma], group_size=2, token=tok.i,
                           sentence=sent_of.get(tok.i, 0), relation=tok.lower_,
                           possessor_pronoun=poss.lower_ if poss.tag_ == "PRP$" else None,
                           attrs=self.attributes(tok))
        if not size or det_word == "the" and not introduces and poss is None and \
                not ({lemma, info.base} & self.known_heads) and any(c.lower_ == "including" for c in tok.children):
            # "The four siblings, including Lucy, ...": a group the story had not shown, named by a member
            return self._collective_mention(tok, info, det_word, sent_of)
        members = next((c for of in tok.children if of.dep_ == "prep" and of.lower_ == "of" for c in of.children
                        if c.dep_ == "pobj" and c.tag_ == "NNS" and (noun_info(c) is not None or c.lower_ == "people")),
                       None)
        if tok.lower_ in _PAIR_WORDS and members is None and any(
                of.dep_ == "prep" and of.lower_ == "of" and any(c.dep_ == "pobj" for c in of.children)
                for of in tok.children):
            return None  # "a pair of reading glasses", "a pair of worrisome eyes": two things, no one
        end_tok = members if tok.lower_ in _PAIR_WORDS and members is not None else tok
        # "A couple of guards intercept him": two guards, named by the whole phrase
        if end_tok is not tok:
            info, lemma = noun_info(members) or lexicon.NounInfo("person", "person"), members.lemma_.lower()
        return Mention(start=tok.idx, end=end_tok.idx + len(end_tok.text), surface=_phrase(tok, include_of=False),
                       form="group", kind=info.kind, base=info.base, gender=info.gender, heads=[lemma],
                       group_size=size, token=tok.i, sentence=sent_of.get(tok.i, 0), weak=True,
                       newcomer=introduces, action=self._action(tok),
                       attrs=[a for a in self.attributes(tok) if num is None or a != num.text] if introduces else [])

    def _collective_noun(self, tok, sent_of, folded_members: set[int], mentions: list[Mention],
                         index_of_token: dict[int, int]) -> bool:
        """"A team of scientists", "the team", "a wolf pack", "the pack": a group word that acts or is named
        with its members is one character (the group), whose "they" and "their" follow. Adds the mention."""
        lemma = tok.lemma_.lower()
        if lemma not in _COLLECTIVE_NOUNS or tok.tag_ != "NN" or tok.i in self.heading_tokens:
            return False
        member = next((c for of in tok.children if of.dep_ == "prep" and of.lower_ == "of"
                       for c in of.children if c.dep_ == "pobj" and c.tag_ in ("NNS", "NNPS")), None)
        compound = next((c for c in tok.lefts if c.dep_ == "compound" and c.pos_ == "NOUN"), None)
        if member is not None and lemma == "group":
            return False  # "a group of firefighters": the firefighters are the mention (``_collective_mention``)
        described = member if member is not None else compound
        info = None
        if described is not None:
            info = noun_info(described) or lexicon.CHARACTER_NOUNS.get(described.lemma_.lower())
            if info is None and self.classify_unknown is not None and described.lemma_.isalpha():
                info = self.classify_unknown(described.lemma_.lower())
            if info is None or info.kind not in ("person", "animal"):
                return False  # "a pack of cards", "a band of light"
            kind = info.kind
        else:
            kind = "animal" if lemma in ("pack", "flock", "herd") else "person"
        det = _determiner(tok)
        det_word = det.lower_ if det is not None else ""
        owned = any(c.dep_ == "poss" for c in tok.children)
        acting = tok.dep_ in ("nsubj", "nsubjpass") or _misparsed_verb(tok) or member is not None or (
            tok.dep_ in ("dobj", "appos", "pobj", "conj") and described is not None) or (
            tok.dep_ == "conj" and tok.head.dep_ in ("nsubj", "nsubjpass")) or (  # "Dominic and his team face"
            tok.dep_ == "dobj" and any(c.dep_ == "xcomp" and c.i > tok.i for c in tok.head.children))  # "forcing
        # the team to adapt"
        if not (det_word in ("a", "an", "the", "this", "that", "our") or owned) or not (
                acting or lemma in self.known_heads):
            return False
        if lemma in ("pack", "flock", "herd") and described is None and not (
                tok.dep_ in ("nsubj", "nsubjpass") or lemma in self.known_heads):
            return False  # "a pack on his back"
        end_tok = member if member is not None else tok
        heads = [lemma] + ([described.lemma_.lower()] if described is not None else [])
        if lemma in _TEAM_WORDS and "team" not in heads:
            heads.append("team")  # "his crew" is the team the story had
        mention = Mention(start=tok.idx if compound is None else compound.idx, end=end_tok.idx + len(end_tok.text),
                          surface=_phrase(tok, include_of=True), form="indefinite" if det_word in ("a", "an")
                          else "definite", kind=kind, base="group", heads=heads, token=tok.i,
                          sentence=sent_of.get(tok.i, 0), collective=True, action=self._action(tok),
                          attrs=[a for a in self.attributes(tok) if a.lower() not in heads])
        if member is not None:
            folded_members.add(member.i)
        index_of_token[tok.i] = len(mentions)
        mentions.append(mention)
        return True

    def _collective_mention(self, tok, info: lexicon.NounInfo, det_word: str, sent_of) -> Mention | None:
        """"The politicians engage in conversations", "a group of reporters approaches": a group of people or
        animals with no number that acts as a whole is one character (or, later, the members the story had)."""
        misparsed = _misparsed_verb(tok)
        place = tok.head if misparsed else tok  # where the parser put the phrase: the verb read as its noun
        head = place.head
        in_group_of = place.dep_ == "pobj" and head.lower_ == "of" and head.head.lemma_.lower() in \
            _COLLECTIVE_NOUNS and head.head.dep_ in ("nsubj", "nsubjpass", "dobj", "pobj", "appos")
        at_someone = (tok.head if tok.dep_ == "nsubj" else next(
            (c for c in tok.children if c.dep_ == "acl" and c.tag_ == "VBG"), None))
        at_someone = at_someone is not None and at_someone.lemma_.lower() in _AT_SOMEONE_VERBS and any(
            c.dep_ == "prep" and c.lower_ == "at" and any(
                o.dep_ == "pobj" and (o.lower_ in ("her", "him", "them", "me", "us") or o.pos_ == "PROPN" or
                                      noun_info(o) is not None) for o in c.children)
            for c in at_someone.children)  # (at someone, not "stare at their phones")
        if any(c.lower_ == "other" for c in tok.children) and not (in_group_of and head.head.dep_ == "nsubj") and \
                not at_someone:
            return None  # "the other passengers": the background around the characters (but "A group of the other
            # robots walk by, laughing" acts, and "The other kids laugh at her" turn on her)
        owned = any(c.dep_ == "poss" for c in tok.children)
        acting = (info.kind in ("person", "creature", "robot") and (det_word in ("the", "these", "those") or owned) or
                  info.kind == "animal" and det_word == "the" and tok.dep_ == "nsubj" or
                  (tok.lower_ == "people" and det_word in ("", "many", "some", "several", "few") or
                   info.kind in ("person", "creature", "robot") and tok.tag_ == "NNS" and
                   det_word in ("many", "some", "several", "few") or _bare_plural_acts(tok, info, det_word, owned)) and
                  tok.dep_ == "nsubj" and
                  not any(w.lower_ in ("background", "distance", "crowd") for w in tok.sent)) and (
            tok.dep_ in ("nsubj", "nsubjpass", "dobj") or misparsed and place.dep_ == "ROOT" or tok.dep_ == "conj" and (
                tok.head.dep_ in ("nsubj", "nsubjpass", "dobj") or tok.head.dep_ == "pobj" and
                tok.head.head.lower_ == "with")) and \
            not any(c.dep_ == "neg" for c in head.children)  # "the beekeepers are not in the frame"
        shown_doing = tok.dep_ == "pobj" and head.lower_ in ("on", "of") and not det_word and \
            any(c.dep_ == "acl" and c.tag_ == "VBG" for c in tok.children) and \
            not any(c.lower_ in ("background", "distance") for c in tok.subtree)
        # "Wide Shot on children eating their lunch and playing ...": what the shot shows them doing
        shown_doing = shown_doing or det_word in ("", "the") and not owned and tok.dep_ in (
            "ROOT", "appos", "conj", "nsubj", "dobj") and tok.tag_ in ("NNS", "NNPS") and \
            any(c.dep_ == "acl" and c.tag_ == "VBG" and c.i > tok.i for c in tok.children) and \
            not any(w.lower_ in ("background", "distance", "crowd") for w in tok.sent) and \
            not (tok.dep_ == "conj" and tok.head.dep_ == "pobj" and tok.head.head.lower_ in ("with", "of"))
        # "ducks holding each side, starting to fly", "the wolves watching with satisfaction": a shot's
        # plural subject, shown doing something
        told_to = owned and tok.dep_ == "pobj" and head.lower_ in ("to", "with", "toward", "towards") and \
            info.kind in ("person", "animal", "creature")
        # "Luna says goodbye to her new friends": the ones someone turns to are there
        told_to = told_to or tok.dep_ == "pobj" and head.lower_ in ("to", "toward", "towards") and \
            head.head.lemma_.lower() in _RUN_TO_VERBS and det_word in ("", "the", "some") and \
            info.kind in ("person", "animal", "creature")
        # "Sheru ran to nearby farmers and barked until they followed him": the ones someone runs to
        opposed = tok.dep_ == "pobj" and head.lower_ == "against" and det_word in ("", "the")
        # "in battle against terrifying creatures", "fight against monsters": the ones fought take part
        returning = det_word in ("", "more") and not owned and (
            _singular(tok) in self.group_heads or _singular(tok) in self.known_heads) and (
            tok.dep_ in ("nsubj", "nsubjpass", "dobj") or tok.dep_ == "pobj" and head.lower_ == "by") and \
            not any(c.lower_ == "other" for c in tok.lefts)
        # "Two soldiers drag a girl ..." then "held by soldiers", "Soldiers frozen in background": the same ones
        acted_on = not det_word and not owned and tok.dep_ == "dobj" and head.pos_ == "VERB" and \
            head.lemma_.lower() not in lexicon.DEPICTION_VERBS | _HANDLED_VERBS and \
            not any(c.dep_ == "amod" or c.dep_ == "nummod" for c in tok.children) and any(
                c.dep_ == "nsubj" and (c.pos_ == "PROPN" or noun_info(c) is not None) for c in head.children)
        # "Robinson punches orangutans in the forest": the ones a character does something to take part
        framed = tok.dep_ == "attr" and head.lemma_ == "be" and det_word in ("the", "these", "those") and any(
            c.dep_ == "nsubj" and c.lemma_.lower() in _FRAME_SUBJECTS for c in head.children)
        # "The second image should be the parents standing by the door": what the frame shows
        peers = owned and info.kind == "person" and _singular(tok) in lexicon.PEER_RELATIONS and \
            tok.dep_ in ("nsubj", "dobj", "pobj", "conj")
        # "Eleven looked at her friends": the others the story has with her
        recalled = det_word == "the" and not owned and _singular(tok) in self.individual_heads and not any(
            c.dep_ == "nummod" for c in tok.children)  # "Shot from behind the pigeons": the two the story has
        shot = head.head
        filmed = tok.dep_ == "pobj" and head.lower_ in ("on", "of") and (
            shot.lower_ in _FILMING_NOUNS or shot.lower_ == "up" and shot.i >= 2 and
            shot.doc[shot.i - 2].lower_ == "close") and det_word in ("the", "") and not owned
        # "Quick cut to a close-up on the kids", "Shot of the kids coming in-between some trees": whom the shot shows
        if info.kind not in ("person", "animal", "creature", "robot") or not (
                in_group_of or acting or shown_doing or opposed or returning or acted_on or told_to or recalled or
                framed or peers or filmed):
            return None  # (creatures: "the seven dwarfs gather around her", "the goblins attack")
        start = head.head.idx if in_group_of else tok.idx  # "a group of people": the whole phrase names them
        return Mention(start=start, end=tok.idx + len(tok.text), surface=_phrase(tok, include_of=False),
                       form="indefinite" if in_group_of else "definite", kind=info.kind, base="group",
                       heads=[_singular(tok)], token=tok.i, sentence=sent_of.get(tok.i, 0),
                       attrs=[a for a in self.attributes(tok) if a.lower() not in ("group", "team")],
                       collective=True, action=self._action(tok),
                       recalled=(recalled or peers) and not (in_group_of or acting or shown_doing or opposed or
                                                             returning or acted_on or told_to or framed))

    def _link_possessors(self, mentions: list[Mention], index_of_token: dict[int, int]) -> None:
        for m in mentions:
            if m.possessor_index is not None and m.possessor_index < 0:
                tok_i = -m.possessor_index - 1
                idx = index_of_token.get(tok_i)
                m.possessor_index = idx
                if idx is not None and m.relation is None:
                    # "the beekeeper's son" (relation) vs "the fisherman's hands" (not a mention at all)
                    for h in m.heads:
                        if h in lexicon.RELATION_NOUNS:
                            m.relation = h
                            break
                if idx is not None and m.relation is not None and (m.kind not in ("person", "animal") or
                                                                   not self._relation_acts_on_owner(m, mentions[idx])):
                    mentions[idx].appearance = False
        # "the beekeeper's son": the beekeeper is named as a relation's possessor, not seen in the scene
        for m in mentions:
            if m.possessor_index is not None and m.relation is not None and m.kind == "person" and \
                    not self._relation_acts_on_owner(m, mentions[m.possessor_index]):
                mentions[m.possessor_index].appearance = False

    def _relation_acts_on_owner(self, relation: Mention, owner: Mention) -> bool:
        """"The boy's father hugs him", "The girl's mother calls her over": the one the relation does something to
        is the possessor, who is in the scene after all."""
        tok = self.doc[relation.token]
        if tok.dep_ not in ("nsubj", "nsubjpass"):
            return False
        wanted = {"m": ("him",), "f": ("her",)}.get(owner.gender or "", ("him", "her"))
        objects = [c for c in tok.head.children if c.dep_ in ("dobj", "dative")] + [
            o for p in tok.head.children if p.dep_ == "prep" for o in p.children if o.dep_ == "pobj"]
        return any(o.lower_ in wanted and o.tag_ == "PRP" for o in objects)

    def _wearing_predicates(self, mentions: list[Mention], index_of_token: dict[int, int]) -> None:
        """"He wears a grey coat", "Now wearing a sequined jacket, she ...", "..., now bald" add attributes."""
        for tok in self.doc:
            if tok.pos_ == "ADJ" and tok.lower_ in _STATE_ADJECTIVES and tok.dep_ not in ("amod",):
                node = tok.head
                for _ in range(6):
                    if node.pos_ in ("VERB", "AUX") or node.head.i == node.i:
                        break
                    node = node.head
                subj = self._subject_of(node) if node.pos_ in ("VERB", "AUX") else None
                if subj is not None and subj.i in index_of_token:
                    target = mentions[index_of_token[subj.i]]
                    if tok.text not in target.attrs:
                        target.attrs.append(tok.text)
                continue
            if tok.lemma_.lower() not in _WEAR_VERBS | _DRESS_VERBS | _HOLD_VERBS or tok.pos_ not in ("VERB", "AUX"):
                continue
            if tok.dep_ in ("acl", "relcl") and tok.head.i in index_of_token:
                continue  # already read as the noun's own attribute
            subj = self._subject_of(tok)
            if subj is None or subj.i not in index_of_token:
                continue
            target = mentions[index_of_token[subj.i]]
            for phrase in self._worn(tok):
                if phrase not in target.attrs:
                    target.attrs.append(phrase)

    # -- scene context ----------------------------------------------------------------------------------
    def context(self) -> dict:
        text = self.doc.text
        lower = text.lower()
        time_of_day = next((w for w in lexicon.TIME_OF_DAY if re.search(rf"\b{re.escape(w)}\b", lower)), "")
        lighting = [w for w in lexicon.LIGHTING if re.search(rf"\b{re.escape(w)}\b", lower)]
        lighting = [w for w in lighting if not any(w != o and w in o for o in lighting)]
        location = ""
        for tok in self.doc:
            if tok.dep_ == "pobj" and tok.head.lower_ in lexicon.LOCATION_PREPS and (
                    tok.lemma_.lower() in lexicon.LOCATION_NOUNS or tok.ent_type_ in ("GPE", "LOC", "FAC")):
                location = _phrase(tok)
                break
        return {"location": location, "time_of_day": time_of_day, "lighting": ", ".join(lighting[:4])}
