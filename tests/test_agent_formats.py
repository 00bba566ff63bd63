"""Entity agent (rules backend) on more ways scripts are written by others: speaker labels before a quoted line,
names listed together, robot designations, screenplay capitals, "Pip the hedgehog", a name in the speaker's own
words, the same pair of children prompt after prompt, a name with an epithet, a crew named with its captain;
names that sit or stand, a shot "of" a name, shot-list codes and camera words, "the male" and "the female".

Real spaCy and MiniLM throughout.
"""

from iamflow.agent import EntityAgent
from iamflow.agent.mentions import readable_text


def story(*prompts):
    agent = EntityAgent()
    return agent, [agent.observe(p) for p in prompts]


def ids_at(scene, prompt, word):
    """Global ids of the characters with a mention span overlapping the first ``word`` in ``prompt``."""
    start = prompt.index(word)
    end = start + len(word)
    return [e.global_id for e in scene.entities if any(s < end and start < t for s, t in e.spans)]


def test_a_speaker_label_names_its_speaker_and_the_portrait_after_the_quote():
    prompts = ['Mara whispering: "Stay close to the wall..." Young woman in a grey raincoat, crouching by a door',
               'Mara opening the door slowly, rain on her hood']
    _, scenes = story(*prompts)
    mara = ids_at(scenes[0], prompts[0], "Mara")
    assert len(mara) == 1
    assert ids_at(scenes[0], prompts[0], "woman") == mara
    assert len({e.global_id for e in scenes[0].entities}) == 1
    assert ids_at(scenes[1], prompts[1], "Mara") == mara


def test_names_listed_with_names_are_names_and_they_take_them_all():
    prompts = ["Tomas, Ines, Breck, and Oona board the old ferry at dawn.",
               "They wave from the deck as the ferry leaves."]
    _, scenes = story(*prompts)
    for name in ("Tomas", "Ines", "Breck", "Oona"):
        assert len(ids_at(scenes[0], prompts[0], name)) == 1, name
    four = {e.global_id for e in scenes[0].entities}
    assert len(four) == 4
    assert set(ids_at(scenes[1], prompts[1], "They")) == four


def test_a_robot_designation_is_read_as_a_name_and_reported_as_written():
    text, origin = readable_text("A tall robot (KX-9) rolls into the lab.")
    assert "KX-9" not in text and len(origin) == len(text) + 1
    prompts = ["A tall robot (KX-9) rolls into the lab.", "KX-9 hands the scientist a wrench."]
    _, scenes = story(*prompts)
    robot = ids_at(scenes[0], prompts[0], "KX-9")
    assert len(robot) == 1
    assert scenes[1].entities[0].surface == "KX-9"
    assert ids_at(scenes[1], prompts[1], "KX-9") == robot


def test_screenplay_capitals_are_read_in_ordinary_case():
    original = "Wide shot of OLD FISHERMAN mending a net beside CAPTAIN VOSS, a stern woman."
    text, origin = readable_text(original)
    assert "a old fisherman" in text and "Captain Voss" in text
    assert origin[text.index("Voss")] == original.index("VOSS")
    prompts = [original, "Close-up of CAPTAIN VOSS, frowning at the sky."]
    _, scenes = story(*prompts)
    fisherman = ids_at(scenes[0], prompts[0], "FISHERMAN")
    voss = ids_at(scenes[0], prompts[0], "VOSS")
    assert len(fisherman) == 1 and len(voss) == 1 and fisherman != voss
    assert ids_at(scenes[1], prompts[1], "VOSS") == voss


def test_a_name_beside_its_noun_is_that_character():
    prompts = ["Pip the hedgehog sniffs a fallen leaf.", "His dog, Rufus, barks at the gate.",
               "Pip curls into a ball while Rufus sniffs him."]
    _, scenes = story(*prompts)
    pip = ids_at(scenes[0], prompts[0], "Pip")
    assert len(pip) == 1 and ids_at(scenes[0], prompts[0], "hedgehog") == pip
    rufus = ids_at(scenes[1], prompts[1], "Rufus")
    assert len(rufus) == 1 and [e.kind for e in scenes[1].entities] == ["animal"]  # the dog is Rufus
    assert ids_at(scenes[2], prompts[2], "Pip") == pip
    assert ids_at(scenes[2], prompts[2], "Rufus") == rufus


def test_a_name_in_the_speakers_own_words_is_the_speakers():
    prompts = ['"Good morning, little one!" said the owl from the branch. "My name is Hoot."',
               "Hoot glides down to the barn roof."]
    _, scenes = story(*prompts)
    owl = ids_at(scenes[0], prompts[0], "owl")
    assert len(owl) == 1
    assert not ids_at(scenes[0], prompts[0], "Hoot")  # named, not a second character
    assert ids_at(scenes[1], prompts[1], "Hoot") == owl


def test_the_same_two_children_prompt_after_prompt_and_the_boy_just_brought_in():
    prompts = ["Two children fly a red kite on a hill. The boy holds the string and the girl runs.",
               "Two children sit under an oak tree, sharing an apple.",
               "A boy climbs the fence. The boy waves to the farmer."]
    _, scenes = story(*prompts)
    boy = ids_at(scenes[0], prompts[0], "boy")
    girl = ids_at(scenes[0], prompts[0], "girl")
    assert len(boy) == 1 and len(girl) == 1 and boy != girl
    assert set(ids_at(scenes[1], prompts[1], "children")) == set(boy + girl)
    climbing = ids_at(scenes[2], prompts[2], "boy")
    waving = [e.global_id for e in scenes[2].entities
              if any(prompts[2][s:t] == "boy" and s > prompts[2].index("The boy") - 1 for s, t in e.spans)]
    assert climbing == waving


def test_a_name_with_an_epithet_and_a_crew_named_with_its_captain():
    prompts = ["Leo meets the clever Marisol at the fish market.",
               "Captain Reyes and his crew sail into the storm.",
               "The crew pulls down the sails."]
    _, scenes = story(*prompts)
    assert len(ids_at(scenes[0], prompts[0], "Marisol")) == 1
    crew = ids_at(scenes[1], prompts[1], "crew")
    assert len(crew) == 1 and crew != ids_at(scenes[1], prompts[1], "Reyes")
    assert ids_at(scenes[2], prompts[2], "crew") == crew


def test_an_image_prompt_redescribes_its_one_robot_but_a_named_animal_is_not_a_new_one():
    prompts = ["A small robot sweeps the hall of a quiet museum.", "A small robot waters the plants by the window."]
    _, scenes = story(*prompts)
    robot = ids_at(scenes[0], prompts[0], "robot")
    assert len(robot) == 1 and ids_at(scenes[1], prompts[1], "robot") == robot
    prompts = ["The Alpha, a majestic wolf, howls at the moon.", "A young wolf watches the sky."]
    _, scenes = story(*prompts)
    alpha = ids_at(scenes[0], prompts[0], "Alpha")
    young = ids_at(scenes[1], prompts[1], "wolf")
    assert len(alpha) == 1 and len(young) == 1 and young != alpha


def test_a_name_that_sits_or_stands_is_someone():
    prompts = ["Interior of a narrow cabin. Magistrate Orwell sits at the end of the bench, his hands folded.",
               "Pell stands by the window, holding a lantern.",
               "Orwell looks up at Pell."]
    _, scenes = story(*prompts)
    orwell = ids_at(scenes[0], prompts[0], "Orwell")
    assert len(orwell) == 1
    pell = ids_at(scenes[1], prompts[1], "Pell")
    assert len(pell) == 1 and pell != orwell
    assert ids_at(scenes[2], prompts[2], "Orwell") == orwell and ids_at(scenes[2], prompts[2], "Pell") == pell


def test_a_shot_of_a_name_and_a_name_the_parser_hung_on_a_participle():
    prompts = ["Close-up of Hennessy, with his tired eyes and grey stubble, leaning on the bar.",
               "Wide shot of Marisol Vega waiting at the bus stop in the rain."]
    _, scenes = story(*prompts)
    assert len(ids_at(scenes[0], prompts[0], "Hennessy")) == 1
    vega = [e for e in scenes[1].entities if ids_at(scenes[1], prompts[1], "Marisol") == [e.global_id]]
    assert len(vega) == 1 and vega[0].surface == "Marisol Vega"


def test_shot_list_codes_and_camera_words_name_no_one():
    prompts = ["3.1 LS Daniel sitting alone on the pier, pulling his coat tight",
               "3.2 CU Daniel’s hand grips the rail",
               "3.3 Pan left Wide Shot on the empty harbour",
               "3.4 MCU Reaction Shot – Daniel looks up"]
    _, scenes = story(*prompts)
    pavel = ids_at(scenes[0], prompts[0], "Daniel")
    assert len(pavel) == 1 and [e.global_id for e in scenes[0].entities] == pavel
    assert ids_at(scenes[1], prompts[1], "Daniel") == pavel
    assert scenes[2].entities == []
    assert [e.global_id for e in scenes[3].entities] == pavel


def test_the_male_and_the_female_are_characters_and_the_female_character_is_named_by_female():
    prompts = ["Close up of the male noticing the female, then walking off.",
               "Medium shot of the female character looking away, the male leaves."]
    _, scenes = story(*prompts)
    female = ids_at(scenes[0], prompts[0], "female")
    male = ids_at(scenes[0], prompts[0], "male noticing")
    assert len(female) == 1 and len(male) == 1 and female != male
    assert ids_at(scenes[1], prompts[1], "female") == female
    assert ids_at(scenes[1], prompts[1], "male leaves") == male


def test_a_title_case_epithet_is_a_name_with_its_nouns_kind():
    prompts = ["In the great hall, the Red King sits on his throne. The Grey Knight kneels before him, her helmet "
               "under her arm.",
               "The Red King rises and the Grey Knight follows him out."]
    _, scenes = story(*prompts)
    king = [e for e in scenes[0].entities if e.global_id in ids_at(scenes[0], prompts[0], "Red King")]
    knight = [e for e in scenes[0].entities if e.global_id in ids_at(scenes[0], prompts[0], "Grey Knight")]
    assert len(king) == 1 and len(knight) == 1 and king[0].global_id != knight[0].global_id
    assert king[0].surface == "Red King" and king[0].name.startswith("man_")
    assert ids_at(scenes[1], prompts[1], "Red King") == [king[0].global_id]
    assert ids_at(scenes[1], prompts[1], "Grey Knight") == [knight[0].global_id]


def test_creatures_that_act_together_are_one_group_and_a_named_cat_in_apposition():
    prompts = ["The goblins creep out of the cave at dusk. A young shepherd watches them from the hill.",
               "Inside the old barn, Biscuit, a fat ginger cat with a torn ear, sleeps on the hay."]
    _, scenes = story(*prompts)
    goblins = ids_at(scenes[0], prompts[0], "goblins")
    assert len(goblins) == 1 and ids_at(scenes[0], prompts[0], "them") == goblins
    assert ids_at(scenes[0], prompts[0], "shepherd") != goblins
    cat = [e for e in scenes[1].entities if e.global_id in ids_at(scenes[1], prompts[1], "Biscuit")]
    assert len(cat) == 1 and cat[0].kind == "animal" and cat[0].name.startswith("cat_")
    assert len(scenes[1].entities) == 1


def test_a_names_span_covers_its_title():
    prompt = "Prince Alaric, tall and grave, walks into the courtyard."
    _, scenes = story(prompt)
    assert len(ids_at(scenes[0], prompt, "Prince")) == 1
    assert ids_at(scenes[0], prompt, "Prince") == ids_at(scenes[0], prompt, "Alaric")


def test_two_names_joined_by_and_and_a_name_again_in_the_same_prompt():
    prompt = ("Night falls over the harbour. Tristan and Isolde meet for the first time on the quay. Tristan waits "
              "by a lamp post, his eyes on Isolde, who is talking with sailors.")
    _, scenes = story(prompt)
    tristan = ids_at(scenes[0], prompt, "Tristan")
    isolde = ids_at(scenes[0], prompt, "Isolde")
    assert len(tristan) == 1 and len(isolde) == 1 and tristan != isolde
    again = prompt.index("Tristan waits")
    assert [e.global_id for e in scenes[0].entities if any(s <= again < t for s, t in e.spans)] == tristan


def test_a_character_noun_read_as_the_adjective_of_its_participle():
    prompts = ["Medium shot of the female reading a note by the door.",
               "Wide shot of the female walking to the car."]
    _, scenes = story(*prompts)
    first = ids_at(scenes[0], prompts[0], "female")
    assert len(first) == 1 and ids_at(scenes[1], prompts[1], "female") == first


def test_groups_the_parser_hides_and_groups_a_shot_shows():
    prompts = ["The elves sing softly in the glade.",
               "The old wizard watches a group of travellers approach in silence.",
               "The three sisters, including Maren, are seen leaving the house.",
               "Wide Shot on students painting a mural and laughing",
               "A knight rides out to battle against giant trolls."]
    _, scenes = story(*prompts)
    assert len(ids_at(scenes[0], prompts[0], "elves")) == 1
    assert len(ids_at(scenes[1], prompts[1], "travellers")) == 1
    sisters = ids_at(scenes[2], prompts[2], "sisters")
    assert len(sisters) == 1 and ids_at(scenes[2], prompts[2], "Maren") != sisters
    assert len(ids_at(scenes[3], prompts[3], "students")) == 1
    trolls = ids_at(scenes[4], prompts[4], "trolls")
    assert len(trolls) == 1 and trolls != ids_at(scenes[4], prompts[4], "knight")


def test_a_camera_word_before_a_name_is_not_part_of_it():
    prompts = ["2.4 CU Follow Shot Nadia\u2019s boots on the gravel",
               "2.5 CU Reaction Shot \u2013 Nadia stops",
               "2.6 ECU Low Shot Nadia looking up at the tower"]
    _, scenes = story(*prompts)
    nadia = [e for e in scenes[0].entities if e.global_id in ids_at(scenes[0], prompts[0], "Nadia")]
    assert len(nadia) == 1 and nadia[0].surface == "Nadia" and len(scenes[0].entities) == 1
    for scene, prompt in zip(scenes[1:], prompts[1:]):
        assert [e.global_id for e in scene.entities] == [nadia[0].global_id], prompt
