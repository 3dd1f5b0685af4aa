-- Analyst views, recreated by Warehouse.migrate(). A customer is a (partner_tenant_id, tenant_id)
-- pair: one tenant reached through two partner accounts is two customers, each with its own
-- statuses, facts and freshness, so one partner's success never hides the other's failure.
-- Stale rule (one place, `tenant_freshness`): a
-- tenant's facts are stale when its latest sync attempt produced none (it was not 'ok' and
-- Partner Center did not stand in for Graph, or its latest slice was written before the attempt:
-- the facts step failed or never ran), or when its latest written slice is older than the newest
-- snapshot date written for any tenant (the latest successful sync). Failed tenants therefore
-- keep showing their last good facts, flagged, never zeroed, and nothing reads as fresh that was
-- not written. An attempt where Graph failed but Partner Center answered (the fallback: its
-- `partner_center` raw payload was fetched in that attempt) produced facts: they are fresh, from
-- another source (`license_facts.source`), while its status still says why Graph failed.

CREATE OR REPLACE VIEW latest_tenant_status AS
SELECT *
FROM tenant_status
QUALIFY row_number() OVER (
    PARTITION BY partner_tenant_id, tenant_id ORDER BY checked_at DESC, status
) = 1;

-- The stale rule, in this one place: per customer, the date of its latest written slice, its latest
-- attempt, and whether those facts are stale.
CREATE OR REPLACE VIEW tenant_freshness AS
WITH latest_slice AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        max(snapshot_date) AS facts_as_of,
        max(written_at) AS facts_written_at
    FROM license_snapshots
    GROUP BY partner_tenant_id, tenant_id
),
latest_attempt AS (
    SELECT
        s.*,
        s.status <> 'ok' AND EXISTS (
            FROM raw_subscribed_skus AS r
            WHERE r.partner_tenant_id = s.partner_tenant_id
                AND r.tenant_id = s.tenant_id
                AND r.source = 'partner_center'
                AND r.fetched_at = s.checked_at
        ) AS fell_back
    FROM latest_tenant_status AS s
)
SELECT
    l.partner_tenant_id,
    l.tenant_id,
    l.facts_as_of,
    s.status AS last_status,
    s.checked_at AS last_checked_at,
    coalesce(s.fell_back AND l.facts_written_at >= s.checked_at, false) AS from_partner_center,
    (
        (coalesce(s.status, 'ok') <> 'ok' AND NOT s.fell_back)
        OR l.facts_written_at < s.checked_at
        OR l.facts_as_of < (SELECT max(snapshot_date) FROM license_snapshots)
    ) AS is_stale
FROM latest_slice AS l
LEFT JOIN latest_attempt AS s
    ON s.partner_tenant_id = l.partner_tenant_id AND s.tenant_id = l.tenant_id;

CREATE OR REPLACE VIEW current_license_facts AS
SELECT f.*, r.last_status, r.last_checked_at, r.is_stale
FROM license_facts AS f
JOIN tenant_freshness AS r
    ON r.partner_tenant_id = f.partner_tenant_id
    AND r.tenant_id = f.tenant_id
    AND r.facts_as_of = f.snapshot_date;

-- Each customer's latest written slice of each subscription dataset (dataset_snapshots): a
-- customer whose fetch failed keeps its last good subscriptions, with the date they are from.
CREATE OR REPLACE VIEW current_dataset_slices AS
SELECT partner_tenant_id, tenant_id, dataset, max(snapshot_date) AS snapshot_date
FROM dataset_snapshots
GROUP BY ALL;

CREATE OR REPLACE VIEW current_subscriptions AS
SELECT s.*
FROM subscriptions AS s
SEMI JOIN current_dataset_slices AS l
    ON l.dataset = 'subscriptions' AND l.partner_tenant_id = s.partner_tenant_id
    AND l.tenant_id = s.tenant_id AND l.snapshot_date = s.snapshot_date;

CREATE OR REPLACE VIEW current_tenant_subscriptions AS
SELECT s.*
FROM tenant_subscriptions AS s
SEMI JOIN current_dataset_slices AS l
    ON l.dataset = 'tenant_subscriptions' AND l.partner_tenant_id = s.partner_tenant_id
    AND l.tenant_id = s.tenant_id AND l.snapshot_date = s.snapshot_date;

-- Whether `sku_classes` says a SKU is free or viral: by its id, else by its part number. The
-- arguments stay outside the subqueries, so a bare column name passed in cannot bind to theirs.
CREATE OR REPLACE MACRO is_free_sku(sku, part_number) AS coalesce(
    CASE
        WHEN sku IN (SELECT k.sku_id FROM sku_classes AS k WHERE k.sku_id IS NOT NULL)
            THEN sku IN (SELECT k.sku_id FROM sku_classes AS k WHERE k.sku_class = 'free')
        ELSE upper(part_number) IN (
            SELECT upper(k.sku_part_number) FROM sku_classes AS k
            WHERE k.sku_id IS NULL AND k.sku_class = 'free'
        )
    END,
    false
);

-- Each current SKU of each customer, paid or free: free when `sku_classes` says so (by id, else by
-- part number), a trial when every enabled subscription of it in the tenant is a trial (Graph's,
-- else Partner Center's active ones), else paid.
CREATE OR REPLACE VIEW license_classes AS
WITH trials AS (
    SELECT partner_tenant_id, tenant_id, sku_id, bool_and(is_trial) AS all_trials
    FROM (
        SELECT partner_tenant_id, tenant_id, sku_id, is_trial
        FROM current_tenant_subscriptions
        WHERE status = 'Enabled'
        UNION ALL
        SELECT p.partner_tenant_id, p.tenant_id, p.sku_id, p.is_trial
        FROM current_subscriptions AS p
        WHERE p.sku_id IS NOT NULL AND p.status = 'active' AND NOT EXISTS (
            FROM current_tenant_subscriptions AS g
            WHERE g.partner_tenant_id = p.partner_tenant_id AND g.tenant_id = p.tenant_id
        )
    )
    GROUP BY ALL
)
SELECT
    f.partner_tenant_id,
    f.tenant_id,
    f.sku_id,
    f.sku_part_number,
    CASE
        WHEN is_free_sku(f.sku_id, f.sku_part_number) THEN 'free'
        WHEN t.all_trials THEN 'trial'
        ELSE 'paid'
    END AS sku_class
FROM current_license_facts AS f
LEFT JOIN trials AS t
    ON t.partner_tenant_id = f.partner_tenant_id
    AND t.tenant_id = f.tenant_id
    AND t.sku_id = f.sku_id;

-- The one definition of paid seats, for facts and changes of any day (the report and
-- monthly_customer_summary): paid as license_classes classes the SKU now (`sku_class`, from a LEFT
-- JOIN; free, viral and trial SKUs out), else, for a SKU the customer no longer has (a trial
-- cannot be recognised in an old snapshot), not free or viral by `sku_classes`.
CREATE OR REPLACE MACRO is_paid_sku(sku_class, sku, part_number) AS coalesce(
    sku_class = 'paid', NOT is_free_sku(sku, part_number)
);

-- Who holds each licence now: each customer's latest written users slice (personal data).
CREATE OR REPLACE VIEW current_user_licenses AS
SELECT u.*
FROM user_licenses AS u
SEMI JOIN current_dataset_slices AS l
    ON l.dataset = 'user_licenses' AND l.partner_tenant_id = u.partner_tenant_id
    AND l.tenant_id = u.tenant_id AND l.snapshot_date = u.snapshot_date;

-- Users holding a paid SKU (license_classes) who are disabled or have not signed in for 30 days
-- or more: one row per customer and user, with the paid SKUs they hold. An unknown sign-in
-- (no Entra ID P1) or none at all cannot be told from the data, so only disabled ones of those.
CREATE OR REPLACE VIEW inactive_licensed_users AS
WITH paid AS (
    SELECT u.*, coalesce(k.sku_part_number, u.sku_id) AS sku_name
    FROM current_user_licenses AS u
    JOIN license_classes AS k
        ON k.partner_tenant_id = u.partner_tenant_id
        AND k.tenant_id = u.tenant_id
        AND k.sku_id = u.sku_id
    WHERE k.sku_class = 'paid' AND u.assignment_state IS DISTINCT FROM 'Error'
),
users AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        user_id,
        any_value(snapshot_date) AS snapshot_date,
        any_value(user_principal_name) AS user_principal_name,
        any_value(display_name) AS display_name,
        any_value(account_enabled) AS account_enabled,
        any_value(user_type) AS user_type,
        any_value(last_sign_in) AS last_sign_in,
        string_agg(sku_name, ', ' ORDER BY sku_name) AS paid_skus,
        count(*) AS paid_sku_count
    FROM paid
    GROUP BY partner_tenant_id, tenant_id, user_id
)
SELECT
    u.partner_tenant_id,
    u.tenant_id,
    c.display_name AS customer_name,
    u.snapshot_date,
    u.user_id,
    u.user_principal_name,
    u.display_name,
    u.account_enabled,
    u.user_type,
    u.last_sign_in,
    date_diff('day', u.last_sign_in, current_timestamp AT TIME ZONE 'UTC') AS days_since_sign_in,
    CASE WHEN u.account_enabled IS FALSE THEN 'disabled' ELSE 'no_recent_sign_in' END AS reason,
    u.paid_skus,
    u.paid_sku_count
FROM users AS u
LEFT JOIN customers AS c
    ON c.partner_tenant_id = u.partner_tenant_id AND c.tenant_id = u.tenant_id
WHERE u.account_enabled IS FALSE
    OR date_diff('day', u.last_sign_in, current_timestamp AT TIME ZONE 'UTC') >= 30;

-- Licensed users per customer and day: per SKU, and once each over every SKU (sku_id NULL).
CREATE OR REPLACE VIEW licensed_user_counts AS
SELECT
    snapshot_date,
    partner_tenant_id,
    tenant_id,
    sku_id,
    count(DISTINCT user_id) AS licensed_users
FROM user_licenses
WHERE assignment_state IS DISTINCT FROM 'Error'
GROUP BY GROUPING SETS (
    (snapshot_date, partner_tenant_id, tenant_id, sku_id),
    (snapshot_date, partner_tenant_id, tenant_id)
);

-- Licensed users per customer on each day its users were read (each user_licenses slice): a read
-- that found none counts 0, a day they were not read has no row. The report's current count and
-- monthly_customer_summary's both come from here, so an empty newest read never shows an old one.
CREATE OR REPLACE VIEW licensed_users_per_read AS
SELECT
    l.snapshot_date,
    l.partner_tenant_id,
    l.tenant_id,
    coalesce(u.licensed_users, 0) AS licensed_users
FROM dataset_snapshots AS l
LEFT JOIN licensed_user_counts AS u
    ON u.partner_tenant_id = l.partner_tenant_id
    AND u.tenant_id = l.tenant_id
    AND u.snapshot_date = l.snapshot_date
    AND u.sku_id IS NULL
WHERE l.dataset = 'user_licenses';

-- Paid units bought but not assigned, per customer and SKU, on each customer's current snapshot:
-- free and viral SKUs and trials (license_classes) are left out.
CREATE OR REPLACE VIEW unused_licenses AS
SELECT
    f.partner_tenant_id,
    f.tenant_id,
    c.display_name,
    f.snapshot_date,
    f.sku_id,
    f.sku_part_number,
    f.product_name,
    f.capability_status,
    f.enabled_units,
    f.consumed_units,
    f.available_units AS unused_units,
    round(100.0 * f.available_units / f.enabled_units, 1) AS unused_percent,
    f.is_stale
FROM current_license_facts AS f
JOIN license_classes AS k
    ON k.partner_tenant_id = f.partner_tenant_id
    AND k.tenant_id = f.tenant_id
    AND k.sku_id = f.sku_id
LEFT JOIN customers AS c
    ON c.partner_tenant_id = f.partner_tenant_id AND c.tenant_id = f.tenant_id
WHERE f.available_units > 0 AND k.sku_class = 'paid';

-- Every change between a customer's consecutive snapshots (its own dates, so a gap from failed
-- syncs compares with the last good one). SKUs that appear count from 0, ones that disappear
-- count down to 0; unchanged SKUs are left out.
CREATE OR REPLACE VIEW license_changes AS
WITH pairs AS (
    SELECT *
    FROM (
        SELECT
            partner_tenant_id,
            tenant_id,
            snapshot_date,
            lag(snapshot_date) OVER (
                PARTITION BY partner_tenant_id, tenant_id ORDER BY snapshot_date
            ) AS previous_date
        FROM license_snapshots
    )
    WHERE previous_date IS NOT NULL
),
cur AS (
    SELECT p.previous_date, f.*
    FROM pairs AS p
    JOIN license_facts AS f
        ON f.partner_tenant_id = p.partner_tenant_id
        AND f.tenant_id = p.tenant_id
        AND f.snapshot_date = p.snapshot_date
),
prev AS (
    SELECT p.snapshot_date AS next_date, f.*
    FROM pairs AS p
    JOIN license_facts AS f
        ON f.partner_tenant_id = p.partner_tenant_id
        AND f.tenant_id = p.tenant_id
        AND f.snapshot_date = p.previous_date
)
SELECT
    coalesce(cur.partner_tenant_id, prev.partner_tenant_id) AS partner_tenant_id,
    coalesce(cur.tenant_id, prev.tenant_id) AS tenant_id,
    coalesce(cur.previous_date, prev.snapshot_date) AS previous_date,
    coalesce(cur.snapshot_date, prev.next_date) AS snapshot_date,
    coalesce(cur.sku_id, prev.sku_id) AS sku_id,
    coalesce(cur.sku_part_number, prev.sku_part_number) AS sku_part_number,
    coalesce(cur.product_name, prev.product_name) AS product_name,
    CASE
        WHEN prev.sku_id IS NULL THEN 'added'
        WHEN cur.sku_id IS NULL THEN 'removed'
        ELSE 'changed'
    END AS change,
    prev.capability_status AS previous_capability_status,
    cur.capability_status AS capability_status,
    coalesce(cur.enabled_units, 0) - coalesce(prev.enabled_units, 0) AS enabled_units_change,
    coalesce(cur.suspended_units, 0) - coalesce(prev.suspended_units, 0) AS suspended_units_change,
    coalesce(cur.warning_units, 0) - coalesce(prev.warning_units, 0) AS warning_units_change,
    coalesce(cur.locked_out_units, 0) - coalesce(prev.locked_out_units, 0) AS locked_out_units_change,
    coalesce(cur.consumed_units, 0) - coalesce(prev.consumed_units, 0) AS consumed_units_change,
    coalesce(cur.available_units, 0) - coalesce(prev.available_units, 0) AS available_units_change
FROM cur
FULL OUTER JOIN prev
    ON cur.partner_tenant_id = prev.partner_tenant_id
    AND cur.tenant_id = prev.tenant_id
    AND cur.snapshot_date = prev.next_date
    AND cur.sku_id = prev.sku_id
WHERE prev.sku_id IS NULL
    OR cur.sku_id IS NULL
    OR cur.capability_status <> prev.capability_status
    OR cur.enabled_units <> prev.enabled_units
    OR cur.suspended_units <> prev.suspended_units
    OR cur.warning_units <> prev.warning_units
    OR cur.locked_out_units <> prev.locked_out_units
    OR cur.consumed_units <> prev.consumed_units;

-- One row per known customer (partner, tenant): where its access stands, since when, and how fresh its facts are.
CREATE OR REPLACE VIEW tenant_health AS
WITH tenants AS (
    SELECT partner_tenant_id, tenant_id FROM customers
    UNION
    SELECT partner_tenant_id, tenant_id FROM latest_tenant_status
),
last_different AS (
    SELECT t.partner_tenant_id, t.tenant_id, max(t.checked_at) AS checked_at
    FROM tenant_status AS t
    JOIN latest_tenant_status AS l
        ON l.partner_tenant_id = t.partner_tenant_id AND l.tenant_id = t.tenant_id
    WHERE t.status <> l.status
    GROUP BY t.partner_tenant_id, t.tenant_id
),
status_since AS (
    SELECT t.partner_tenant_id, t.tenant_id, min(t.checked_at) AS status_since
    FROM tenant_status AS t
    LEFT JOIN last_different AS d
        ON d.partner_tenant_id = t.partner_tenant_id AND d.tenant_id = t.tenant_id
    WHERE t.checked_at > coalesce(d.checked_at, '-infinity'::TIMESTAMP)
    GROUP BY t.partner_tenant_id, t.tenant_id
),
last_ok AS (
    SELECT partner_tenant_id, tenant_id, max(checked_at) AS last_ok_at
    FROM tenant_status
    WHERE status = 'ok'
    GROUP BY partner_tenant_id, tenant_id
)
SELECT
    t.partner_tenant_id,
    t.tenant_id,
    c.display_name,
    c.default_domain,
    c.relationship,
    c.gdap_status,
    c.gdap_end_date,
    coalesce(c.active, false) AS active,
    l.status,
    l.error_code,
    l.message,
    l.checked_at AS last_checked_at,
    s.status_since,
    k.last_ok_at,
    r.facts_as_of,
    coalesce(r.from_partner_center, false) AS facts_from_partner_center,
    coalesce(r.is_stale, coalesce(l.status, 'ok') <> 'ok') AS is_stale,
    coalesce(l.status = 'ok' OR r.from_partner_center, false) AS reached
FROM tenants AS t
LEFT JOIN customers AS c ON c.partner_tenant_id = t.partner_tenant_id AND c.tenant_id = t.tenant_id
LEFT JOIN latest_tenant_status AS l
    ON l.partner_tenant_id = t.partner_tenant_id AND l.tenant_id = t.tenant_id
LEFT JOIN status_since AS s
    ON s.partner_tenant_id = t.partner_tenant_id AND s.tenant_id = t.tenant_id
LEFT JOIN last_ok AS k ON k.partner_tenant_id = t.partner_tenant_id AND k.tenant_id = t.tenant_id
LEFT JOIN tenant_freshness AS r
    ON r.partner_tenant_id = t.partner_tenant_id AND r.tenant_id = t.tenant_id;

-- SKUs assigned beyond what the customer can use: more seats consumed than enabled, or seats still
-- assigned on a SKU that is suspended or locked out (its users are about to lose the service).
CREATE OR REPLACE VIEW over_assigned_licenses AS
SELECT
    f.partner_tenant_id,
    f.tenant_id,
    c.display_name,
    f.snapshot_date,
    f.sku_id,
    f.sku_part_number,
    f.product_name,
    f.capability_status,
    f.enabled_units,
    f.suspended_units,
    f.consumed_units,
    f.consumed_units - f.enabled_units AS over_assigned_units,
    CASE
        WHEN f.capability_status IN ('Suspended', 'LockedOut') THEN 'suspended_still_assigned'
        ELSE 'consumed_above_enabled'
    END AS reason,
    f.is_stale
FROM current_license_facts AS f
LEFT JOIN customers AS c
    ON c.partner_tenant_id = f.partner_tenant_id AND c.tenant_id = f.tenant_id
WHERE f.consumed_units > f.enabled_units
    OR (f.capability_status IN ('Suspended', 'LockedOut') AND f.consumed_units > 0);

-- What to do before which date, per subscription this partner sells: those whose commitment ends
-- within 60 days (UTC) and those whose cancellation window is open, active ones only. Seats that
-- can be cut are the SKU's unassigned ones (current facts), at most the subscription's quantity.
-- Monthly terms that renew by themselves roll over every month: they are kept apart
-- (`commitment` 'monthly', `is_monthly_rollover`), so the annual and multi-year renewals stand out.
CREATE OR REPLACE VIEW renewal_actions AS
WITH today AS (
    SELECT CAST(get_current_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP) AS now
),
subscription AS (
    SELECT
        s.*,
        CASE
            WHEN s.term_duration = 'P1M' THEN 'monthly'
            WHEN s.term_duration = 'P1Y' THEN 'annual'
            WHEN regexp_matches(s.term_duration, '^P([2-9]|[1-9][0-9]+)Y$') THEN 'multi_year'
            ELSE 'other'
        END AS commitment,
        coalesce(s.cancellation_allowed_until >= t.now, false) AS cancellation_window_open,
        coalesce(
            s.commitment_end_date BETWEEN CAST(t.now AS DATE) AND CAST(t.now AS DATE) + 60, false
        ) AS ends_soon,
        CAST(t.now AS DATE) AS today
    FROM current_subscriptions AS s, today AS t
    WHERE s.status = 'active'
)
SELECT
    s.partner_tenant_id,
    s.tenant_id,
    c.display_name,
    s.subscription_id,
    s.offer_name,
    s.friendly_name,
    s.sku_id,
    f.sku_part_number,
    s.commitment,
    s.term_duration,
    s.billing_cycle,
    s.auto_renew,
    s.is_trial,
    s.commitment_end_date,
    s.cancellation_allowed_until,
    s.cancellation_window_open,
    CASE
        WHEN s.is_trial THEN 'trial_ends'
        WHEN s.cancellation_window_open THEN 'reduce_or_cancel_now'
        WHEN NOT coalesce(s.auto_renew, false) THEN 'ends_without_renewal'
        ELSE 'reduce_before_renewal'
    END AS action,
    CASE
        WHEN s.cancellation_window_open THEN CAST(s.cancellation_allowed_until AS DATE)
        ELSE s.commitment_end_date
    END AS act_by,
    CASE
        WHEN s.cancellation_window_open THEN CAST(s.cancellation_allowed_until AS DATE)
        ELSE s.commitment_end_date
    END - s.today AS days_left,
    s.commitment = 'monthly' AND coalesce(s.auto_renew, false) AND NOT s.is_trial
        AND NOT s.cancellation_window_open AS is_monthly_rollover,
    s.quantity,
    f.consumed_units,
    least(s.quantity, greatest(f.available_units, 0)) AS reducible_units,
    f.is_stale AS usage_is_stale,
    s.snapshot_date
FROM subscription AS s
LEFT JOIN current_license_facts AS f
    ON f.partner_tenant_id = s.partner_tenant_id
    AND f.tenant_id = s.tenant_id
    AND f.sku_id = s.sku_id
LEFT JOIN customers AS c
    ON c.partner_tenant_id = s.partner_tenant_id AND c.tenant_id = s.tenant_id
WHERE s.ends_soon OR s.cancellation_window_open;

-- Per customer and SKU: units in use, units this partner sells (its active subscriptions), units
-- bought elsewhere (the tenant's Graph subscriptions owned by another partner or by the customer),
-- and the units in use that this partner does not bill.
CREATE OR REPLACE VIEW sold_by_us AS
WITH ours AS (
    SELECT partner_tenant_id, tenant_id, sku_id, sum(quantity) AS units
    FROM current_subscriptions
    WHERE status IN ('active', 'pending') AND sku_id IS NOT NULL
    GROUP BY ALL
),
elsewhere AS (
    SELECT partner_tenant_id, tenant_id, sku_id, sum(total_licenses) AS units
    FROM current_tenant_subscriptions
    WHERE status IN ('Enabled', 'Warning')
        AND owner_tenant_id IS DISTINCT FROM partner_tenant_id
    GROUP BY ALL
)
SELECT
    f.partner_tenant_id,
    f.tenant_id,
    c.display_name,
    f.sku_id,
    f.sku_part_number,
    f.product_name,
    f.enabled_units,
    f.consumed_units AS units_in_use,
    coalesce(o.units, 0) AS units_sold_by_us,
    coalesce(e.units, 0) AS units_bought_elsewhere,
    f.consumed_units - coalesce(o.units, 0) AS difference,
    f.is_stale
FROM current_license_facts AS f
LEFT JOIN ours AS o
    ON o.partner_tenant_id = f.partner_tenant_id AND o.tenant_id = f.tenant_id AND o.sku_id = f.sku_id
LEFT JOIN elsewhere AS e
    ON e.partner_tenant_id = f.partner_tenant_id AND e.tenant_id = f.tenant_id AND e.sku_id = f.sku_id
LEFT JOIN customers AS c
    ON c.partner_tenant_id = f.partner_tenant_id AND c.tenant_id = f.tenant_id;

-- Billing-shaped answers (issue 13): each customer's facts as of any day, the changes between any
-- two days or since an invoice date, and a monthly summary per customer. The macros are
-- parameterised views: `FROM license_changes_between(DATE '2026-10-01', DATE '2026-11-01')`.

-- Each customer's facts on `as_of`: those of its latest snapshot on or before that day (a customer
-- whose syncs failed since shows the day its facts are from, `snapshot_date`).
CREATE OR REPLACE MACRO license_facts_as_of(as_of) AS TABLE
SELECT f.*
FROM license_facts AS f
SEMI JOIN (
    SELECT partner_tenant_id, tenant_id, max(snapshot_date) AS snapshot_date
    FROM license_snapshots
    WHERE snapshot_date <= CAST(as_of AS DATE)
    GROUP BY ALL
) AS s
    ON s.partner_tenant_id = f.partner_tenant_id
    AND s.tenant_id = f.tenant_id
    AND s.snapshot_date = f.snapshot_date;

-- What changed per customer and SKU between its facts as of `from_date` and as of `to_date`:
-- SKUs that appear count from 0, ones that disappear count down to 0; unchanged ones are left out.
-- A from_date after to_date is refused (`error`; `period`, one row, is joined in, so it is raised
-- even when no snapshot is there), not answered with changes that run backwards.
CREATE OR REPLACE MACRO license_changes_between(from_date, to_date) AS TABLE
WITH period AS (
    SELECT CASE WHEN CAST(from_date AS DATE) > CAST(to_date AS DATE) THEN error(
        'license_changes_between: from_date ' || CAST(from_date AS DATE)
        || ' is after to_date ' || CAST(to_date AS DATE) || '; give the earlier day first.'
    ) END AS refused
),
snapshots AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        max(snapshot_date) FILTER (WHERE snapshot_date <= CAST(from_date AS DATE))
            AS from_snapshot_date,
        max(snapshot_date) AS to_snapshot_date,
        max(snapshot_date) < (
            SELECT max(snapshot_date) FROM license_snapshots
            WHERE snapshot_date <= CAST(to_date AS DATE)
        ) AS to_is_stale
    FROM license_snapshots
    WHERE snapshot_date <= CAST(to_date AS DATE)
    GROUP BY ALL
),
before AS (FROM license_facts_as_of(from_date)),
after AS (FROM license_facts_as_of(to_date))
SELECT
    s.partner_tenant_id,
    s.tenant_id,
    c.display_name,
    s.from_snapshot_date,
    s.to_snapshot_date,
    coalesce(a.sku_id, b.sku_id) AS sku_id,
    coalesce(a.sku_part_number, b.sku_part_number) AS sku_part_number,
    coalesce(a.product_name, b.product_name) AS product_name,
    CASE
        WHEN b.sku_id IS NULL THEN 'added'
        WHEN a.sku_id IS NULL THEN 'removed'
        ELSE 'changed'
    END AS change,
    b.capability_status AS capability_status_before,
    a.capability_status AS capability_status_after,
    coalesce(b.enabled_units, 0) AS enabled_units_before,
    coalesce(a.enabled_units, 0) AS enabled_units_after,
    coalesce(a.enabled_units, 0) - coalesce(b.enabled_units, 0) AS enabled_units_change,
    coalesce(b.consumed_units, 0) AS consumed_units_before,
    coalesce(a.consumed_units, 0) AS consumed_units_after,
    coalesce(a.consumed_units, 0) - coalesce(b.consumed_units, 0) AS consumed_units_change,
    s.to_is_stale
FROM period, after AS a
FULL OUTER JOIN before AS b
    ON a.partner_tenant_id = b.partner_tenant_id
    AND a.tenant_id = b.tenant_id
    AND a.sku_id = b.sku_id
JOIN snapshots AS s
    ON s.partner_tenant_id = coalesce(a.partner_tenant_id, b.partner_tenant_id)
    AND s.tenant_id = coalesce(a.tenant_id, b.tenant_id)
LEFT JOIN customers AS c
    ON c.partner_tenant_id = s.partner_tenant_id AND c.tenant_id = s.tenant_id
WHERE period.refused IS NULL AND (
    a.sku_id IS NULL
    OR b.sku_id IS NULL
    OR a.capability_status <> b.capability_status
    OR a.enabled_units <> b.enabled_units
    OR a.consumed_units <> b.consumed_units
);

-- What changed per customer and SKU since an invoice date: from its facts as of that day to its
-- current ones (as of today, UTC).
CREATE OR REPLACE MACRO license_changes_since(invoice_date) AS TABLE
FROM license_changes_between(
    invoice_date, CAST(get_current_timestamp() AT TIME ZONE 'UTC' AS DATE)
);

-- One row per customer and month (UTC) in which it was synced or attempted: its units at the
-- month's last snapshot (all SKUs, and paid ones: `is_paid_sku`), its licensed users where known,
-- the month's changes (license_changes; the units added and removed of paid SKUs only) and its
-- access state (tenant_status).
CREATE OR REPLACE VIEW monthly_customer_summary AS
WITH month_end AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        CAST(date_trunc('month', snapshot_date) AS DATE) AS month,
        max(snapshot_date) AS snapshot_date
    FROM license_snapshots
    GROUP BY ALL
),
units AS (
    SELECT
        m.partner_tenant_id,
        m.tenant_id,
        m.month,
        m.snapshot_date,
        count(f.sku_id) AS skus,
        coalesce(sum(f.enabled_units), 0) AS enabled_units,
        coalesce(sum(f.consumed_units), 0) AS consumed_units,
        count(f.sku_id) FILTER (WHERE f.is_paid) AS paid_skus,
        coalesce(sum(f.enabled_units) FILTER (WHERE f.is_paid), 0) AS paid_enabled_units,
        coalesce(sum(f.consumed_units) FILTER (WHERE f.is_paid), 0) AS paid_consumed_units,
        coalesce(sum(greatest(f.available_units, 0)) FILTER (WHERE f.is_paid), 0)
            AS unused_paid_units
    FROM month_end AS m
    LEFT JOIN (
        SELECT l.*, is_paid_sku(k.sku_class, l.sku_id, l.sku_part_number) AS is_paid
        FROM license_facts AS l
        LEFT JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
    ) AS f
        ON f.partner_tenant_id = m.partner_tenant_id
        AND f.tenant_id = m.tenant_id
        AND f.snapshot_date = m.snapshot_date
    GROUP BY ALL
),
users AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        CAST(date_trunc('month', snapshot_date) AS DATE) AS month,
        arg_max(licensed_users, snapshot_date) AS licensed_users
    FROM licensed_users_per_read
    GROUP BY ALL
),
changes AS (
    SELECT
        c.partner_tenant_id,
        c.tenant_id,
        CAST(date_trunc('month', c.snapshot_date) AS DATE) AS month,
        count(*) AS changes,
        sum(greatest(c.enabled_units_change, 0)) FILTER (WHERE c.is_paid) AS units_added,
        sum(greatest(-c.enabled_units_change, 0)) FILTER (WHERE c.is_paid) AS units_removed
    FROM (
        SELECT l.*, is_paid_sku(k.sku_class, l.sku_id, l.sku_part_number) AS is_paid
        FROM license_changes AS l
        LEFT JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
    ) AS c
    GROUP BY ALL
),
access AS (
    SELECT
        partner_tenant_id,
        tenant_id,
        CAST(date_trunc('month', checked_at) AS DATE) AS month,
        arg_max(status, checked_at) AS last_status,
        max(checked_at) AS last_checked_at,
        count(*) AS attempts,
        count(*) FILTER (WHERE status <> 'ok') AS failed_attempts
    FROM tenant_status
    GROUP BY ALL
),
months AS (
    SELECT partner_tenant_id, tenant_id, month FROM month_end
    UNION
    SELECT partner_tenant_id, tenant_id, month FROM access
)
SELECT
    m.partner_tenant_id,
    m.tenant_id,
    c.display_name,
    m.month,
    n.snapshot_date,
    coalesce(n.skus, 0) AS skus,
    CAST(coalesce(n.enabled_units, 0) AS BIGINT) AS enabled_units,
    CAST(coalesce(n.consumed_units, 0) AS BIGINT) AS consumed_units,
    coalesce(n.paid_skus, 0) AS paid_skus,
    CAST(coalesce(n.paid_enabled_units, 0) AS BIGINT) AS paid_enabled_units,
    CAST(coalesce(n.paid_consumed_units, 0) AS BIGINT) AS paid_consumed_units,
    CAST(coalesce(n.unused_paid_units, 0) AS BIGINT) AS unused_paid_units,
    u.licensed_users,
    coalesce(g.changes, 0) AS changes,
    CAST(coalesce(g.units_added, 0) AS BIGINT) AS units_added,
    CAST(coalesce(g.units_removed, 0) AS BIGINT) AS units_removed,
    a.last_status,
    a.last_checked_at,
    coalesce(a.attempts, 0) AS attempts,
    coalesce(a.failed_attempts, 0) AS failed_attempts
FROM months AS m
LEFT JOIN units AS n USING (partner_tenant_id, tenant_id, month)
LEFT JOIN users AS u USING (partner_tenant_id, tenant_id, month)
LEFT JOIN changes AS g USING (partner_tenant_id, tenant_id, month)
LEFT JOIN access AS a USING (partner_tenant_id, tenant_id, month)
LEFT JOIN customers AS c
    ON c.partner_tenant_id = m.partner_tenant_id AND c.tenant_id = m.tenant_id;

-- Each data-quality check's latest evaluation (check_results): what `sync365 status` shows. A
-- blocked run skips the checks after the facts step, so a latest evaluation can be an older
-- sync's: `in_latest_sync` says whether it is from the sync that recorded the newest evaluation.
CREATE OR REPLACE VIEW latest_check_results AS
WITH newest AS (
    SELECT arg_max(sync_id, checked_at) AS sync_id FROM check_results
)
SELECT r.*, r.sync_id = n.sync_id AS in_latest_sync
FROM check_results AS r
CROSS JOIN newest AS n
QUALIFY row_number() OVER (PARTITION BY r.asset, r.check_name ORDER BY r.checked_at DESC) = 1;
