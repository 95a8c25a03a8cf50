"""The check state machine and schedule arithmetic (contracts/checks.py): pure, no services."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contracts.checks import (
    DEFAULT_GRACE,
    DEFAULT_PERIOD,
    Cause,
    Flip,
    Report,
    Schedule,
    Signal,
    Status,
    Subject,
    apply,
    format_duration,
    parse_duration,
    pause,
    resume,
    sweep,
    sweep_alarm,
)

#: Monday 2 March 2026, noon UTC: every example counts minutes from here.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)
#: Due every hour, ten minutes of grace.
HOURLY = Schedule.simple(timedelta(hours=1), GRACE)
PARIS = ZoneInfo("Europe/Paris")


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(subject: Subject, *reports: Report, schedule: Schedule = HOURLY) -> tuple[Subject, list[Flip]]:
    """Apply reports in order; the final state and every flip on the way."""
    flips: list[Flip] = []
    for report in reports:
        subject, made = apply(subject, report, schedule)
        flips.extend(made)
    return subject, flips


def success(minutes: float, rid: str | None = None) -> Report:
    return Report(Signal.SUCCESS, t(minutes), rid)


def fail(minutes: float, rid: str | None = None) -> Report:
    return Report(Signal.FAIL, t(minutes), rid)


def start(minutes: float, rid: str | None = None) -> Report:
    return Report(Signal.START, t(minutes), rid)


def log(minutes: float) -> Report:
    return Report(Signal.LOG, t(minutes))


def up_since(minutes: float) -> Subject:
    """A subject whose last report was a success at ``minutes``."""
    return run(Subject.new(), success(minutes))[0]


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("36500d", timedelta(days=36500)),
        (" 15m ", timedelta(minutes=15)),
    ],
)
def test_durations_are_a_whole_number_and_a_unit_s_m_h_or_d(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_one_second_is_the_shortest_duration_accepted() -> None:
    assert parse_duration("1s") == timedelta(seconds=1)


@pytest.mark.parametrize("text", ["0s", "0m", "0d", "00h"])
def test_a_zero_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at least 1s"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    ["", "5", "m", "1.5h", "-5m", "+5m", "5 m", "5M", "5w", "1h30m", "5min", "٣s", "1e3s"],
)
def test_anything_else_is_refused_with_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as refused:
        parse_duration(text)
    assert "\n" not in str(refused.value)


def test_a_duration_beyond_a_century_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration("36501d")
    with pytest.raises(ValueError, match="at most"):
        parse_duration("999999999999d")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=36), "36h"),
        (timedelta(days=2), "2d"),
        (timedelta(0), "0s"),
        (timedelta(seconds=1.25), "1.25s"),
        (timedelta(minutes=2, microseconds=500_000), "120.5s"),
    ],
)
def test_format_duration_writes_the_largest_unit_that_divides_exactly(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["1s", "59s", "60s", "5m", "61m", "24h", "25h", "7d", "36500d"])
def test_a_parsed_duration_formats_back_to_a_text_that_parses_to_it(text: str) -> None:
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta


def test_a_negative_duration_cannot_be_formatted() -> None:
    with pytest.raises(ValueError, match="never negative"):
        format_duration(timedelta(seconds=-1))


# --- schedules ---------------------------------------------------------------------------------


def test_the_default_schedule_is_a_day_with_an_hour_of_grace() -> None:
    schedule = Schedule.simple()
    assert (schedule.kind, schedule.period, schedule.grace, schedule.tz) == (
        "simple",
        DEFAULT_PERIOD,
        DEFAULT_GRACE,
        "UTC",
    )
    assert (timedelta(days=1), timedelta(hours=1)) == (DEFAULT_PERIOD, DEFAULT_GRACE)


def test_a_simple_schedule_is_due_one_period_after_the_report_in_utc() -> None:
    assert HOURLY.next_due(t(0)) == t(60)
    paris_noon = datetime(2026, 3, 2, 13, 0, tzinfo=PARIS)
    assert HOURLY.next_due(paris_noon) == t(60)
    assert HOURLY.next_due(paris_noon).tzinfo is UTC


def test_a_simple_day_is_24_hours_even_across_a_dst_change() -> None:
    before_change = datetime(2026, 3, 28, 12, 0, tzinfo=PARIS)  # 11:00 UTC, CET
    assert Schedule.simple(timedelta(days=1)).next_due(before_change) == datetime(
        2026, 3, 29, 11, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("period", "grace"),
    [(timedelta(0), GRACE), (timedelta(milliseconds=999), GRACE), (timedelta(hours=1), timedelta(0))],
)
def test_a_schedule_refuses_a_period_or_grace_under_one_second(period: timedelta, grace: timedelta) -> None:
    with pytest.raises(ValueError, match="at least 1s"):
        Schedule.simple(period, grace)


def test_a_one_second_period_and_grace_are_accepted() -> None:
    schedule = Schedule.simple(timedelta(seconds=1), timedelta(seconds=1))
    assert schedule.next_due(t(0)) == t(0) + timedelta(seconds=1)


def test_a_cron_schedule_is_due_at_the_next_cron_time() -> None:
    every_five = Schedule.from_cron("*/5 * * * *")
    assert every_five.next_due(t(2)) == t(5)
    assert every_five.next_due(t(4) + timedelta(seconds=59, microseconds=999_999)) == t(5)


def test_a_report_exactly_at_a_cron_time_is_due_at_the_following_one() -> None:
    every_five = Schedule.from_cron("*/5 * * * *")
    assert every_five.next_due(t(5)) == t(10)
    assert every_five.next_due(t(5) + timedelta(microseconds=1)) == t(10)


def test_cron_times_are_read_on_the_clock_of_the_checks_time_zone() -> None:
    nine_in_paris = Schedule.from_cron("0 9 * * *", "Europe/Paris")
    # winter: Paris is UTC+1
    assert nine_in_paris.next_due(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)) == datetime(
        2026, 1, 16, 8, 0, tzinfo=UTC
    )
    # summer: Paris is UTC+2
    assert nine_in_paris.next_due(datetime(2026, 7, 15, 12, 0, tzinfo=UTC)) == datetime(
        2026, 7, 16, 7, 0, tzinfo=UTC
    )
    # the day is Paris's: 23:30 UTC on Monday is already Tuesday there
    weekdays = Schedule.from_cron("0 9 * * 1", "Europe/Paris")
    assert weekdays.next_due(datetime(2026, 1, 11, 23, 30, tzinfo=UTC)) == datetime(
        2026, 1, 12, 8, 0, tzinfo=UTC
    )
    assert weekdays.next_due(datetime(2026, 1, 12, 23, 30, tzinfo=UTC)) == datetime(
        2026, 1, 19, 8, 0, tzinfo=UTC
    )


def test_a_cron_time_that_does_not_exist_in_spring_runs_at_the_first_minute_that_does() -> None:
    # Sunday 29 March 2026 in Paris: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens
    half_past_two = Schedule.from_cron("30 2 * * *", "Europe/Paris")
    saturday_night = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert half_past_two.next_due(saturday_night) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert half_past_two.next_due(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )


def test_a_cron_time_that_happens_twice_in_autumn_runs_once() -> None:
    # Sunday 25 October 2026 in Paris: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice
    half_past_two = Schedule.from_cron("30 2 * * *", "Europe/Paris")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert half_past_two.next_due(datetime(2026, 10, 24, 22, 0, tzinfo=UTC)) == first
    next_day = datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert half_past_two.next_due(first) == next_day
    # after the second 02:15 (01:15 UTC), cronsim alone would answer the first 02:30, in the past
    assert half_past_two.next_due(datetime(2026, 10, 25, 1, 15, tzinfo=UTC)) == next_day


def test_an_hourly_cron_keeps_firing_every_elapsed_hour_through_both_dst_changes() -> None:
    hourly = Schedule.from_cron("0 * * * *", "Europe/Paris")
    spring = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    assert hourly.next_due(spring) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    autumn = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30, CEST
    assert hourly.next_due(autumn) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # the second 02:00, CET


def test_cron_blanks_are_folded_to_one_space() -> None:
    assert Schedule.from_cron("  */5   *  * * *  ").cron == "*/5 * * * *"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "bad minute"),
        ("0 24 * * *", "bad hour"),
        ("0 0 32 * *", "bad day-of-month"),
        ("0 0 30 2 *", "bad day-of-month"),
        ("0 0 * 13 *", "bad month"),
        ("0 0 * * 8", "bad day-of-week"),
        ("*/0 * * * *", "bad minute"),
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("every day at noon", "expected 5 fields"),
        ("a b c d e", "bad minute"),
    ],
)
def test_an_invalid_cron_expression_is_refused_with_one_line(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression") as refused:
        Schedule.from_cron(expression)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "utc", "Europe", "../etc", "/etc/localtime", "zone.tab"])
def test_an_unknown_time_zone_is_refused_with_one_line(tz: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as refused:
        Schedule.from_cron("0 9 * * *", tz)
    assert "\n" not in str(refused.value)


def test_a_schedule_is_either_a_period_or_a_cron_expression() -> None:
    with pytest.raises(ValueError, match="simple schedule"):
        Schedule(kind="simple", period=None, cron="* * * * *", tz="UTC", grace=GRACE)
    with pytest.raises(ValueError, match="cron schedule"):
        Schedule(kind="cron", period=timedelta(hours=1), cron="* * * * *", tz="UTC", grace=GRACE)


def test_times_without_a_zone_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        HOURLY.next_due(datetime(2026, 3, 2, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        Report(Signal.SUCCESS, datetime(2026, 3, 2, 12, 0))


# --- success, grace, down ----------------------------------------------------------------------


def test_a_new_subject_has_no_status_but_new_and_no_deadline() -> None:
    assert Subject.new() == Subject(Status.NEW, None, False, None, None, None, None, None)


def test_a_new_check_never_goes_down_without_a_ping() -> None:
    subject, flips = sweep(Subject.new(), HOURLY, t(60 * 24 * 3650))
    assert (subject, flips) == (Subject.new(), [])
    assert sweep_alarm(Subject.new(), HOURLY) is None


def test_a_first_success_makes_a_new_check_up_and_due_one_period_later() -> None:
    subject, flips = apply(Subject.new(), success(0), HOURLY)
    assert subject.status is Status.UP
    assert (subject.last_report_at, subject.due_at, subject.alarm_at) == (t(0), t(60), t(60))
    assert flips == [Flip(Status.NEW, Status.UP, t(0), Cause.SUCCESS)]


def test_an_up_check_stays_up_until_its_due_time() -> None:
    subject, flips = sweep(up_since(0), HOURLY, t(59.99))
    assert (subject, flips) == (up_since(0), [])


def test_an_up_check_enters_grace_when_its_due_time_passes() -> None:
    subject, flips = sweep(up_since(0), HOURLY, t(60))
    assert subject.status is Status.GRACE
    assert subject.alarm_at == t(70)
    assert subject.due_at == t(60)
    assert flips == [Flip(Status.UP, Status.GRACE, t(60), Cause.DUE_PASSED)]


def test_a_check_in_grace_goes_down_when_the_grace_time_passes_too() -> None:
    in_grace, _ = sweep(up_since(0), HOURLY, t(60))
    assert sweep(in_grace, HOURLY, t(69))[1] == []
    subject, flips = sweep(in_grace, HOURLY, t(70))
    assert subject.status is Status.DOWN
    assert subject.alarm_at is None
    assert flips == [Flip(Status.GRACE, Status.DOWN, t(70), Cause.GRACE_PASSED)]


def test_a_sweep_that_ran_late_records_both_flips_at_their_own_deadlines() -> None:
    subject, flips = sweep(up_since(0), HOURLY, t(600))
    assert subject.status is Status.DOWN
    assert subject.alarm_at is None
    assert flips == [
        Flip(Status.UP, Status.GRACE, t(60), Cause.DUE_PASSED),
        Flip(Status.GRACE, Status.DOWN, t(70), Cause.GRACE_PASSED),
    ]


def test_a_down_check_stays_down_however_long_nothing_arrives() -> None:
    down, _ = sweep(up_since(0), HOURLY, t(600))
    assert sweep(down, HOURLY, t(60 * 24 * 365)) == (down, [])


def test_a_success_in_grace_brings_the_check_back_up_and_due_a_period_later() -> None:
    in_grace, _ = sweep(up_since(0), HOURLY, t(65))
    subject, flips = apply(in_grace, success(66), HOURLY)
    assert (subject.status, subject.due_at, subject.alarm_at) == (Status.UP, t(126), t(126))
    assert flips == [Flip(Status.GRACE, Status.UP, t(66), Cause.SUCCESS)]


def test_a_success_sent_before_the_deadline_but_applied_after_the_sweep_still_counts() -> None:
    # the queue held the report while the sweep moved the subject down
    down, _ = sweep(up_since(0), HOURLY, t(80))
    subject, flips = apply(down, success(59), HOURLY)
    assert (subject.status, subject.due_at) == (Status.UP, t(119))
    assert flips == [Flip(Status.DOWN, Status.UP, t(59), Cause.SUCCESS)]


def test_a_success_on_an_up_check_moves_its_deadline_without_a_flip() -> None:
    subject, flips = apply(up_since(0), success(30), HOURLY)
    assert (subject.status, subject.due_at, subject.alarm_at, flips) == (Status.UP, t(90), t(90), [])


# --- fail --------------------------------------------------------------------------------------


def test_a_fail_makes_the_check_down_with_no_alarm() -> None:
    subject, flips = apply(up_since(0), fail(10), HOURLY)
    assert subject.status is Status.DOWN
    assert subject.alarm_at is None
    assert subject.due_at == t(70)  # when the job is expected next, for display
    assert flips == [Flip(Status.UP, Status.DOWN, t(10), Cause.FAIL)]


def test_a_fail_on_a_new_check_makes_it_down() -> None:
    assert apply(Subject.new(), fail(0), HOURLY)[1] == [Flip(Status.NEW, Status.DOWN, t(0), Cause.FAIL)]


def test_a_failed_check_stays_down_until_a_success_brings_it_back_up() -> None:
    failed, _ = apply(up_since(0), fail(10), HOURLY)
    assert sweep(failed, HOURLY, t(60 * 24)) == (failed, [])
    subject, flips = apply(failed, success(2000), HOURLY)
    assert (subject.status, subject.due_at, subject.alarm_at) == (Status.UP, t(2060), t(2060))
    assert flips == [Flip(Status.DOWN, Status.UP, t(2000), Cause.SUCCESS)]


def test_a_second_fail_changes_no_status() -> None:
    failed, _ = apply(up_since(0), fail(10), HOURLY)
    subject, flips = apply(failed, fail(20), HOURLY)
    assert (subject.status, subject.due_at, flips) == (Status.DOWN, t(80), [])


# --- start and runs ----------------------------------------------------------------------------


def test_a_start_marks_the_check_running_without_changing_its_status_or_due_time() -> None:
    subject, flips = apply(up_since(0), start(30, "r1"), HOURLY)
    assert (subject.status, subject.running, subject.run_started_at, subject.run_id) == (
        Status.UP,
        True,
        t(30),
        "r1",
    )
    assert subject.due_at == t(60)
    assert subject.alarm_at == t(40)  # the run's grace ends before the due time
    assert subject.last_report_at == t(30)
    assert flips == []


def test_a_started_run_that_does_not_end_within_the_grace_time_goes_down() -> None:
    running, _ = apply(up_since(0), start(30), HOURLY)
    assert sweep(running, HOURLY, t(39))[1] == []
    subject, flips = sweep(running, HOURLY, t(40))
    assert subject.status is Status.DOWN
    assert subject.alarm_at is None
    assert subject.running  # still open: its end will measure it
    assert flips == [Flip(Status.UP, Status.DOWN, t(40), Cause.START_OVERDUE)]


def test_a_new_check_that_starts_and_never_ends_goes_down() -> None:
    running, flips = apply(Subject.new(), start(0), HOURLY)
    assert (running.status, running.due_at, running.alarm_at, flips) == (Status.NEW, None, t(10), [])
    subject, flips = sweep(running, HOURLY, t(10))
    assert subject.status is Status.DOWN
    assert flips == [Flip(Status.NEW, Status.DOWN, t(10), Cause.START_OVERDUE)]


def test_a_start_and_a_success_with_the_same_rid_measure_the_run() -> None:
    subject, flips = run(up_since(0), start(30, "r1"), success(35, "r1"))
    assert subject.last_duration == timedelta(minutes=5)
    assert (subject.running, subject.run_started_at, subject.run_id) == (False, None, None)
    assert (subject.due_at, subject.alarm_at, flips) == (t(95), t(95), [])


def test_a_start_and_a_success_without_rid_measure_the_run() -> None:
    subject, flips = run(Subject.new(), start(0), success(3))
    assert subject.last_duration == timedelta(minutes=3)
    assert flips == [Flip(Status.NEW, Status.UP, t(3), Cause.SUCCESS)]


def test_a_success_with_another_rid_leaves_the_run_open_and_unmeasured() -> None:
    subject, _ = run(up_since(0), start(30, "r1"), success(32, "r2"))
    assert (subject.running, subject.run_started_at, subject.run_id) == (True, t(30), "r1")
    assert subject.last_duration is None
    assert (subject.status, subject.due_at, subject.alarm_at) == (Status.UP, t(92), t(40))
    # its own success ends it later, measured
    subject, _ = apply(subject, success(36, "r1"), HOURLY)
    assert (subject.running, subject.last_duration) == (False, timedelta(minutes=6))


def test_a_success_with_a_rid_after_a_start_without_one_leaves_the_run_open() -> None:
    subject, _ = run(up_since(0), start(30), success(32, "r2"))
    assert (subject.running, subject.last_duration) == (True, None)


def test_a_success_without_rid_ends_a_run_started_with_one_unmeasured() -> None:
    subject, _ = run(up_since(0), start(30, "r1"), success(32))
    assert (subject.running, subject.run_id, subject.last_duration) == (False, None, None)


def test_a_fail_ends_the_run_whatever_its_rid_and_measures_it_only_when_the_rids_match() -> None:
    matched, flips = run(up_since(0), start(30, "r1"), fail(34, "r1"))
    assert (matched.running, matched.last_duration, matched.status) == (
        False,
        timedelta(minutes=4),
        Status.DOWN,
    )
    assert flips == [Flip(Status.UP, Status.DOWN, t(34), Cause.FAIL)]
    mismatched, _ = run(up_since(0), start(30, "r1"), fail(34, "r2"))
    assert (mismatched.running, mismatched.last_duration) == (False, None)


def test_an_end_without_a_run_measures_nothing_and_forgets_the_last_duration() -> None:
    measured, _ = run(up_since(0), start(30), success(35))
    subject, _ = apply(measured, success(50), HOURLY)
    assert subject.last_duration is None


def test_a_run_that_went_down_by_overdue_is_measured_when_it_ends_and_the_check_comes_back_up() -> None:
    running, _ = apply(up_since(0), start(30, "r1"), HOURLY)
    overdue, _ = sweep(running, HOURLY, t(45))
    subject, flips = apply(overdue, success(50, "r1"), HOURLY)
    assert (subject.status, subject.last_duration) == (Status.UP, timedelta(minutes=20))
    assert flips == [Flip(Status.DOWN, Status.UP, t(50), Cause.SUCCESS)]


def test_a_second_start_replaces_the_open_run_and_its_deadline() -> None:
    subject, _ = run(up_since(0), start(30, "r1"), start(38, "r2"))
    assert (subject.run_started_at, subject.run_id, subject.alarm_at) == (t(38), "r2", t(48))
    assert sweep(subject, HOURLY, t(45))[1] == []


def test_a_start_on_a_down_check_keeps_it_down_with_no_alarm() -> None:
    failed, _ = apply(up_since(0), fail(10), HOURLY)
    subject, flips = apply(failed, start(20, "r1"), HOURLY)
    assert (subject.status, subject.running, subject.alarm_at, flips) == (Status.DOWN, True, None, [])
    subject, flips = apply(subject, success(25, "r1"), HOURLY)
    assert (subject.status, subject.last_duration) == (Status.UP, timedelta(minutes=5))
    assert flips == [Flip(Status.DOWN, Status.UP, t(25), Cause.SUCCESS)]


def test_a_run_that_starts_in_grace_goes_down_at_the_earlier_deadline() -> None:
    in_grace, _ = sweep(up_since(0), HOURLY, t(62))
    running, _ = apply(in_grace, start(63), HOURLY)
    assert running.alarm_at == t(70)  # grace of the due time ends before the run's (73)
    subject, flips = sweep(running, HOURLY, t(80))
    assert flips == [Flip(Status.GRACE, Status.DOWN, t(70), Cause.GRACE_PASSED)]
    assert subject.status is Status.DOWN


def test_a_run_overdue_at_the_same_instant_as_the_due_time_goes_straight_down() -> None:
    running, _ = apply(up_since(0), start(50), HOURLY)  # overdue at 60, due at 60
    subject, flips = sweep(running, HOURLY, t(60))
    assert flips == [Flip(Status.UP, Status.DOWN, t(60), Cause.START_OVERDUE)]
    assert subject.status is Status.DOWN


# --- log ---------------------------------------------------------------------------------------


def test_a_log_changes_nothing_not_even_the_time_of_the_last_report() -> None:
    subject = up_since(0)
    assert apply(subject, log(30), HOURLY) == (subject, [])
    assert apply(subject, log(30), HOURLY)[0] is subject
    # so a success sent before the log but applied after it still counts
    after, _ = run(subject, log(30), success(20))
    assert after.due_at == t(80)


def test_a_log_on_a_check_in_grace_does_not_bring_it_back_up() -> None:
    in_grace, _ = sweep(up_since(0), HOURLY, t(65))
    assert apply(in_grace, log(66), HOURLY) == (in_grace, [])


# --- order and duplicates ----------------------------------------------------------------------


def test_a_report_older_than_the_last_applied_changes_nothing() -> None:
    subject = up_since(30)
    for late in (fail(10), success(10), start(10, "r1"), fail(29, "x")):
        assert apply(subject, late, HOURLY) == (subject, [])
        assert apply(subject, late, HOURLY)[0] is subject


def test_a_late_fail_never_moves_a_recovered_check_back_down() -> None:
    subject, flips = run(Subject.new(), success(30), fail(10))
    assert subject.status is Status.UP
    assert flips == [Flip(Status.NEW, Status.UP, t(30), Cause.SUCCESS)]


def test_a_late_success_does_not_close_the_run_even_with_its_rid() -> None:
    running, _ = apply(up_since(0), start(30, "r1"), HOURLY)
    assert apply(running, success(29, "r1"), HOURLY) == (running, [])


def test_a_redelivered_success_is_idempotent_and_keeps_the_measured_duration() -> None:
    once, _ = run(up_since(0), start(30, "r1"), success(35, "r1"))
    again, flips = apply(once, success(35, "r1"), HOURLY)
    assert again is once
    assert flips == []
    assert again.last_duration == timedelta(minutes=5)


def test_a_redelivered_fail_is_idempotent() -> None:
    failed, _ = apply(up_since(0), fail(10), HOURLY)
    assert apply(failed, fail(10), HOURLY) == (failed, [])


def test_a_redelivered_start_is_idempotent() -> None:
    running, _ = apply(up_since(0), start(30, "r1"), HOURLY)
    assert apply(running, start(30, "r1"), HOURLY) == (running, [])


def test_a_start_and_its_end_at_the_same_instant_are_both_applied() -> None:
    subject, flips = run(Subject.new(), start(5, "r1"), success(5, "r1"))
    assert (subject.status, subject.running, subject.last_duration) == (Status.UP, False, timedelta(0))
    assert flips == [Flip(Status.NEW, Status.UP, t(5), Cause.SUCCESS)]


def test_the_first_end_applied_at_an_instant_wins_over_a_second_one() -> None:
    subject, flips = run(up_since(0), fail(10), success(10))
    assert subject.status is Status.DOWN
    assert flips == [Flip(Status.UP, Status.DOWN, t(10), Cause.FAIL)]


def test_a_new_start_at_the_instant_of_the_last_end_opens_a_run() -> None:
    subject, _ = apply(up_since(10), start(10, "r2"), HOURLY)
    assert (subject.running, subject.run_started_at) == (True, t(10))


# --- pause and resume --------------------------------------------------------------------------


def test_pausing_forgets_the_run_and_every_deadline() -> None:
    running, _ = apply(up_since(0), start(30, "r1"), HOURLY)
    subject, flips = pause(running, at=t(31))
    assert subject.status is Status.PAUSED
    assert (subject.running, subject.run_started_at, subject.run_id) == (False, None, None)
    assert (subject.due_at, subject.alarm_at) == (None, None)
    assert subject.last_report_at == t(30)
    assert flips == [Flip(Status.UP, Status.PAUSED, t(31), Cause.PAUSED)]


def test_pausing_a_paused_check_changes_nothing() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    assert pause(paused, at=t(2)) == (paused, [])


def test_a_paused_check_never_moves_in_a_sweep() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    assert sweep(paused, HOURLY, t(60 * 24 * 365)) == (paused, [])
    assert sweep_alarm(paused, HOURLY) is None


def test_no_subject_of_a_paused_check_moves_in_a_sweep() -> None:
    subject, flips = sweep(up_since(0), HOURLY, t(600), paused=True)
    assert (subject.status, subject.alarm_at, flips) == (Status.UP, None, [])


def test_a_success_resumes_a_paused_check_straight_up() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    subject, flips = apply(paused, success(100), HOURLY, paused=True)
    assert (subject.status, subject.due_at, subject.alarm_at) == (Status.UP, t(160), t(160))
    assert flips == [Flip(Status.PAUSED, Status.UP, t(100), Cause.RESUMED_BY_PING)]


def test_a_fail_resumes_a_paused_check_as_down() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    subject, flips = apply(paused, fail(100), HOURLY, paused=True)
    assert subject.status is Status.DOWN
    assert flips == [Flip(Status.PAUSED, Status.DOWN, t(100), Cause.RESUMED_BY_PING)]


def test_a_start_resumes_a_paused_check_as_new_and_running() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    subject, flips = apply(paused, start(100, "r1"), HOURLY, paused=True)
    assert (subject.status, subject.running, subject.due_at, subject.alarm_at) == (
        Status.NEW,
        True,
        None,
        t(110),
    )
    assert flips == [Flip(Status.PAUSED, Status.NEW, t(100), Cause.RESUMED_BY_PING)]
    _, flips = sweep(subject, HOURLY, t(110))
    assert flips == [Flip(Status.NEW, Status.DOWN, t(110), Cause.START_OVERDUE)]


def test_a_log_does_not_resume_a_paused_check() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    assert apply(paused, log(100), HOURLY, paused=True) == (paused, [])


def test_a_stored_paused_status_resumes_even_when_the_flag_is_already_cleared() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    assert apply(paused, success(100), HOURLY)[0].status is Status.UP


def test_the_paused_flag_resumes_a_subject_whose_row_was_not_paused() -> None:
    # an instance first seen while its check is paused: its row starts as new
    subject, flips = apply(Subject.new(), success(100), HOURLY, paused=True)
    assert subject.status is Status.UP
    assert flips == [Flip(Status.NEW, Status.UP, t(100), Cause.RESUMED_BY_PING)]


def test_a_ping_resuming_a_check_forgets_the_run_and_deadline_from_before_the_pause() -> None:
    running, _ = apply(up_since(0), start(30, "r1"), HOURLY)
    subject, _ = apply(running, success(40, "r1"), HOURLY, paused=True)
    assert (subject.running, subject.last_duration) == (False, None)


def test_resuming_makes_a_paused_check_new_and_it_never_goes_down_before_a_report() -> None:
    paused, _ = pause(up_since(0), at=t(1))
    subject, flips = resume(paused, at=t(2))
    assert (subject.status, subject.due_at, subject.alarm_at, subject.running) == (
        Status.NEW,
        None,
        None,
        False,
    )
    assert flips == [Flip(Status.PAUSED, Status.NEW, t(2), Cause.RESUMED)]
    assert sweep(subject, HOURLY, t(60 * 24 * 365)) == (subject, [])


def test_resuming_a_check_that_is_not_paused_changes_nothing() -> None:
    assert resume(up_since(0), at=t(2)) == (up_since(0), [])


# --- cron checks -------------------------------------------------------------------------------


def test_a_cron_check_goes_grace_then_down_after_its_next_cron_time_in_its_zone() -> None:
    # every day at 03:00 in Paris with 30 minutes of grace; the job reports late on Saturday night
    nightly = Schedule.from_cron("0 3 * * *", "Europe/Paris", timedelta(minutes=30))
    saturday = datetime(2026, 3, 28, 2, 5, tzinfo=UTC)  # 03:05 CET
    subject, _ = apply(Subject.new(), Report(Signal.SUCCESS, saturday), nightly)
    sunday_three = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST: only 23 hours later
    assert (subject.due_at, subject.alarm_at) == (sunday_three, sunday_three)
    subject, flips = sweep(subject, nightly, datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    assert subject.status is Status.DOWN
    assert flips == [
        Flip(Status.UP, Status.GRACE, sunday_three, Cause.DUE_PASSED),
        Flip(Status.GRACE, Status.DOWN, datetime(2026, 3, 29, 1, 30, tzinfo=UTC), Cause.GRACE_PASSED),
    ]


def test_a_cron_check_that_reports_on_time_through_the_autumn_change_stays_up() -> None:
    nightly = Schedule.from_cron("30 2 * * *", "Europe/Paris", timedelta(minutes=5))
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30 CEST
    subject, _ = apply(Subject.new(), Report(Signal.SUCCESS, first + timedelta(seconds=20)), nightly)
    # the second 02:30 (01:30 UTC) is not a cron time: nothing is due until Monday 02:30 CET
    assert subject.due_at == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert sweep(subject, nightly, datetime(2026, 10, 25, 1, 40, tzinfo=UTC))[1] == []


# --- the SQL transition table of the module docstring ------------------------------------------


def _flip(from_status: Status, to_status: Status, minutes: float, cause: Cause) -> Flip:
    return Flip(from_status, to_status, t(minutes), cause)


UP, GR, DN, NEW, PA = Status.UP, Status.GRACE, Status.DOWN, Status.NEW, Status.PAUSED
DUE, GRC, OVD = Cause.DUE_PASSED, Cause.GRACE_PASSED, Cause.START_OVERDUE

#: (status, run started at, due_at, now) -> (status, alarm_at, flips); minutes after T0, grace 10.
TABLE: list[
    tuple[tuple[Status, float | None, float | None, float], tuple[Status, float | None, list[Flip]]]
] = [
    ((NEW, None, None, 1e6), (NEW, None, [])),
    ((NEW, 0, None, 10), (DN, None, [_flip(NEW, DN, 10, OVD)])),
    ((NEW, 0, None, 9), (NEW, 10, [])),
    ((UP, 0, 10, 10), (DN, None, [_flip(UP, DN, 10, OVD)])),
    ((UP, 50, 70, 100), (DN, None, [_flip(UP, DN, 60, OVD)])),
    ((UP, 5, 10, 15), (DN, None, [_flip(UP, GR, 10, DUE), _flip(GR, DN, 15, OVD)])),
    ((UP, None, 60, 70), (DN, None, [_flip(UP, GR, 60, DUE), _flip(GR, DN, 70, GRC)])),
    ((UP, 62, 60, 100), (DN, None, [_flip(UP, GR, 60, DUE), _flip(GR, DN, 70, GRC)])),
    ((UP, None, 60, 65), (GR, 70, [_flip(UP, GR, 60, DUE)])),
    ((UP, 55, 60, 62), (GR, 65, [_flip(UP, GR, 60, DUE)])),
    ((UP, None, 60, 59), (UP, 60, [])),
    ((UP, 30, 60, 39), (UP, 40, [])),
    ((GR, None, 60, 70), (DN, None, [_flip(GR, DN, 70, GRC)])),
    ((GR, 60, 60, 70), (DN, None, [_flip(GR, DN, 70, OVD)])),
    ((GR, 55, 60, 66), (DN, None, [_flip(GR, DN, 65, OVD)])),
    ((GR, None, 60, 69), (GR, 70, [])),
    ((GR, 65, 60, 69), (GR, 70, [])),
    ((DN, 0, 10, 1e6), (DN, None, [])),
    ((PA, None, None, 1e6), (PA, None, [])),
]


def _subject(status: Status, started: float | None, due: float | None) -> Subject:
    return Subject(
        status=status,
        last_report_at=t(0),
        running=started is not None,
        run_started_at=None if started is None else t(started),
        run_id=None,
        last_duration=None,
        due_at=None if due is None else t(due),
        alarm_at=t(0),
    )


@pytest.mark.parametrize(("given", "expected"), TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_each_example_of_the_sql_transition_table_is_what_sweep_does(
    given: tuple[Status, float | None, float | None, float],
    expected: tuple[Status, float | None, list[Flip]],
) -> None:
    status, started, due, now = given
    subject, flips = sweep(_subject(status, started, due), HOURLY, t(now))
    assert (subject.status, subject.alarm_at, flips) == (
        expected[0],
        None if expected[1] is None else t(expected[1]),
        expected[2],
    )


def _sql_table(subject: Subject, grace: timedelta, now: datetime) -> tuple[Status, datetime | None]:
    """The docstring's table as the SQL reads it, one row at a time."""

    def least(*moments: datetime | None) -> datetime | None:
        known = [m for m in moments if m is not None]
        return min(known) if known else None

    def reached(moment: datetime | None) -> bool:
        return moment is not None and now >= moment

    s = subject.run_started_at + grace if subject.running and subject.run_started_at else None
    d = subject.due_at
    e = None if d is None else d + grace
    status, alarm = subject.status, None
    if status is Status.NEW:
        status, alarm = (Status.DOWN, None) if reached(s) else (Status.NEW, s)
    elif status is Status.UP:
        if (reached(s) and (d is None or (s is not None and s <= d))) or reached(least(s, e)):
            status, alarm = Status.DOWN, None
        elif reached(d):
            status, alarm = Status.GRACE, least(s, e)
        else:
            alarm = least(d, s)
    elif status is Status.GRACE:
        status, alarm = (Status.DOWN, None) if reached(least(s, e)) else (Status.GRACE, least(s, e))
    return status, alarm


def test_the_one_statement_sql_table_agrees_with_sweep_on_every_state_and_time() -> None:
    minutes = [0, 5, 9, 10, 11, 20, 30, 39, 40, 41, 50, 60, 65, 69, 70, 71, 80, 100]
    checked = 0
    for status, started, due, now in itertools.product(
        list(Status), [None, *minutes], [None, *minutes], minutes
    ):
        if (status is Status.NEW and due is not None) or (status in (UP, GR) and due is None):
            continue  # not a state apply and sweep can reach
        subject = _subject(status, started, due)
        swept, _ = sweep(subject, HOURLY, t(now))
        assert (swept.status, swept.alarm_at) == _sql_table(subject, GRACE, t(now)), (subject, now)
        if swept.alarm_at is not None:
            assert swept.alarm_at > t(now)
        checked += 1
    assert checked > 10_000


def test_sweep_alarm_is_the_alarm_apply_and_sweep_store() -> None:
    subject = up_since(0)
    for report in (start(30, "r1"), success(35, "r1"), fail(50), success(70), start(100)):
        subject, _ = apply(subject, report, HOURLY)
        assert subject.alarm_at == sweep_alarm(subject, HOURLY)
    swept, _ = sweep(subject, HOURLY, t(105))
    assert swept.alarm_at == sweep_alarm(swept, HOURLY) == t(110)


def test_a_sweep_before_any_deadline_changes_nothing_but_the_alarm() -> None:
    subject = replace(up_since(0), alarm_at=t(5))  # a stale alarm: the sweep looks early
    swept, flips = sweep(subject, HOURLY, t(5))
    assert (swept, flips) == (replace(subject, alarm_at=t(60)), [])
