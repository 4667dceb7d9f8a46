"""Shared pieces of the Streamlit pages: session state, translations, cached readers, widgets."""
