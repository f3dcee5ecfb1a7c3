"""Interactions and where they come from: readers, known datasets, preprocessing, splits,
the cache of prepared splits, synthetic data, and export of sets."""
