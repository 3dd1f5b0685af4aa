"""Consent flags posted to a webhook: once per raise and per clear, never at the sensor's cost."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import dagster as dg
import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.resources import WebhookResource
from sync365_pipeline.defs.sensors import consent_sensor
from sync365_pipeline.licensing.consent_flags import FlagChanges
from sync365_pipeline.licensing.notify import WebhookNotifier
from sync365_pipeline.warehouse import ConsentFlag
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, PARTNER, pipeline_scenario
from sync365_pipeline_tests.webhooks import SECRET_PATH, Receiver, dead_url

from .conftest import PipelineFactory, SeededWarehouse

OK = TenantStatus.OK
REVOKED = (TenantStatus.CONSENT_REVOKED, "AADSTS65001")


def tick(cursor: str | None, webhook_url: str | None = None) -> dg.SensorResult | dg.SkipReason:
    resources = dict(defs.resources)
    if webhook_url is not None:
        resources["webhook"] = WebhookResource(url=webhook_url)
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    result = consent_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def cells(markdown_row: str) -> list[str]:
    return [cell.strip() for cell in markdown_row.strip("|").split("|")]


def test_raise_and_clear_post_exactly_once_each(
    seeded: SeededWarehouse, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC365_WEBHOOK_URL", receiver.url)
    seeded.customers(HEALTHY_A, HEALTHY_B)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: OK})
    first = tick(None)
    assert receiver.posts == []  # all tenants healthy: nothing to say

    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    raised = tick(first.cursor)
    (post,) = receiver.posts
    assert post["path"] == SECRET_PATH
    assert post["type"] == "application/json"
    body = post["json"]
    assert body["event"] == "sync365.consent"
    assert body["cleared"] == []
    (flag,) = body["raised"]
    assert flag["tenant_id"] == HEALTHY_B
    assert flag["partner_tenant_id"] == PARTNER["tenant_id"]
    assert (flag["status"], flag["error_code"]) == ("consent_revoked", "AADSTS65001")
    assert "Global Administrator" in flag["remedy"]
    for fragment in (HEALTHY_B, "consent_revoked", "AADSTS65001", "What to do:"):
        assert fragment in body["text"]

    # The same failure seen again: no second post, on a skipped tick or on a new sync's tick.
    assert isinstance(tick(raised.cursor), dg.SkipReason)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    repeated = tick(raised.cursor)
    assert len(receiver.posts) == 1

    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: OK})
    tick(repeated.cursor)
    assert len(receiver.posts) == 2
    cleared = receiver.posts[1]["json"]
    assert cleared["raised"] == []
    assert cleared["cleared"] == [
        {
            "partner_tenant_id": PARTNER["tenant_id"],
            "tenant_id": HEALTHY_B,
            "kind": "access_lost",
            "customer_name": None,  # the seeded customer list has no names
            "partner_name": None,  # nor is an account configured to name the partner
        }
    ]
    assert f"Access restored: customer tenant {HEALTHY_B}" in cleared["text"]


def test_the_post_and_the_sensors_check_name_the_customer_next_to_its_id(
    seeded: SeededWarehouse, receiver: Receiver
) -> None:
    names = {HEALTHY_A: "Alpha Dental", HEALTHY_B: "Beta Logistics"}
    seeded.customers(HEALTHY_A, HEALTHY_B, names=names)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    raised = tick(None, webhook_url=receiver.url)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: OK})
    cleared = tick(raised.cursor, webhook_url=receiver.url)

    first, second = (post["json"] for post in receiver.posts)
    (flag,) = first["raised"]
    assert (flag["tenant_id"], flag["customer_name"]) == (HEALTHY_B, "Beta Logistics")
    assert "Access lost: Beta Logistics: status consent_revoked" in first["text"]
    assert [(f["tenant_id"], f["customer_name"]) for f in second["cleared"]] == [
        (HEALTHY_B, "Beta Logistics")
    ]
    assert "Access restored: Beta Logistics." in second["text"]
    (raising,) = raised.asset_events
    heading, _, row = (cells(line)[:3] for line in raising.metadata["raised"].value.splitlines())
    assert heading == ["customer", "partner_tenant_id", "tenant_id"]
    assert row == ["Beta Logistics", PARTNER["tenant_id"], HEALTHY_B], "the name next to the id"
    (clearing,) = cleared.asset_events
    assert clearing.metadata["cleared"].value == [
        [PARTNER["tenant_id"], HEALTHY_B, "access_lost", "Beta Logistics"]
    ]


def test_partner_level_flag_posts_reconsent_instructions_and_no_secret(
    pipeline_factory: PipelineFactory, receiver: Receiver
) -> None:
    """After a real failed sign-in: what Microsoft said reaches the webhook, no secret does."""
    pipeline = pipeline_factory(pipeline_scenario(partner={"refresh_token_state": "expired"}))
    assert not pipeline.sync().success

    tick(None, webhook_url=receiver.url)  # configured on the resource, not the env

    (post,) = receiver.posts
    (flag,) = post["json"]["raised"]
    assert (flag["tenant_id"], flag["status"]) == (None, "refresh_token_expired")
    assert flag["error_code"] == "AADSTS700082"
    assert "sync365 consent" in flag["remedy"]
    assert flag["partner_name"] == "default", "named by its account"
    assert (
        f"partner default, tenant {PARTNER['tenant_id']} (the partner's own sign-in)"
        in post["json"]["text"]
    )
    raw = json.dumps(post["json"])
    for secret in (PARTNER["client_secret"], PARTNER["refresh_token"], "eyJ", "1.AXoA"):
        assert secret not in raw


@pytest.mark.parametrize("failure", ["connection_refused", "http_500"])
def test_failing_webhook_never_breaks_the_sensor(
    seeded: SeededWarehouse, receiver: Receiver, failure: str
) -> None:
    seeded.customers(HEALTHY_A, HEALTHY_B)
    seeded.tenant_statuses({HEALTHY_A: OK, HEALTHY_B: REVOKED})
    receiver.status = 500
    url = dead_url() if failure == "connection_refused" else receiver.url

    result = tick(None, webhook_url=url)

    assert isinstance(result, dg.SensorResult)
    (evaluation,) = result.asset_events
    assert evaluation.passed is False
    flags = seeded.warehouse.open_consent_flags()
    assert [(flag.tenant_id, flag.status) for flag in flags] == [(HEALTHY_B, "consent_revoked")]
    assert len(receiver.posts) == (1 if failure == "http_500" else 0)


FLAG = ConsentFlag(
    partner_tenant_id=PARTNER["tenant_id"],
    tenant_id=HEALTHY_B,
    status="access_removed",
    raised_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    error_code="Authorization_RequestDenied",
    message="Insufficient privileges to complete the operation.",
)


@pytest.mark.parametrize("failure", ["connection_refused", "http_500", "timeout"])
def test_failed_post_is_logged_without_the_url_secret(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    # The timeout case: a receiver that holds its (200) answer until the notifier gave up, so
    # `notify` can only return False by timing out.
    receiver.status = 200 if failure == "timeout" else 500
    if failure == "timeout":
        receiver.answer.clear()
    url = dead_url() if failure == "connection_refused" else receiver.url
    notifier = WebhookNotifier(url, timeout=0.2, logger=logging.getLogger("test.webhook"))

    with caplog.at_level(logging.WARNING, logger="test.webhook"):
        assert notifier.notify(FlagChanges([FLAG], [])) is False
    receiver.answer.set()

    (record,) = caplog.records
    if failure == "timeout":
        assert "Timeout" in record.getMessage()
    assert "127.0.0.1" in record.getMessage()
    assert "consent_flags" in record.getMessage()
    assert "webhook-path-secret" not in caplog.text


def test_payload_lists_every_change_with_its_remedy(receiver: Receiver) -> None:
    partner_key = (PARTNER["tenant_id"], None, "access_lost")
    changes = FlagChanges([FLAG], [partner_key], partner_names={PARTNER["tenant_id"]: "contoso"})
    assert WebhookNotifier(receiver.url).notify(changes) is True
    assert WebhookNotifier(receiver.url).notify(FlagChanges([], [])) is True  # nothing: no post

    (post,) = receiver.posts
    body = post["json"]
    assert body["text"].splitlines() == [
        "sync365 consent check: 1 lost access, 1 regained access.",
        f"- Access lost: customer tenant {HEALTHY_B}: status "
        "access_removed, Microsoft error Authorization_RequestDenied. Insufficient privileges to "
        "complete the operation. What to do: The partner's delegated admin access (GDAP "
        "relationship or DAP) was removed or has expired: request a new GDAP relationship in "
        "Partner Center and have the customer approve it.",
        f"- Access restored: partner contoso, tenant {PARTNER['tenant_id']} (the partner's own "
        "sign-in).",
    ]
    assert body["raised"][0]["raised_at"] == "2025-01-02T03:04:05+00:00"
    assert body["raised"][0]["kind"] == "access_lost"
    assert body["cleared"] == [
        {
            "partner_tenant_id": PARTNER["tenant_id"],
            "tenant_id": None,
            "kind": "access_lost",
            "customer_name": None,
            "partner_name": "contoso",
        }
    ]


def test_expiry_flags_carry_their_kind_end_name_and_remedy(receiver: Receiver) -> None:
    ends = datetime(2025, 1, 11, tzinfo=UTC)
    gdap = ConsentFlag(
        PARTNER["tenant_id"],
        HEALTHY_B,
        "expiring",
        FLAG.raised_at,
        message="The GDAP relationship ends on 2025-01-11 (in 9 days) and does not extend itself.",
        kind="gdap_expiring",
        ends_at=ends,
    )
    secret = ConsentFlag(
        PARTNER["tenant_id"], None, "expiring", FLAG.raised_at, kind="client_secret_expiring"
    )
    names = {(PARTNER["tenant_id"], HEALTHY_B): "Beta Logistics"}
    renewed = (PARTNER["tenant_id"], HEALTHY_B, "gdap_expiring")

    assert WebhookNotifier(receiver.url).notify(FlagChanges([gdap, secret], [renewed], names))

    body = receiver.posts[0]["json"]
    raised_gdap, raised_secret = body["raised"]
    assert (raised_gdap["kind"], raised_gdap["customer_name"]) == (
        "gdap_expiring",
        "Beta Logistics",
    )
    assert raised_gdap["ends_at"] == "2025-01-11T00:00:00+00:00"
    assert "Partner Center" in raised_gdap["remedy"]
    assert raised_secret["kind"] == "client_secret_expiring"
    assert "SYNC365_CLIENT_SECRET" in raised_secret["remedy"]
    assert body["cleared"][0]["kind"] == "gdap_expiring"
    lines = body["text"].splitlines()
    assert lines[0] == (
        "sync365 consent check: 1 GDAP relationship(s) ending, 1 client secret(s) ending, "
        "1 no longer ending."
    )
    assert lines[1].startswith("- GDAP relationship ending: Beta Logistics: The GDAP relationship")
    assert HEALTHY_B not in lines[1], "a customer with a name is named by it"
