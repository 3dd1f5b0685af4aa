"""The billing report (`sync365 report`): per customer, its paid seats bought, used and unused,
its licensed users where known, its access, what changed since a day, and a trend of its paid
seats; as one self-contained HTML file (the chart an inline SVG, no script), Markdown or text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.text import safe_text
from sync365_pipeline.warehouse import Warehouse

ReportFormat = Literal["html", "md", "text"]
TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2", "text": "report.txt.j2"}
SPARKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 360, 120, 28


@dataclass(frozen=True)
class TrendPoint:
    day: date
    bought: int
    used: int


@dataclass
class CustomerReport:
    """One customer's part of the report; names are made safe to show."""

    customer: str
    partner_tenant_id: str  # with tenant_id, the customer: a tenant two partners reach is two
    tenant_id: str
    status: str
    status_since: str
    facts_as_of: str
    is_stale: bool
    paid_units: int
    used_units: int
    unused_paid_units: int
    over_assigned_units: int  # consumed beyond enabled, per SKU (a suspended SKU still in use)
    licensed_users: int | None
    skus: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)

    @property
    def chart(self) -> Markup:
        return Markup(trend_svg(self.trend))  # noqa: S704 (our own markup, numbers and dates)

    @property
    def sparkline(self) -> str:
        return sparkline([point.used for point in self.trend])


@dataclass(frozen=True)
class Report:
    since: date
    generated_at: str
    customers: list[CustomerReport]

    @property
    def totals(self) -> dict[str, int]:
        return {
            name: sum(getattr(customer, name) for customer in self.customers)
            for name in ("paid_units", "used_units", "unused_paid_units")
        }


def build_report(warehouse: Warehouse, since: date) -> Report:
    """Every active customer's report from the warehouse's views, changes since `since`."""
    skus = _grouped(warehouse.current_skus())
    changes = _grouped(warehouse.changes_since(since))
    trends = _grouped(warehouse.paid_trend(since))
    customers = []
    for row in warehouse.customer_overview().to_dict("records"):
        key = (row["partner_tenant_id"], row["tenant_id"])
        customers.append(
            CustomerReport(
                customer=safe_text(str(row["customer"])),
                partner_tenant_id=row["partner_tenant_id"],
                tenant_id=row["tenant_id"],
                status=row["status"],
                status_since=_day(row["status_since"]),
                facts_as_of=_day(row["facts_as_of"]),
                is_stale=bool(row["is_stale"]),
                paid_units=int(row["paid_units"]),
                used_units=int(row["used_units"]),
                unused_paid_units=int(row["unused_paid_units"]),
                over_assigned_units=int(row["over_assigned_units"]),
                licensed_users=None
                if pd.isna(row["licensed_users"])
                else int(row["licensed_users"]),
                skus=[_shown(sku) for sku in skus.get(key, [])],
                changes=[_shown(change) for change in changes.get(key, [])],
                trend=[
                    TrendPoint(point["snapshot_date"].date(), point["bought"], point["used"])
                    for point in trends.get(key, [])
                ],
            )
        )
    return Report(since, utcnow().strftime("%Y-%m-%d %H:%M UTC"), customers)


def render(report: Report, report_format: ReportFormat) -> str:
    """The report as text of `report_format` (HTML escaped by its template engine)."""
    environment = Environment(
        loader=PackageLoader("sync365_pipeline.licensing", "report_templates"),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["cell"] = lambda text: str(text).replace("|", "\\|")
    return environment.get_template(TEMPLATES[report_format]).render(report=report)


def trend_svg(points: Sequence[TrendPoint]) -> str:
    """Paid seats bought (grey) and used (blue) per snapshot, as an inline SVG line chart."""
    if not points:
        return '<p class="muted">No snapshot to chart yet.</p>'
    top = max(max(point.bought, point.used) for point in points) or 1
    first, last = points[0].day, points[-1].day
    span = (last - first).days or 1
    inner_width = CHART_WIDTH - 2 * CHART_MARGIN
    inner_height = CHART_HEIGHT - 2 * CHART_MARGIN

    def xy(day: date, value: int) -> tuple[float, float]:
        x = CHART_MARGIN + inner_width * ((day - first).days / span if len(points) > 1 else 0.5)
        return x, CHART_MARGIN + inner_height * (1 - value / top)

    lines = []
    for name, colour in (("bought", "#9aa5b1"), ("used", "#1f6feb")):
        coords = [xy(point.day, getattr(point, name)) for point in points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        lines.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        lines += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in coords]
    bottom = CHART_HEIGHT - CHART_MARGIN
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
            f'height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
            f'aria-label="Paid seats from {first} to {last}">',
            f'<line x1="{CHART_MARGIN}" y1="{bottom}" x2="{CHART_WIDTH - CHART_MARGIN}" '
            f'y2="{bottom}" stroke="#d0d7de"/>',
            f'<text x="4" y="{CHART_MARGIN + 4}" font-size="10">{top}</text>',
            f'<text x="4" y="{bottom}" font-size="10">0</text>',
            f'<text x="{CHART_MARGIN}" y="{CHART_HEIGHT - 8}" font-size="10">{first}</text>',
            f'<text x="{CHART_WIDTH - CHART_MARGIN}" y="{CHART_HEIGHT - 8}" font-size="10" '
            f'text-anchor="end">{last}</text>',
            *lines,
            "</svg>",
        ]
    )


def sparkline(values: Sequence[int]) -> str:
    """Values as a row of block characters, lowest to highest (for Markdown and text)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    steps = len(SPARKS) - 1
    return "".join(
        SPARKS[round((value - low) / (high - low) * steps) if high > low else steps // 2]
        for value in values
    )


def _grouped(frame: pd.DataFrame) -> dict[tuple[str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        grouped.setdefault((row["partner_tenant_id"], row["tenant_id"]), []).append(row)
    return grouped


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the templates: missing values empty, text made safe, dates as days."""
    shown: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or (not isinstance(value, list) and pd.isna(value)):
            shown[name] = ""
        elif isinstance(value, pd.Timestamp):
            shown[name] = value.date().isoformat()
        elif isinstance(value, str):
            shown[name] = safe_text(value)
        else:
            shown[name] = value
    return shown


def _day(value: Any) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()
