"""The llm backend, driven by the bundled SmolLM2-135M-Instruct (GGUF through transformers): real generation."""

import logging

import pytest

from iamflow.agent import EntityAgent
from iamflow.agent.llm_backend import parse_answer

PROMPT = "The fisherman lifts a silver fish and smiles."


def test_llm_backend_runs_real_generation_and_keeps_the_story_consistent(caplog):
    caplog.set_level(logging.INFO)
    agent = EntityAgent(backend="llm", llm_max_new_tokens=96, llm_timeout_s=90)
    first = agent.observe("A weathered fisherman in a yellow raincoat hauls nets on a pier at dawn.")
    second = agent.observe(PROMPT)
    assert "loaded LLM" in caplog.text and "SmolLM2" in caplog.text
    for scene in (first, second):
        assert scene.backend in ("llm", "rules")
    assert agent.fallbacks == sum(scene.backend == "rules" for scene in (first, second))
    # whichever backend read each prompt, the fisherman is one character
    assert [e.global_id for e in second.entities] == [first.entities[0].global_id]
    assert agent.registry.entities[1].name == "man_1"


def test_a_garbage_llm_answer_falls_back_to_rules(caplog):
    caplog.set_level(logging.WARNING)
    agent = EntityAgent(backend="llm", llm_max_new_tokens=2)  # a real answer, cut off after two tokens
    scene = agent.observe(PROMPT)
    assert scene.backend == "rules" and agent.fallbacks == 1
    assert "rejected" in caplog.text and "using rules" in caplog.text
    assert scene.entities[0].surface == "fisherman"


@pytest.mark.parametrize("answer, reason", [
    ("I think there is a fisherman.", "no JSON object"),
    ('{"characters": [{"text": "fisherman", "type": "person"', "not valid JSON"),
    ('{"people": []}', "'characters' list"),
    ('{"characters": [{"text": "pirate", "type": "person"}]}', "does not occur in the prompt"),
    ('{"characters": [{"text": "fisherman", "type": "ghostly"}]}', "type must be one of"),
    ('{"characters": [{"text": "fisherman", "type": "person", "attributes": {"old": 1}}]}', "attributes must be"),
    ('{"characters": [{"text": "fisherman", "type": "weather"}]}', "type must be one of"),
])
def test_answers_are_checked_against_the_schema(answer, reason):
    with pytest.raises(ValueError, match=reason):
        parse_answer(answer, PROMPT)
    good = parse_answer('{"characters": [{"text": "Fisherman", "type": "person", "attributes": ["silver"]}]}',
                        PROMPT)
    assert good["characters"][0]["text"] == "Fisherman"


# -- a user's own model: a tiny random-weight Qwen3 saved as a transformers folder --------------------------

@pytest.fixture(scope="module")
def tiny_qwen3_dir(tmp_path_factory):
    """A Qwen3 causal LM (random weights, two small layers) with the bundled SmolLM2 tokenizer, whose chat
    template is a real one; saved the way a user's own model folder is."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from iamflow.agent import models

    gguf = models.bundled_llm_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    assert tokenizer.chat_template, "the bundled tokenizer must carry a chat template"
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("qwen3-tiny")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_user_model_gets_the_chat_template_with_system_example_and_scene(tiny_qwen3_dir):
    from iamflow.agent import models
    from iamflow.agent.llm_backend import CHAT_TEMPLATE_KWARGS, EXAMPLE_ANSWER, SYSTEM, build_messages

    lm = models.local_llm(str(tiny_qwen3_dir))
    assert type(lm.model).__name__ == "Qwen3ForCausalLM"
    text = lm.chat_text(build_messages(PROMPT), CHAT_TEMPLATE_KWARGS)
    # the template's own turn markers, in order: system, worked example, the scene, then the answer's turn
    order = [text.index(SYSTEM), text.index(EXAMPLE_ANSWER), text.index(PROMPT)]
    assert order == sorted(order)
    assert text.rstrip().endswith("assistant") and text.count("<|im_start|>") == 5
    # a folder without a template still gets a usable plain format
    template = lm.tokenizer.chat_template
    lm.tokenizer.chat_template = None
    try:
        plain = lm.chat_text(build_messages(PROMPT))
    finally:
        lm.tokenizer.chat_template = template
    assert plain.startswith("System: ") and plain.endswith("Assistant: ") and PROMPT in plain


def test_user_model_with_a_useless_answer_falls_back_and_the_story_goes_on(tiny_qwen3_dir, caplog):
    caplog.set_level(logging.WARNING)
    agent = EntityAgent(backend="llm", llm_model_path=str(tiny_qwen3_dir), llm_max_new_tokens=24)
    first = agent.observe("A weathered fisherman in a yellow raincoat hauls nets on a pier at dawn.")
    second = agent.observe(PROMPT)
    # random weights write no valid character list: both prompts are read by the rules backend
    assert (first.backend, second.backend) == ("rules", "rules") and agent.fallbacks == 2
    assert caplog.text.count("rejected") == 2
    assert [e.global_id for e in second.entities] == [first.entities[0].global_id]


def test_user_model_answer_is_parsed_into_the_story(tiny_qwen3_dir):
    """The parsing path a user's model takes when it answers well: its checked answer becomes the mentions."""
    from iamflow.agent.agent import EntityAgent as Agent
    from iamflow.agent.llm_backend import _mention_for

    agent = Agent(backend="llm", llm_model_path=str(tiny_qwen3_dir))
    analyzer = agent._analyzer(PROMPT, agent.registry)
    parsed = parse_answer('{"characters": [{"text": "fisherman", "type": "man", "attributes": ["silver"]}]}',
                          PROMPT)
    mention = _mention_for(parsed["characters"][0], PROMPT, analyzer, analyzer.mentions())
    assert (mention.surface, mention.kind) == ("fisherman", "person")


@pytest.mark.parametrize("answer, expected", [
    # a noun for the type is read as its kind
    ('{"characters": [{"text": "fisherman", "type": "man"}]}', [("fisherman", "person")]),
    # the text's longest ending that the prompt holds
    ('{"characters": [{"text": "Old fisherman", "type": "person"}]}', [("fisherman", "person")]),
    # JSON broken after a complete entry: that entry is kept and checked
    ('{"characters": [{"text": "fisherman", "type": "person", "attributes": ["silver"]}, {"text": "fish" "ty',
     [("fisherman", "person")]),
    # unusable attributes are dropped, not the answer
    ('{"characters": [{"text": "fisherman", "type": "person", "attributes": [3, "silver"]}]}',
     [("fisherman", "person")]),
])
def test_small_model_answers_are_normalised_then_checked(answer, expected):
    parsed = parse_answer(answer, PROMPT)
    assert [(c["text"], c["type"]) for c in parsed["characters"]] == expected
