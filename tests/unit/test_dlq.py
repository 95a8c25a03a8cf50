"""Dead-letter filters: the ages an operator types."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookyard.errors import HookyardError
from ops.dlq import Filters, parse_age


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("0m", timedelta(0)),
        (" 2h ", timedelta(hours=2)),
    ],
)
def test_an_age_is_a_number_followed_by_a_unit(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "-1h", "1.5h", "2 h", "2H", "2hours", "h2"])
def test_a_malformed_age_raises_one_line_quoting_it(text):
    with pytest.raises(HookyardError) as caught:
        parse_age(text)
    assert repr(text) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unset_filters_match_everything_not_yet_replayed():
    params = Filters().params()
    assert params["queue"] is None
    assert params["ids"] is None
    assert params["include_replayed"] is False


def test_ids_filter_is_passed_as_a_list():
    assert Filters(ids=(3, 1)).params()["ids"] == [3, 1]
