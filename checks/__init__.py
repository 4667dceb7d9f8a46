"""Data-quality checks; the dbt tests already run as asset checks of the dbt assets."""
