"""What the Graph and Partner Center clients share: their construction and the fetch of every page.

A client says only what differs per service: how its pages link (`Paginator`), its page-size
limit, and the tracing ids each request carries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import requests

from sync365_pipeline.microsoft.auth import AccessToken, TokenProvider
from sync365_pipeline.microsoft.http import get_json
from sync365_pipeline.microsoft.paging import Paginator, iter_items
from sync365_pipeline.microsoft.rate_limit import RateLimiter

RequestIds = Callable[[], Mapping[str, str]]
"""The tracing headers of one request, called once per page (so once per request id)."""


class ApiClient(ABC):
    """One Microsoft REST service: the shared session, its root URL, the token provider, a page
    size within the service's limit (its maximum unless given) and the rate limiter every request
    waits for (the service's default unless given; Graph has none: it throttles per tenant)."""

    service: ClassVar[Literal["graph", "partner_center"]]
    max_page_size: ClassVar[int]

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        tokens: TokenProvider,
        *,
        page_size: int | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        page_size = self.max_page_size if page_size is None else page_size
        if not 1 <= page_size <= self.max_page_size:
            raise ValueError(f"page_size must be 1..{self.max_page_size}, not {page_size}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._page_size = page_size
        self._paginator = self._new_paginator()
        self.limiter = limiter if limiter is not None else self._default_limiter()

    @abstractmethod
    def _new_paginator(self) -> Paginator:
        """How this service links one page to the next."""

    def _default_limiter(self) -> RateLimiter | None:
        """The service's own limit when none is given: none."""
        return None

    def _fetch_all(
        self,
        url: str,
        token: AccessToken,
        *,
        tenant_id: str | None,
        request_ids: RequestIds,
        headers: Mapping[str, str] | None = None,
        paginator: Paginator | None = None,
    ) -> list[dict[str, Any]]:
        """Every item of every page from `url`, sending `headers` with each (Graph does not
        carry them over into next links), every page from the service's own origin; `paginator`
        instead of the service's (e.g. one that keeps a delta link). Failures are classified
        `MicrosoftError`s."""

        def fetch(page_url: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
            # The ids are fixed per request here, so the session's retries resend them unchanged.
            return get_json(
                self._session,
                page_url,
                headers={**headers, **request_ids()},
                service=self.service,
                tenant_id=tenant_id,
                limiter=self.limiter,
            )

        # The token goes in as the paging's own headers, which no next link may redirect or
        # replace (`iter_pages`).
        credentials = {"Authorization": token.authorization(), "Accept": "application/json"}
        items = iter_items(
            fetch,
            url,
            paginator or self._paginator,
            headers={**(headers or {}), **credentials},
            origin_of=self._base_url,
        )
        return list(items)
