"""The console logger of `sync365 sync`: Dagster's lines without stack traces, unless verbose.

An expected failure (a dead refresh token, a locked warehouse, a tenant name that matches
nothing) is a `dg.Failure` whose text says what to do; Dagster's own console logger prints it with
the stack of Dagster's executor under it, which tells an operator nothing. `--verbose` brings the
stacks back, with Dagster's debug events.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg

STACK_MARKER = "\n\nStack Trace:\n"


class _WithoutStacks(logging.Formatter):
    def __init__(self, *, verbose: bool) -> None:
        super().__init__("%(asctime)s - %(levelname)s - %(message)s", "%Y-%m-%d %H:%M:%S")
        self._verbose = verbose

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        return text if self._verbose else text.split(STACK_MARKER, 1)[0]


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, default_value="INFO"),
        "verbose": dg.Field(bool, default_value=False),
    },
    description="Dagster's run log on stderr for `sync365 sync`; stack traces only if verbose.",
)
def cli_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_WithoutStacks(verbose=config["verbose"]))
    logger = logging.Logger("sync365", level=config["log_level"])
    logger.addHandler(handler)
    return logger
