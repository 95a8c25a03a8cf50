"""``hookyard meters`` and ``hookyard rates``: how CloudEvents become usage, and what it costs in CAD.

The groups are registered on the main group by ops/cli.py. Rendering (the tables, the one-line
answers, the JSON documents) is pure; the operations are ops/meters.py.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from hookyard.config import load_settings
from ops.tenancy_cli import database_option

if TYPE_CHECKING:
    from ops.meters import Rate, SetRate, StoredMeter

_JSON_HELP = "One JSON document on stdout (amounts and rates as decimal strings, times in UTC)"


def _database_url(database_url: str | None) -> str:
    return load_settings(database_url=database_url).database_url


# --- Pure rendering ---


def to_json(value: Any) -> str:
    """One JSON document: dataclasses as objects, decimals as strings (exact), dates and times as
    ISO 8601 (times in UTC)."""
    return json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    return decimal_text(value) if isinstance(value, Decimal) else value


def decimal_text(value: Decimal) -> str:
    """A decimal without trailing zeros and never in exponent form: ``1.4000000000`` -> ``1.4``
    (exactly: not through ``normalize()``, which rounds to 28 digits)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def measure_text(meter: StoredMeter) -> str:
    """``COUNT`` or ``SUM($.tokens)``."""
    return f"SUM({meter.value_property})" if meter.value_property else meter.aggregation


def group_by_text(group_by: dict[str, str]) -> str:
    return ", ".join(f"{name}={path}" for name, path in sorted(group_by.items())) or "-"


def meter_table(meters: list[StoredMeter]) -> list[str]:
    slug = max(len("slug"), *(len(m.slug) for m in meters))
    event = max(len("event type"), *(len(m.event_type) for m in meters))
    measure = max(len("measure"), *(len(measure_text(m)) for m in meters))
    resource = max(len("resource type"), *(len(m.resource_type) for m in meters))
    unit = max(len("unit"), *(len(m.unit) for m in meters))
    lines = [
        f"{'slug':<{slug}}  {'event type':<{event}}  {'measure':<{measure}}  "
        f"{'resource type':<{resource}}  {'unit':<{unit}}  group by"
    ]
    lines.extend(
        f"{m.slug:<{slug}}  {m.event_type:<{event}}  {measure_text(m):<{measure}}  "
        f"{m.resource_type:<{resource}}  {m.unit:<{unit}}  {group_by_text(m.group_by)}"
        for m in meters
    )
    return lines


def created_line(meter: StoredMeter) -> str:
    groups = f", grouped by {group_by_text(meter.group_by)}" if meter.group_by else ""
    return (
        f"created meter {meter.slug}: CloudEvents of type {meter.event_type!r} add "
        f"{measure_text(meter)} {meter.unit} of {meter.resource_type}{groups}"
    )


def rate_table(rates: list[Rate]) -> list[str]:
    lines = [f"{'currency':<8}  {'from':<10}  {'until':<10}  {'CAD per unit':>22}  "]
    lines.extend(
        f"{rate.currency:<8}  {rate.valid_from.isoformat():<10}  "
        f"{rate.valid_until.isoformat() if rate.valid_until else '-':<10}  "
        f"{decimal_text(rate.rate_to_cad):>22}  {'in force' if rate.in_force else ''}".rstrip()
        for rate in rates
    )
    lines[0] = lines[0].rstrip()
    return lines


def set_rate_lines(done: SetRate) -> list[str]:
    rate = decimal_text(done.rate_to_cad)
    what = f"1 {done.currency} = {rate} CAD from {done.valid_from.isoformat()}"
    first = f"rate set: {what}"
    if done.previous is not None:
        first = f"rate replaced: {what} (was {decimal_text(done.previous)})"
    lines = [first]
    if done.retroactive:
        lines.append(
            "note: usage already stored keeps the cost it was given; "
            "this rate prices the usage stored from now on"
        )
    return lines


# --- meters ---


@click.group()
def meters() -> None:
    """Meters: how CloudEvents (POST /api/v1/events) become usage records.

    Each meter whose event type equals a CloudEvent's type makes one resource_usage row of its
    resource type and unit per event: 1 for COUNT, the value at --value-property of the event's
    data for SUM, with --group-by values kept in the row's metadata. Paths are JSONPath: $.name,
    $.a.b, $.items[0], $['any key'].
    """


@meters.command("create")
@click.argument("slug")
@click.option("--event-type", required=True, help="The CloudEvent type it takes, matched exactly")
@click.option(
    "--resource-type", required=True, help="The resource_type of the usage it makes (e.g. llm_tokens)"
)
@click.option("--unit", required=True, help="The unit of the amounts (e.g. tokens, seconds)")
@click.option(
    "--aggregation",
    required=True,
    type=click.Choice(["COUNT", "SUM"], case_sensitive=False),
    help="COUNT: each event is 1; SUM: the value at --value-property",
)
@click.option(
    "--value-property", metavar="PATH", help="SUM only: the JSONPath of the amount in data, e.g. '$.tokens'"
)
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    metavar="NAME=PATH",
    help="Keep the value at PATH as metadata NAME (repeatable), e.g. model='$.model'",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def meters_create(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    slug: str,
    event_type: str,
    resource_type: str,
    unit: str,
    aggregation: str,
    value_property: str | None,
    group_by: tuple[str, ...],
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a meter (its SLUG: lowercase letters, digits, '_' and '-')."""
    from ops import meters as ops_meters  # noqa: PLC0415 - keep --help fast

    groups = ops_meters.parse_group_by(group_by)
    meter = ops_meters.build_meter(slug, event_type, resource_type, unit, aggregation, value_property, groups)
    stored = ops_meters.create_meter(_database_url(database_url), meter, value_property, groups)
    click.echo(to_json(stored) if as_json else created_line(stored))


@meters.command("list")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP + " (a list)")
@database_option
def meters_list(as_json: bool, database_url: str | None) -> None:
    """List meters: the event type each takes, what it measures and its group-bys."""
    from ops import meters as ops_meters  # noqa: PLC0415

    found = ops_meters.list_meters(_database_url(database_url))
    if as_json:
        click.echo(to_json(found))
        return
    if not found:
        click.echo(
            "no meters; `hookyard meters create SLUG --event-type T --resource-type R --unit U "
            "--aggregation COUNT` creates one"
        )
        return
    for line in meter_table(found):
        click.echo(line)


@meters.command("delete")
@click.argument("slug")
@database_option
def meters_delete(slug: str, database_url: str | None) -> None:
    """Delete a meter: its events stop making usage; the usage it made stays."""
    from ops import meters as ops_meters  # noqa: PLC0415

    gone = ops_meters.delete_meter(_database_url(database_url), slug)
    click.echo(
        f"deleted meter {gone.slug}: CloudEvents of type {gone.event_type!r} no longer make "
        f"{gone.resource_type} usage through it; the usage it made stays"
    )


# --- rates ---


@click.group()
def rates() -> None:
    """Exchange rates to CAD: usage costs in other currencies are converted when stored.

    A rate is in force from its date until the next rate of its currency; a usage record is priced
    with the rate in force on its own date (UTC).
    """


@rates.command("set")
@click.argument("currency")
@click.argument("rate")
@click.option(
    "--from",
    "valid_from",
    metavar="DATE",
    help="The first day (YYYY-MM-DD, UTC) the rate applies to [default: today, UTC]",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def rates_set(
    currency: str, rate: str, valid_from: str | None, as_json: bool, database_url: str | None
) -> None:
    """Set how many CAD one unit of CURRENCY (ISO 4217, e.g. USD) is worth: RATE, e.g. 1.40."""
    from ops import meters as ops_meters  # noqa: PLC0415

    code = ops_meters.parse_currency(currency)
    value = ops_meters.parse_rate(rate)
    day = ops_meters.parse_date(valid_from) if valid_from is not None else ops_meters.today_utc()
    done = ops_meters.set_rate(_database_url(database_url), code, value, day)
    if as_json:
        click.echo(to_json(done))
        return
    for line in set_rate_lines(done):
        click.echo(line)


@rates.command("list")
@click.option("--currency", help="Only this currency's rates (ISO 4217, e.g. USD)")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP + " (a list)")
@database_option
def rates_list(currency: str | None, as_json: bool, database_url: str | None) -> None:
    """List rates by currency, oldest first, with the one in force today marked."""
    from ops import meters as ops_meters  # noqa: PLC0415

    code = ops_meters.parse_currency(currency, settable=False) if currency is not None else None
    found = ops_meters.list_rates(_database_url(database_url), code)
    if as_json:
        click.echo(to_json(found))
        return
    if not found and code == "CAD":
        click.echo("CAD has no rates: costs are kept in CAD, at 1")
        return
    if not found:
        where = f" for {code}" if code else ""
        click.echo(f"no rates{where}; `hookyard rates set USD 1.40` sets one")
        return
    for line in rate_table(found):
        click.echo(line)
