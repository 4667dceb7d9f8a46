"""The read side for the UI: search and the dossier view. SQL in, plain frozen dataclasses out."""
