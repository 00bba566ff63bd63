"""The global character registry of one story, and its ``mapping.json`` form.

A character's record is a fold over its appearances (``instances``): aliases, attributes, relations and
attribute changes are all recomputed from them, so forgetting a prompt (undo) is exact, and a record loaded
from ``mapping.json`` behaves like one built live.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from . import attributes

_KINDS = ("person", "animal", "creature", "robot", "vehicle")


@dataclass
class EntityRecord:
    """One character: ``name`` like "man_1", coarse ``kind``, and every appearance."""

    global_id: int
    name: str
    kind: str
    base: str
    instances: list[dict] = field(default_factory=list)
    gender: str | None = None
    age: str | None = None
    heads: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    all_entities: list[str] = field(default_factory=list)
    all_attrs: list[str] = field(default_factory=list)
    current_attrs: list[str] = field(default_factory=list)
    relations: list[tuple[str, int]] = field(default_factory=list)  # (relation noun, other global id)
    changes: list[dict] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    owned: list[str] = field(default_factory=list)  # things the story gave it ("the fairy's robe": "robe")

    # the fold's running state: each attribute slot's last value and prompt, the current value of each slot
    _slots: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False, compare=False)
    _current: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _last_prompt: int = field(default=-1, repr=False, compare=False)  # the latest prompt folded in
    _first_prompt: int = field(default=-1, repr=False, compare=False)  # the earliest one

    def refresh(self) -> None:
        """Recompute every derived field from ``instances``."""
        self.all_entities, self.all_attrs, self.heads, self.names = [], [], [], []
        self.relations, self.changes, self.actions, self.owned = [], [], [], []
        self._slots, self._current, self._last_prompt, self._first_prompt = {}, {}, -1, -1
        for inst in sorted(self.instances, key=lambda i: i["prompt_index"]):
            self._fold(inst)
        self.current_attrs = list(self._current.values())

    def add(self, instance: dict) -> None:
        """One more appearance: folded into the derived fields alone when no earlier one is of a later prompt (the
        usual case, so a turn costs the same however long the story is), else everything is recomputed."""
        self.instances.append(instance)
        if instance["prompt_index"] < self._last_prompt or self._last_prompt < 0:
            self.refresh()  # (an earlier prompt's; or the first, which replaces what creating the record guessed)
            return
        self._fold(instance)
        self.current_attrs = list(self._current.values())

    def _fold(self, inst: dict) -> None:
        """Fold one appearance, in prompt order, into the derived fields."""
        self._last_prompt = max(self._last_prompt, inst["prompt_index"])
        if self._first_prompt < 0:
            self._first_prompt = inst["prompt_index"]  # (folded in prompt order)
        for alias in [inst.get("entity", "")] + list(inst.get("aliases", [])):
            if alias and alias not in self.all_entities:
                self.all_entities.append(alias)
        for h in inst.get("heads", []):
            if h not in self.heads:
                self.heads.append(h)
        for n in inst.get("names", []):
            if n not in self.names:
                self.names.append(n)
        for rel in inst.get("relations", []):
            pair = (rel[0], int(rel[1]))
            if pair not in self.relations:
                self.relations.append(pair)
        if inst.get("action"):
            self.actions.append(inst["action"])
        self.owned.extend(o for o in inst.get("owned", []) if o not in self.owned)
        self.gender = inst.get("gender") or self.gender
        self.age = inst.get("age") or self.age
        for attr in inst.get("attrs", []):
            if attr not in self.all_attrs:
                self.all_attrs.append(attr)
            key = attributes.slot(attr)
            if key == "other":
                key = f"other:{attr}"
            old = self._slots.get(key)
            if old is not None and old[0] != attr and old[1] != inst["prompt_index"] and (
                    key in ("hair", "age", "age_years", "build") or key.startswith("clothing:")):
                self.changes.append({"prompt_index": inst["prompt_index"], "slot": key, "from": old[0],
                                     "to": attr})
            self._slots[key] = (attr, inst["prompt_index"])
            self._current.pop(key, None)
            self._current[key] = attr

    def last_seen(self) -> int:
        return max((i["prompt_index"] for i in self.instances), default=-1)

    def first_seen(self) -> int:
        """The first prompt the character appears in (-1 before any)."""
        return self._first_prompt if self.instances else -1

    def prompts_seen(self) -> list[int]:
        return sorted({i["prompt_index"] for i in self.instances})

    def description(self) -> str:
        """Text the sentence encoder compares with new mentions."""
        parts = [attributes.describe(self.base, self.current_attrs, self.gender)]
        parts += [a for a in self.all_entities[:6] if a.lower() not in parts[0].lower()]
        parts += self.actions[-2:]
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "all_entities": list(self.all_entities),
            "all_attrs": list(self.all_attrs),
            "instances": copy.deepcopy(self.instances),
            "base": self.base,
            "gender": self.gender,
            "names": list(self.names),
            "relations": [[r, o] for r, o in self.relations],
            "attr_changes": copy.deepcopy(self.changes),
        }


class EntityRegistry:
    """Characters of one story by global id (1, 2, ...), with names ``kind_N`` unique per base noun."""

    def __init__(self):
        self.entities: dict[int, EntityRecord] = {}
        # prompt -> (order in the prompt, id, instance) of each character it had, kept as appearances are added
        self._by_prompt: dict[int, list[tuple[int, int, dict]]] = {}
        self._indexed = 0  # appearances in ``_by_prompt`` (-1: to be rebuilt)

    def __len__(self) -> int:
        return len(self.entities)

    def next_id(self) -> int:
        return max(self.entities, default=0) + 1

    def next_name(self, base: str) -> str:
        numbers = [int(m.group(1)) for r in self.entities.values()
                   if (m := re.fullmatch(rf"{re.escape(base)}_(\d+)", r.name))]
        return f"{base}_{max(numbers, default=0) + 1}"

    def create(self, kind: str, base: str) -> EntityRecord:
        record = EntityRecord(global_id=self.next_id(), name=self.next_name(base), kind=kind, base=base)
        self.entities[record.global_id] = record
        return record

    def add_instance(self, global_id: int, instance: dict) -> None:
        self.entities[global_id].add(instance)
        if self._indexed >= 0:
            self._by_prompt.setdefault(instance["prompt_index"], []).append(
                (instance.get("order", 0), global_id, instance))
            self._indexed += 1

    def appearances(self) -> dict[int, list[tuple[int, int, dict]]]:
        """Prompt index -> (order in that prompt, id, instance) of each character seen there: the story's cast
        prompt by prompt without walking every appearance of the story (rebuilt if the records were changed
        another way)."""
        if self._indexed != sum(len(r.instances) for r in self.entities.values()):
            self._by_prompt = {}
            for gid, record in self.entities.items():
                for inst in record.instances:
                    self._by_prompt.setdefault(inst["prompt_index"], []).append((inst.get("order", 0), gid, inst))
            self._indexed = sum(len(v) for v in self._by_prompt.values())
        return self._by_prompt

    def forget_prompt(self, prompt_index: int) -> None:
        """Remove every appearance in ``prompt_index``; characters left with none are removed."""
        self._indexed = -1
        for gid in list(self.entities):
            record = self.entities[gid]
            record.instances = [i for i in record.instances if i["prompt_index"] != prompt_index]
            if not record.instances:
                del self.entities[gid]
            else:
                record.refresh()

    def by_name(self, name: str) -> EntityRecord | None:
        key = name.lower()
        for record in self.entities.values():
            if any(key == n.lower() for n in record.names):
                return record
        # one word of a longer name ("Kenobi" for "Ben Kenobi"): the shortest name that has it
        having = [(min(len(n.split()) for n in record.names if key in n.lower().split()), gid)
                  for gid, record in self.entities.items() if any(key in n.lower().split() for n in record.names)]
        if having:
            return self.entities[min(having)[1]]
        for record in self.entities.values():
            # "Little Red Hen" after "Red Hen": a name of two words or more that ends with the other is the same
            if any(" " in key and key.endswith(" " + n.lower()) or " " in n and " " in key and
                   n.lower().endswith(" " + key) for n in record.names):
                return record
        return None

    def to_mapping(self, extra: dict | None = None) -> dict:
        """The ``mapping.json`` document; ``extra`` top-level keys (memory bank state) are merged in."""
        mapping = {"global_registry": {str(gid): rec.to_dict() for gid, rec in sorted(self.entities.items())}}
        if extra:
            for key, value in extra.items():
                if key == "global_registry":
                    raise ValueError("extra keys must not replace 'global_registry'")
                mapping[key] = value
        return mapping

    def snapshot(self) -> dict:
        """A JSON-able copy for UI panels: id -> name, kind, aliases, current and all attributes, prompts."""
        return {
            str(gid): {
                "name": r.name, "kind": r.kind, "aliases": list(r.all_entities), "attrs": list(r.current_attrs),
                "all_attrs": list(r.all_attrs), "prompts": r.prompts_seen(), "attr_changes": copy.deepcopy(r.changes),
            }
            for gid, r in sorted(self.entities.items())
        }

    @classmethod
    def from_mapping(cls, mapping: dict) -> "EntityRegistry":
        """Rebuild a registry from ``mapping.json`` (ours or the seed's reduced format)."""
        if not isinstance(mapping, dict) or not isinstance(mapping.get("global_registry"), dict):
            raise ValueError("mapping must be an object with a 'global_registry' object")
        registry = cls()
        for key, entry in mapping["global_registry"].items():
            try:
                gid = int(key)
            except ValueError:
                raise ValueError(f"global_registry key {key!r} is not an integer id") from None
            if not isinstance(entry, dict) or "name" not in entry:
                raise ValueError(f"global_registry[{key!r}] must be an object with a 'name'")
            name = str(entry["name"])
            base = entry.get("base") or re.sub(r"_\d+$", "", name)
            kind = entry.get("kind") or "person"
            if kind not in _KINDS:
                kind = "person"
            record = EntityRecord(global_id=gid, name=name, kind=kind, base=base, gender=entry.get("gender"))
            instances = entry.get("instances") or []
            for inst in instances:
                if not isinstance(inst, dict) or "prompt_index" not in inst:
                    raise ValueError(f"global_registry[{key!r}].instances entries need a 'prompt_index'")
            record.instances = copy.deepcopy(instances)
            if record.instances and not any(i.get("names") or i.get("heads") for i in record.instances):
                # the seed's format: aliases only; keep them reachable for matching
                record.instances[0].setdefault("aliases", list(entry.get("all_entities", [])))
                record.instances[0].setdefault("heads", [w for a in entry.get("all_entities", [])
                                                         for w in a.lower().split()[-1:]])
            record.refresh()
            registry.entities[gid] = record
        return registry
