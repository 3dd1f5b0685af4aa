"""Paginators as small objects (the dlt pattern): each knows only how to find the next page.

Fetching is the caller's (a `FetchPage` function that GETs one page and raises classified
errors), so the paging rules are testable without a server and shared by both clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from sync365_pipeline.microsoft.errors import MalformedResponse

FetchPage = Callable[[str, Mapping[str, str]], Mapping[str, Any]]
"""GET one page: (url, headers) -> the decoded JSON object."""

DEFAULT_MAX_PAGES = 10_000


class Paginator(Protocol):
    items_key: str

    def next_request(self, page: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        """(url, extra headers) of the page after `page`, or None at the end."""


class ODataNextLinkPaginator:
    """Microsoft Graph: follow `@odata.nextLink` verbatim (an absolute URL) until it is absent."""

    items_key = "value"

    def next_request(self, page: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        link = page.get("@odata.nextLink")
        if link is None:
            return None
        if not isinstance(link, str) or urlsplit(link).scheme not in ("https", "http"):
            raise MalformedResponse("Graph returned an @odata.nextLink that is not a URL.")
        return link, {}


class ODataDeltaPaginator(ODataNextLinkPaginator):
    """A Graph delta round: next links to its last page, whose `@odata.deltaLink` (the start of
    the next round) it keeps; one instance per round."""

    def __init__(self) -> None:
        self.delta_link: object = None

    def next_request(self, page: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        following = super().next_request(page)
        if following is None:
            self.delta_link = page.get("@odata.deltaLink")
        return following


class ContinuationTokenPaginator:
    """Partner Center: `links.next.uri` plus every header in `links.next.headers`
    (`MS-ContinuationToken`), until a page has no `links.next`.

    The uri is joined to the service root, not to `/v1`: the service once changed it to include
    `/v1` and clients that prepended it broke (Partner-Center-PowerShell#379). A uri without a
    leading slash is the older form, relative to `/v1/`.
    """

    items_key = "items"

    def __init__(self, service_root: str) -> None:
        self.service_root = service_root.rstrip("/")

    def next_request(self, page: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        links = page.get("links")
        following = links.get("next") if isinstance(links, Mapping) else None
        if following is None:
            return None
        uri = following.get("uri") if isinstance(following, Mapping) else None
        if not isinstance(uri, str) or not uri:
            raise MalformedResponse("Partner Center returned a links.next without a uri.")
        if urlsplit(uri).scheme:
            url = uri
        elif uri.startswith("/"):
            url = self.service_root + uri
        else:
            url = f"{self.service_root}/v1/{uri}"
        return url, _link_headers(following.get("headers"))


def iter_pages(
    fetch: FetchPage,
    url: str,
    paginator: Paginator,
    *,
    headers: Mapping[str, str] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    origin_of: str | None = None,
) -> Iterator[Mapping[str, Any]]:
    """Every page from `url` on. The caller's `headers` are sent with every page (Graph does not
    carry custom headers over into its next links); a link seen twice or more than `max_pages`
    pages raise `MalformedResponse` rather than loop or silently truncate.

    The caller's headers carry the bearer token, so every page, `url` included, is fetched only
    from the origin (scheme, host, port) of `origin_of` (default: `url`), and a link's headers
    cannot replace the caller's: a hostile or corrupted page, or a stored link, must not be able
    to send a customer's token elsewhere.
    """
    base_headers = dict(headers or {})
    allowed = origin_of or url
    request: tuple[str, dict[str, str]] | None = (url, {})
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    while request is not None:
        page_url, extra_headers = request
        key = (page_url, tuple(sorted(extra_headers.items())))
        if key in seen:
            raise MalformedResponse(
                f"Paging loop: the service repeated a next link ({len(seen)} pages in)."
            )
        if len(seen) >= max_pages:
            raise MalformedResponse(
                f"Paging stopped after {max_pages} pages without reaching the end."
            )
        seen.add(key)
        if not same_origin(page_url, allowed):
            raise MalformedResponse(
                f"Refused a next link to {urlsplit(page_url).netloc or page_url!r}: pages must "
                f"stay on {urlsplit(allowed).netloc}, where the token is meant to go."
            )
        overriding = {name.lower() for name in base_headers} & {n.lower() for n in extra_headers}
        if overriding:
            raise MalformedResponse(
                f"Refused a next link that replaces the request's {', '.join(sorted(overriding))} "
                "header."
            )
        page = fetch(page_url, {**base_headers, **extra_headers})
        items = page.get(paginator.items_key)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise MalformedResponse(f"A page has no list of objects under {paginator.items_key!r}.")
        yield page
        request = paginator.next_request(page)


def iter_items(
    fetch: FetchPage,
    url: str,
    paginator: Paginator,
    *,
    headers: Mapping[str, str] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    origin_of: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item of every page."""
    pages = iter_pages(
        fetch, url, paginator, headers=headers, max_pages=max_pages, origin_of=origin_of
    )
    for page in pages:
        yield from page[paginator.items_key]


def same_origin(url: str, other: str) -> bool:
    """Whether both URLs have one scheme, host and port (where a token may be sent)."""
    first, second = urlsplit(url), urlsplit(other)
    return (first.scheme.lower(), first.netloc.lower()) == (
        second.scheme.lower(),
        second.netloc.lower(),
    )


def _link_headers(raw: object) -> dict[str, str]:
    """`[{"key": k, "value": v}, ...]` as a dict."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise MalformedResponse("Partner Center returned links.next.headers that is not a list.")
    headers: dict[str, str] = {}
    for entry in raw:
        if not (
            isinstance(entry, Mapping)
            and isinstance(entry.get("key"), str)
            and isinstance(entry.get("value"), str)
        ):
            raise MalformedResponse(
                "Partner Center returned a links.next header without key/value."
            )
        headers[entry["key"]] = entry["value"]
    return headers
