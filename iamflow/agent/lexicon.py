"""Word lists the rules backend reads: which nouns name characters, which words are attributes or scene context.

A noun's entry says its coarse kind (person / animal / creature / robot / vehicle), the base used for registry
names (``man_3``, ``dog_1``) and, for people, a gender when the word carries one. Nouns not listed here are
classified by similarity to these lists (see ``rules.NounClassifier``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NounInfo:
    kind: str  # person | animal | creature | robot | vehicle
    base: str  # name stem in the registry: man, woman, person, boy, girl, dog, robot, car, ...
    gender: str | None = None  # "m" | "f" | None
    age: str | None = None  # child | young | adult | old, when the noun itself says it


def _people() -> dict[str, NounInfo]:
    table: dict[str, NounInfo] = {}
    gendered = {
        "m": {
            "man": ("man", "adult"), "gentleman": ("man", "adult"), "guy": ("man", "adult"),
            "boy": ("boy", "child"), "lad": ("boy", "young"), "husband": ("man", "adult"),
            "father": ("man", "adult"), "dad": ("man", "adult"), "son": ("boy", None), "brother": ("man", None),
            "grandfather": ("man", "old"), "grandpa": ("man", "old"), "uncle": ("man", "adult"),
            "nephew": ("boy", None), "king": ("man", None), "prince": ("man", None), "monk": ("man", None),
            "priest": ("man", None), "fisherman": ("man", None), "policeman": ("man", None),
            "fireman": ("man", None), "businessman": ("man", None), "cowboy": ("man", None),
            "boyfriend": ("man", None), "groom": ("man", "adult"), "bridegroom": ("man", "adult"),
            "waiter": ("man", None), "actor": ("man", None), "sir": ("man", None), "stallion": ("horse", None),
            "salesman": ("man", None), "gunman": ("man", None), "horseman": ("man", None),
            "old-timer": ("man", "old"), "widower": ("man", None), "schoolboy": ("boy", "child"),
            "fiance": ("man", None), "fiancé": ("man", None), "lord": ("man", None), "duke": ("man", None),
            "wizard": ("man", None),
            "sailorman": ("man", None), "postman": ("man", None), "watchman": ("man", None),
            "craftsman": ("man", None), "nobleman": ("man", None), "chairman": ("man", None),
            "grandson": ("boy", None), "stepfather": ("man", None), "male": ("man", None),
        },
        "f": {
            "woman": ("woman", "adult"), "lady": ("woman", "adult"), "girl": ("girl", "child"),
            "wife": ("woman", "adult"), "mother": ("woman", "adult"), "mom": ("woman", "adult"),
            "mum": ("woman", "adult"), "daughter": ("girl", None), "sister": ("woman", None),
            "grandmother": ("woman", "old"), "grandma": ("woman", "old"), "aunt": ("woman", "adult"),
            "niece": ("girl", None), "queen": ("woman", None), "princess": ("woman", None),
            "nun": ("woman", None), "waitress": ("woman", None), "actress": ("woman", None),
            "bride": ("woman", "adult"), "girlfriend": ("woman", None), "heroine": ("woman", None),
            "ballerina": ("woman", None), "policewoman": ("woman", None), "businesswoman": ("woman", None),
            "mistress": ("woman", None), "widow": ("woman", None), "schoolgirl": ("girl", "child"),
            "fiancee": ("woman", None), "fiancée": ("woman", None), "madam": ("woman", None),
            "witch": ("woman", None),
            "duchess": ("woman", None), "redhead": ("woman", None), "blonde": ("woman", None),
            "brunette": ("woman", None), "granddaughter": ("girl", None), "stepmother": ("woman", None),
            "housewife": ("woman", "adult"), "maid": ("woman", None), "goddess": ("woman", None),
            "empress": ("woman", None), "hostess": ("woman", None), "stewardess": ("woman", None),
            "seamstress": ("woman", None), "mare": ("horse", None), "cowgirl": ("woman", None),
            "female": ("woman", None),
        },
    }
    for gender, words in gendered.items():
        for word, (base, age) in words.items():
            if base == "horse":
                continue
            table[word] = NounInfo("person", base, gender, age)
    neutral_child = ["child", "kid", "toddler", "baby", "infant", "teenager", "teen", "youngster", "orphan",
                     "urchin", "youth", "adolescent", "newborn", "schoolchild", "pupil"]
    for word in neutral_child:
        table[word] = NounInfo("person", "child" if word not in ("teenager", "teen", "youth", "adolescent")
                               else "teenager", None, "child" if word not in ("teenager", "teen") else "young")
    neutral = """person individual figure stranger protagonist hero character people human adult elder senior
        detective inspector officer cop sheriff deputy soldier warrior knight samurai ninja pirate sailor captain
        pilot astronaut cosmonaut driver rider cyclist biker jogger runner athlete boxer fighter wrestler player
        coach trainer referee swimmer surfer skater skateboarder snowboarder skier climber hiker explorer traveler
        traveller tourist wanderer nomad refugee pilgrim doctor nurse surgeon paramedic medic scientist
        researcher professor teacher student scholar librarian lawyer judge politician president senator mayor
        chef cook baker butcher farmer gardener beekeeper shepherd herder rancher hunter fisher blacksmith
        carpenter mechanic engineer technician worker labourer laborer miner builder painter artist sculptor
        musician guitarist pianist violinist drummer singer dancer performer magician clown juggler acrobat
        writer author poet journalist reporter photographer filmmaker director actor model designer tailor
        merchant vendor seller shopkeeper shopper customer client patient guest host bartender barista cashier
        clerk accountant banker manager boss employee coworker colleague secretary assistant intern receptionist
        janitor cleaner guard bodyguard watchman keeper caretaker butler servant maid courier messenger
        mailman postman diver lifeguard firefighter ranger scout spy agent thief burglar robber bandit outlaw
        criminal prisoner convict inmate suspect victim witness hostage mercenary assassin gunslinger gangster
        thug punk hoodlum mobster henchman
        villain hacker programmer gamer teenager neighbour neighbor friend partner companion ally rival enemy
        lover spouse sibling twin parent grandparent cousin relative owner stranger newcomer visitor passenger
        commuter pedestrian bystander spectator onlooker priestess monk shaman healer sorcerer mage witch
        vampire zombie ghost warlock elf dwarf giant goblin orc troll fairy angel demon cyborg android
        survivor soldier general commander sergeant lieutenant admiral emperor ruler chieftain chief leader
        archer swordsman swordswoman fencer duelist hunter huntress tracker ranger guide porter sherpa
        fisherwoman lumberjack woodcutter logger miller weaver potter jeweler jeweller florist grocer
        barber hairdresser stylist makeup waiter waitress sommelier critic chef dj musician rapper
        busker beggar vagrant hermit monarch noble aristocrat peasant villager townsman citizen resident
        tenant landlord landlady roommate classmate teammate opponent challenger champion contestant
        candidate volunteer activist protester officer policewoman investigator analyst operator dispatcher
        conductor attendant steward usher concierge bellboy doorman valet chauffeur cabbie trucker
        motorcyclist racer jockey equestrian rodeo pursuer captor kidnapper rescuer hero vigilante
        mother-in-law veteran retiree widow girl boy man woman master apprentice mentor bookseller
        abbot abbess novice friar bishop cardinal rabbi imam lama guru sage oracle prophet
        shopgirl storekeeper innkeeper gatekeeper goalkeeper housekeeper zookeeper fighter nobody someone
        attendee staffer participant camper festivalgoer concertgoer partygoer moviegoer reveler reveller
        trespasser inventor necromancer druid alchemist bard paladin knight squire ninja samurai shogun
        pirate buccaneer smuggler poacher gamekeeper shepherdess blacksmith hatter milliner carpenter mason stonemason
        tailor seamstress cobbler baker butcher brewer vintner farmhand stablehand milkmaid maid butler footman
        governess nanny babysitter tutor headmaster headmistress principal janitor caretaker nurse surgeon
        paramedic dentist pharmacist vet veterinarian scientist astronaut cosmonaut pilot copilot navigator
        deckhand stowaway castaway explorer adventurer archaeologist detective
        sheriff deputy marshal ranger warden jailer executioner gladiator referee umpire coach announcer
        commentator broadcaster newscaster presenter producer novelist editor lecturer quarterback cheerleader
        supporter attorney backpacker immigrant hitchhiker plumber electrician sentry trader""".split()
    for word in neutral:
        if word not in table:
            table[word] = NounInfo("person", "person")
    for word in ("swordswoman", "huntress", "fisherwoman", "priestess", "landlady", "policewoman"):
        table[word] = NounInfo("person", "woman", "f")
    for word in ("teenager", "teen"):
        table[word] = NounInfo("person", "teenager", None, "young")
    table["cyborg"] = NounInfo("robot", "cyborg")
    table["android"] = NounInfo("robot", "android")
    for word in ("vampire", "zombie", "ghost", "elf", "dwarf", "giant", "goblin", "orc", "troll", "fairy",
                 "angel", "demon"):
        table[word] = NounInfo("creature", word)
    return table


_ANIMALS = """dog puppy pup hound terrier retriever labrador poodle beagle bulldog shepherd husky collie dachshund
    spaniel corgi greyhound chihuahua pug rottweiler doberman cat kitten kitty tabby lion lioness tiger tigress
    leopard cheetah panther jaguar wolf fox bear cub deer stag doe fawn elk moose horse mare stallion foal pony
    colt donkey mule cow bull calf ox sheep lamb ram goat pig piglet boar rabbit bunny hare squirrel mouse rat
    hamster dormouse raccoon badger otter beaver hedgehog monkey ape gorilla chimpanzee orangutan elephant giraffe zebra
    rhino hippo camel kangaroo koala panda sloth bird owl eagle hawk falcon crow raven parrot pigeon dove gull
    seagull swan duck duckling goose chicken hen rooster chick penguin flamingo heron crane peacock sparrow robin
    hummingbird fish shark whale dolphin orca seal walrus turtle tortoise octopus squid crab lobster jellyfish
    snake python cobra lizard iguana chameleon crocodile alligator frog toad butterfly moth bee wasp spider
    ant beetle dragonfly firefly bat warhorse steed mustang pelican stork vulture albatross manatee stingray
    salmon trout lamb gecko tortoise grasshopper caterpillar ladybug ladybird snail slug worm bug pheasant quail
    partridge turkey ostrich emu magpie jay finch canary woodpecker kingfisher hyena lynx cougar puma bison
    buffalo yak llama alpaca reindeer vole shrew weasel ferret stoat skunk porcupine armadillo opossum possum
    chipmunk gopher meerkat lemur baboon mongoose wolverine jackal coyote dingo cockatoo macaw toucan puffin owlet
    koi goldfish clownfish eel seahorse narwhal mantis cicada scorpion centipede tarantula mosquito
    salamander newt axolotl dinosaur raptor velociraptor triceratops stegosaurus brontosaurus pterodactyl mammoth
    tanuki gosling cygnet""".split()
_CREATURES = """dragon unicorn griffin phoenix alien creature monster beast mermaid centaur yeti kraken golem
    werewolf spirit specter spectre wraith ogre minotaur hydra sphinx pegasus leviathan serpent snowman
    sprite gnome imp genie djinn nymph leprechaun gremlin faun satyr banshee kobold treant dryad hobgoblin
    merman harpy gryphon wyvern sasquatch ghoul cherub basilisk cyclops homunculus changeling kitsune yokai
    tengu naga selkie kelpie faerie boggart lich revenant poltergeist doppelganger shapeshifter""".split()
# creatures of tales that live as people do: "she" and "they" take them as they take a person
HUMANOID_CREATURES = set("""fairy faerie elf dwarf giant ghost angel demon vampire mermaid merman troll ogre goblin
    hobgoblin gnome genie djinn nymph dryad leprechaun witch wizard sprite imp satyr faun centaur cyclops
    werewolf zombie ghoul spirit siren selkie""".split())
_ROBOTS = """robot droid android cyborg automaton mech drone machine bot rover lander""".split()
_VEHICLES = """car truck van bus taxi cab motorcycle motorbike scooter bicycle bike train tram locomotive
    helicopter chopper plane airplane aeroplane jet spaceship spacecraft starship rocket boat ship yacht submarine
    tank tractor jeep suv convertible sedan limousine ambulance firetruck pickup hatchback minivan racecar
    hovercraft airship zeppelin sailboat canoe kayak ferry tugboat trawler speedboat ufo""".split()

_ANIMAL_BASE = {
    "puppy": "dog", "pup": "dog", "hound": "dog", "terrier": "dog", "retriever": "dog", "labrador": "dog",
    "poodle": "dog", "beagle": "dog", "bulldog": "dog", "husky": "dog", "collie": "dog", "dachshund": "dog",
    "spaniel": "dog", "corgi": "dog", "greyhound": "dog", "chihuahua": "dog", "pug": "dog", "rottweiler": "dog",
    "doberman": "dog", "kitten": "cat", "kitty": "cat", "tabby": "cat", "lioness": "lion", "tigress": "tiger",
    "mare": "horse", "stallion": "horse", "foal": "horse", "pony": "horse", "colt": "horse", "warhorse": "horse",
    "steed": "horse", "mustang": "horse", "bunny": "rabbit", "piglet": "pig", "seagull": "gull",
    "duckling": "duck", "calf": "cow", "bull": "cow", "ox": "cow", "lamb": "sheep", "ram": "sheep",
    "stag": "deer", "doe": "deer", "fawn": "deer", "cub": "bear", "hen": "chicken", "rooster": "chicken",
    "chick": "chicken", "tortoise": "turtle", "orca": "whale", "owlet": "owl", "gosling": "goose", "cygnet": "swan",
    "possum": "opossum",
}
_ANIMAL_GENDER = {"mare": "f", "lioness": "f", "tigress": "f", "hen": "f", "doe": "f", "cow": "f",
                  "stallion": "m", "bull": "m", "stag": "m", "rooster": "m", "ram": "m", "colt": "m"}
_VEHICLE_BASE = {"suv": "car", "convertible": "car", "sedan": "car", "limousine": "car", "hatchback": "car",
                 "racecar": "car", "jeep": "car", "taxi": "car", "cab": "car", "pickup": "truck",
                 "firetruck": "truck", "minivan": "van", "motorbike": "motorcycle", "bike": "bicycle",
                 "airplane": "plane", "aeroplane": "plane", "jet": "plane", "spacecraft": "spaceship",
                 "starship": "spaceship", "locomotive": "train", "yacht": "boat", "sailboat": "boat",
                 "speedboat": "boat", "trawler": "boat", "tugboat": "boat", "ferry": "boat"}
_ROBOT_BASE = {"lander": "rover", "droid": "robot", "automaton": "robot", "mech": "robot", "bot": "robot", "machine": "robot"}


def _build() -> dict[str, NounInfo]:
    table = _people()
    for word in _ANIMALS:
        table[word] = NounInfo("animal", _ANIMAL_BASE.get(word, word), _ANIMAL_GENDER.get(word))
    for word in _CREATURES:
        table[word] = NounInfo("creature", word)
    for word in _ROBOTS:
        table[word] = NounInfo("robot", _ROBOT_BASE.get(word, word))
    for word in _VEHICLES:
        table[word] = NounInfo("vehicle", _VEHICLE_BASE.get(word, word))
    return table


CHARACTER_NOUNS: dict[str, NounInfo] = _build()

# Nouns that are never characters even when a model or a similarity says "person-like".
NOT_CHARACTERS = set("""statue portrait painting photo photograph picture poster drawing sketch mural sculpture
    figurine doll toy puppet mannequin reflection silhouette shadow costume mask image hologram effigy idol
    tattoo logo cartoon illustration icon crowd audience people guests group team family couple
    kind sort type""".split())

# Abstract nouns that stand where a character would ("teach their children an important lesson", "their relationship
# grows"): never a character, whatever the similarity to listed words says (not prototypes of things either)
ABSTRACT_NOUNS = set("""lesson moral advice warning relationship introduction leadership adolescence childhood
    friendship rivalry romance conflict tension attention""".split())

# Nouns whose object-of-"of" is a depiction, not a character ("a portrait of a woman").
DEPICTION_NOUNS = set("""statue portrait painting photo photograph picture poster drawing sketch mural sculpture
    figurine doll toy image hologram effigy tattoo carving engraving silhouette reflection illustration
    cartoon model replica bust poem story song book film movie dream memory""".split())
# Verbs whose object is a depiction ("doodles a dragon"), a comparison ("like a girl") is handled apart.
DEPICTION_VERBS = set("""draw doodle sketch paint carve depict imagine dream picture embroider""".split())

# Generic person nouns: a definite one ("the man", "the figure") refers back by kind, gender and age alone.
GENERIC_PERSON = set("""man woman boy girl person figure stranger child kid guy lady gentleman teenager teen
    youngster individual human adult""".split())
# Nouns that always mean "the main character".
PROTAGONIST_NOUNS = {"protagonist", "hero", "heroine", "lead", "main character"}
# Nouns that mean "the most recently introduced character".
NEWCOMER_NOUNS = {"newcomer", "arrival", "visitor", "intruder"}

# Relation nouns: "her partner", "the beekeeper's son". Value: the inverse relation by gender of the other side.
RELATION_NOUNS = {
    "son": "parent", "daughter": "parent", "child": "parent", "kid": "parent", "baby": "parent",
    "father": "child", "mother": "child", "dad": "child", "mom": "child", "mum": "child", "parent": "child",
    "husband": "spouse", "wife": "spouse", "spouse": "spouse", "partner": "partner", "brother": "sibling",
    "sister": "sibling", "sibling": "sibling", "twin": "sibling", "friend": "friend", "girlfriend": "lover",
    "boyfriend": "lover", "lover": "lover", "fiance": "lover", "fiancee": "lover", "fiancé": "lover",
    "fiancée": "lover", "coworker": "colleague",
    "colleague": "colleague", "boss": "employee", "assistant": "boss", "owner": "pet", "coach": "trainee",
    "trainer": "trainee", "teacher": "student", "student": "teacher", "master": "apprentice",
    "apprentice": "master", "grandfather": "grandchild", "grandmother": "grandchild", "grandson": "grandparent",
    "granddaughter": "grandparent", "uncle": "nephew", "aunt": "nephew", "nephew": "uncle", "niece": "uncle",
    "companion": "companion", "pursuer": "target", "rider": "mount", "neighbor": "neighbor",
    "neighbour": "neighbor", "roommate": "roommate", "mentor": "apprentice", "captor": "captive",
    "bodyguard": "boss", "servant": "boss", "cousin": "cousin", "grandparent": "grandchild",
}
# Relations between people who are peers or already together in the story ("her partner", "his brother").
# Plural relations that stand for two people, each with their own role ("her grandparents").
PAIR_RELATIONS = {"parents": ("mother", "father"), "grandparents": ("grandmother", "grandfather")}

PEER_RELATIONS = {"partner", "husband", "wife", "spouse", "brother", "sister", "sibling", "twin", "friend",
                  "girlfriend", "boyfriend", "lover", "coworker", "colleague", "companion", "pursuer", "rider",
                  "assistant", "coach", "trainer", "owner", "neighbor", "neighbour", "roommate", "boss",
                  "captor", "bodyguard", "fiance", "fiancee", "fiancé", "fiancée", "cousin"}

# what only people do to or with others: an unlisted noun in such a clause needs less evidence from MiniLM
PERSON_VERBS = set("""say smile laugh whisper nod shout wave grin frown argue speak talk sing cry weep sigh shrug
    wink greet hug kiss announce explain cheer clap gesture kneel ask answer reply yell scream pray hand offer
    shake deal bow salute frown chuckle giggle blush apologize apologise introduce negotiate interview thank
    kidnap rescue marry arrest comfort console confront scold hire embrace meet""".split())
PERSON_OBJECT_VERBS = set("""meet greet hug kiss rescue kidnap marry help thank interview arrest comfort console
    confront scold hire fire introduce embrace save capture tell ask congratulate teach warn""".split())
PRONOUNS = {
    "he": "m", "him": "m", "himself": "m", "she": "f", "her": "f", "herself": "f", "hers": "f", "it": "n",
    "itself": "n",
    "they": "p", "them": "p", "themselves": "p",
}
POSSESSIVE_DETERMINERS = {"his": "m", "her": "f", "its": "n", "their": "p"}
BASE_OF_SEX = {"f": "woman", "m": "man"}  # a person's registry base once a pronoun or a word gives the sex

# Determiners and modifiers that announce a new character ("another woman", "a second robot").
NEWCOMER_MARKERS = {"another", "second", "third", "fourth", "fifth", "new", "different", "other", "second-",
                    "more", "extra", "additional", "unfamiliar", "unknown"}
# Modifiers that announce a returning character ("the same man").
SAME_MARKERS = {"same", "familiar", "original", "first", "earlier", "previous"}
# Words in a prompt that say an attribute changed rather than that a different character appears.
CHANGE_CUES = {"now", "changed", "changes", "dyed", "shaved", "shaves", "switched", "anymore", "instead",
               "has become", "transformed", "swapped", "removes", "takes off", "puts on", "pulls on"}

COLORS = set("""red crimson scarlet maroon burgundy pink magenta purple violet lavender lilac blue navy azure
    cobalt teal turquoise cyan green emerald olive lime yellow gold golden mustard amber orange copper bronze
    brown tan beige khaki chestnut auburn ginger black white ivory cream grey gray silver charcoal blonde blond
    brunette platinum salt-and-pepper dark light pale""".split())
HAIR_COLORS = set("""red ginger auburn copper blonde blond platinum brown chestnut black dark grey gray silver
    white salt-and-pepper brunette pink blue green purple neon-green""".split())
HAIR_WORDS = set("""hair bob ponytail braid braids bun mohawk pixie curls ringlets dreadlocks cornrows afro
    buzzcut crewcut mullet fringe bangs pigtails locks mane""".split())
AGE_WORDS = {
    "young": "young", "teenage": "young", "teen": "young", "youthful": "young", "little": "child",
    "small": None, "toddler": "child", "old": "old", "elderly": "old", "aged": "old", "aging": "old",
    "ageing": "old", "ancient": "old", "middle-aged": "adult", "grey-haired": "old", "gray-haired": "old",
    "white-haired": "old", "silver-haired": "old", "wrinkled": "old", "frail": "old", "adult": "adult",
    "baby": "child",
}
BUILD_WORDS = set("""tall short petite slim slender thin skinny lanky wiry stocky heavyset burly muscular
    broad-shouldered chubby plump fat stout athletic frail hunched bulky sleek massive enormous tiny huge giant
    scrawny""".split())
# Adjectives that are not visual attributes of a character.
NON_VISUAL_ADJECTIVES = set("""same other another first second third new different lone single only main
    certain several few many some own whole entire unseen distant nearby""".split())

# Scene context.
TIME_OF_DAY = ["golden hour", "blue hour", "first light", "high noon", "late afternoon", "late at night",
               "early morning", "late-afternoon", "dawn", "dusk", "sunrise", "sunset", "twilight", "midnight",
               "noon", "midday", "morning", "afternoon", "evening", "night", "nighttime", "daybreak",
               "nightfall", "daytime"]
# Common things, compared with an unlisted noun to tell a character from a prop (``agent.NounClassifier``).
THING_NOUNS = set("""cyberpunk steampunk aesthetic
    table chair sofa bed lamp candle cake cup mug glass bottle plate bowl fork knife spoon pan pot
    bell couch telephone tv television radio envelope crate backpack bracelet wallet purse compass pistol rifle axe
    ladder broom shovel log sky balloon puzzle flute trumpet poster fountain bench stairs staircase pie cookie
    sandwich pizza juice dumpling chocolate candy
    kettle book letter map phone laptop computer screen keyboard camera microphone guitar piano violin drum bag
    suitcase box basket umbrella hat cap coat jacket shirt dress scarf glove boot shoe necklace watch clock key
    door window wall floor stair fence gate tree bush flower grass rock stone sand water wave fire smoke cloud
    rain snow sun moon star light sound music song noise hand arm face eye hair head leg foot finger shoulder
    voice smile tear breath ball kite flag sign banner card coin money ticket paper pen pencil brush paint rope
    chain wheel engine mast sail button lever wire pipe tool hammer wrench saw blade sword shield gun bow arrow
    torch lantern mirror frame crown symbol pattern color line shape moment day night morning evening idea plan
    dream story game match race fight dance party meal dinner breakfast food bread fruit apple wine beer tea
    coffee milk soup meat cheese egg popcorn flour salt sugar towel soap sponge bucket hose vase jar lid tray
    board desk shelf cabinet counter stove oven fridge curtain rug carpet
    collar leash tag earring sock ribbon belt blanket pillow chip deck helmet armor
    visor veil apron uniform suit hood badge medal trophy kernel petal leaf branch bush shrub hedge vine moss
    dust mud ice steam bubble spark flame ember ash glow beam ray mist fog breeze wind storm thunder lightning
    tide current ripple reflection surface edge corner side top bottom front back middle center distance
    background foreground scene shot frame view angle close-up lens focus camera motion movement gesture
    expression look gaze glance step stride pace rhythm beat melody tune note chord lyric word sentence
    message signal code data file folder document report note list record photo profile beak flipper paw tail
    fin wing claw snout muzzle whisker hoof mane antler
    dialog dialogue conversation silence narration voiceover speech sequence""".split())

LIGHTING = ["golden hour", "neon-lit", "neon", "candlelight", "candlelit", "moonlight", "moonlit", "sunlight",
            "sunlit", "backlit", "backlight", "fluorescent", "tungsten", "lamplight", "firelight", "spotlight",
            "spotlights", "soft light", "harsh light", "dim", "dimly lit", "shadows", "silhouetted",
            "lens flare", "volumetric", "rim light", "string lights", "overcast", "hazy", "misty", "foggy",
            "bokeh", "low light", "cold blue light", "warm light", "natural light", "cinematic lighting"]
LOCATION_NOUNS = set("""room kitchen office bar café cafe restaurant diner street alley road highway
    bridge pier harbour harbor beach shore coast sea ocean lake river forest woods jungle desert mountain
    mountains valley canyon cliff cave field meadow farm barn garden park square market plaza city town
    village station platform train carriage subway tunnel airport hospital corridor hallway church chapel
    cathedral temple castle tower palace dungeon library bookstore shop store mall school classroom auditorium
    laboratory lab apartment house cabin cottage home bedroom bathroom attic basement rooftop roof gym arena
    stadium stage theatre theater studio warehouse factory spaceship station dojo saloon ranch moor reef
    wreck shipwreck island jetty dock lighthouse safehouse garage parking hive hives café bakery pub
    tavern inn hotel lobby elevator courtyard porch veranda balcony terrace nook aisle altar ring ballroom hall
    gala plain plains kingdom realm planet spaceport swamp marsh lair fortress galaxy province county district
    homeland path trail lane clearing glade grove thicket hill hillside slope ridge orchard vineyard""".split())
LOCATION_PREPS = {"in", "at", "on", "inside", "through", "across", "along", "into", "onto", "near", "over",
                  "under", "beneath", "beside", "outside", "within", "around", "toward", "towards", "down",
                  "up", "past", "behind"}

# words for a kind of animal that name any animal of that kind ("The bug" for the beetle, "the bird" for the owl)
INSECTS = {"beetle", "ant", "bee", "wasp", "ladybug", "ladybird", "grasshopper", "moth", "butterfly", "firefly",
            "dragonfly", "caterpillar", "fly", "mosquito", "cricket"}
BIRDS = {"owl", "eagle", "hawk", "falcon", "crow", "raven", "parrot", "pigeon", "dove", "gull", "seagull", "swan",
          "duck", "goose", "chicken", "penguin", "flamingo", "heron", "crane", "peacock", "sparrow", "robin",
          "hummingbird", "pelican", "stork", "vulture", "albatross", "jay", "finch", "canary", "bluebird", "pheasant",
          "quail", "partridge", "turkey", "ostrich", "emu", "magpie", "woodpecker", "kingfisher"}
FISH = {"salmon", "trout", "shark", "goldfish", "carp", "tuna", "clownfish"}
HYPERNYMS = {"bug": INSECTS, "insect": INSECTS, "bird": BIRDS, "fish": FISH}
# plural words for people that take in the story's single characters of those kinds ("waving at the children": the
# boy and the girl shown before; "the parents": the mother and the father)
_CHILDREN = {"boy", "girl", "child", "kid", "son", "daughter", "toddler", "baby", "schoolboy", "schoolgirl"}
_PARENTS = {"father", "mother", "dad", "mom", "mum"}
PERSON_HYPERNYMS = {"child": _CHILDREN, "kid": _CHILDREN, "parent": _PARENTS, "sibling": {"brother", "sister"},
                    "family": _CHILDREN | _PARENTS | {"brother", "sister", "grandmother", "grandfather", "grandma",
                                                      "grandpa", "husband", "wife", "parent", "sibling", "grandparent"}}
