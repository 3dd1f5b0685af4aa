"""Paginators against scripted pages: Graph's verbatim nextLink, Partner Center's continuation
headers joined to the service root, loops and page limits."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from sync365_pipeline.microsoft.errors import MalformedResponse
from sync365_pipeline.microsoft.http import build_session
from sync365_pipeline.microsoft.paging import (
    ContinuationTokenPaginator,
    ODataNextLinkPaginator,
    iter_items,
)
from sync365_pipeline.microsoft.partner_center import PartnerCenterClient

from .conftest import Scripted


class Pages:
    """A fake `FetchPage`: the page for each URL, and a log of (url, headers) requested."""

    def __init__(self, pages: Mapping[str, Mapping[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        self.requests.append((url, dict(headers)))
        return self.pages[url]


GRAPH = "https://graph.example/v1.0/tenantRelationships/delegatedAdminRelationships"


def test_graph_follows_next_link_verbatim_resends_headers_and_skips_empty_pages():
    next_1 = f"{GRAPH}?$top=2&$skiptoken=A%2BB"
    next_2 = "https://graph.example/v1.0/x?$skiptoken=C"
    fetch = Pages(
        {
            f"{GRAPH}?$top=2": {"value": [{"id": 1}, {"id": 2}], "@odata.nextLink": next_1},
            next_1: {"value": [], "@odata.nextLink": next_2},
            next_2: {"value": [{"id": 3}]},
        }
    )
    items = list(
        iter_items(
            fetch,
            f"{GRAPH}?$top=2",
            ODataNextLinkPaginator(),
            headers={"ConsistencyLevel": "eventual"},
        )
    )
    assert [item["id"] for item in items] == [1, 2, 3]
    assert [url for url, _ in fetch.requests] == [f"{GRAPH}?$top=2", next_1, next_2]
    assert all(headers == {"ConsistencyLevel": "eventual"} for _, headers in fetch.requests)


def test_graph_next_link_loop_is_an_error():
    looping = f"{GRAPH}?$skiptoken=same"
    fetch = Pages(
        {
            GRAPH: {"value": [], "@odata.nextLink": looping},
            looping: {"value": [{"id": 1}], "@odata.nextLink": looping},
        }
    )
    with pytest.raises(MalformedResponse, match="loop"):
        list(iter_items(fetch, GRAPH, ODataNextLinkPaginator()))


def test_page_limit_stops_an_endless_service():
    def endless(url: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        number = int(url.rsplit("=", 1)[1]) if "=" in url else 0
        return {"value": [{"n": number}], "@odata.nextLink": f"{GRAPH}?p={number + 1}"}

    with pytest.raises(MalformedResponse, match="5 pages"):
        list(iter_items(endless, GRAPH, ODataNextLinkPaginator(), max_pages=5))


def test_partner_center_joins_uri_to_the_root_and_sends_link_headers():
    root = "https://pc.example/prefix"
    first = f"{root}/v1/customers?size=2"
    following = f"{root}/v1/customers?size=2&seekOperation=Next"

    def link(token: str) -> dict:
        return {
            "next": {
                "uri": "/v1/customers?size=2&seekOperation=Next",
                "method": "GET",
                "headers": [{"key": "MS-ContinuationToken", "value": token}],
            }
        }

    pages = [
        {"totalCount": 2, "items": [{"id": "a"}, {"id": "b"}], "links": link("t1,x/y=")},
        {"totalCount": 2, "items": [{"id": "c"}, {"id": "d"}], "links": link("t2")},
        {"totalCount": 1, "items": [{"id": "e"}], "links": {"self": {"uri": "/v1/customers"}}},
    ]
    requested: list[tuple[str, dict[str, str]]] = []

    def fetch(url: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        requested.append((url, dict(headers)))
        return pages[len(requested) - 1]

    items = list(iter_items(fetch, first, ContinuationTokenPaginator(root), headers={"A": "1"}))
    assert [item["id"] for item in items] == ["a", "b", "c", "d", "e"]
    assert requested == [
        (first, {"A": "1"}),
        (following, {"A": "1", "MS-ContinuationToken": "t1,x/y="}),
        (following, {"A": "1", "MS-ContinuationToken": "t2"}),
    ]


def test_partner_center_older_relative_uri_is_under_v1():
    paginator = ContinuationTokenPaginator("https://pc.example/")
    page = {"items": [], "links": {"next": {"uri": "customers?seekOperation=Next", "headers": []}}}
    assert paginator.next_request(page) == (
        "https://pc.example/v1/customers?seekOperation=Next",
        {},
    )


@pytest.mark.parametrize(
    "page",
    [
        {"value": "not a list"},
        {"items": [{"id": 1}]},  # wrong key for Graph
        {"value": [1, 2]},
        {"value": [], "@odata.nextLink": 42},
    ],
)
def test_graph_pages_of_the_wrong_shape_are_malformed(page):
    with pytest.raises(MalformedResponse):
        list(iter_items(lambda url, headers: page, GRAPH, ODataNextLinkPaginator()))


@pytest.mark.parametrize(
    "links",
    [
        {"next": {"headers": []}},
        {"next": {"uri": "/v1/x", "headers": {"MS-ContinuationToken": "t"}}},
        {"next": {"uri": "/v1/x", "headers": [{"key": "MS-ContinuationToken"}]}},
    ],
)
def test_partner_center_bad_links_are_malformed(links):
    with pytest.raises(MalformedResponse):
        list(
            iter_items(
                lambda url, headers: {"items": [], "links": links},
                "https://pc.example/v1/x",
                ContinuationTokenPaginator("https://pc.example"),
            )
        )


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://attacker.example/v1.0/subscribedSkus?$skiptoken=x",
        "http://graph.example/v1.0/subscribedSkus?$skiptoken=x",  # a downgrade to plain http
        "https://graph.example:8443/v1.0/subscribedSkus?$skiptoken=x",
    ],
)
def test_a_next_link_to_another_origin_is_refused_before_the_token_is_sent(elsewhere):
    first = f"{GRAPH}?$top=2"
    fetch = Pages(
        {
            first: {"value": [{"id": 1}], "@odata.nextLink": elsewhere},
            elsewhere: {"value": [{"id": 2}]},
        }
    )
    with pytest.raises(MalformedResponse, match="Refused a next link"):
        list(iter_items(fetch, first, ODataNextLinkPaginator(), headers={"Authorization": "B t"}))
    assert [url for url, _ in fetch.requests] == [first], "nothing was sent elsewhere"


def test_link_headers_cannot_replace_the_callers_authorization():
    root = "https://api.partnercenter.example"
    first = f"{root}/v1/customers?size=1"
    following = f"{root}/v1/customers?size=1&seekOperation=Next"
    fetch = Pages(
        {
            first: {
                "items": [{"id": "a"}],
                "links": {
                    "next": {
                        "uri": "/v1/customers?size=1&seekOperation=Next",
                        "headers": [{"key": "authorization", "value": "Bearer other"}],
                    }
                },
            },
            following: {"items": [{"id": "b"}]},
        }
    )
    with pytest.raises(MalformedResponse, match="authorization"):
        list(
            iter_items(
                fetch, first, ContinuationTokenPaginator(root), headers={"Authorization": "B t"}
            )
        )
    assert [url for url, _ in fetch.requests] == [first]


def test_partner_center_client_refuses_a_link_that_would_replace_its_token(script_server):
    """The clients hand the token to the paging as its own headers, so the guard applies."""
    script_server.script = [
        Scripted(
            200,
            {
                "items": [{"id": "a"}],
                "links": {
                    "next": {
                        "uri": "/v1/customers?seekOperation=Next",
                        "headers": [{"key": "Authorization", "value": "Bearer someone-else"}],
                    }
                },
            },
        )
    ]
    tokens = SimpleNamespace(
        partner_center_token=lambda: SimpleNamespace(authorization=lambda: "Bearer ours")
    )
    session = build_session(ca_bundle=script_server.ca_path)
    client = PartnerCenterClient(session, script_server.url, tokens)  # type: ignore[arg-type]
    try:
        with pytest.raises(MalformedResponse, match="authorization"):
            client.customers()
    finally:
        session.close()
    assert len(script_server.seen) == 1
    assert script_server.seen[0].headers["Authorization"] == "Bearer ours"
