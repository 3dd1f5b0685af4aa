"""The clients' shared fetch (`ApiClient`) against a scripted server: the token stays on the
first page's origin, and each service's tracing ids are set per request and per call."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from sync365_pipeline.microsoft.errors import MalformedResponse
from sync365_pipeline.microsoft.graph import MAX_RELATIONSHIPS_PAGE, GraphClient
from sync365_pipeline.microsoft.http import MicrosoftSession, RetrySettings, build_session
from sync365_pipeline.microsoft.partner_center import MAX_PAGE_SIZE, PartnerCenterClient

from .conftest import Scripted, ScriptServer

TOKENS = SimpleNamespace(
    graph_token=lambda tenant_id: SimpleNamespace(authorization=lambda: f"Bearer {tenant_id}"),
    partner_graph_token=lambda: SimpleNamespace(authorization=lambda: "Bearer partner-graph"),
    partner_center_token=lambda: SimpleNamespace(authorization=lambda: "Bearer partner-center"),
)


@pytest.fixture
def session(script_server: ScriptServer) -> Iterator[MicrosoftSession]:
    session = build_session(
        ca_bundle=script_server.ca_path, retry=RetrySettings(base_delay_s=0), sleep=lambda _: None
    )
    yield session
    session.close()


def test_graph_sends_its_token_and_a_new_client_request_id_with_every_page(script_server, session):
    script_server.script = [
        Scripted(body={"value": [{"id": 1}], "@odata.nextLink": f"{script_server.url}/next"}),
        Scripted(body={"value": [{"id": 2}]}),
    ]
    client = GraphClient(session, script_server.url, TOKENS)  # type: ignore[arg-type]

    assert client.subscribed_skus("tenant-a") == [{"id": 1}, {"id": 2}]

    assert [seen.path for seen in script_server.seen] == ["/v1.0/subscribedSkus", "/next"]
    assert {seen.headers["Authorization"] for seen in script_server.seen} == {"Bearer tenant-a"}
    ids = [seen.headers["client-request-id"] for seen in script_server.seen]
    assert len(set(ids)) == 2


def test_a_retried_request_keeps_its_request_id(script_server, session):
    script_server.script = [Scripted(503, {}), Scripted(body={"value": []})]
    client = GraphClient(session, script_server.url, TOKENS)  # type: ignore[arg-type]

    assert client.contracts() == []

    assert len(script_server.seen) == 2
    ids = {seen.headers["client-request-id"] for seen in script_server.seen}
    assert len(ids) == 1


def test_graph_refuses_a_next_link_to_another_origin(script_server, session):
    script_server.script = [
        Scripted(body={"value": [{"id": 1}], "@odata.nextLink": "https://elsewhere.example/steal"})
    ]
    client = GraphClient(session, script_server.url, TOKENS)  # type: ignore[arg-type]

    with pytest.raises(MalformedResponse, match=r"elsewhere\.example"):
        client.delegated_admin_relationships()

    assert len(script_server.seen) == 1
    assert (
        script_server.seen[0].path
        == f"/v1.0/tenantRelationships/delegatedAdminRelationships?$top={MAX_RELATIONSHIPS_PAGE}"
    )


def test_partner_center_ids_are_new_per_request_and_shared_by_the_pages_of_one_call(
    script_server, session
):
    two_pages = [
        Scripted(
            body={
                "items": [{"id": "a"}],
                "links": {
                    "next": {
                        "uri": "/v1/customers?seekOperation=Next",
                        "headers": [{"key": "MS-ContinuationToken", "value": "page-2"}],
                    }
                },
            }
        ),
        Scripted(body={"items": [{"id": "b"}]}),
    ]
    script_server.script = [*two_pages, *two_pages]
    client = PartnerCenterClient(session, script_server.url, TOKENS)  # type: ignore[arg-type]

    first_call = client.customers()
    second_call = client.customers()

    assert first_call == second_call == [{"id": "a"}, {"id": "b"}]
    seen = script_server.seen
    assert [s.path for s in seen[:2]] == [
        f"/v1/customers?size={MAX_PAGE_SIZE}",
        "/v1/customers?seekOperation=Next",
    ]
    assert seen[1].headers["MS-ContinuationToken"] == "page-2"
    assert {s.headers["Authorization"] for s in seen} == {"Bearer partner-center"}
    assert len({s.headers["MS-RequestId"] for s in seen}) == 4
    correlation = [s.headers["MS-CorrelationId"] for s in seen]
    assert correlation[0] == correlation[1]
    assert correlation[2] == correlation[3]
    assert correlation[0] != correlation[2]


@pytest.mark.parametrize(
    ("client_type", "limit"),
    [(GraphClient, MAX_RELATIONSHIPS_PAGE), (PartnerCenterClient, MAX_PAGE_SIZE)],
)
def test_page_size_must_be_within_the_service_limit(client_type, limit, session):
    client_type(session, "https://x.example", TOKENS, page_size=limit)
    for wrong in (0, limit + 1):
        with pytest.raises(ValueError, match=f"page_size must be 1..{limit}"):
            client_type(session, "https://x.example", TOKENS, page_size=wrong)
