"""Homepage Studio engine: data, models, metrics and layouts (never imports streamlit)."""
