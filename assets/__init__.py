"""Dagster assets: thin wrappers over backoffice functions and the dbt project."""
