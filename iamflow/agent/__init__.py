"""Entity agent: characters and attributes from prompts, one global identity per character, mapping.json."""
