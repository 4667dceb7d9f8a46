"""Accountants' analytics: a Parquet archive of the marts (archive.py) and DuckDB views over it,
one module per view, each a function of the archive root and Filters returning a polars frame."""
