"""What each table, view and column of the warehouse means: the text of its `COMMENT ON`.

`apply_comments` runs at the end of every `migrate()` that recreates the views (recreating
a view drops its comments), so `duckdb_tables()`, `duckdb_views()`, `duckdb_columns()`, the
analyst copy and the BI tools that read them carry the docs; `docs/data-dictionary.md` is made
from them (`warehouse/dictionary.py`). A column in `SHARED_COLUMNS` means the same in every table
and view that has it; a relation's own text for it wins. Every timestamp is UTC, stored as naive
TIMESTAMP, and each timestamp column's text says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb

from sync365_pipeline.warehouse.columns import UNIT_COLUMNS
from sync365_pipeline.warehouse.sql_text import identifier, string_literal


@dataclass(frozen=True)
class Described:
    """A table's or view's comment and its own column comments (over `SHARED_COLUMNS`)."""

    text: str
    columns: Mapping[str, str] = field(default_factory=dict)


_FRESHNESS = (
    "True when this customer's facts are not current: its latest sync attempt was not 'ok', that "
    "attempt wrote no facts, or its latest snapshot is older than the newest snapshot date of "
    "any customer (the stale rule, defined once in the tenant_freshness view)."
)

SHARED_COLUMNS: Mapping[str, str] = {
    "partner_tenant_id": (
        "Entra tenant id (GUID) of the partner account this customer is reached through; for a "
        "direct tenant, its own tenant id. With tenant_id it identifies a customer: one tenant "
        "reached through two partner accounts is two customers."
    ),
    "tenant_id": "Entra tenant id (GUID) of the customer's tenant.",
    "display_name": (
        "The customer's company name: Partner Center companyProfile.companyName, else the GDAP "
        "relationship's customer.displayName, else the DAP contract's displayName (Graph "
        "organization.displayName for a direct tenant)."
    ),
    "default_domain": (
        "The customer's default domain: Partner Center companyProfile.domain, else the DAP "
        "contract's defaultDomainName (Graph organization's default verified domain for a direct "
        "tenant)."
    ),
    "relationship": (
        "How the partner reaches the customer: the routes found, sorted and joined by '+' "
        "(reseller, advisor and the like from Partner Center relationshipToPartner; gdap; dap), "
        "'direct' for a direct tenant."
    ),
    "gdap_status": (
        "Status of the customer's chosen GDAP relationship (Graph delegatedAdminRelationships "
        "status: active, expired, terminated, ...; the active one is chosen, then the latest "
        "ending); NULL without GDAP."
    ),
    "gdap_end_date": (
        "When (UTC) that GDAP relationship ends (Graph endDateTime); NULL without GDAP."
    ),
    "active": (
        "True while the customer is in the partner's latest customer list; false once it left "
        "(its history is kept)."
    ),
    "snapshot_date": (
        "The day (UTC) the facts describe: the creation date, in UTC, of the sync run that "
        "fetched them. One snapshot per customer per day; a later sync that day replaces it."
    ),
    "sku_id": "The product's SKU id (GUID), Graph subscribedSkus skuId.",
    "sku_part_number": (
        "The SKU's part number, e.g. SPB or O365_BUSINESS_PREMIUM (Graph skuPartNumber)."
    ),
    "product_name": (
        "The product's display name, e.g. 'Microsoft 365 Business Premium' (from "
        "product_name_source)."
    ),
    "product_name_source": (
        "Where product_name came from: partner_center (Partner Center productSku.name), catalog "
        "(Microsoft's product names CSV, `sync365 refresh-sku-names`), part_number or sku_id "
        "(no name known)."
    ),
    "capability_status": (
        "The subscription's state (Graph capabilityStatus): Enabled, Warning (expired, in its "
        "grace period), Suspended, LockedOut (cancelled) or Deleted; of several billing accounts, "
        "the most usable."
    ),
    "enabled_units": (
        "Seats the customer has bought and can assign (Graph prepaidUnits.enabled), summed over "
        "billing accounts. Free and viral SKUs often show 10000."
    ),
    "suspended_units": (
        "Seats of a cancelled subscription: not assignable, still reactivable (Graph "
        "prepaidUnits.suspended)."
    ),
    "warning_units": (
        "Seats of an expired subscription in its grace period (Graph prepaidUnits.warning)."
    ),
    "locked_out_units": (
        "Seats locked out, no longer usable (Graph prepaidUnits.lockedOut; 0 when Microsoft "
        "omits it)."
    ),
    "consumed_units": (
        "Seats assigned to users (Graph consumedUnits); can exceed enabled_units while "
        "a subscription is suspended or in warning."
    ),
    "available_units": (
        "Seats bought but not assigned: enabled_units - consumed_units, negative when more are "
        "assigned than enabled."
    ),
    "billing_accounts": (
        "How many Graph subscribedSkus objects (one per billing account) were summed into this "
        "row; usually 1."
    ),
    "source": (
        "Where the counts came from: graph (Graph subscribedSkus) or partner_center (Partner "
        "Center subscribedskus, when Graph could not be read)."
    ),
    "synced_at": "When (UTC) the sync fetched these facts from Microsoft.",
    "sync_id": "Dagster run id of the sync that recorded the row, when it had one; else NULL.",
    "error_code": (
        "Microsoft's error code behind the status (an AADSTS code, a Graph or Partner Center "
        "error code, or the HTTP status); NULL when there was none."
    ),
    "message": "What happened and what to do, in words; secrets redacted, length clipped.",
    "facts_as_of": "Date (UTC) of the customer's latest written snapshot.",
    "last_status": (
        "Status of the customer's latest sync attempt (tenant_status.status); NULL if never "
        "attempted."
    ),
    "last_checked_at": "When (UTC) the customer's latest sync attempt ran.",
    "is_stale": _FRESHNESS,
}

_TENANT_STATUS_COLUMNS: Mapping[str, str] = {
    "checked_at": "When (UTC) the sync attempted this customer.",
    "status": (
        "Outcome of the attempt: ok, consent_revoked, access_removed, mfa_required, blocked, "
        "tenant_gone, throttled or error (docs/troubleshooting.md says what each means and "
        "what to do). An ok attempt with code SkippedRecords wrote facts but left some SKU "
        "records out, its message saying why."
    ),
}


def _unit_change(unit: str) -> str:
    return (
        f"{unit} on snapshot_date minus {unit} on previous_date (from 0 for an added SKU, to 0 "
        "for a removed one)."
    )


_SUBSCRIPTIONS_COLUMNS: Mapping[str, str] = {
    "subscription_id": "Partner Center subscription id (GUID, lower-case), the commerce "
    "id Graph calls commerceSubscriptionId.",
    "offer_id": "Partner Center offerId: {productId}:{skuId}:{availabilityId} for new "
    "commerce, an offer GUID for legacy.",
    "offer_name": "The offer's product title, e.g. Microsoft 365 Business Basic.",
    "friendly_name": "The partner's nickname for the subscription (default: offer_name).",
    "sku_id": "The Graph SKU id (GUID) of the subscription when it could be mapped: the "
    "tenant's Graph companySubscription with this commerce id in the same attempt, else "
    "a unique match of offer_name with a catalog product name; else NULL.",
    "quantity": "Seats (licenses) the subscription holds.",
    "unit_type": "Partner Center unitType, e.g. Licenses.",
    "status": "Partner Center status: active, pending, suspended, expired, disabled, "
    "deleted (cancelled), or another value Microsoft sends.",
    "billing_cycle": "How often the partner is billed, lower-case: monthly, annual, "
    "triennial, none (trials), ...",
    "term_duration": "Length of the commitment term, ISO 8601: P1M, P1Y, P3Y.",
    "commitment_end_date": "Last day (UTC) of the current commitment, inclusive: new "
    "commerce's end date as sent, legacy's exclusive end date minus one day.",
    "auto_renew": "Whether the subscription renews at the end of its term.",
    "is_trial": "Whether it is a trial.",
    "cancellation_allowed_until": "When (UTC) the window to cancel or reduce seats in "
    "this term closes (new commerce); NULL when it cannot be cancelled.",
    "creation_date": "When (UTC) the subscription was created.",
    "effective_start_date": "When (UTC) the current term started.",
    "synced_at": "When (UTC) the sync fetched the subscription from Partner Center.",
}

_TENANT_SUBSCRIPTIONS_COLUMNS: Mapping[str, str] = {
    "commerce_subscription_id": "Graph commerceSubscriptionId (lower-case): Partner "
    "Center's subscription id for the seats a partner sold.",
    "sku_id": "The SKU id (GUID) of the subscription, as in license_facts.",
    "status": "Graph status: Enabled, Warning (grace), Suspended, LockedOut (cancelled), Deleted.",
    "total_licenses": "Seats in the subscription.",
    "is_trial": "Whether it is a trial.",
    "created": "When (UTC) the subscription was created (Graph createdDateTime).",
    "next_lifecycle": "When (UTC) it moves to its next status if not renewed (Graph "
    "nextLifecycleDateTime).",
    "owner_tenant_id": "The partner tenant that created it (Graph ownerTenantId): this "
    "partner's partner_tenant_id for seats it sold, another partner's, or NULL (bought "
    "by the customer directly).",
    "owner_type": "Type of the owner (Graph ownerType), e.g. User.",
    "synced_at": "When (UTC) the sync fetched the subscription from Graph.",
}

_USER_LICENSE_COLUMNS: Mapping[str, str] = {
    "user_id": "Entra object id (GUID) of the user (Graph user.id).",
    "sku_id": "The SKU id (GUID) of the licence: in the user's assignedLicenses or in one of its "
    "licenseAssignmentStates (a failed group assignment is only there).",
    "user_principal_name": "The user's sign-in name (userPrincipalName; a guest's has #EXT#). "
    "Personal data.",
    "display_name": "The user's display name (Graph displayName). Personal data.",
    "account_enabled": "False when the account is blocked from signing in (a leaver, or a "
    "shared mailbox, which Graph does not tell apart).",
    "user_type": "Member or Guest (Graph userType).",
    "assigned_by_group": "Object id of the group that assigns the licence "
    "(licenseAssignmentStates.assignedByGroup); NULL for a direct assignment only.",
    "assignment_state": "The assignment's state (licenseAssignmentStates.state): Active when "
    "any of its assignments is, else Error, ActiveWithError, Disabled, ...; NULL when Graph "
    "gave no state.",
    "assignment_error": "The assignment's error (CountViolation, MutuallyExclusiveViolation, "
    "...); NULL when none (Graph's null or 'None').",
    "last_sign_in": "When (UTC) the user last signed in, interactively or not (the later of "
    "signInActivity's two), as of the customer's last full read of its users "
    "(user_delta_links.full_read_at: the delta query carries no sign-ins; a full read comes "
    "at least every 7 days); NULL when unknown (the tenant has no Entra ID P1, see "
    "dataset_status) or never. Personal data.",
    "department": "The user's department (Graph department). Personal data.",
    "office_location": "The user's office (Graph officeLocation). Personal data.",
    "city": "The user's city (Graph city). Personal data.",
    "synced_at": "When (UTC) Graph last returned this user: the full read, or the delta round "
    "that listed the user as changed (a user the delta query saw unchanged keeps its row and "
    "its synced_at).",
}

_NOT_IN_RENEWAL_ACTIONS = {
    "offer_id",
    "unit_type",
    "status",
    "creation_date",
    "effective_start_date",
    "synced_at",
}

_CHECK_RESULT_COLUMNS = {
    "sync_id": "Dagster run id of the sync whose check this was.",
    "asset": "The asset checked, e.g. subscribed_skus or license_facts.",
    "check_name": "The check's name, as the Dagster UI shows it on the asset.",
    "passed": "Whether the data passed the check.",
    "severity": "ERROR (the data would be wrong) or WARN (an operational problem).",
    "blocking": "True when a failure stops the assets downstream in the run: the facts are "
    "not promoted and the analyst copy is not replaced.",
    "offending": "How many rows or customers failed the check (0 when it passed).",
    "summary": "What the check found, in words, naming a few offending customers.",
    "remedy": "What to do about a failure; NULL when it passed.",
    "checked_at": "When (UTC) the check was evaluated.",
}

DESCRIPTIONS: Mapping[str, Described] = {
    # -- tables ----------------------------------------------------------------------------
    "customers": Described(
        "One row per customer (partner, tenant) the partner has ever reached, merged from "
        "Partner Center's customer list, Graph's GDAP relationships and DAP contracts at each "
        "sync's discovery. Customers who leave stay, inactive.",
        {
            "first_seen": "When (UTC) discovery first listed the customer.",
            "last_seen": "When (UTC) discovery last listed the customer.",
            "departed_at": (
                "When (UTC) discovery first missed the customer after it was listed; NULL while "
                "active."
            ),
            "gdap_relationship_ids": (
                "Ids of the customer's active GDAP relationships (Graph "
                "delegatedAdminRelationships id), sorted; NULL without any."
            ),
            "gdap_auto_extend": (
                "True when the chosen GDAP relationship extends itself (a non-zero Graph "
                "autoExtendDuration); NULL without GDAP."
            ),
        },
    ),
    "license_facts": Described(
        "The license facts: one row per snapshot date, customer and SKU, with the unit counts "
        "Microsoft reported that day (Graph subscribedSkus; Partner Center subscribedskus when "
        "Graph cannot be read). Each sync replaces its customers' rows of that date whole. For "
        "the current state read current_license_facts.",
    ),
    "license_snapshots": Described(
        "One row per written (snapshot date, customer) slice of license_facts, even an empty "
        "one: 'zero SKUs that day' differs from 'not synced that day'.",
        {
            "sku_count": "License facts rows written in the slice (0: the customer had no SKUs).",
            "written_at": "When (UTC) the slice was written.",
        },
    ),
    "tenant_status": Described(
        "One row per sync attempt per customer (append-only): the outcome, Microsoft's error "
        "code and the message. A customer's latest row is its status (latest_tenant_status).",
        _TENANT_STATUS_COLUMNS,
    ),
    "partner_status": Described(
        "One row per sign-in check of a configured account (partner or direct tenant) at each "
        "sync: ok, or why it failed (e.g. refresh_token_expired), with facts about the token it "
        "got, never the token.",
        {
            "partner_tenant_id": "Entra tenant id (GUID) of the configured account.",
            "checked_at": "When (UTC) the sync checked the sign-in.",
            "status": (
                "ok, or the sign-in failure in snake case (e.g. refresh_token_expired, "
                "mfa_required), or throttled / error."
            ),
            "token_expires_at": "When (UTC) the access token obtained at the check expires.",
            "account": "The signed-in account (the token's user principal name), when known.",
            "mfa": "True when the token says the sign-in used MFA (its amr claim has mfa).",
        },
    ),
    "raw_subscribed_skus": Described(
        "The raw Microsoft responses license_facts were made from, one per snapshot date, "
        "customer and API, kept for audit and to rebuild facts; a re-fetch that day replaces it.",
        {
            "source": (
                "The API: graph (Graph subscribedSkus) or partner_center (Partner Center "
                "subscribedskus)."
            ),
            "fetched_at": "When (UTC) the response was received.",
            "payload": "The response's list of SKU objects, as JSON text.",
        },
    ),
    "consent_flags": Described(
        "Access a person must restore or renew, raised once (by sync365 sync or the consent "
        "sensor, whichever sees it first) and cleared when the cause goes away. Kinds: "
        "access_lost (a customer, or the partner account with tenant_id NULL, entered "
        "consent_revoked, access_removed, mfa_required or blocked), gdap_expiring (its GDAP "
        "relationship ends within 30 days without auto-extend, or ended), client_secret_expiring "
        "(the app's client secret in use ends within 30 days, tenant_id NULL).",
        {
            "flag_id": "Random id of the flag.",
            "kind": "access_lost, gdap_expiring or client_secret_expiring.",
            "ends_at": "When (UTC) the GDAP relationship or client secret ends or ended; NULL "
            "for access_lost.",
            "tenant_id": "The customer's tenant id (GUID); NULL for a flag on the partner account.",
            "status": "The status that raised the flag (tenant_status or partner_status).",
            "raised_at": "When (UTC) the flag was raised.",
            "cleared_at": "When (UTC) the flag was cleared; NULL while open.",
        },
    ),
    "app_credentials": Described(
        "The partner app's client secrets as Graph lists them (applications passwordCredentials), "
        "read once per partner account per full sync; never a secret nor its hint. A row with "
        "NULL key_id and a message means they could not be read.",
        {
            "checked_at": "When (UTC) the sync read them.",
            "key_id": "Microsoft's id of the secret (the Secret ID in the Entra admin center).",
            "display_name": "The secret's description in the app registration.",
            "end_date": "When (UTC) the secret expires.",
            "in_use": "Whether it is the secret the pipeline is configured with (its first "
            "three characters match Microsoft's hint).",
            "message": "Why the secrets could not be read (e.g. Application.Read.All missing).",
        },
    ),
    "skipped_customer_records": Described(
        "Records of Partner Center's customer list or Graph's GDAP relationship and contract "
        "lists that discovery could not use, one row per record per discovery, with why. "
        "Skipped SKU records are on tenant_status (code SkippedRecords).",
        {
            "partner_tenant_id": "Entra tenant id (GUID) of the partner whose list it was.",
            "seen_at": "When (UTC) the discovery ran (that discovery's customers.last_seen).",
            "list_name": "The list: customers, delegatedAdminRelationships or contracts.",
            "list_index": "The record's position in that list (from 0).",
            "record_key": "The tenant the record names, when readable.",
            "reason": "Why the record was skipped (the field at fault, never its value).",
        },
    ),
    "customer_access": Described(
        "One row per customer per sync that attempted it: the access the partner has there "
        "(GDAP roles, CPV consent, end of access).",
        {
            "checked_at": "When (UTC) the sync checked the customer's access.",
            "gdap_roles": (
                "Entra role template ids that the active access assignments of the customer's "
                "GDAP relationships grant, sorted."
            ),
            "can_read_licenses": (
                "True when one of gdap_roles can read licenses (Directory Readers, Global "
                "Reader, User Administrator, License Administrator, Global Administrator)."
            ),
            "cpv_consent": (
                "What the sync did about the app's CPV consent: granted, already_granted, "
                "failed, not_needed or disabled (auto-consent off)."
            ),
            "gdap_end_date": "When (UTC) the customer's GDAP access ends; NULL without GDAP.",
            "auto_extend": "True when that GDAP relationship extends itself.",
        },
    ),
    "schema_version": Described(
        "The migrations applied to this file, one row each.",
        {
            "version": "The migration's number.",
            "applied_at": "When (UTC) it was applied.",
        },
    ),
    "schema_objects": Described(
        "One row: the digest of the views and comments this file carries (views.sql and every "
        "comment text of the release that last set them). A migrate whose release has another "
        "digest recreates the views and sets the comments again; a current file is not written.",
        {
            "digest": "SHA-256 (hex) of views.sql and every comment text.",
            "applied_at": "When (UTC) those views and comments were set.",
        },
    ),
    "subscriptions": Described(
        "What this partner sells each customer: one row per snapshot date, customer and "
        "subscription, from Partner Center GET /v1/customers/{id}/subscriptions (new commerce "
        "and legacy; cancelled and expired ones too). Needs only the partner's token, so a "
        "customer whose GDAP ended keeps current rows. A customer the partner does not sell to "
        "has an empty slice. A sync replaces its customers' slices of that date whole; a failed "
        "fetch keeps the last good slice (dataset_snapshots, dataset_status).",
        _SUBSCRIPTIONS_COLUMNS,
    ),
    "tenant_subscriptions": Described(
        "What each customer tenant holds, whoever sold it: one row per snapshot date, customer "
        "and subscription, from Graph GET /v1.0/directory/subscriptions (customer token). Read "
        "only when the tenant's SKUs could be read. owner_tenant_id tells seats this partner "
        "sold from seats bought from another reseller or directly. Slices as in subscriptions.",
        _TENANT_SUBSCRIPTIONS_COLUMNS,
    ),
    "dataset_snapshots": Described(
        "One row per written (snapshot date, customer, dataset) slice of the per-tenant datasets "
        "beside license facts (subscriptions, tenant_subscriptions, user_licenses), even an "
        "empty one: 'none that day' differs from 'not fetched that day'.",
        {
            "dataset": "Which dataset: subscriptions (Partner Center), tenant_subscriptions "
            "or user_licenses (Graph).",
            "row_count": "Rows written in the slice.",
            "written_at": "When (UTC) the slice was written.",
        },
    ),
    "dataset_status": Described(
        "One row per sync attempt per customer per dataset fetched beside its SKUs "
        "(append-only): whether its subscriptions could be read. Kept apart from tenant_status: "
        "a failed subscriptions fetch never changes the customer's SKU status or facts.",
        {
            "dataset": "subscriptions (Partner Center), tenant_subscriptions or user_licenses "
            "(Graph).",
            "checked_at": "When (UTC) the sync attempted this customer.",
            "status": "ok, or why the dataset could not be read (the tenant_status values: "
            "access_removed, throttled, error, ...); not_attempted when Graph's SKUs already "
            "failed (tenant_subscriptions, user_licenses); error with code SkippedRecords or "
            "MalformedPayload "
            "when records did not validate.",
        },
    ),
    "user_licenses": Described(
        "PERSONAL DATA. Who holds each licence: one row per snapshot date, customer, licensed "
        "user and SKU, from Graph GET /v1.0/users (licensed users only; customer token), read "
        "when the tenant's SKUs could be read and the setting users is on (SYNC365_USERS, "
        "users in the accounts file). Names, sign-ins and places of people: only these columns "
        "are kept; turn the setting off to keep none. Slices as in subscriptions (a failed read "
        "keeps the last good slice); dataset_status says when sign-in activity was unavailable.",
        _USER_LICENSE_COLUMNS,
    ),
    "user_delta_links": Described(
        "Per customer, the Graph users delta link that lists the users changed since its latest "
        "user_licenses slice (written in that slice's transaction, dropped when a full read got "
        "none). A sync with a link reads only the changes and applies them to the latest slice; "
        "it reads every user when there is no link, when Graph no longer knows it (7 days), and "
        "when the last full read is 7 days old (delta carries no sign-in activity, and a change "
        "to assignment states alone does not list a user). A customer whose users fit one page "
        "(500) is read in full every day and keeps no link. Not in the analyst copy.",
        {
            "delta_link": "Graph's @odata.deltaLink (a URL on the Graph origin, only ever sent "
            "there with the customer's token; not a secret alone, never logged whole).",
            "obtained_at": "When (UTC) the sync sent the first request of the delta round that "
            "returned the link, or the $deltatoken=latest request that starts a full read (then "
            "equal to full_read_at).",
            "full_read_at": "When (UTC) the customer's users were last read in full, with "
            "sign-in activity and assignment states: what last_sign_in in user_licenses is as "
            "of.",
        },
    ),
    "sku_classes": Described(
        "Which SKUs are free or viral (Power Automate Free, Teams Exploratory, Power BI "
        "(free), ...) and so out of unused_licenses; any SKU not listed is paid. Rewritten by "
        "each sync from the catalog and the user's sku_classes.csv.",
        {
            "sku_id": "The SKU id (GUID), or NULL when the row names a part number.",
            "sku_part_number": "The SKU part number, or NULL when the row names an id.",
            "sku_class": "paid or free.",
            "source": "Where the class came from: catalog (Microsoft's product names), "
            "free_list (the package's list of free part numbers) or the user's file's path.",
        },
    ),
    # -- views -----------------------------------------------------------------------------
    "latest_tenant_status": Described(
        "Each customer's latest row of tenant_status: its current status.",
        _TENANT_STATUS_COLUMNS,
    ),
    "tenant_freshness": Described(
        "The stale rule, in one place: per customer, the date of its latest written snapshot, "
        "its latest sync attempt, and whether its facts are stale.",
        {
            "from_partner_center": "Whether the latest attempt's facts came from the Partner "
            "Center fallback (Graph failed for a customer we resell to): fresh, not stale.",
        },
    ),
    "current_license_facts": Described(
        "Each customer's latest snapshot of license_facts (the current state; a customer whose "
        "sync failed keeps its last good facts, is_stale true), with its latest attempt.",
    ),
    "unused_licenses": Described(
        "Seats bought but not assigned, per customer and SKU, on each customer's current "
        "snapshot (only SKUs with unused seats).",
        {
            "unused_units": "Seats bought but not assigned (available_units), more than 0.",
            "unused_percent": "unused_units as a percentage of enabled_units, one decimal.",
        },
    ),
    "license_changes": Described(
        "Every change between a customer's consecutive snapshots (its own dates, so a gap left "
        "by failed syncs compares with the last good one): SKUs added, removed, or whose status "
        "or counts changed. Unchanged SKUs are left out.",
        {
            "previous_date": "The customer's snapshot before snapshot_date.",
            "snapshot_date": "The snapshot (UTC day) that shows the change.",
            "change": "added (new SKU), removed (gone), or changed (status or counts).",
            "previous_capability_status": (
                "capability_status on previous_date; NULL for an added SKU."
            ),
            "capability_status": "capability_status on snapshot_date; NULL for a removed SKU.",
            **{f"{unit}_change": _unit_change(unit) for unit in UNIT_COLUMNS},
        },
    ),
    "tenant_health": Described(
        "One row per known customer: where its access stands, since when, and how fresh its "
        "facts are. Start here for 'which customers can we not see, and since when'.",
        {
            "status": "Status of the latest sync attempt (see tenant_status.status).",
            "status_since": "When (UTC) the customer entered its current status.",
            "last_ok_at": "When (UTC) the customer's latest ok attempt ran; NULL if none.",
            "facts_from_partner_center": "Whether its current facts came from the Partner "
            "Center fallback in its latest attempt (Graph failed; status says why).",
            "reached": "Whether its latest sync attempt reached it: Graph answered (status ok) "
            "or Partner Center stood in (facts_from_partner_center). The data-quality checks "
            "count reached customers by it.",
        },
    ),
    "current_dataset_slices": Described(
        "Each customer's latest written slice of each dataset of dataset_snapshots.",
        {
            "dataset": "subscriptions, tenant_subscriptions or user_licenses.",
            "snapshot_date": "Date (UTC) of the customer's latest written slice of the dataset.",
        },
    ),
    "current_user_licenses": Described(
        "PERSONAL DATA. Each customer's latest written slice of user_licenses (who holds each "
        "licence now); a customer whose users read failed keeps its last good rows.",
        _USER_LICENSE_COLUMNS,
    ),
    "inactive_licensed_users": Described(
        "PERSONAL DATA. Licensed users holding at least one paid SKU (license_classes) who are "
        "disabled, or whose last sign-in is 30 or more days old (UTC): leavers and idle seats "
        "to reclaim. One row per customer and user, with the paid SKUs held. A user whose "
        "sign-ins are unknown (no Entra ID P1) or who never signed in is listed only when "
        "disabled. For another threshold, filter days_since_sign_in.",
        {
            "customer_name": "The customer's company name (customers.display_name).",
            "user_id": "Entra object id (GUID) of the user.",
            "user_principal_name": _USER_LICENSE_COLUMNS["user_principal_name"],
            "display_name": _USER_LICENSE_COLUMNS["display_name"],
            "account_enabled": _USER_LICENSE_COLUMNS["account_enabled"],
            "user_type": _USER_LICENSE_COLUMNS["user_type"],
            "last_sign_in": _USER_LICENSE_COLUMNS["last_sign_in"],
            "days_since_sign_in": "Whole days (UTC) from last_sign_in to today; NULL when "
            "last_sign_in is.",
            "reason": "disabled (account_enabled false) or no_recent_sign_in (30 days or more).",
            "paid_skus": "The paid SKUs the user holds (part numbers, else ids), sorted, joined "
            "by ', '.",
            "paid_sku_count": "How many paid SKUs the user holds.",
            "snapshot_date": "Date (UTC) of the customer's users slice these rows come from.",
        },
    ),
    "licensed_user_counts": Described(
        "Licensed users per customer and snapshot date (user_licenses): per SKU, and over all "
        "SKUs (sku_id NULL) with each user counted once however many licences they hold. A "
        "licence whose assignment failed (assignment_state Error) is not counted.",
        {
            "sku_id": "The SKU id (GUID); NULL on the row counting every licensed user once.",
            "licensed_users": "Distinct users holding the SKU (or, with sku_id NULL, any SKU).",
        },
    ),
    "licensed_users_per_read": Described(
        "Licensed users per customer on each day its users were read (one row per user_licenses "
        "slice of dataset_snapshots), each user counted once over every SKU: 0 when that read "
        "found none; no row for a day its users were not read. The report's and "
        "monthly_customer_summary's user counts come from it.",
        {
            "snapshot_date": "Date (UTC) of the customer's users slice the count is from.",
            "licensed_users": "Distinct users holding any SKU in that slice (licensed_user_counts "
            "with sku_id NULL), 0 when none.",
        },
    ),
    "current_subscriptions": Described(
        "Each customer's latest written slice of subscriptions (what this partner sells it): "
        "a customer whose Partner Center fetch failed keeps its last good rows, snapshot_date "
        "saying from when.",
        _SUBSCRIPTIONS_COLUMNS,
    ),
    "current_tenant_subscriptions": Described(
        "Each customer's latest written slice of tenant_subscriptions (what the tenant holds, "
        "whoever sold it); a customer whose Graph fetch failed keeps its last good rows.",
        _TENANT_SUBSCRIPTIONS_COLUMNS,
    ),
    "license_classes": Described(
        "Each current SKU of each customer with its class: free (sku_classes: free and viral "
        "SKUs such as FLOW_FREE, TEAMS_EXPLORATORY, POWER_BI_STANDARD), trial (every enabled "
        "subscription of it in the tenant is a trial) or paid.",
        {"sku_class": "paid, free or trial."},
    ),
    "over_assigned_licenses": Described(
        "Current SKUs assigned beyond what the customer can use: more seats consumed than "
        "enabled, or seats still assigned on a suspended or locked-out SKU.",
        {
            "over_assigned_units": "consumed_units minus enabled_units (0 or less when the "
            "reason is a suspended SKU still assigned within its enabled seats).",
            "reason": "consumed_above_enabled or suspended_still_assigned.",
        },
    ),
    "renewal_actions": Described(
        "What to do before which date: this partner's active subscriptions whose commitment "
        "ends within 60 days (UTC) or whose cancellation window is open, with the seats in use "
        "(current facts of the SKU) and the seats that could be cut. Monthly terms that renew "
        "by themselves are kept apart (is_monthly_rollover), so the annual and multi-year "
        "renewals stand out.",
        {
            **{  # the subscription's own columns the view carries
                column: text
                for column, text in _SUBSCRIPTIONS_COLUMNS.items()
                if column not in _NOT_IN_RENEWAL_ACTIONS
            },
            "sku_id": "The subscription's Graph SKU id when it could be mapped, else NULL (then "
            "consumed_units and reducible_units are NULL).",
            "commitment": "The term: monthly (P1M), annual (P1Y), multi_year (P2Y and longer) "
            "or other.",
            "cancellation_window_open": "True while the subscription can still be cancelled "
            "or reduced in this term (new commerce).",
            "action": "reduce_or_cancel_now (window open), reduce_before_renewal (renews at "
            "its end date), ends_without_renewal (auto-renew off), trial_ends.",
            "act_by": "The date (UTC) by which to act: the window's last day while it is "
            "open, else the commitment's end date.",
            "days_left": "Days from today (UTC) to act_by.",
            "is_monthly_rollover": "True for a monthly term that renews by itself outside a "
            "cancellation window: it comes up every month, not a renewal to act on.",
            "consumed_units": "Seats of the SKU assigned in the tenant (current facts), across "
            "every subscription of it.",
            "reducible_units": "Seats that could be cut: the SKU's unassigned seats "
            "(available_units), at most the subscription's quantity, never below 0.",
            "usage_is_stale": "True when the facts consumed_units comes from are stale "
            "(tenant_freshness).",
        },
    ),
    "sold_by_us": Described(
        "Per customer and current SKU: seats in use, seats this partner sells (its active "
        "subscriptions, mapped to the SKU), seats bought elsewhere (the tenant's Graph "
        "subscriptions owned by another partner or by the customer), and the difference.",
        {
            "units_in_use": "Seats assigned (consumed_units of the current facts).",
            "units_sold_by_us": "Seats in this partner's active or pending subscriptions of "
            "the SKU (current_subscriptions).",
            "units_bought_elsewhere": "Seats in the tenant's enabled or in-grace Graph "
            "subscriptions of the SKU not owned by this partner (current_tenant_subscriptions).",
            "difference": "units_in_use minus units_sold_by_us: seats in use this partner does "
            "not bill (negative: it sells more than is used).",
        },
    ),
    "check_results": Described(
        "Each evaluation of a data-quality check (a Dagster asset check of a sync): passed or "
        "not, how many rows or customers offend, in words, and what to do.",
        _CHECK_RESULT_COLUMNS,
    ),
    "latest_check_results": Described(
        "The latest evaluation of each data-quality check (check_results): what `sync365 "
        "status` shows under Checks.",
        _CHECK_RESULT_COLUMNS
        | {
            "in_latest_sync": "Whether this evaluation is from the newest sync that recorded "
            "any (false: that sync skipped the check, e.g. the checks after a blocked facts "
            "step, so this result is an earlier sync's).",
        },
    ),
    "monthly_customer_summary": Described(
        "One row per customer and month (UTC) in which it was synced or attempted: its units at "
        "the month's last snapshot, all SKUs and paid ones (is_paid_sku: as license_classes "
        "classes them now, so trials are not paid; a SKU gone since, not free or viral by "
        "sku_classes), its licensed users where known, the month's changes and its access "
        "state. For a monthly invoice check per customer.",
        {
            "month": "The month (UTC), as its first day.",
            "snapshot_date": "The customer's last snapshot in the month, which the units are "
            "from; NULL when no sync of that month wrote facts for it.",
            "skus": "SKUs in that snapshot.",
            "enabled_units": "Seats bought (enabled_units summed over every SKU).",
            "consumed_units": "Seats assigned (consumed_units summed over every SKU).",
            "paid_skus": "Paid SKUs in that snapshot (is_paid_sku: free, viral and trial SKUs "
            "out).",
            "paid_enabled_units": "Seats bought of the paid SKUs.",
            "paid_consumed_units": "Seats assigned of the paid SKUs.",
            "unused_paid_units": "Seats bought but not assigned of the paid SKUs (each SKU's "
            "available_units, when above 0).",
            "licensed_users": "Users holding at least one licence in the customer's last users "
            "slice of the month (licensed_users_per_read); NULL when its users were not read "
            "that month.",
            "changes": "Rows of license_changes whose snapshot_date falls in the month.",
            "units_added": "Paid seats bought added in the month: enabled_units increases "
            "summed over those changes of paid SKUs (is_paid_sku), so a free SKU's 10000 seats "
            "do not count.",
            "units_removed": "Paid seats bought removed in the month: enabled_units decreases "
            "summed over those changes of paid SKUs (is_paid_sku), as a positive number.",
            "last_status": "Status of the customer's last sync attempt in the month (see "
            "tenant_status.status); NULL when none was made.",
            "last_checked_at": "When (UTC) that attempt ran.",
            "attempts": "Sync attempts of the customer in the month (tenant_status rows).",
            "failed_attempts": "Those attempts whose status was not ok.",
        },
    ),
}


@dataclass(frozen=True)
class DescribedMacro(Described):
    """A macro's comment, its result's column texts (a macro's columns cannot carry comments,
    so the data dictionary shows them), and a call that shows how it is used."""

    example: str = ""


_CHANGE_SIDES = {"before": "from_date", "after": "to_date"}

_CHANGES_BETWEEN_COLUMNS: Mapping[str, str] = {
    "from_snapshot_date": "The customer's snapshot the before side is from (its latest on "
    "or before from_date); NULL when it had none yet (then every SKU is added).",
    "to_snapshot_date": "The customer's snapshot the after side is from (its latest on "
    "or before to_date).",
    "change": "added (new SKU), removed (gone), or changed (status or counts).",
    **{
        f"capability_status_{side}": f"capability_status as of {day}; NULL when the SKU "
        f"was not there."
        for side, day in _CHANGE_SIDES.items()
    },
    **{
        f"{unit}_{side}": f"{unit} as of {day} (0 when the SKU was not there)."
        for unit in ("enabled_units", "consumed_units")
        for side, day in _CHANGE_SIDES.items()
    },
    **{
        f"{unit}_change": f"{unit}_after minus {unit}_before."
        for unit in ("enabled_units", "consumed_units")
    },
    "to_is_stale": "True when to_snapshot_date is older than the newest snapshot of any "
    "customer by to_date: its syncs failed since, so the after side may be out of date.",
}

MACROS: Mapping[str, DescribedMacro] = {
    "is_free_sku": DescribedMacro(
        "is_free_sku(sku_id, sku_part_number): whether sku_classes says the SKU is free or "
        "viral, by its id, else by its part number (license_classes and is_paid_sku use it).",
        example="SELECT is_free_sku(NULL, 'FLOW_FREE')",
    ),
    "is_paid_sku": DescribedMacro(
        "is_paid_sku(sku_class, sku_id, sku_part_number): whether a SKU's seats on any day are "
        "paid ones, the one definition the report and monthly_customer_summary use: as "
        "license_classes classes the SKU now (sku_class from a LEFT JOIN; free, viral and "
        "trial SKUs are not paid), else (a SKU the customer no longer has, sku_class NULL) "
        "not free or viral by sku_classes.",
        example="SELECT is_paid_sku(NULL, NULL, 'SPB')",
    ),
    "license_facts_as_of": DescribedMacro(
        "license_facts_as_of(day): each customer's license facts as of a day (UTC), from its "
        "latest snapshot on or before it; the columns of license_facts.",
        example="FROM license_facts_as_of(DATE '2026-10-01')",
    ),
    "license_changes_between": DescribedMacro(
        "license_changes_between(from_date, to_date): what changed per customer and SKU between "
        "its facts as of from_date and as of to_date (each its latest snapshot on or before "
        "the day): SKUs added, removed, or whose status or counts changed; unchanged SKUs are "
        "left out. A from_date after to_date is refused with an error.",
        _CHANGES_BETWEEN_COLUMNS,
        example="FROM license_changes_between(DATE '2026-10-01', DATE '2026-11-01')",
    ),
    "license_changes_since": DescribedMacro(
        "license_changes_since(invoice_date): what changed per customer and SKU since an "
        "invoice date, to its current facts: license_changes_between(invoice_date, today UTC), "
        "the same columns (an invoice date after today is refused).",
        _CHANGES_BETWEEN_COLUMNS,
        example="FROM license_changes_since(DATE '2026-11-01')",
    ),
}


def column_comment(relation: str, column: str) -> str | None:
    """The comment of `relation.column` (a table, view or table macro): the relation's own
    text, else the shared one."""
    described = DESCRIPTIONS.get(relation) or MACROS.get(relation)
    own = described.columns.get(column) if described else None
    return own or SHARED_COLUMNS.get(column)


def apply_comments(con: duckdb.DuckDBPyConnection) -> None:
    """Set every described comment (tables, views, their columns, macros) that differs from the
    file's (a fresh view or macro has none)."""
    relations = con.execute(
        "SELECT table_name, 'TABLE', comment FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary "
        "UNION ALL SELECT view_name, 'VIEW', comment FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT temporary AND NOT internal "
        "UNION ALL SELECT function_name, "
        "CASE function_type WHEN 'table_macro' THEN 'MACRO TABLE' ELSE 'MACRO' END, comment "
        "FROM duckdb_functions() WHERE database_name = current_database() AND NOT internal "
        "AND function_type IN ('macro', 'table_macro')"
    ).fetchall()
    for name, kind, current in relations:
        described = (MACROS if kind.startswith("MACRO") else DESCRIPTIONS).get(name)
        if described and described.text != current:
            comment = string_literal(described.text)
            con.execute(f"COMMENT ON {kind} {identifier(name)} IS {comment}")
    columns = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() AND NOT internal"
    ).fetchall()
    for relation, column, current in columns:
        text = column_comment(relation, column)
        if text and text != current:
            target = f"{identifier(relation)}.{identifier(column)}"
            con.execute(f"COMMENT ON COLUMN {target} IS {string_literal(text)}")
