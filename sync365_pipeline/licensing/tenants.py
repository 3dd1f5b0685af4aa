"""The concurrent per-tenant fetch: a failing customer is an outcome (data), never an exception.

Only partner-level failures (`PartnerAccessError`) propagate and stop the fetch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import MicrosoftCloud, PartnerAccessError
from sync365_pipeline.microsoft.errors import tenant_outcome

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
# Partner Center calls wait for the partner's rate limit (500 a minute by default, about 8 a
# second); two at a time keep up with it at Microsoft's latency.
PARTNER_CENTER_WORKERS = 2


@dataclass(frozen=True)
class TenantFetch:
    """What one customer tenant returned in one sync attempt."""

    tenant_id: str
    status: TenantStatus
    checked_at: datetime
    error_code: str | None = None
    message: str = ""
    graph_skus: list[dict[str, Any]] | None = None
    partner_center_skus: list[dict[str, Any]] | None = None


def fetch_tenant(cloud: MicrosoftCloud, tenant_id: str) -> TenantFetch:
    """Fetch one tenant's SKUs from Graph; every failure inside this tenant's work, whatever its
    type (an odd token answer MSAL chokes on, JSON deep enough to exhaust recursion, a bug),
    becomes a typed status with a short, redacted message. Only a partner-level failure
    propagates."""
    checked_at = utcnow()
    try:
        graph_skus = cloud.graph.subscribed_skus(tenant_id)
    except PartnerAccessError:
        raise
    except Exception as exc:
        status, code, message = tenant_outcome(exc)
        return TenantFetch(tenant_id, status, checked_at, code, message)
    return TenantFetch(tenant_id, TenantStatus.OK, checked_at, graph_skus=graph_skus)


def needs_partner_center_names(fetched: TenantFetch, catalog: SkuCatalog) -> bool:
    """Whether the tenant holds a SKU the catalog cannot name (Partner Center's name is then the
    only friendly one). Records that are not SKUs are left to the normalization to report."""
    return any(
        isinstance(item, Mapping)
        and isinstance(sku_id := item.get("skuId"), str)
        and catalog.get(sku_id) is None
        for item in fetched.graph_skus or ()
    )


def partner_center_skus(cloud: MicrosoftCloud, tenant_id: str) -> list[dict[str, Any]] | None:
    """Partner Center's view of the tenant's SKUs, for their names; None when it fails (the part
    number names them then). Only a partner-level failure propagates."""
    try:
        return cloud.partner_center.subscribed_skus(tenant_id)
    except PartnerAccessError:
        raise
    except Exception as exc:
        log.info("Partner Center SKUs unavailable for %s (%s); names from catalog", tenant_id, exc)
        return None


def fetch_tenants(
    cloud: MicrosoftCloud,
    tenant_ids: Sequence[str],
    *,
    max_workers: int,
    partner_center: bool = True,
    catalog: SkuCatalog | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[TenantFetch]:
    """Fetch many tenants with a bounded pool; stop starting new ones on a partner-level
    failure or an interrupt, which then propagates.

    With `partner_center`, a tenant holding a SKU that `catalog` (the packaged one by default)
    cannot name also gets Partner Center's names. Those calls wait for the partner's rate limit,
    so they run in a small pool of their own: the Graph work never waits behind them, and the
    result waits for them only at the end.
    """
    if not partner_center:
        catalog = None
    elif catalog is None:
        catalog = SkuCatalog.load()
    results: dict[str, TenantFetch] = {}
    lock = threading.Lock()
    tenant_pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tenant")
    names_pool = ThreadPoolExecutor(
        max_workers=PARTNER_CENTER_WORKERS, thread_name_prefix="partner-center"
    )
    names_futures: list[Future[None]] = []

    def add_names(tenant_id: str) -> None:
        skus = partner_center_skus(cloud, tenant_id)
        with lock:
            results[tenant_id] = replace(results[tenant_id], partner_center_skus=skus)

    def one(tenant_id: str) -> None:
        try:
            fetched = fetch_tenant(cloud, tenant_id)
        finally:
            cloud.tokens.release(tenant_id)
        with lock:
            results[tenant_id] = fetched
            done = len(results)
            if catalog is not None and needs_partner_center_names(fetched, catalog):
                names_futures.append(names_pool.submit(add_names, tenant_id))
        if on_progress is not None:
            on_progress(done, len(tenant_ids))

    try:
        _wait_for_all([tenant_pool.submit(one, tenant_id) for tenant_id in tenant_ids])
        tenant_pool.shutdown(wait=True)
        with lock:
            pending = list(names_futures)
        _wait_for_all(pending)
    except BaseException:
        # A partner-level failure, or SIGINT/SIGTERM (Dagster raises it here, in the main
        # thread): start no further tenant; those in flight end within their response deadline.
        tenant_pool.shutdown(wait=True, cancel_futures=True)
        names_pool.shutdown(wait=True, cancel_futures=True)
        raise
    names_pool.shutdown(wait=True)
    return [results[tenant_id] for tenant_id in tenant_ids]


def _wait_for_all(futures: Sequence[Future[None]]) -> None:
    """Wait for every future; the first exception (if any) is raised at once."""
    finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for future in finished:
        if (error := future.exception()) is not None:
            raise error
