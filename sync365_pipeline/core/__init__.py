"""The vocabulary every layer shares: statuses, settings, the clock. Imports nothing of ours."""
