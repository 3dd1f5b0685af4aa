"""Post consent flags to a chat webhook (Slack incoming webhook, Teams connector or workflow).

The body is `{"text": ...}`, which Slack's incoming webhooks and Teams' connectors both render,
plus the flags as structured fields for workflows that parse them. A webhook is a convenience on
top of the flags recorded in DuckDB and on the `consent_granted` check: a failed post (refused,
timed out, non-2xx) is logged and reported as `False`, never raised, and not retried, so it can
never stop the consent sensor. Webhook URLs embed a secret, so logs name only the host.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.consent_flags import FlagKey
from sync365_pipeline.warehouse import ConsentFlag

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


def consent_payload(raised: Sequence[ConsentFlag], cleared: Sequence[FlagKey]) -> dict[str, Any]:
    """The JSON body: a human `text` plus the same facts as fields (never a token or secret)."""
    lines = [_headline(raised, cleared)]
    lines += [f"- {_describe(flag)}" for flag in raised]
    lines += [f"- Access restored: {_subject(tenant, partner)}." for partner, tenant in cleared]
    return {
        "text": "\n".join(lines),
        "event": "sync365.consent",
        "raised": [
            {
                "partner_tenant_id": flag.partner_tenant_id,
                "tenant_id": flag.tenant_id,
                "status": flag.status,
                "error_code": flag.error_code,
                "message": flag.message,
                "raised_at": flag.raised_at.isoformat(),
                "remedy": _remedy(flag),
            }
            for flag in raised
        ],
        "cleared": [
            {"partner_tenant_id": partner, "tenant_id": tenant_id} for partner, tenant_id in cleared
        ],
    }


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

    def notify(self, raised: Sequence[ConsentFlag], cleared: Sequence[FlagKey]) -> bool:
        """Post the changes (nothing to post counts as success); False if the post failed."""
        if not raised and not cleared:
            return True
        host = urlsplit(self._url).netloc.rpartition("@")[2] or "(invalid URL)"
        try:
            response = self._session.post(
                self._url, json=consent_payload(raised, cleared), timeout=self._timeout
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


def _headline(raised: Sequence[ConsentFlag], cleared: Sequence[FlagKey]) -> str:
    parts = []
    if raised:
        parts.append(f"{len(raised)} lost access")
    if cleared:
        parts.append(f"{len(cleared)} regained access")
    return f"sync365 consent check: {', '.join(parts)}."


def _subject(tenant_id: str | None, partner_tenant_id: str) -> str:
    if tenant_id is None:
        return f"partner {partner_tenant_id} (the partner's own sign-in)"
    return f"customer tenant {tenant_id} (partner {partner_tenant_id})"


def _describe(flag: ConsentFlag) -> str:
    code = f", Microsoft error {flag.error_code}" if flag.error_code else ""
    what = f" {flag.message}" if flag.message and flag.tenant_id is not None else ""
    return (
        f"Access lost: {_subject(flag.tenant_id, flag.partner_tenant_id)}: status {flag.status}"
        f"{code}.{what} What to do: {_remedy(flag)}"
    )


def _remedy(flag: ConsentFlag) -> str:
    if flag.tenant_id is None:
        # A partner-level message is "problem + remedy" already (PartnerAccessError).
        return flag.message or PARTNER_REMEDY
    return REMEDIES.get(flag.status, GENERIC_REMEDY)
