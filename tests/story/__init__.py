"""Tests of the story tree, its storage, and chat import/export."""
