"""Judging sets: evaluators trained from scratch on a set and tested, and rank agreement."""
