"""Storyworld: the procedural world, the embedded model trained on it, and the judge of its videos.

- ``world``: vocabulary, exact palette, layout rules and the deterministic 64x64, 16 fps renderer
  (``World``, ``Character``, ``SceneSpec``, ``Story``, ``render_scene``, ``render_story``).
- ``stories``: stories of 2 to 6 scenes and their captions, with back-references and newcomers, and the
  entity ground truth of every prompt (``sample_story``, ``story_from_seed``, ``iter_training_clips``).
- ``metrics``: the judge that reads frames back and scores adherence and identity consistency
  (``judge_scene``, ``judge_story``, ``summarise``).

The world's vocabulary, palette and rules are published in ``docs/storyworld.md``.
"""
