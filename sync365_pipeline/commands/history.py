"""The demo's history: `sync365 demo --days N` replays N-1 past days before today's sync.

Each past day, the simulated cloud changes through its control API (the day's part of a script),
then one quiet `full_sync` runs with the pipeline's clock set back to that day (`replaying`), so
every date and timestamp it writes (snapshots, statuses, flags) is that day's, and the flags are
evaluated as `sync365 sync` evaluates them. The script starts from an earlier world and ends on
the scenario as written, but for the dates the script gives (Cedar Harbor's annual term renewed
during the replay, and in a history of two or three days Copilot is bought today or yesterday, not
two days ago), so today's sync sees the demo as it always was, with a past behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import click
import dagster as dg

from sync365_pipeline.commands.run import INTERRUPTED, ensure_dagster_home, show
from sync365_pipeline.core.clock import replaying, utcnow
from sync365_pipeline.core.settings import load_run_settings
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import SyncRun, exclusive_sync, run_full_sync
from sync365_pipeline.licensing.consent_flags import evaluate_flags
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.simulator.client import SimulatorClient
from sync365_pipeline.simulator.scenario import SkuAssignment
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.warehouse import Warehouse

# The demo scenario's customers the script changes.
NORTHWIND = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"
FABRIKAM = "ea387754-8c47-4f92-84a1-7ac22ee21a16"
TAILSPIN = "17712324-64a7-4045-946f-b4f030aa97c8"
CEDAR_HARBOR = "e3d50498-e749-4170-ae77-39c67dbf46b5"
SUMMIT = "aefac2e1-1ad7-4c55-9a3d-3e67597ef908"
COPILOT = "Microsoft_365_Copilot"


@dataclass(frozen=True)
class Change:
    """One change to the simulated world, made through the control API before a day's sync;
    `summary` is its words in the day's progress line (empty: a change nobody would notice)."""

    summary: str
    make: Callable[[SimulatorClient], Any]


def demo_script(days: int, today: date, world: SimulatorState) -> list[list[Change]]:
    """The demo scenario's changes, day by day (index 0 the first replayed day, `days - 1`
    today): seats added and removed, a SKU bought, a customer lost and regained, an annual
    renewal passing. The first day sets the earlier world; by today every change is made, back
    to the scenario as `world` (the simulator before any change) has it."""
    if days < 2:
        return [[] for _ in range(days)]
    last = days - 1
    # Copies: the changes below alter the simulator's own.
    spb = world.sku(NORTHWIND, "SPB").model_copy(deep=True)
    ems = world.sku(TAILSPIN, "EMSPREMIUM").model_copy(deep=True)
    copilot = world.sku(FABRIKAM, COPILOT).model_copy(deep=True)
    (copilot_term,) = copilot.subscriptions  # a new term, bought `term_started_days_ago`
    assert copilot_term.term_started_days_ago is not None, "demo.yaml says when it was bought"
    summit_gdap_days = world.customer(SUMMIT).gdap_relationships[0].ends_in_days
    seats_bought, seats_used, seats_given_back = 4, 3, 5  # Northwind's, then Tailspin's

    def at(share: float) -> int:
        return max(1, min(last, round(share * last)))

    def date_of(index: int) -> date:
        return today - timedelta(days=last - index)

    plan: list[list[Change]] = [[] for _ in range(days)]
    renewal = at(0.5)
    renewal_day = date_of(renewal)
    # After the first day, which sets the earlier world.
    bought = max(1, last - copilot_term.term_started_days_ago)
    plan[0] += [
        Change(
            "",
            lambda sim: sim.set_sku_units(
                NORTHWIND,
                "SPB",
                enabled=spb.enabled - seats_bought,
                consumed=spb.consumed - seats_used,
            ),
        ),
        Change(
            "",
            lambda sim: sim.set_sku_units(
                TAILSPIN, "EMSPREMIUM", enabled=ems.enabled + seats_given_back
            ),
        ),
        Change("", lambda sim: sim.remove_sku(FABRIKAM, COPILOT)),
        renewal_change(today, renewal_day, renewed=False),
    ]
    plan[at(0.25)].append(
        Change(
            f"Northwind Traders +{seats_bought} SPB seats",
            lambda sim: sim.set_sku_units(
                NORTHWIND, "SPB", enabled=spb.enabled, consumed=spb.consumed
            ),
        )
    )
    plan[at(0.5)].append(
        Change(
            f"Tailspin Logistics -{seats_given_back} EMSPREMIUM seats",
            lambda sim: sim.set_sku_units(TAILSPIN, "EMSPREMIUM", enabled=ems.enabled),
        )
    )
    plan[bought].append(copilot_purchase(today, date_of(bought), copilot))
    plan[renewal].append(renewal_change(today, renewal_day, renewed=True))
    lost = at(1 / 3)
    if lost < last:  # lost and regained needs two days after the first
        plan[lost].append(
            Change(
                "Summit Pharmacy's GDAP relationship ends",
                lambda sim: sim.update_gdap_relationship(SUMMIT, ends_in_days=-1),
            )
        )
        plan[max(lost + 1, at(2 / 3))].append(
            Change(
                "Summit Pharmacy approves a new GDAP relationship",
                lambda sim: sim.update_gdap_relationship(SUMMIT, ends_in_days=summit_gdap_days),
            )
        )
    return plan


def copilot_purchase(today: date, bought_on: date, copilot: SkuAssignment) -> Change:
    """Fabrikam buys Copilot (`copilot`'s units) on `bought_on`: its first term starts that day
    (counted back from `today`, as the simulator counts it)."""
    term = {"term_started_days_ago": (today - bought_on).days, "renewals": 0}
    sku = {"part_number": COPILOT, "enabled": copilot.enabled, "consumed": copilot.consumed}
    return Change(
        "Fabrikam Dental buys Copilot",
        lambda sim: sim.add_sku(FABRIKAM, {**sku, "subscriptions": [term]}),
    )


def renewal_change(today: date, renewal_day: date, *, renewed: bool) -> Change:
    """Cedar Harbor's annual Microsoft 365 Apps for Business term: the one that ends the day before
    `renewal_day`, or (`renewed`) the next one, from then. The simulator counts a term's start
    back from the day it started, `today`."""
    if renewed:
        term = {"term_started_days_ago": (today - renewal_day).days, "renewals": 2}
    else:
        term = {"term_ends_on": str(renewal_day - timedelta(days=1)), "renewals": 1}
    return Change(
        "Cedar Harbor's Microsoft 365 Apps renews" if renewed else "",
        lambda sim: sim.set_sku_units(CEDAR_HARBOR, "O365_BUSINESS", subscriptions=[term]),
    )


# The scripts by scenario name; another scenario replays its days unchanged.
SCRIPTS: dict[str, Callable[[int, date, SimulatorState], list[list[Change]]]] = {
    "demo": demo_script
}


Step = tuple[SimulatorClient, Change]  # a change and the simulator it is made in


def day_changes(simulators: Sequence[SimulatorServer], days: int, today: date) -> list[list[Step]]:
    """Each day's changes over every simulator, with the control client each goes through
    (`today`: the day the simulators started, from which they count a term's start back)."""
    plans = [
        (simulator.control, SCRIPTS[state.scenario_name](days, today, state))
        for simulator in simulators
        if (state := simulator.state).scenario_name in SCRIPTS
    ]
    return [
        [(client, change) for client, plan in plans for change in plan[day]] for day in range(days)
    ]


def apply_changes(changes: Sequence[Step]) -> list[str]:
    """Make the changes; returns their summaries."""
    for client, change in changes:
        change.make(client)
    return [change.summary for _, change in changes if change.summary]


def replay_past_days(simulators: Sequence[SimulatorServer], days: int) -> int:
    """Sync the `days - 1` days before today, each after its changes, and make today's changes;
    prints one line per day. Returns 0, else the exit code of the day that failed (1, or
    `INTERRUPTED`)."""
    today = utcnow().date()  # the simulators started moments ago: their day too
    plan = day_changes(simulators, days, today)
    home = ensure_dagster_home()
    warehouse = Warehouse.from_settings(load_run_settings())
    with exclusive_sync(home, lambda waiting: click.echo(waiting, err=True)):
        for index in range(days - 1):
            day = today - timedelta(days=days - 1 - index)
            try:
                summaries = apply_changes(plan[index])
                outcome = sync_past_day(day, warehouse)
            except KeyboardInterrupt:  # Ctrl-C outside a run: between two steps of the replay
                return stopped(day)
            if outcome.interrupted:
                return stopped(day)
            if not outcome.success:
                show(f"{day}: the sync failed: {outcome.failure}", err=True)
                return 1
            click.echo(f"{day}: synced; {'; '.join(summaries) or 'no change'}")
    if summaries := apply_changes(plan[-1]):
        click.echo(f"{today}: {'; '.join(summaries)}")
    return 0


def stopped(day: date) -> int:
    click.echo(f"{day}: stopped before its sync finished.", err=True)
    return INTERRUPTED


def sync_past_day(day: date, warehouse: Warehouse) -> SyncRun:
    """One quiet `full_sync` on `day`'s clock, then, if it succeeded, that day's flags."""
    with replaying(day), dg.DagsterInstance.ephemeral() as instance:
        outcome = run_full_sync(defs, instance, quiet=True)
        if outcome.success:
            evaluate_flags(warehouse, utcnow(), None)
    return outcome
