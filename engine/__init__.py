"""Homepage Studio engine: data, models, metrics and layouts (never imports streamlit)."""

import os

# OpenMP threads that spin while waiting make torch's linear algebra 15-100x slower when another
# process shares these 2 cores (seen with EASE's Cholesky inverse); passive waiting costs little.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
