"""Beyond one machine: Ray for scoring every user and for data-parallel training (the optional ``scale`` extra)."""
