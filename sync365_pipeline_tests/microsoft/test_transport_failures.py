"""Network failures named right: a reset is transient, only a real certificate failure is one,
and a host that does not resolve or refuses connections names the setting that points there."""

from __future__ import annotations

import socket

import pytest
import requests

from sync365_pipeline.microsoft.errors import (
    EndpointUnreachable,
    TransientError,
    TransportFailure,
    classify_transport_error,
    transport_failure,
)
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    bearer,
    https_session,
    redeem,
)


def failure_of(call) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as caught:
        call()
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_connection_names_the_setting():
    url = f"https://127.0.0.1:{closed_port()}/v1.0/subscribedSkus"
    exc = failure_of(lambda: requests.get(url, timeout=5))
    assert transport_failure(exc) is TransportFailure.REFUSED
    error = classify_transport_error(
        exc, url=url, tenant_id=None, partner_level=False, service="graph"
    )
    assert isinstance(error, EndpointUnreachable)
    assert "SYNC365_GRAPH_URL" in error.remedy
    assert error.code == "ConnectionRefused"


def test_unresolvable_host_names_the_setting():
    url = "https://no-such-host.invalid/v1/customers"
    exc = failure_of(lambda: requests.get(url, timeout=5))
    assert transport_failure(exc) is TransportFailure.UNRESOLVED
    error = classify_transport_error(
        exc, url=url, tenant_id=None, partner_level=True, service="partner_center"
    )
    assert isinstance(error, EndpointUnreachable)
    assert "SYNC365_PARTNER_CENTER_URL" in error.remedy
    assert "no-such-host.invalid" in error.problem


def test_untrusted_certificate_is_a_certificate_failure(demo_simulator):
    url = f"{demo_simulator.url}/v1.0/organization"
    session = requests.Session()
    session.trust_env = False
    exc = failure_of(lambda: session.get(url, timeout=5))
    assert transport_failure(exc) is TransportFailure.CERTIFICATE
    error = classify_transport_error(exc, url=url, tenant_id=None, partner_level=True)
    assert "SYNC365_CA_BUNDLE" in error.remedy


def test_a_reset_is_transient_not_a_tls_failure(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(faults={tenant: [{"type": "reset"}]}))
    token = redeem(sim, tenant, GRAPH_SCOPE)["access_token"]
    url = f"{sim.url}/v1.0/subscribedSkus"
    exc = failure_of(lambda: https_session(sim).get(url, headers=bearer(token), timeout=5))
    assert transport_failure(exc) is TransportFailure.RESET
    error = classify_transport_error(exc, url=url, tenant_id=tenant, partner_level=False)
    assert type(error) is TransientError
    assert error.retryable
    assert "TLS" not in str(error)
