"""Data in: the data-directory contract, importers, the demo store, held-out splits and picture features."""
