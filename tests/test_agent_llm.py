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
    ('{"characters": [{"text": "fisherman", "type": "person", "attributes": "old"}]}', "attributes must be"),
])
def test_answers_are_checked_against_the_schema(answer, reason):
    with pytest.raises(ValueError, match=reason):
        parse_answer(answer, PROMPT)
    good = parse_answer('{"characters": [{"text": "Fisherman", "type": "person", "attributes": ["silver"]}]}',
                        PROMPT)
    assert good["characters"][0]["text"] == "Fisherman"
