"""Post flag changes to a chat webhook (Slack incoming webhook, Teams connector or workflow), and
say them in words (the same lines `sync365 sync` prints).

The body is `{"text": ...}`, which Slack's incoming webhooks and Teams' connectors both render,
plus the flags as structured fields for workflows that parse them (each with its `kind`; fields
are only ever added, never renamed). A webhook is a convenience on
top of the flags recorded in DuckDB and on the `consent_granted` check: a failed post (refused,
timed out, non-2xx) is logged and reported as `False`, never raised, and not retried, so it can
never stop the consent sensor or a sync. Webhook URLs embed a secret, so logs name only the host.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import requests

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.consent_flags import FlagChanges
from sync365_pipeline.warehouse import ConsentFlag, FlagKey, FlagKind

# What an operator does about each tenant-level access loss. Partner-level flags carry their own
# remedy in the message (see `PartnerAccessError`).
REMEDIES: dict[str, str] = {
    TenantStatus.CONSENT_REVOKED: (
        "Consent for the partner's app was revoked in the customer's tenant: ask the customer's "
        "Global Administrator to grant it again."
    ),
    TenantStatus.ACCESS_REMOVED: (
        "The partner's delegated admin access (GDAP relationship or DAP) was removed or has "
        "expired: request a new GDAP relationship in Partner Center and have the customer "
        "approve it."
    ),
    TenantStatus.MFA_REQUIRED: (
        "The customer's Conditional Access demands MFA the partner's sign-in did not carry: "
        "grant consent again with `sync365 consent` completing Entra ID MFA, or ask the customer "
        "to trust MFA from the partner's tenant (cross-tenant access settings)."
    ),
    TenantStatus.BLOCKED: (
        "A policy in the customer's tenant blocks the partner's sign-in: ask the customer's "
        "administrator to review Conditional Access and the partner app's status."
    ),
}
PARTNER_REMEDY = (
    "The partner's own sign-in stopped working, so no customer can be synced: grant consent "
    "again with `sync365 consent` (or set SYNC365_REFRESH_TOKEN to a new refresh token)."
)
GENERIC_REMEDY = "Check the tenant's access for the partner, then let the next sync confirm it."
EXPIRY_REMEDIES: dict[FlagKind, str] = {
    "gdap_expiring": (
        "Extend the GDAP relationship in Partner Center (or turn on its auto-extend), or create "
        "a new one and have the customer approve it before the old one ends."
    ),
    "client_secret_expiring": (
        "Add a new client secret to the app registration (Entra admin center, App "
        "registrations, Certificates & secrets) and set SYNC365_CLIENT_SECRET to it; the next "
        "sync sees the new secret in use and clears this flag."
    ),
}
# How one line announces a raised flag, and a cleared one, of each kind.
RAISED_LABELS: dict[FlagKind, str] = {
    "access_lost": "Access lost",
    "gdap_expiring": "GDAP relationship ending",
    "client_secret_expiring": "Client secret ending",
}
CLEARED_LABELS: dict[FlagKind, str] = {
    "access_lost": "Access restored",
    "gdap_expiring": "GDAP relationship no longer ending (renewed, extended or departed)",
    "client_secret_expiring": "Client secret no longer ending (a later one is in use)",
}


def consent_payload(changes: FlagChanges) -> dict[str, Any]:
    """The JSON body: a human `text` plus the same facts as fields (never a token or secret)."""
    return {
        "text": "\n".join([_headline(changes), *(f"- {line}" for line in change_lines(changes))]),
        "event": "sync365.consent",
        "raised": [
            {
                "partner_tenant_id": flag.partner_tenant_id,
                "tenant_id": flag.tenant_id,
                "kind": flag.kind,
                "customer_name": changes.name_of(flag.partner_tenant_id, flag.tenant_id),
                "partner_name": changes.partner_name_of(flag.partner_tenant_id),
                "status": flag.status,
                "error_code": flag.error_code,
                "message": flag.message,
                "ends_at": flag.ends_at.isoformat() if flag.ends_at else None,
                "raised_at": flag.raised_at.isoformat(),
                "remedy": _remedy(flag),
            }
            for flag in changes.raised
        ],
        "cleared": [
            {
                "partner_tenant_id": partner,
                "tenant_id": tenant_id,
                "kind": kind,
                "customer_name": changes.name_of(partner, tenant_id),
                "partner_name": changes.partner_name_of(partner),
            }
            for partner, tenant_id, kind in changes.cleared
        ],
    }


def change_lines(changes: FlagChanges) -> list[str]:
    """One line per raised flag (what, why, what to do) and per cleared one; customers by name
    where known."""
    lines = [
        f"{RAISED_LABELS[flag.kind]}: {_subject(changes, flag.key)}: {_describe(flag)} "
        f"What to do: {_remedy(flag)}"
        for flag in changes.raised
    ]
    lines += [f"{CLEARED_LABELS[key[2]]}: {_subject(changes, key)}." for key in changes.cleared]
    return lines


class WebhookNotifier:
    """Posts consent changes to one webhook URL; one attempt, bounded by `timeout` seconds.

    Its session is a plain `requests.Session`, not the Microsoft one (`account_session`): a
    webhook answers with text, which that session refuses as a malformed Microsoft answer; its
    retries would post an alert twice; and the extra CA it trusts is for the Microsoft
    endpoints (the simulator's, a proxy's), not for a chat service.
    """

    def __init__(
        self,
        url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self._url = url
        self._session = session or requests.Session()
        self._timeout = timeout
        self._logger = logger or logging.getLogger(__name__)

    def notify(self, changes: FlagChanges) -> bool:
        """Post the changes (nothing to post counts as success); False if the post failed."""
        if not changes:
            return True
        host = urlsplit(self._url).netloc.rpartition("@")[2] or "(invalid URL)"
        try:
            response = self._session.post(
                self._url, json=consent_payload(changes), timeout=self._timeout
            )
        except requests.RequestException as exc:
            # The exception text quotes the URL, whose path is the webhook's secret: name the type.
            self._logger.warning(
                f"Consent webhook to {host} failed ({type(exc).__name__}); "
                "the flags are recorded in consent_flags and on the consent_granted check."
            )
            return False
        if not response.ok:
            self._logger.warning(
                f"Consent webhook to {host} answered HTTP {response.status_code}; "
                "the flags are recorded in consent_flags and on the consent_granted check."
            )
            return False
        return True


def _headline(changes: FlagChanges) -> str:
    raised = Counter(flag.kind for flag in changes.raised)
    cleared = Counter(kind for _, _, kind in changes.cleared)
    counts = [
        (raised["access_lost"], "lost access"),
        (raised["gdap_expiring"], "GDAP relationship(s) ending"),
        (raised["client_secret_expiring"], "client secret(s) ending"),
        (cleared["access_lost"], "regained access"),
        (cleared["gdap_expiring"] + cleared["client_secret_expiring"], "no longer ending"),
    ]
    return f"sync365 consent check: {', '.join(f'{n} {what}' for n, what in counts if n)}."


def _subject(changes: FlagChanges, key: FlagKey) -> str:
    partner_tenant_id, tenant_id, kind = key
    if tenant_id is not None:
        return changes.name_of(partner_tenant_id, tenant_id) or f"customer tenant {tenant_id}"
    name = changes.partner_name_of(partner_tenant_id)
    partner = (
        f"partner {name}, tenant {partner_tenant_id}" if name else f"partner {partner_tenant_id}"
    )
    if kind == "client_secret_expiring":
        return f"{partner} (its app registration)"
    return f"{partner} (the partner's own sign-in)"


def _describe(flag: ConsentFlag) -> str:
    if flag.kind != "access_lost":
        return flag.message or ""
    code = f", Microsoft error {flag.error_code}" if flag.error_code else ""
    what = f" {flag.message}" if flag.message and flag.tenant_id is not None else ""
    return f"status {flag.status}{code}.{what}"


def _remedy(flag: ConsentFlag) -> str:
    if flag.kind != "access_lost":
        return EXPIRY_REMEDIES[flag.kind]
    if flag.tenant_id is None:
        # A partner-level message is "problem + remedy" already (PartnerAccessError).
        return flag.message or PARTNER_REMEDY
    return REMEDIES.get(flag.status, GENERIC_REMEDY)
