"""IAM Flow: scene-by-scene long video generation with an entity agent and an entity-aware memory bank."""

__version__ = "0.1.0"
