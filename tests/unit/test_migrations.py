"""Migration files and the months the partition manager keeps."""

from __future__ import annotations

from datetime import date

import pytest

from schema.migrate import Migration, load_migrations, month_starts


def test_migrations_load_in_version_order_with_unique_versions():
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_migrations_are_numbered_from_one_without_gaps():
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_every_migration_has_a_name_and_sql():
    for migration in load_migrations():
        assert migration.name
        assert migration.sql.strip()


def test_the_events_migration_is_among_them():
    assert "events" in {m.name for m in load_migrations()}


def test_a_migration_checksum_changes_when_its_sql_changes():
    original = Migration(1, "x", "CREATE TABLE a (id int);")
    edited = Migration(1, "x", "CREATE TABLE a (id bigint);")
    assert original.checksum != edited.checksum
    assert original.checksum == Migration(1, "x", "CREATE TABLE a (id int);").checksum


def test_month_starts_cross_the_year_boundary():
    assert month_starts(date(2026, 12, 15), 1, 3) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
        date(2027, 3, 1),
    ]


def test_month_starts_reach_back_into_the_previous_year_in_january():
    assert month_starts(date(2027, 1, 31), 1, 1) == [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]


@pytest.mark.parametrize("today", [date(2026, 3, 1), date(2026, 3, 31)])
def test_month_starts_do_not_depend_on_the_day_of_the_month(today):
    assert month_starts(today, 0, 0) == [date(2026, 3, 1)]


def test_month_starts_span_more_than_a_year_ahead():
    months = month_starts(date(2026, 6, 10), 0, 24)
    assert months[0] == date(2026, 6, 1)
    assert months[-1] == date(2028, 6, 1)
    assert len(months) == 25
    assert all(month.day == 1 for month in months)
