"""The clients' issue-10 calls against the simulator: CPV consent (granted, already granted,
refused), GDAP access assignments and the app's client secrets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import (
    PIPELINE_CONSENT_GRANTS,
    AppCredentialsUnreadable,
    ApplicationGrant,
    ConsentFailed,
    ConsentOutcome,
    ConsentRevoked,
    MicrosoftCloud,
    PartnerMfaMissing,
    TransientError,
    tenant_outcome,
)
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.simulator.scenario import DIRECTORY_READERS_ROLE
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.microsoft.test_against_simulator import cloud_for, settings_for
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_ID,
    UNIFORM_CLIENT_SECRET,
    UNIFORM_CUSTOMERS,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.test_consent_and_access import (
    CONSENT_SERVER_ERROR,
    EXCHANGE_ADMINISTRATOR,
    ISSUE_10_CUSTOMERS,
    NO_LICENSE_ROLE,
    REFUSES_CONSENT,
    UNCONSENTED_GDAP,
)

CONSENT_ROUTE = "partner_center.applicationconsents"


@pytest.fixture
def sim(simulator_factory: SimulatorFactory) -> SimulatorServer:
    return simulator_factory(uniform_scenario(customers=ISSUE_10_CUSTOMERS))


@pytest.fixture
def cloud(sim: SimulatorServer, tmp_path: Path) -> Iterator[MicrosoftCloud]:
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        yield cloud


def consent_requests(sim: SimulatorServer) -> int:
    return sim.control.request_counts()["by_route"].get(CONSENT_ROUTE, 0)


def test_consent_lets_the_refused_customer_in_once_its_app_is_released(sim, cloud):
    with pytest.raises(ConsentRevoked) as refused:
        cloud.graph.subscribed_skus(UNCONSENTED_GDAP)
    assert refused.value.code == "AADSTS90099"

    outcome = cloud.partner_center.grant_application_consent(UNCONSENTED_GDAP, UNIFORM_CLIENT_ID)

    assert outcome is ConsentOutcome.GRANTED
    # MSAL replays a token request's 400 for 60 s from its app's cache: a new app must ask.
    with pytest.raises(ConsentRevoked):
        cloud.graph.subscribed_skus(UNCONSENTED_GDAP)
    cloud.tokens.release(UNCONSENTED_GDAP)
    assert [sku["skuPartNumber"] for sku in cloud.graph.subscribed_skus(UNCONSENTED_GDAP)] == [
        "SPB"
    ]
    assert consent_requests(sim) == 1


def test_consent_granted_before_is_already_granted(sim, cloud):
    first = cloud.partner_center.grant_application_consent(UNCONSENTED_GDAP, UNIFORM_CLIENT_ID)
    again = cloud.partner_center.grant_application_consent(UNCONSENTED_GDAP, UNIFORM_CLIENT_ID)
    at_start = cloud.partner_center.grant_application_consent(
        UNIFORM_CUSTOMERS[0], UNIFORM_CLIENT_ID
    )
    assert (first, again, at_start) == (
        ConsentOutcome.GRANTED,
        ConsentOutcome.ALREADY_GRANTED,
        ConsentOutcome.ALREADY_GRANTED,
    )
    assert consent_requests(sim) == 3


def test_consent_body_carries_our_app_and_the_pipeline_scopes(sim, cloud):
    """The simulator answers 400 unless the body has an app id and grants with a resource GUID
    and scopes; other grants than the pipeline's are sent as given."""
    assert PIPELINE_CONSENT_GRANTS[0].as_json() == {
        "enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
        "scope": "Directory.Read.All,Organization.Read.All,User.Read.All,AuditLog.Read.All",
    }
    narrow = [ApplicationGrant("00000003-0000-0000-c000-000000000000", ("User.Read.All",))]
    outcome = cloud.partner_center.grant_application_consent(
        UNCONSENTED_GDAP, UNIFORM_CLIENT_ID, narrow
    )
    assert outcome is ConsentOutcome.GRANTED


def test_refused_consent_is_consent_failed_naming_the_remedy(sim, cloud):
    with pytest.raises(ConsentFailed) as refused:
        cloud.partner_center.grant_application_consent(REFUSES_CONSENT, UNIFORM_CLIENT_ID)

    error = refused.value
    assert (error.code, error.http_status, error.tenant_id) == ("2032", 403, REFUSES_CONSENT)
    assert ConsentFailed.remedy in str(error)
    assert tenant_outcome(error)[0] is TenantStatus.CONSENT_REVOKED


def test_consent_outage_is_retried_then_transient(sim, cloud):
    with pytest.raises(TransientError) as failed:
        cloud.partner_center.grant_application_consent(CONSENT_SERVER_ERROR, UNIFORM_CLIENT_ID)
    assert failed.value.retryable
    assert failed.value.tenant_id == CONSENT_SERVER_ERROR
    assert consent_requests(sim) == 3  # FAST_RETRY: three attempts


def test_consent_waits_for_the_partner_center_rate_limiter(sim, cloud, monkeypatch):
    acquired: list[None] = []
    limiter = cloud.partner_center.limiter
    assert limiter is not None
    original = limiter.acquire
    monkeypatch.setattr(limiter, "acquire", lambda: acquired.append(None) or original())
    cloud.partner_center.grant_application_consent(UNCONSENTED_GDAP, UNIFORM_CLIENT_ID)
    assert len(acquired) == 1


def test_consent_without_mfa_is_a_partner_level_failure(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario(partner={"mfa": False}, customers=ISSUE_10_CUSTOMERS))
    with (
        cloud_for(settings_for(sim, tmp_path)) as cloud,
        pytest.raises(PartnerMfaMissing),
    ):
        cloud.partner_center.grant_application_consent(UNCONSENTED_GDAP, UNIFORM_CLIENT_ID)
    assert consent_requests(sim) == 0


def test_access_assignments_of_every_relationship(sim, tmp_path):
    with cloud_for(settings_for(sim, tmp_path), page_size=1) as cloud:
        relationships = {
            r["customer"]["tenantId"]: r["id"] for r in cloud.graph.delegated_admin_relationships()
        }
        lacking = cloud.graph.access_assignments(relationships[NO_LICENSE_ROLE])
        healthy = cloud.graph.access_assignments(relationships[UNIFORM_CUSTOMERS[0]])

    def roles(assignment: dict) -> list[str]:
        return [role["roleDefinitionId"] for role in assignment["accessDetails"]["unifiedRoles"]]

    assert [(a["status"], roles(a)) for a in lacking] == [
        ("active", [EXCHANGE_ADMINISTRATOR]),
        ("deleted", [DIRECTORY_READERS_ROLE]),
    ]
    assert [a["status"] for a in healthy] == ["active"]
    assert DIRECTORY_READERS_ROLE in roles(healthy[0])


def test_password_credentials_of_the_app(simulator_factory, tmp_path):
    credentials = [
        {"display_name": "sync365 2026", "ends_in_days": 20},
        {"display_name": "next", "hint": "Nx~", "ends_in_days": 700},
    ]
    sim = simulator_factory(uniform_scenario(partner={"password_credentials": credentials}))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        listed = cloud.graph.password_credentials(UNIFORM_CLIENT_ID)
    assert [(c["displayName"], c["hint"]) for c in listed] == [
        ("sync365 2026", UNIFORM_CLIENT_SECRET[:3]),
        ("next", "Nx~"),
    ]
    assert all(c["secretText"] is None and c["endDateTime"] for c in listed)


def test_password_credentials_of_an_unknown_app_are_unreadable_not_fatal(sim, cloud):
    with pytest.raises(AppCredentialsUnreadable) as unreadable:
        cloud.graph.password_credentials("eeeeeeee-0000-4000-8000-000000000009")
    assert unreadable.value.http_status == 404
    assert "Application.Read.All" in str(unreadable.value)
    assert not unreadable.value.retryable
    assert cloud.graph.password_credentials(UNIFORM_CLIENT_ID)  # the real app still reads
