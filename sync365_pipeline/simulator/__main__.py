"""`python -m sync365_pipeline.simulator`: the same command as `sync365 simulator`."""

from sync365_pipeline.simulator.cli import simulator

simulator(prog_name="python -m sync365_pipeline.simulator")
