"""The labelled scripts: targets for the rules backend, and the batch command."""

import json

import pytest

from iamflow.agent import __main__ as cli
from iamflow.agent.evaluate import Counts, evaluate, load_scripts, summary_table


@pytest.fixture(scope="module")
def results():
    return evaluate(load_scripts())


def test_labelled_set_is_large_and_anchors_are_valid():
    scripts = load_scripts()
    assert len(scripts) >= 100
    assert sum(s.source == "scripts_public_a.yaml" for s in scripts) >= 25
    assert sum(s.source == "scripts_public_b.yaml" for s in scripts) >= 10
    assert sum(s.source == "scripts_public_c.yaml" for s in scripts) >= 10
    assert sum(s.source == "scripts_public_d.yaml" for s in scripts) >= 15
    assert sum(s.source == "scripts_public_e.yaml" for s in scripts) >= 14
    assert sum(s.source == "scripts_public_f.yaml" for s in scripts) >= 14
    assert sum(s.source == "scripts_public_g.yaml" for s in scripts) >= 12
    assert sum(s.source == "scripts_public_h.yaml" for s in scripts) >= 14
    assert sum(s.source == "scripts_public_i.yaml" for s in scripts) >= 14
    assert sum(s.source == "scripts_public_j.yaml" for s in scripts) >= 14
    assert sum(s.source == "scripts_public_k.yaml" for s in scripts) >= 14
    cases = {c for s in scripts for c in s.cases}
    for case in ("pronoun", "name", "role_noun", "possessive", "leave_return", "newcomer", "contradiction",
                 "attribute_change", "animal", "robot", "vehicle", "prop_or_place"):
        assert case in cases, case


def _totals(results, keep) -> Counts:
    total = Counts()
    for r in results:
        if keep(r.script):
            total.add(r.counts)
    return total


def test_rules_backend_meets_targets_on_the_projects_own_scripts(results):
    """Development scripts and the project's first held-out scripts: identity F1 and mention recall >= 0.95."""
    total = _totals(results, lambda s: not s.source.startswith("scripts_public_"))
    table = summary_table(results)
    assert total.identity_f1 >= 0.95, table
    assert total.recall >= 0.95, table
    assert total.precision >= 0.95, table


def test_rules_backend_meets_targets_on_all_labelled_data(results):
    """Every labelled script, the public sets written by others included: identity F1 and recall >= 0.95."""
    total = _totals(results, lambda s: True)
    assert total.identity_f1 >= 0.95 and total.recall >= 0.95, summary_table(results)


@pytest.mark.parametrize("source, f1, recall", [
    # public scripts written by others; their first runs are in docs/agent.md. These floors, just under the
    # numbers measured after the work (no longer blind for any of the eleven), catch a regression on such text
    ("scripts_public_a.yaml", 0.95, 0.94),
    ("scripts_public_b.yaml", 0.97, 0.98),
    ("scripts_public_c.yaml", 0.97, 0.97),
    ("scripts_public_d.yaml", 0.98, 0.95),
    ("scripts_public_e.yaml", 0.92, 0.88),
    ("scripts_public_f.yaml", 0.86, 0.92),
    ("scripts_public_g.yaml", 0.94, 0.98),
    ("scripts_public_h.yaml", 0.92, 0.90),
    ("scripts_public_i.yaml", 0.90, 0.92),
    ("scripts_public_j.yaml", 0.90, 0.91),
    ("scripts_public_k.yaml", 0.92, 0.93),
])
def test_public_held_out_sets_do_not_regress(results, source, f1, recall):
    total = _totals(results, lambda s: s.source == source)
    assert total.scripts >= 10
    assert total.identity_f1 >= f1 and total.recall >= recall, summary_table(
        [r for r in results if r.script.source == source])


def test_cli_writes_one_mapping_per_line(tmp_path):
    prompts = tmp_path / "story.jsonl"
    prompts.write_text(json.dumps({"prompts": ["A young man in a denim jacket walks into a bar.",
                                               "He orders a drink from the bartender, a tall woman."]}) + "\n\n"
                       + json.dumps({"prompts": ["A dog runs across a field."]}) + "\n")
    out = tmp_path / "out"
    assert cli.main([str(prompts), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mapping_0.json", "mapping_2.json"]
    first = json.loads((out / "mapping_0.json").read_text())
    assert [e["name"] for e in first["global_registry"].values()] == ["man_1", "woman_1"]
    single = tmp_path / "single.txt"
    single.write_text("A robot sweeps the floor.\nA cat sleeps on a windowsill.\n")
    assert cli.main([str(single), "--out", str(tmp_path / "txt")]) == 0
    assert len(list((tmp_path / "txt").iterdir())) == 2


@pytest.mark.parametrize("line, message", [
    ('{"prompts": 3}', "line 2: 'prompts' must be a non-empty list"),
    ("{not json", "line 2: not valid JSON"),
    ('{"scenes": ["x"]}', "line 2: expected an object like"),
    ('{"prompts": ["ok", ""]}', "line 2: prompts[1] must be a non-empty string"),
])
def test_cli_malformed_line_stops_with_its_number_and_writes_nothing(tmp_path, caplog, line, message):
    prompts = tmp_path / "bad.jsonl"
    prompts.write_text(json.dumps({"prompts": ["A man walks."]}) + "\n" + line + "\n")
    out = tmp_path / "out"
    assert cli.main([str(prompts), "--out", str(out)]) == 2
    assert message in caplog.text
    assert not out.exists()
