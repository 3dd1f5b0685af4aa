"""Dagster definitions: thin wiring around the plain-Python sync (`sync365_pipeline.sync`)."""
