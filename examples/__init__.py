"""Runnable example bots; each has a test under tests/examples."""
