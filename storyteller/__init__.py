"""storyteller: a terminal roleplay and interactive-story engine."""

__version__ = "0.1.0"
