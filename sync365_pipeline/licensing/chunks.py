"""The bulk fetch in chunks of tenants, one Dagster step each, and the one step that writes them.

Chunk steps run one after another in the sync's process (the in-process executor), or in
parallel in processes or pods of their own (the multiprocess, Kubernetes or Celery executors).
A chunk fetches its tenants, validates and normalizes each payload once, and stages statuses, raw
payloads and facts as files (`warehouse.staging`); it never opens the warehouse, whose single
writer is the step that loads every chunk. What a chunk hands to that step is small and holds no
secret (paths, counts, a redacted failure), so Dagster may store it anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing import accounts, datasets, facts, tenants
from sync365_pipeline.microsoft import MicrosoftCloud, MicrosoftError
from sync365_pipeline.microsoft.auth import TokenCacheFile
from sync365_pipeline.warehouse import Warehouse, dataset_frames, write_stage
from sync365_pipeline.warehouse.columns import USERS
from sync365_pipeline.warehouse.rows import UserDeltaLink


@dataclass(frozen=True)
class TenantChunk:
    """Tenants of one account that one step fetches, and what every chunk of a run shares."""

    account: str
    partner_tenant_id: str
    number: int
    tenants: tuple[tenants.CustomerRoutes, ...]
    snapshot_date: date
    sync_id: str
    staging_dir: str
    without_sign_ins: tuple[str, ...] = ()  # sign-in activity refused within the last week
    # The tenants' users delta links (Graph URLs: kept out of the chunk's repr and logs).
    users_links: tuple[UserDeltaLink, ...] = field(default=(), repr=False)
    users_without_delta: tuple[str, ...] = ()  # one page of users: read in full, no link

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(customer.tenant_id for customer in self.tenants)

    @property
    def key(self) -> str:
        """A Dagster mapping key: letters, digits and underscores."""
        return f"{re.sub(r'[^A-Za-z0-9]', '_', self.account)}_{self.number}"


@dataclass(frozen=True)
class StagedChunk:
    """What a chunk staged: {table: file}, per-status counts, HTTP figures, or its failure."""

    chunk: TenantChunk
    files: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    http: dict[str, float] = field(default_factory=dict)
    gained_tokens: str | None = None  # a 0600 file of the customer tokens it obtained
    failure: accounts.AccountFailure | None = None


def plan_chunks(
    warehouse: Warehouse,
    account_settings: Sequence[AccountSettings],
    chosen: Mapping[str, Sequence[str]],
    *,
    snapshot_date: date,
    sync_id: str,
    staging_dir: Path,
) -> list[TenantChunk]:
    """Each account's chosen tenants, with how the account reaches each (`customer_routes`) and
    how to read their users (`_users_plan`), cut into chunks of its `chunk_size` (an account
    with no tenant gets none)."""
    planned = []
    for settings in account_settings:
        routes = customer_routes(warehouse, settings.tenant_id)
        refused, one_page, links = _users_plan(warehouse, settings)
        customers = [
            routes.get(tenant_id) or tenants.CustomerRoutes(tenant_id)
            for tenant_id in chosen.get(settings.tenant_id, ())
        ]
        for number, start in enumerate(range(0, len(customers), settings.chunk_size)):
            members = customers[start : start + settings.chunk_size]
            planned.append(
                TenantChunk(
                    account=settings.name,
                    partner_tenant_id=settings.tenant_id,
                    number=number,
                    tenants=tuple(members),
                    snapshot_date=snapshot_date,
                    sync_id=sync_id,
                    staging_dir=str(staging_dir),
                    without_sign_ins=_members_in(members, refused),
                    users_links=tuple(links[t.lower()] for t in _members_in(members, links)),
                    users_without_delta=_members_in(members, one_page),
                )
            )
    return planned


def _users_plan(
    warehouse: Warehouse, settings: AccountSettings
) -> tuple[set[str], set[str], dict[str, UserDeltaLink]]:
    """The account's tenants (lower case) whose sign-in activity Graph refused within the full
    read's week (`tenants.full_read_week_start`, UTC calendar days), those with one page of
    users at most (`tenants.USERS_DELTA_ABOVE`), and the others' users delta links by tenant;
    all empty with `users` off (no users are read)."""
    if not settings.users:
        return set(), set(), {}
    refused = warehouse.tenants_with_dataset_code(
        settings.tenant_id,
        USERS,
        tenants.SIGN_INS_UNAVAILABLE,
        since=tenants.full_read_week_start(utcnow()),
    )
    one_page = warehouse.tenants_with_users_at_most(settings.tenant_id, tenants.USERS_DELTA_ABOVE)
    links = {
        tenant: link
        for link in warehouse.user_delta_links(settings.tenant_id)
        if (tenant := link.tenant_id.lower()) not in one_page
    }
    return refused, one_page, links


def _members_in(
    members: Sequence[tenants.CustomerRoutes], lowered: Collection[str]
) -> tuple[str, ...]:
    """The members' tenant ids that `lowered` (lower-case ids) holds, in the members' order."""
    return tuple(
        customer.tenant_id for customer in members if customer.tenant_id.lower() in lowered
    )


def customer_routes(
    warehouse: Warehouse, partner_tenant_id: str
) -> dict[str, tenants.CustomerRoutes]:
    """How the partner reaches each of its customers, by tenant id, from the `customers` table."""
    frame = warehouse.customer_routes(partner_tenant_id)
    return {
        row.tenant_id: tenants.CustomerRoutes(
            tenant_id=row.tenant_id,
            relationship=row.relationship,
            gdap_relationship_ids=tuple(str(rid) for rid in row.gdap_relationship_ids),
            gdap_end_date=None if pd.isna(row.gdap_end_date) else row.gdap_end_date.to_pydatetime(),
            auto_extend=None if pd.isna(row.gdap_auto_extend) else bool(row.gdap_auto_extend),
        )
        for row in frame.itertuples(index=False)
    }


def fetch_chunk(
    cloud: MicrosoftCloud,
    settings: AccountSettings,
    chunk: TenantChunk,
    catalog: SkuCatalog,
    on_progress: tenants.ProgressCallback | None = None,
) -> StagedChunk:
    """Fetch, check and stage one chunk. A tenant's failure is its status; a partner-level
    failure (the refresh token died mid-run, an outage past the retries) ends the chunk as an
    `AccountFailure` for the writer to record, with whatever was fetched before it unstaged."""
    try:
        fetched = tenants.fetch_tenants(
            cloud,
            chunk.tenants,
            max_workers=settings.max_workers,
            partner_center=settings.kind == "partner",
            consent_app=settings.client_id if settings.auto_consent else None,
            users=settings.users,
            without_sign_ins=chunk.without_sign_ins,
            users_links=chunk.users_links,
            users_without_delta=chunk.users_without_delta,
            on_progress=on_progress,
        )
    except Exception as raised:
        exc = accounts.account_failure(settings, raised)
        if not isinstance(exc, MicrosoftError):
            raise
        failure = accounts.AccountFailure.of(exc)
        return StagedChunk(chunk, http=cloud.session.stats.snapshot(), failure=failure)
    where = {
        "catalog": catalog,
        "partner_tenant_id": chunk.partner_tenant_id,
        "snapshot_date": chunk.snapshot_date,
        "sync_id": chunk.sync_id,
    }
    staged = facts.stage_fetches(fetched, **where)
    staged_datasets = datasets.stage_datasets(fetched, **where)
    files = write_stage(
        Path(chunk.staging_dir),
        chunk.key,
        statuses=staged.statuses,
        access=staged.access,
        raw_payloads=staged.raw_payloads,
        facts_by_tenant=staged.facts_by_tenant,
        partner_tenant_id=chunk.partner_tenant_id,
        datasets=dataset_frames(
            staged_datasets.rows,
            staged_datasets.slices,
            staged_datasets.statuses,
            user_deltas=staged_datasets.user_deltas,
            user_delta_rows=staged_datasets.user_delta_rows,
            user_links=staged_datasets.user_links,
        ),
    )
    gained = Path(chunk.staging_dir) / f"{chunk.key}.tokens.json"
    cloud.tokens.write_gained(gained)
    counts = Counter(row.status.value for row in staged.statuses)
    return StagedChunk(chunk, files, dict(counts), cloud.session.stats.snapshot(), str(gained))


def store_chunks(
    warehouse: Warehouse,
    staged: Sequence[StagedChunk],
    account_settings: Sequence[AccountSettings],
) -> None:
    """The writer: every chunk's statuses and raw payloads in one transaction, one
    `partner_status` row per account that failed inside a chunk, and the customer tokens the
    chunks obtained into each account's token cache (which chunks, running side by side, never
    write themselves)."""
    warehouse.load_staged_fetches([chunk.files for chunk in staged])
    for settings in account_settings:
        TokenCacheFile(settings.token_cache_path).keep_gained(
            [
                Path(chunk.gained_tokens)
                for chunk in staged
                if chunk.chunk.account == settings.name and chunk.gained_tokens
            ]
        )
    recorded = set()
    for chunk in staged:
        if chunk.failure is not None and chunk.chunk.partner_tenant_id not in recorded:
            recorded.add(chunk.chunk.partner_tenant_id)
            warehouse.record_partner_status(
                chunk.failure.row(chunk.chunk.partner_tenant_id, chunk.chunk.sync_id)
            )


def http_by_account(staged: Sequence[StagedChunk]) -> dict[str, dict[str, float]]:
    """Each account's HTTP figures, summed over its chunks."""
    totals: dict[str, Counter[str]] = {}
    for chunk in staged:
        totals.setdefault(chunk.chunk.account, Counter()).update(chunk.http)
    return {account: dict(figures) for account, figures in totals.items()}


def status_counts(staged: Sequence[StagedChunk]) -> Counter[str]:
    return sum((Counter(chunk.statuses) for chunk in staged), Counter())
