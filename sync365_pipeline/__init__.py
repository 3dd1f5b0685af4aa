"""sync365-pipeline: Microsoft 365 license facts for Microsoft partners, in DuckDB, via Dagster."""
