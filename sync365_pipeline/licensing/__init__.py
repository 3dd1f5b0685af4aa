"""The sync as plain Python, one module per piece of work; the Dagster assets are thin over it."""
