"""Homepage Studio dashboard: Streamlit pages that lay out what engine functions return."""
