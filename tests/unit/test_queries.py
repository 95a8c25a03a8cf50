"""Named queries: ``queries.sql`` is split into a name → SQL mapping, and callers supply every parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from contracts import EventEnvelope, EventFields, Source
from ops.dlq import Filters
from schema import queries
from schema.queries import parse_queries
from workers.store import DeadLetter, EventStore

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sb]")  # text (s) or binary (b) placeholders


def placeholders(name: str) -> set[str]:
    return set(_PLACEHOLDER.findall(queries()[name]))


def test_sections_become_named_queries_and_the_preamble_is_dropped():
    text = (
        "-- A preamble comment.\n\n"
        "-- name: first --\n-- what it does\nSELECT 1;\n\n"
        "-- name: second_one --\nSELECT 2\nFROM t;\n"
    )
    assert parse_queries(text) == {"first": "-- what it does\nSELECT 1;", "second_one": "SELECT 2\nFROM t;"}


def test_a_query_name_defined_twice_is_rejected():
    text = "-- name: same --\nSELECT 1;\n-- name: same --\nSELECT 2;\n"
    with pytest.raises(ValueError, match="same"):
        parse_queries(text)


def test_a_header_must_stand_on_its_own_line():
    text = "-- name: real --\nSELECT '-- name: fake --';\n"
    assert list(parse_queries(text)) == ["real"]


def test_text_without_headers_has_no_queries():
    assert parse_queries("-- just a comment\nSELECT 1;\n") == {}


@pytest.mark.parametrize(
    "name",
    [
        "claim_event_keys",
        "insert_dead_letter",
        "ensure_month_partition",
        "partitions_before",
        "find_event",
        "dlq_select",
        "dlq_show",
        "dlq_claim",
        "dlq_purge",
    ],
)
def test_the_packaged_file_defines_every_query_the_fleet_runs(name):
    assert queries()[name].strip()


def test_packaged_queries_carry_no_section_header_inside_them():
    for name, body in queries().items():
        assert "-- name:" not in body, name


def test_the_ledger_supplies_exactly_the_parameters_of_claim_event_keys():
    event = EventEnvelope(
        source=Source.GITHUB,
        delivery_id="d",
        event_type="push",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload="{}",
        fields=EventFields(),
    )
    params = EventStore(pool=None).claim_params([event])  # type: ignore[arg-type]
    assert set(params) == placeholders("claim_event_keys")


def test_a_dead_letter_supplies_exactly_the_parameters_of_insert_dead_letter():
    letter = DeadLetter(
        dedup_key="k", queue="events", actor="store_events", reason="r", detail="d", attempts=1, body=b"{}"
    )
    assert set(letter.params()) == placeholders("insert_dead_letter")


def test_dlq_filters_supply_exactly_the_parameters_of_dlq_select():
    assert set(Filters().params()) == placeholders("dlq_select")
