"""Storyworld: the procedural world, the embedded model trained on it, and the judge of its videos."""
