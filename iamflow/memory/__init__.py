"""Memory bank, memory policies and scene-transition policies."""
