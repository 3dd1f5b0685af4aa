"""The concurrent per-tenant fetch: a failing customer is an outcome (data), never an exception.

Only partner-level failures (`PartnerAccessError`) propagate and stop the fetch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import MicrosoftCloud, PartnerAccessError
from sync365_pipeline.microsoft.errors import tenant_outcome

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


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


def fetch_tenant(cloud: MicrosoftCloud, tenant_id: str, *, partner_center: bool) -> TenantFetch:
    """Fetch one tenant's SKUs; every failure inside this tenant's work, whatever its type (an
    odd token answer MSAL chokes on, JSON deep enough to exhaust recursion, a bug), becomes a
    typed status with a short, redacted message. Only a partner-level failure propagates.

    `partner_center` adds Partner Center's view of the same SKUs, used only for friendly names.
    """
    checked_at = utcnow()
    try:
        graph_skus = cloud.graph.subscribed_skus(tenant_id)
    except PartnerAccessError:
        raise
    except Exception as exc:
        status, code, message = tenant_outcome(exc)
        return TenantFetch(tenant_id, status, checked_at, code, message)
    partner_center_skus: list[dict[str, Any]] | None = None
    if partner_center:
        try:
            partner_center_skus = cloud.partner_center.subscribed_skus(tenant_id)
        except PartnerAccessError:
            raise
        except Exception as exc:
            # Partner Center only adds friendly names; the catalog covers them when it fails.
            log.info(
                "Partner Center SKUs unavailable for %s (%s); names from catalog", tenant_id, exc
            )
    return TenantFetch(
        tenant_id,
        TenantStatus.OK,
        checked_at,
        graph_skus=graph_skus,
        partner_center_skus=partner_center_skus,
    )


def fetch_tenants(
    cloud: MicrosoftCloud,
    tenant_ids: Sequence[str],
    *,
    max_workers: int,
    partner_center: bool = True,
    on_progress: ProgressCallback | None = None,
) -> list[TenantFetch]:
    """Fetch many tenants with a bounded pool; stop starting new ones on a partner-level
    failure or an interrupt, which then propagates."""
    results: list[TenantFetch] = []
    lock = threading.Lock()

    def one(tenant_id: str) -> None:
        try:
            fetched = fetch_tenant(cloud, tenant_id, partner_center=partner_center)
        finally:
            cloud.tokens.release(tenant_id)
        with lock:
            results.append(fetched)
            done = len(results)
        if on_progress is not None:
            on_progress(done, len(tenant_ids))

    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tenant")
    futures = [pool.submit(one, tenant_id) for tenant_id in tenant_ids]
    try:
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in finished:
            if (error := future.exception()) is not None:
                raise error
    except BaseException:
        # A partner-level failure, or SIGINT/SIGTERM (Dagster raises it here, in the main
        # thread): start no further tenant; those in flight end within their response deadline.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    position = {tenant_id: index for index, tenant_id in enumerate(tenant_ids)}
    return sorted(results, key=lambda fetched: position[fetched.tenant_id])
