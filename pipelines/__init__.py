"""The Dagster code location (workspace.yaml loads pipelines.definitions)."""
