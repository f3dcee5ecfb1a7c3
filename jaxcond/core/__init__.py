"""Shared machinery below everything else: errors, atomic files, sharding, checkpoints."""
