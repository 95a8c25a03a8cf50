"""An operator's dead-letter session with the real ``hookyard dlq`` commands, worker and services."""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
from prometheus_client import REGISTRY

from tests.conftest import InProcessWorker, make_settings
from tests.integration.helpers import github_event, publish_events, stored_count
from tests.support.processes import HOOKYARD, fleet_env
from tests.support.waiting import wait_until


def hookyard(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOKYARD, "dlq", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dead_letter_is_listed_shown_replayed_once_and_purged(
    fresh_database_url: str, empty_queues: str
) -> None:
    env = fleet_env(DATABASE_URL=fresh_database_url, AMQP_URL=empty_queues)
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        # A rule the stored data must follow, deployed before the events that break it arrive.
        conn.execute("ALTER TABLE events ADD CONSTRAINT no_blocked CHECK (event_type <> 'blocked')")
        good = github_event()
        refused = github_event().model_copy(update={"event_type": "blocked"})
        with InProcessWorker(make_settings(fresh_database_url, empty_queues), threads=2):
            publish_events(empty_queues, [good, refused])
            wait_until(lambda: stored_count(conn, [good.delivery_id]) == 1, what="the good event")
            wait_until(
                lambda: conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,),
                what="the dead letter",
            )

            listing = hookyard(env, "list", "--reason", "unstorable_event")
            assert listing.returncode == 0, listing.stderr
            assert f"github:{refused.delivery_id}" in listing.stdout
            assert (
                hookyard(env, "list", "--reason", "retries_exhausted").stdout.strip()
                == "no dead letters match"
            )
            assert hookyard(env, "list", "--older-than", "1h").stdout.strip() == "no dead letters match"
            letter_id = _only_id(conn)
            shown = hookyard(env, "show", str(letter_id))
            assert "no_blocked" in shown.stdout
            assert refused.delivery_id in shown.stdout

            dry = hookyard(env, "replay", "--dry-run")
            assert dry.stdout.strip() == "1 dead letter(s) would be replayed"
            assert stored_count(conn, [refused.delivery_id]) == 0

            conn.execute("ALTER TABLE events DROP CONSTRAINT no_blocked")  # the operator fixes the cause
            replay = hookyard(env, "replay", "--reason", "unstorable_event")
            assert replay.returncode == 0, replay.stderr
            assert "replayed 1/1" in replay.stderr
            wait_until(lambda: stored_count(conn, [refused.delivery_id]) == 1, what="the replayed event")
            assert hookyard(env, "replay").stdout.strip() == "0 dead letter(s) replayed"

            # Replaying a letter whose event is stored (a crash after the confirm, say) stores nothing new.
            conn.execute("UPDATE dead_letters SET replayed_at = NULL")
            skipped_before = _duplicates_skipped()
            assert hookyard(env, "replay").stdout.strip() == "1 dead letter(s) replayed"
            wait_until(
                lambda: _duplicates_skipped() == skipped_before + 1, what="the worker to skip the replay"
            )
            assert stored_count(conn, [good.delivery_id, refused.delivery_id]) == 2

        refused_purge = hookyard(env, "purge", "--all", stdin="n\n")
        assert refused_purge.returncode == 1
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)
        purge = hookyard(env, "purge", "--all", "--yes")
        assert purge.stdout.strip() == "1 dead letter(s) purged"
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


def test_show_of_a_missing_letter_is_one_line_and_non_zero(fresh_database_url: str) -> None:
    result = hookyard(fleet_env(DATABASE_URL=fresh_database_url), "show", "424242")
    assert result.returncode == 1
    assert result.stderr.strip() == "hookyard: no dead letter with id 424242"


def _only_id(conn: psycopg.Connection[Any]) -> int:
    (row,) = conn.execute("SELECT id FROM dead_letters").fetchall()
    return int(row[0])


def _duplicates_skipped() -> float:
    """Duplicates the in-process worker skipped so far (it shares this process's metrics)."""
    return REGISTRY.get_sample_value("hookyard_events_duplicate_total", {"source": "github"}) or 0.0
