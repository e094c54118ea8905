"""Homepage Studio engine (never imports streamlit), in layers that only import downward.

core → data → models → evaluation → training → scale → studio → page → cli; ``tests/test_architecture.py``
fails when a module imports from a later layer or when two modules import each other.
"""

import os

# OpenMP threads that spin while waiting make torch's linear algebra 15-100x slower when another
# process shares these 2 cores (seen with EASE's Cholesky inverse); passive waiting costs little.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LAYERS = ("core", "data", "models", "evaluation", "training", "scale", "studio", "page", "cli")
