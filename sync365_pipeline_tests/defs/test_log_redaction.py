"""Once our Definitions are loaded, a step's log line that carries an exception's text holding a
secret reaches neither Dagster's event log nor its console redacted-less."""

import dagster as dg
import pytest

from sync365_pipeline.core.redaction import REDACTED, register_secret
from sync365_pipeline.defs import definitions  # noqa: F401 (loading it installs the redaction)

CONSOLE_INFO = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
STEP_SECRET = "step-log-secret-value-0123456789"
BEARER = "Bearer opaque-access-token-value-0123456789"


@dg.asset
def leaky_step(context: dg.AssetExecutionContext) -> None:
    """Logs what a careless handler of an unexpected exception would."""
    try:
        raise ValueError(f"odd answer echoing secret={STEP_SECRET}, {BEARER}")
    except ValueError as exc:
        context.log.warning(f"Account partner failed: {exc}")
        context.log.error("Account partner failed", exc_info=True)


def test_a_steps_log_line_is_redacted_in_the_event_log_and_on_the_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_secret(STEP_SECRET)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [leaky_step], instance=instance, run_config=CONSOLE_INFO, raise_on_error=False
        )
        assert result.success
        messages = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    console = capsys.readouterr().err

    for text in (messages, console):
        assert "Account partner failed: odd answer echoing secret=" in text
        assert STEP_SECRET not in text
        assert "opaque-access-token" not in text
        assert REDACTED in text
    assert "ValueError" in console, "the exception text is logged, redacted"
