"""A segment's homepage: re-ranking with rules and knobs, the layout of rows and cards, and judging pages on held-out data."""
