"""Dagster definitions: thin wiring around the plain-Python sync (`sync365_pipeline.licensing`)."""

import warnings

import dagster as dg

# Single-run backfills (`backfill_policy`) are a design decision; Dagster 1.13 marks them beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
