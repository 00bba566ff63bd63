"""Entity agent (rules backend) on the way shot lists are written by others: telegraphic fragments, names the
parse hides, owners of body parts, groups acting as one, an identity phrase repeated prompt after prompt.

Real spaCy and MiniLM throughout.
"""

from iamflow.agent import EntityAgent
from iamflow.agent.mentions import readable_text


def story(*prompts):
    agent = EntityAgent()
    return agent, [agent.observe(p) for p in prompts]


def ids_at(scene, prompt, word):
    """Global ids of the characters with a mention span exactly on ``word`` in ``prompt``."""
    return [e.global_id for e in scene.entities if any(prompt[s:t] == word for s, t in e.spans)]


def test_telegraphic_shots_are_read_as_sentences_and_spans_stay_on_the_prompt():
    original = "Bright studio - photographer in black sweater enters, hands a lens to assistant"
    text, origin = readable_text(original)
    assert text == "Bright studio. The photographer in black sweater enters, hands a lens to the assistant"
    assert len(origin) == len(text) + 1
    assert origin[text.index("photographer")] == original.index("photographer")
    assert origin[text.index("assistant")] == original.index("assistant")
    prompts = ["Bright studio, white walls - photographer in black sweater enters carrying tripod",
               "Bright studio, white walls - photographer sets up tripod, adjusts lights",
               "Bright studio, white walls - female model walks in, photographer waves to model"]
    _, scenes = story(*prompts)
    first = ids_at(scenes[0], prompts[0], "photographer")
    assert len(first) == 1
    assert ids_at(scenes[1], prompts[1], "photographer") == first
    assert ids_at(scenes[2], prompts[2], "photographer") == first
    model = ids_at(scenes[2], prompts[2], "model")
    assert model and model != first


def test_a_known_name_is_found_wherever_the_parse_puts_it():
    prompts = ["Biscuit dog naps by the warm stove.",
               "A doorbell rings; Mia grins and wheels Biscuit dog-basket toward the door."]
    _, scenes = story(*prompts)
    dog = ids_at(scenes[0], prompts[0], "dog")
    assert len(dog) == 1
    assert ids_at(scenes[1], prompts[1], "Biscuit") == dog  # "Biscuit" hangs on "basket" here


def test_the_owner_of_a_body_part_takes_part_and_both_is_the_pair():
    prompts = ["A tall woman in a red scarf waits at a tram stop beside an old man with a cane.",
               "Snow settles on her shoulders as the tram arrives.",
               "Both wave goodbye to the driver."]
    _, scenes = story(*prompts)
    woman = ids_at(scenes[0], prompts[0], "woman")
    assert ids_at(scenes[1], prompts[1], "her") == woman
    assert len({e.global_id for e in scenes[2].entities if e.kind == "person"}) == 3  # the pair and the driver


def test_a_group_acting_as_one_is_one_character_and_they_take_it():
    prompts = ["A group of firefighters unrolls a hose beside a burning barn.",
               "The firefighters spray water onto the roof as they shout orders."]
    agent, scenes = story(*prompts)
    crew = ids_at(scenes[0], prompts[0], "group of firefighters")  # the phrase names the group
    assert len(crew) == 1 and ids_at(scenes[1], prompts[1], "firefighters") == crew
    assert ids_at(scenes[1], prompts[1], "they") == crew
    assert len(agent.registry.entities) == 1


def test_the_same_identity_phrase_opening_each_prompt_is_one_character_and_another_is_new():
    prompts = ["A small grey rabbit, sniffing clover in a meadow",
               "A small grey rabbit, hopping behind a fence",
               "Another rabbit, nibbling a carrot"]
    _, scenes = story(*prompts)
    rabbit = ids_at(scenes[0], prompts[0], "rabbit")
    assert ids_at(scenes[1], prompts[1], "rabbit") == rabbit
    assert ids_at(scenes[2], prompts[2], "rabbit") != rabbit


def test_a_role_nobody_had_that_makes_an_entrance_is_a_newcomer():
    prompts = ["The knight rides into the castle yard.", "The wizard appears on the battlements."]
    _, scenes = story(*prompts)
    assert ids_at(scenes[1], prompts[1], "wizard") and \
        ids_at(scenes[1], prompts[1], "wizard") != ids_at(scenes[0], prompts[0], "knight")


def test_shot_headings_sounds_and_photo_prefixes():
    prompt = "Smash cut: POP— a balloon bursts as a clown juggles three oranges."
    _, scenes = story(prompt)
    assert [prompt[s:t] for e in scenes[0].entities for s, t in e.spans] == ["clown"]
    prompt = "a cinematic photo of a snow leopard, telephoto lens, stalking along a ridge"
    _, scenes = story(prompt)
    assert [e.kind for e in scenes[0].entities] == ["animal"]


def test_the_characters_are_everyone_and_the_other_passengers_are_background():
    prompts = ["A nurse and a porter wait inside a hospital lift.",
               "Around them, the other passengers stare at their phones.",
               "The characters step out onto the ward."]
    agent, scenes = story(*prompts)
    pair = {e.global_id for e in scenes[0].entities}
    assert len(pair) == 2
    assert {e.global_id for e in scenes[1].entities} == pair
    assert {e.global_id for e in scenes[2].entities} == pair
    assert len(agent.registry.entities) == 2


def test_placeholder_tags_name_characters_and_spans_stay_on_the_tag():
    prompts = ["A quiet harbour at dawn. [character1] is a old fisherman in a yellow raincoat. [character2] is a young "
               "girl holding a kite.",
               "Wide shot of [character2] running along the pier, her kite trailing behind.",
               "Close-up of [character1]'s weathered hands as he mends a net.",
               "Medium shot as [character1] waves to [character2]."]
    _, scenes = story(*prompts)
    old = ids_at(scenes[0], prompts[0], "character1")
    girl = ids_at(scenes[0], prompts[0], "character2")
    assert len(old) == 1 and len(girl) == 1 and old != girl
    assert ids_at(scenes[1], prompts[1], "character2") == girl
    assert ids_at(scenes[2], prompts[2], "character1") == old
    assert ids_at(scenes[3], prompts[3], "character1") == old
    assert ids_at(scenes[3], prompts[3], "character2") == girl
    assert [e.surface for e in scenes[2].entities if e.global_id in old] == ["character1"]


def test_bracketed_names_no_character_frames_and_caption_marks():
    text, origin = readable_text("[Nina]at the market #She buys bread.")
    assert text == "Nina at the market. She buys bread."
    assert origin[text.index("Nina")] == 1
    assert readable_text("[NC]A gull lands on the roof.")[0] == "A gull lands on the roof."
    prompts = ["[Nina]at the market #She buys bread.",
               "[NC]rain falls on the empty stalls.",
               "[Nina] and [Omar] share an umbrella # They walk home."]
    _, scenes = story(*prompts)
    nina = ids_at(scenes[0], prompts[0], "Nina")
    assert len(nina) == 1
    assert not scenes[1].entities
    assert ids_at(scenes[2], prompts[2], "Nina") == nina
    assert ids_at(scenes[2], prompts[2], "Omar") not in ([], nina)


def test_a_named_group_is_one_character_and_later_they_is_the_group():
    prompts = ["1. A small crew of sailors hoists the sails at sunrise, their hands raw from the ropes.",
               "2. The crew gathers on the deck as a storm rolls in.",
               "3. At midnight, they lash the barrels down, their faces soaked with rain.",
               "4. The old captain shouts orders from the wheel."]
    _, scenes = story(*prompts)
    crew = ids_at(scenes[0], prompts[0], "crew of sailors")
    assert len(crew) == 1
    assert ids_at(scenes[0], prompts[0], "their") == crew
    assert ids_at(scenes[1], prompts[1], "crew") == crew
    assert ids_at(scenes[2], prompts[2], "they") == crew
    captain = ids_at(scenes[3], prompts[3], "captain")
    assert captain and captain != crew  # one of them, not the group itself


def test_a_title_case_heading_young_name_and_a_first_partner():
    prompts = ["School Trip: Lucy, in a yellow raincoat, waves from the bus window.",
               "Summer Camp: Young Lucy paddles a canoe beside her first boyfriend, both laughing.",
               "Proposal: Lucy smiles at her fiancé on the pier at sunset.",
               "Birth of Second Child: Lucy rests in a hospital bed while her husband reads beside her."]
    _, scenes = story(*prompts)
    lucy = ids_at(scenes[0], prompts[0], "Lucy")
    assert len(lucy) == 1
    assert ids_at(scenes[1], prompts[1], "Lucy") == lucy  # "Young Lucy" is the story's Lucy
    first = ids_at(scenes[1], prompts[1], "boyfriend")
    fiance = ids_at(scenes[2], prompts[2], "fiancé")
    assert len(first) == 1 and fiance and fiance != first
    assert ids_at(scenes[3], prompts[3], "husband") == fiance
    assert {e.surface for e in scenes[3].entities} == {"Lucy", "husband"}  # not "Birth", not "Second Child"


def test_titles_vehicles_that_move_animals_as_she_and_adjective_nouns():
    prompts = ["1. A small plane glides over the quiet lagoon at dawn.",
               "2. The plane lands beside a reef where giant, swaying ferns grow.",
               "3. The Omega, a grey tortoise with a cracked shell, watches from the sand.",
               "4. A young otter, her whiskers dripping, slips into the water.",
               "5. She dives under the plane as the Omega blinks slowly."]
    _, scenes = story(*prompts)
    plane = ids_at(scenes[0], prompts[0], "plane")
    assert len(plane) == 1  # a vehicle that flies is a character of the shot
    assert ids_at(scenes[1], prompts[1], "plane") == plane
    assert [e.surface for e in scenes[1].entities] == ["plane"]  # "giant" is the ferns' size
    omega = ids_at(scenes[2], prompts[2], "Omega")
    assert len(omega) == 1 and scenes[2].entities[0].kind == "animal"
    assert ids_at(scenes[4], prompts[4], "Omega") == omega
    otter = ids_at(scenes[3], prompts[3], "otter")
    assert len(otter) == 1 and ids_at(scenes[3], prompts[3], "her") == otter
    assert ids_at(scenes[4], prompts[4], "She") == otter


def test_a_placeholders_role_noun_refers_back_and_a_noun_before_its_tag_is_in_the_span():
    prompts = ["A quiet library at night. The scene features a tired librarian, [character1], in a wool cardigan. "
               "[character2] is a veteran geologist with a grey beard.",
               "Close-up of [character2] unrolling an old map.",
               "Medium shot of [character1] as she hands a lamp to the geologist."]
    _, scenes = story(*prompts)
    librarian = ids_at(scenes[0], prompts[0], "librarian, [character1")
    assert len(librarian) == 1
    mapper = ids_at(scenes[0], prompts[0], "character2")
    assert ids_at(scenes[1], prompts[1], "character2") == mapper
    assert ids_at(scenes[2], prompts[2], "character1") == librarian
    assert ids_at(scenes[2], prompts[2], "geologist") == mapper  # unlisted, named after its tag


def test_someones_friends_acting_together_are_one_group():
    prompts = ["Picnic: Priya laughs on a blanket as her friends share sandwiches."]
    _, scenes = story(*prompts)
    friends = ids_at(scenes[0], prompts[0], "friends")
    assert len(friends) == 1 and friends != ids_at(scenes[0], prompts[0], "Priya")
