"""Recommenders: top-k selection, classical baselines, the pretrained text encoder, the two-tower ranker and its saved form."""
