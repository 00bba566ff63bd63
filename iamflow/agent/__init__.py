"""Entity agent: characters and attributes from prompts, one global identity per character, mapping.json.

``EntityAgent`` (one per story) reads each scene prompt with ``observe`` and keeps an ``EntityRegistry`` of
the story's characters (``man_1``, ``dog_1``, ...), their aliases, attributes and appearances. Backends:
``rules`` (spaCy + MiniLM, offline) and ``llm`` (a local causal LM asked for JSON, schema-checked, falling
back to ``rules``). Models are loaded lazily once per process and shared by all agents.
"""

from .agent import BACKENDS, EntityAgent, SceneEntities, SceneEntity
from .registry import EntityRecord, EntityRegistry

__all__ = ["BACKENDS", "EntityAgent", "EntityRecord", "EntityRegistry", "SceneEntities", "SceneEntity"]
