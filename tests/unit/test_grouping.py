"""Error grouping and message normalization (contracts/grouping.py): pure, no services."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any

import orjson
import pytest

from contracts.grouping import (
    GROUPING_VERSION,
    RULES,
    TITLE_MAX_CHARS,
    ExceptionInfo,
    Frame,
    Report,
    Rule,
    group,
    normalize_message,
    report_from_sentry_event,
    report_from_v1,
    severity_of,
)

# --- the documented rules ----------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_each_rule_turns_its_documented_example_into_its_documented_result(rule: Rule) -> None:
    assert normalize_message(rule.example_in) == rule.example_out


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_each_rule_on_its_own_finds_something_in_its_example(rule: Rule) -> None:
    assert re.search(rule.pattern, rule.example_in)


# --- real messages -------------------------------------------------------------------------------

#: Occurrences of one error that differ only in what varies: each tuple must be one pattern.
MUST_GROUP: list[tuple[str, ...]] = [
    # Python
    ("KeyError: 'user_42'", "KeyError: 'user_1337'"),
    (
        "ValueError: invalid literal for int() with base 10: 'abc'",
        "ValueError: invalid literal for int() with base 10: '12a'",
    ),
    (
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
        "json.decoder.JSONDecodeError: Expecting value: line 3 column 17 (char 42)",
    ),
    (
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x8b in position 1: invalid start byte",
    ),
    (
        "FileNotFoundError: [Errno 2] No such file or directory: '/data/exports/2024-01-15.csv'",
        "FileNotFoundError: [Errno 2] No such file or directory: '/data/exports/2024-02-01.csv'",
    ),
    (
        "ValueError: time data '2024-13-01' does not match format '%Y-%m-%d'",
        "ValueError: time data '2024-02-30' does not match format '%Y-%m-%d'",
    ),
    (
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.45 GiB for an array with shape "
        "(1000000, 1000) and data type float64",
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.73 GiB for an array with shape "
        "(500000, 1000) and data type float64",
    ),
    (
        "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.example.com', port=443): Max "
        "retries exceeded with url: /v1/charges?id=123 (Caused by ConnectTimeoutError(<urllib3.connection."
        "HTTPSConnection object at 0x7f3a2c1d5e80>, 'Connection to api.example.com timed out. (connect "
        "timeout=10)'))",
        "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.stripe.com', port=8443): Max "
        "retries exceeded with url: /v1/charges?id=98765 (Caused by ConnectTimeoutError(<urllib3.connection."
        "HTTPSConnection object at 0x7f0b11e2a9d0>, 'Connection to api.stripe.com timed out. (connect "
        "timeout=30)'))",
    ),
    (
        "smtplib.SMTPRecipientsRefused: {'bob@example.com': (550, b'5.1.1 <bob@example.com>: Recipient "
        "address rejected: User unknown in virtual mailbox table')}",
        "smtplib.SMTPRecipientsRefused: {'carol@example.org': (550, b'5.1.1 <carol@example.org>: Recipient "
        "address rejected: User unknown in virtual mailbox table')}",
    ),
    (
        "django.core.exceptions.ValidationError: ['\u201cabc\u201d is not a valid UUID.']",
        "django.core.exceptions.ValidationError: ['\u201c12-34\u201d is not a valid UUID.']",
    ),
    # PostgreSQL (through psycopg, SQLAlchemy, Rails)
    (
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "users_email_key"\n'
        "DETAIL:  Key (email)=(a@b.com) already exists.",
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "users_email_key"\n'
        "DETAIL:  Key (email)=(carol.o'neil@example.org) already exists.",
    ),
    (
        "psycopg.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process 12345 waits for ShareLock on "
        "transaction 67890; blocked by process 12346.\nProcess 12346 waits for ShareLock on transaction "
        "67891; blocked by process 12345.\nHINT:  See server log for query details.\nCONTEXT:  while "
        'updating tuple (0,1) in relation "accounts"',
        "psycopg.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process 901 waits for ShareLock on "
        "transaction 4410; blocked by process 877.\nProcess 877 waits for ShareLock on transaction "
        "4409; blocked by process 901.\nHINT:  See server log for query details.\nCONTEXT:  while "
        'updating tuple (12,7) in relation "accounts"',
    ),
    (
        'psycopg.errors.ForeignKeyViolation: insert or update on table "orders" violates foreign key '
        'constraint "orders_user_id_fkey"\nDETAIL:  Key (user_id)=(42) is not present in table "users".',
        'psycopg.errors.ForeignKeyViolation: insert or update on table "orders" violates foreign key '
        'constraint "orders_user_id_fkey"\nDETAIL:  Key (user_id)=(1001) is not present in table "users".',
    ),
    (
        'psycopg.errors.ForeignKeyViolation: insert or update on table "line_items" violates foreign key '
        'constraint "line_items_order_id_fkey"\nDETAIL:  Key (order_id)=(550e8400-e29b-41d4-a716-'
        '446655440000) is not present in table "orders".',
        'psycopg.errors.ForeignKeyViolation: insert or update on table "line_items" violates foreign key '
        'constraint "line_items_order_id_fkey"\nDETAIL:  Key (order_id)=(6ba7b810-9dad-11d1-80b4-'
        '00c04fd430c8) is not present in table "orders".',
    ),
    (
        'psycopg.errors.NotNullViolation: null value in column "email" of relation "users" violates '
        "not-null constraint\nDETAIL:  Failing row contains (42, null, 2024-01-15 10:30:00+00).",
        'psycopg.errors.NotNullViolation: null value in column "email" of relation "users" violates '
        "not-null constraint\nDETAIL:  Failing row contains (7, null, Bob Smith, t).",
    ),
    (
        'psycopg.errors.InvalidTextRepresentation: invalid input syntax for type uuid: "abc-123"',
        'psycopg.errors.InvalidTextRepresentation: invalid input syntax for type uuid: "42"',
    ),
    (
        'psycopg.errors.DiskFull: could not extend file "base/16384/16385": No space left on device',
        'psycopg.errors.DiskFull: could not extend file "base/16384/24576.1": No space left on device',
    ),
    (
        'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "10.0.0.5", '
        "port 5432 failed: Connection refused",
        'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "10.0.0.6", '
        "port 6432 failed: Connection refused",
    ),
    (
        "ActiveRecord::RecordNotUnique: PG::UniqueViolation: ERROR:  duplicate key value violates unique "
        'constraint "index_users_on_email"\nDETAIL:  Key (email)=(a@b.com) already exists.',
        "ActiveRecord::RecordNotUnique: PG::UniqueViolation: ERROR:  duplicate key value violates unique "
        'constraint "index_users_on_email"\nDETAIL:  Key (email)=(zed@example.net) already exists.',
    ),
    # Node
    (
        "Error: connect ECONNREFUSED 127.0.0.1:5432",
        "Error: connect ECONNREFUSED 10.0.3.7:5432",
        "Error: connect ECONNREFUSED ::1:5432",
    ),
    (
        "Error: listen EADDRINUSE: address already in use :::3000",
        "Error: listen EADDRINUSE: address already in use :::8080",
    ),
    (
        "SyntaxError: Unexpected token < in JSON at position 0",
        "SyntaxError: Unexpected token < in JSON at position 17",
    ),
    (
        "Error: ENOENT: no such file or directory, open '/app/uploads/7f3a.png'",
        "Error: ENOENT: no such file or directory, open '/app/uploads/a b.png'",
    ),
    ("AxiosError: timeout of 5000ms exceeded", "AxiosError: timeout of 10000ms exceeded"),
    (
        "TypeError: Cannot read properties of undefined (reading 'map')\n    at renderList "
        "(/app/src/components/List.js:12:15)",
        "TypeError: Cannot read properties of undefined (reading 'map')\n    at renderList "
        "(/srv/www/build/src/components/List.js:14:9)",
    ),
    # Java
    (
        'java.lang.NullPointerException: Cannot invoke "String.length()" because "<local1>" is null',
        'java.lang.NullPointerException: Cannot invoke "String.length()" because "<local4>" is null',
    ),
    (
        "java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 3",
        "java.lang.ArrayIndexOutOfBoundsException: Index 10 out of bounds for length 10",
    ),
    (
        'java.lang.NumberFormatException: For input string: "abc"',
        'java.lang.NumberFormatException: For input string: "12x"',
    ),
    (
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request "
        "timed out after 30000ms.",
        "java.sql.SQLTransientConnectionException: HikariPool-2 - Connection is not available, request "
        "timed out after 30004ms.",
    ),
    (
        "java.util.concurrent.TimeoutException: Waited 5000 milliseconds for com.google.common.util."
        "concurrent.SettableFuture@5f3c9a1e[status=PENDING]",
        "java.util.concurrent.TimeoutException: Waited 5000 milliseconds for com.google.common.util."
        "concurrent.SettableFuture@1b6d3586[status=PENDING]",
    ),
    (
        "java.time.format.DateTimeParseException: Text '2024-13-01' could not be parsed: Invalid value for "
        "MonthOfYear (valid values 1 - 12): 13",
        "java.time.format.DateTimeParseException: Text '2024-14-01' could not be parsed: Invalid value for "
        "MonthOfYear (valid values 1 - 12): 14",
    ),
    # Go
    (
        "dial tcp 10.0.0.12:5432: connect: connection refused",
        "dial tcp 10.0.0.13:5432: connect: connection refused",
        "dial tcp [fd00:ec2::23]:5432: connect: connection refused",
    ),
    (
        "panic: runtime error: index out of range [5] with length 3",
        "panic: runtime error: index out of range [7] with length 7",
    ),
    (
        'Get "https://api.example.com/v1/users/42": context deadline exceeded (Client.Timeout exceeded '
        "while awaiting headers)",
        'Get "https://api.example.com/v1/users/43?expand=org": context deadline exceeded (Client.Timeout '
        "exceeded while awaiting headers)",
    ),
    (
        "read tcp 10.0.0.5:43210->10.0.0.12:5432: read: connection reset by peer",
        "read tcp 10.0.0.5:51872->10.0.0.12:5432: read: connection reset by peer",
    ),
    ('strconv.Atoi: parsing "abc": invalid syntax', 'strconv.Atoi: parsing "12a": invalid syntax'),
    (
        "x509: certificate has expired or is not yet valid: current time 2024-01-15T10:30:00Z is after "
        "2023-12-31T23:59:59Z",
        "x509: certificate has expired or is not yet valid: current time 2024-02-01T08:00:01Z is after "
        "2024-01-31T23:59:59Z",
    ),
    (
        "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: "
        "segmentation violation code=0x1 addr=0x18 pc=0x4a5b6c]",
        "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: "
        "segmentation violation code=0x1 addr=0x0 pc=0x7f12ab]",
    ),
    (
        "open /etc/app/config.yaml: no such file or directory",
        "open /home/deploy/app/config.production.yaml: no such file or directory",
    ),
    # Ruby
    (
        "ActiveRecord::RecordNotFound: Couldn't find User with 'id'=42",
        "ActiveRecord::RecordNotFound: Couldn't find User with 'id'=1337",
    ),
    (
        "NoMethodError: undefined method `name' for #<User:0x000055d5c1a2b3c8>",
        "NoMethodError: undefined method `name' for #<User:0x00007f9b2c3d4e50>",
    ),
    (
        "Redis::CannotConnectError: Error connecting to Redis on 127.0.0.1:6379 (Errno::ECONNREFUSED)",
        "Redis::CannotConnectError: Error connecting to Redis on 10.0.0.9:6379 (Errno::ECONNREFUSED)",
    ),
    (
        "Errno::ENOENT: No such file or directory @ rb_sysopen - /app/tmp/cache/3f/2a/report.json",
        "Errno::ENOENT: No such file or directory @ rb_sysopen - /app/tmp/cache/b1/07/report.json",
    ),
    (
        "Timeout::Error: execution expired at Mon, 15 Jan 2024 10:30:00 GMT",
        "Timeout::Error: execution expired at Tue, 16 Jan 2024 23:01:59 GMT",
    ),
    # HTTP clients
    (
        "requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: "
        "https://api.example.com/v1/charges/ch_3OqX1b2eZvKYlo2C",
        "requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: "
        "https://api.example.com/v1/charges/ch_9ZzY8x7wVu",
    ),
    (
        "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.example.com/v1/"
        "users/42'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503",
        "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.example.com/v1/"
        "users/7'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503",
    ),
    (
        "aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host api.example.com:443 "
        "ssl:default [Connect call failed ('10.0.0.7', 443)]",
        "aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host api.example.com:443 "
        "ssl:default [Connect call failed ('10.0.0.8', 443)]",
    ),
    (
        "urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='api.stripe.com', port=443): Read "
        "timed out. (read timeout=80)",
        "urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='api.stripe.com', port=443): Read "
        "timed out. (read timeout=30)",
    ),
    (
        "curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
        "curl: (28) Operation timed out after 30002 milliseconds with 1432 bytes received",
    ),
    (
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable "
        "to get local issuer certificate (_ssl.c:1006)",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable "
        "to get local issuer certificate (_ssl.c:1000)",
    ),
]

#: The same shape but another error: each pair must stay two patterns.
MUST_NOT_GROUP: list[tuple[str, str]] = [
    (
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "users_email_key"',
        'psycopg.errors.ForeignKeyViolation: insert or update on table "orders" violates foreign key '
        'constraint "orders_user_id_fkey"',
    ),
    (
        "psycopg.errors.QueryCanceled: canceling statement due to statement timeout",
        "psycopg.errors.QueryCanceled: canceling statement due to lock timeout",
    ),
    (
        "psycopg.errors.SerializationFailure: could not serialize access due to concurrent update",
        "psycopg.errors.SerializationFailure: could not serialize access due to read/write dependencies "
        "among transactions",
    ),
    (
        "dial tcp 10.0.0.12:5432: connect: connection refused",
        "dial tcp 10.0.0.12:5432: i/o timeout",
    ),
    (
        "dial tcp 10.0.0.12:5432: connect: connection refused",
        "dial tcp: lookup db.internal on 10.96.0.10:53: no such host",
    ),
    (
        "panic: runtime error: index out of range [5] with length 3",
        "panic: runtime error: slice bounds out of range [:5] with capacity 3",
    ),
    (
        "json: cannot unmarshal string into Go struct field User.age of type int",
        "json: cannot unmarshal number into Go struct field User.name of type string",
    ),
    (
        "SyntaxError: Unexpected token < in JSON at position 0",
        "SyntaxError: Unexpected token u in JSON at position 0",
    ),
    (
        "TypeError: Cannot read properties of undefined (reading 'map')",
        "TypeError: Cannot read properties of null (reading 'map')",
    ),
    ("TypeError: items.map is not a function", "TypeError: items.filter is not a function"),
    ("ReferenceError: process is not defined", "ReferenceError: window is not defined"),
    ("Error: getaddrinfo ENOTFOUND api.example.com", "Error: getaddrinfo ENOTFOUND api.stripe.com"),
    (
        "java.net.SocketTimeoutException: Read timed out",
        "java.net.SocketTimeoutException: Connect timed out",
    ),
    (
        "java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 3",
        "java.lang.StringIndexOutOfBoundsException: begin 0, end 5, length 3",
    ),
    (
        "Net::OpenTimeout: Failed to open TCP connection to api.example.com:443 (execution expired)",
        "Net::ReadTimeout: Net::ReadTimeout with #<TCPSocket:(closed)>",
    ),
    (
        "requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: https://x.io/a",
        "requests.exceptions.HTTPError: 404 Client Error: Not Found for url: https://x.io/a",
    ),
    (
        "curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
        "curl: (7) Failed to connect to api.example.com port 443 after 3 ms: Connection refused",
    ),
    ("open /etc/app/config.yaml: no such file or directory", "open /etc/app/config.yaml: permission denied"),
    # Digits inside names are names, not numbers.
    ("LookupError: unknown encoding: utf8mb4", "LookupError: unknown encoding: utf8mb3"),
    ("ValueError: unsupported hash type sha256", "ValueError: unsupported hash type sha512"),
    (
        "OSError: [Errno 98] Address already in use",
        "OSError: [Errno 98] Address family not supported by ipv6",
    ),
]

#: Known consequences of SPEC's "quoted values are replaced" (and of numbers being values): a human
#: would keep these apart, message-only grouping merges them. Frames or a fingerprint separate them
#: (see test_frames_and_fingerprints_separate_what_quoted_names_merge).
MERGED_BY_DESIGN: list[tuple[str, str]] = [
    (
        'psycopg.errors.UndefinedTable: relation "users" does not exist',
        'psycopg.errors.UndefinedTable: relation "orders" does not exist',
    ),
    (
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "users_email_key"',
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"',
    ),
    (
        "AttributeError: 'NoneType' object has no attribute 'id'",
        "AttributeError: 'dict' object has no attribute 'append'",
    ),
    ("ModuleNotFoundError: No module named 'requests'", "ModuleNotFoundError: No module named 'yaml'"),
    (
        "TypeError: Cannot read properties of undefined (reading 'map')",
        "TypeError: Cannot read properties of undefined (reading 'length')",
    ),
    (
        "NoMethodError: undefined method `name' for nil:NilClass",
        "NoMethodError: undefined method `email' for nil:NilClass",
    ),
    ("AxiosError: Request failed with status code 503", "AxiosError: Request failed with status code 404"),
]

ALL_MESSAGES = [message for messages in MUST_GROUP for message in messages] + [
    message for pair in [*MUST_NOT_GROUP, *MERGED_BY_DESIGN] for message in pair
]


def test_the_tables_hold_at_least_sixty_real_messages() -> None:
    assert len(set(ALL_MESSAGES)) >= 60


@pytest.mark.parametrize("messages", MUST_GROUP, ids=[m[0][:48] for m in MUST_GROUP])
def test_occurrences_of_one_error_normalize_to_one_message(messages: tuple[str, ...]) -> None:
    assert len({normalize_message(message) for message in messages}) == 1
    reports = [Report(message=message, exceptions=(), fingerprint=None, level=None) for message in messages]
    assert len({group(report).pattern_hash for report in reports}) == 1


def test_different_errors_of_the_must_group_table_stay_apart() -> None:
    normalized = [normalize_message(messages[0]) for messages in MUST_GROUP]
    assert len(set(normalized)) == len(normalized)


@pytest.mark.parametrize(("first", "second"), MUST_NOT_GROUP, ids=[pair[0][:48] for pair in MUST_NOT_GROUP])
def test_different_errors_of_the_same_shape_stay_apart(first: str, second: str) -> None:
    assert normalize_message(first) != normalize_message(second)


@pytest.mark.parametrize(
    ("first", "second"), MERGED_BY_DESIGN, ids=[pair[0][:48] for pair in MERGED_BY_DESIGN]
)
def test_messages_differing_only_by_a_quoted_name_or_a_number_merge_as_documented(
    first: str, second: str
) -> None:
    assert normalize_message(first) == normalize_message(second)


@pytest.mark.parametrize(
    ("message", "normalized"),
    [
        ("KeyError: 'user_42'", "KeyError: <str>"),
        (
            "dial tcp 10.0.0.12:5432: connect: connection refused",
            "dial tcp <ip>: connect: connection refused",
        ),
        (
            "panic: runtime error: index out of range [5] with length 3",
            "panic: runtime error: index out of range [<num>] with length <num>",
        ),
        (
            "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.example.com', port=443): "
            "Max retries exceeded with url: /v1/charges?id=123 (Caused by ConnectTimeoutError("
            "<urllib3.connection.HTTPSConnection object at 0x7f3a2c1d5e80>, 'Connection to api.example.com "
            "timed out. (connect timeout=10)'))",
            "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host=<str>, port=<num>): Max retries "
            "exceeded with url: <path> (Caused by ConnectTimeoutError(<urllib3.connection.HTTPSConnection "
            "object at <hex>>, <str>))",
        ),
        (
            "psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "
            '"users_email_key"\nDETAIL:  Key (email)=(a@b.com) already exists.',
            "psycopg.errors.UniqueViolation: duplicate key value violates unique constraint <str> "
            "DETAIL: Key (email)=(<str>) already exists.",
        ),
        (
            "ActiveRecord::RecordNotFound: Couldn't find User with 'id'=42",
            "ActiveRecord::RecordNotFound: Couldn't find User with <str>=<num>",
        ),
        (
            'java.lang.NullPointerException: Cannot invoke "String.length()" because "<local1>" is null',
            "java.lang.NullPointerException: Cannot invoke <str> because <str> is null",
        ),
        (
            "Error: connect ECONNREFUSED ::1:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] "
            "(node:net:1555:16)",
            "Error: connect ECONNREFUSED <ip> at TCPConnectWrap.afterConnect [as oncomplete] "
            "(node:net:<num>:<num>)",
        ),
    ],
)
def test_a_normalized_message_reads_as_its_error_with_placeholders(message: str, normalized: str) -> None:
    assert normalize_message(message) == normalized


@pytest.mark.parametrize("message", ALL_MESSAGES)
def test_normalizing_a_real_message_twice_changes_nothing(message: str) -> None:
    once = normalize_message(message)
    assert normalize_message(once) == once


#: Fragments that begin, end or almost make a match of some rule, to be put side by side.
FRAGMENTS = [
    *"aF09 .-_/\\:@'\"`[]()=,\t\n\x00\u2018\u2019\u201c\u201d",
    *[
        "Mon",
        "Jan",
        ")=(",
        "contains (",
        "http",
        "://",
        "0x",
        "2024-01-15",
        "10:30:00",
        "::",
        "e3b0c44",
        " GMT",
    ],
]


def test_the_start_guard_changes_no_result_only_speed() -> None:
    plain = re.compile("|".join(f"(?P<{rule.name}>{rule.pattern})" for rule in RULES))
    placeholders = {rule.name: rule.placeholder for rule in RULES}
    corpus = [*ALL_MESSAGES, *(rule.example_in for rule in RULES)]
    # Seams between messages put every rule next to every kind of neighbour.
    corpus += [a[-12:] + b[:12] for a in corpus[:60] for b in corpus[:60]]
    corpus += ["".join(parts) for parts in itertools.product(FRAGMENTS, repeat=3)]
    for text in corpus:
        expected = plain.sub(lambda m: placeholders[m.lastgroup or ""], text).strip()
        assert normalize_message(text) == expected, text


def test_normalized_text_has_no_control_characters_or_repeated_spaces() -> None:
    assert normalize_message("  boom\x00\x07 at\r\n\n  line  \u2028end \ud800 ") == "boom at line end"


def test_only_the_first_sixteen_kibibytes_of_a_message_are_read() -> None:
    huge = "x" * 20_000 + " 42"
    assert normalize_message(huge) == "x" * 16_384


@pytest.mark.parametrize(
    "unit",
    ["a.", "a@", "'", ":", "a/", '"a', "`", "\u2018", "[0:", "Failing row contains (", ")=(", "fe80::"],
)
def test_adversarial_messages_of_the_maximum_length_are_normalized(unit: str) -> None:
    # Each would hang the worker with a backtracking pattern; timings belong to benchmarks, not tests.
    text = unit * (16_384 // len(unit))
    assert "  " not in normalize_message(text)


# --- grouping order -----------------------------------------------------------------------------


def frame(
    module: str | None,
    function: str | None,
    lineno: int = 1,
    *,
    in_app: bool | None = True,
    filename: str | None = None,
) -> Frame:
    return Frame(module=module, filename=filename, function=function, lineno=lineno, in_app=in_app)


def exc(type_: str | None, value: str | None, *frames: Frame) -> ExceptionInfo:
    return ExceptionInfo(type=type_, value=value, module=None, frames=frames)


def report(
    *exceptions: ExceptionInfo,
    message: str | None = None,
    fingerprint: tuple[str, ...] | None = None,
    level: str | None = None,
) -> Report:
    return Report(message=message, exceptions=exceptions, fingerprint=fingerprint, level=level)


APP_FRAMES = (
    frame("django.core.handlers.base", "_get_response", 197, in_app=False),
    frame("billing.api.views", "post", 41),
    frame("billing.services.charges", "charge", 88),
)


def test_a_fingerprint_wins_over_exception_and_frames() -> None:
    first = report(exc("ValueError", "bad amount", *APP_FRAMES), fingerprint=("stripe-outage",))
    second = report(exc("TimeoutError", "timed out"), fingerprint=("stripe-outage",))
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).method == "fingerprint"
    assert group(first).components == ("fingerprint:stripe-outage",)


def test_default_in_a_fingerprint_stands_for_the_computed_grouping() -> None:
    from_views = report(
        exc("ValueError", "bad amount", *APP_FRAMES), fingerprint=("{{ default }}", "tenant-a")
    )
    other_code = report(
        exc("ValueError", "bad amount", frame("billing.cli", "main")), fingerprint=("{{default}}", "tenant-a")
    )
    other_tenant = report(
        exc("ValueError", "bad amount", *APP_FRAMES), fingerprint=("{{ default }}", "tenant-b")
    )
    unspaced = report(exc("ValueError", "other amount", *APP_FRAMES), fingerprint=("{{default}}", "tenant-a"))
    assert group(from_views).pattern_hash != group(other_code).pattern_hash
    assert group(from_views).pattern_hash != group(other_tenant).pattern_hash
    assert group(from_views).pattern_hash == group(unspaced).pattern_hash
    assert group(from_views).components == (
        "type:ValueError",
        "frame:billing.api.views:post",
        "frame:billing.services.charges:charge",
        "fingerprint:tenant-a",
    )


def test_a_fingerprint_of_only_default_is_the_default_pattern() -> None:
    plain = report(exc("ValueError", "bad amount", *APP_FRAMES))
    defaulted = report(exc("ValueError", "bad amount", *APP_FRAMES), fingerprint=("{{ default }}",))
    assert group(defaulted) == group(plain)
    assert group(defaulted).method == "exception_frames"


def test_fingerprints_never_collide_by_concatenation() -> None:
    shapes = [("a", "b"), ("a,b",), ("ab",), ("a b",), ('a","b',), ("a", "", "b")]
    hashes = {group(report(message="x", fingerprint=shape)).pattern_hash for shape in shapes}
    assert len(hashes) == len(shapes)


def test_frames_ignore_line_numbers_directories_and_library_frames() -> None:
    first = report(
        exc(
            "KeyError",
            "'user_42'",
            frame(None, "inner", 55, in_app=False, filename="/usr/lib/python3.12/site-packages/django/x.py"),
            frame(None, "post", 41, filename="/srv/app/billing/views.py"),
            frame(None, "charge", 88, filename="/srv/app/billing/charges.py"),
        )
    )
    second = report(
        exc(
            "KeyError",
            "'user_7'",
            frame(None, "other_library_function", 3, in_app=False, filename="/venv/lib/celery/app/trace.py"),
            frame(None, "post", 44, filename="C:\\build\\billing\\views.py"),
            frame(None, "charge", 91, filename="billing/charges.py"),
        )
    )
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).method == "exception_frames"
    assert group(first).components == ("type:KeyError", "frame:views.py:post", "frame:charges.py:charge")


def test_the_same_exception_type_from_different_code_is_a_different_pattern() -> None:
    from_api = report(exc("KeyError", "'user_42'", *APP_FRAMES))
    from_cli = report(
        exc(
            "KeyError", "'user_42'", frame("billing.cli", "main"), frame("billing.services.charges", "charge")
        )
    )
    assert group(from_api).pattern_hash != group(from_cli).pattern_hash


def test_without_in_app_frames_all_frames_count_but_never_their_lines() -> None:
    def library_only(*functions: str, lineno: int = 1) -> Report:
        return report(
            exc(
                "TimeoutError",
                "timed out",
                *(frame("urllib3.pool", f, lineno, in_app=False) for f in functions),
            )
        )

    assert group(library_only("urlopen", "_make_request")).method == "exception_frames"
    assert group(library_only("urlopen", "_make_request")).pattern_hash == (
        group(library_only("urlopen", "_make_request", lineno=99)).pattern_hash
    )
    assert group(library_only("urlopen", "_make_request")).pattern_hash != (
        group(library_only("urlopen", "_new_conn")).pattern_hash
    )
    unmarked = report(exc("TimeoutError", "timed out", frame("urllib3.pool", "urlopen", in_app=None)))
    assert group(unmarked).components == ("type:TimeoutError", "frame:urllib3.pool:urlopen")


def test_a_recursion_groups_the_same_whatever_its_depth() -> None:
    def recursion(depth: int) -> Report:
        return report(
            exc(
                "RecursionError",
                "maximum recursion depth exceeded",
                frame("tree", "walk"),
                *(frame("tree", "visit", 10) for _ in range(depth)),
            )
        )

    assert group(recursion(40)).pattern_hash == group(recursion(97)).pattern_hash
    assert group(recursion(40)).components == ("type:RecursionError", "frame:tree:walk", "frame:tree:visit")


def test_an_exception_without_frames_groups_by_type_and_normalized_message() -> None:
    first = report(exc("ConnectionRefusedError", "[Errno 111] Connect call failed ('10.0.0.7', 5432)"))
    second = report(exc("ConnectionRefusedError", "[Errno 111] Connect call failed ('10.0.0.8', 5432)"))
    other_type = report(exc("ConnectionResetError", "[Errno 111] Connect call failed ('10.0.0.7', 5432)"))
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).pattern_hash != group(other_type).pattern_hash
    assert group(first).method == "exception_message"
    assert group(first).components == (
        "type:ConnectionRefusedError",
        "value:[Errno <num>] Connect call failed (<str>, <num>)",
    )


def test_frames_without_a_name_count_as_no_frames() -> None:
    nameless = report(exc("ValueError", "bad", frame(None, None), frame("", "")))
    assert group(nameless).method == "exception_message"


def test_a_report_without_exception_groups_by_its_normalized_message() -> None:
    first = report(message="Payment provider slow: 2345 ms for user_42")
    second = report(message="Payment provider slow: 812 ms for user_7")
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).method == "message"
    assert group(first).components == ("message:Payment provider slow: <num> ms for user_<num>",)
    assert group(first).exception_type is None


def test_a_different_cause_makes_a_different_pattern() -> None:
    outer = exc("ChargeFailed", "could not charge user_42", *APP_FRAMES)
    by_key = report(exc("KeyError", "'user_42'", frame("billing.customers", "load")), outer)
    by_timeout = report(exc("TimeoutError", "timed out", frame("billing.customers", "load")), outer)
    by_other_key = report(exc("KeyError", "'user_7'", frame("billing.customers", "load", 99)), outer)
    assert group(by_key).pattern_hash != group(by_timeout).pattern_hash
    assert group(by_key).pattern_hash == group(by_other_key).pattern_hash
    assert group(by_key).pattern_hash != group(report(outer)).pattern_hash


def test_the_main_exception_is_the_last_of_the_chain() -> None:
    chained = report(
        exc("KeyError", "'user_42'", frame("billing.customers", "load")),
        exc("ChargeFailed", "could not charge user_42: card declined (attempt 3 of 5)", *APP_FRAMES),
        level="error",
    )
    grouping = group(chained)
    assert grouping.exception_type == "ChargeFailed"
    assert grouping.title == "could not charge user_<num>: card declined (attempt <num> of <num>)"
    assert grouping.severity == "high"


def test_a_cause_with_only_library_frames_contributes_its_type_and_message() -> None:
    chained = report(
        exc(
            "OperationalError",
            'connection to server at "10.0.0.5", port 5432 failed',
            frame("psycopg", "connect", in_app=False),
        ),
        exc("DatabaseUnavailable", "database unavailable", *APP_FRAMES),
    )
    assert group(chained).components == (
        "type:OperationalError",
        "value:connection to server at <str>, port <num> failed",
        "type:DatabaseUnavailable",
        "frame:billing.api.views:post",
        "frame:billing.services.charges:charge",
    )


def test_frames_and_fingerprints_separate_what_quoted_names_merge() -> None:
    users, orders = MERGED_BY_DESIGN[0]
    by_message = [report(exc("UndefinedTable", text)) for text in (users, orders)]
    assert group(by_message[0]).pattern_hash == group(by_message[1]).pattern_hash
    by_frames = [
        report(exc("UndefinedTable", users, frame("app.users", "list_users"))),
        report(exc("UndefinedTable", orders, frame("app.orders", "list_orders"))),
    ]
    assert group(by_frames[0]).pattern_hash != group(by_frames[1]).pattern_hash
    by_fingerprint = [
        report(exc("UndefinedTable", users), fingerprint=("{{ default }}", "users")),
        report(exc("UndefinedTable", orders), fingerprint=("{{ default }}", "orders")),
    ]
    assert group(by_fingerprint[0]).pattern_hash != group(by_fingerprint[1]).pattern_hash


def test_frame_names_are_serialized_without_ambiguity() -> None:
    first = report(exc("E", None, frame("a:b", "c")))
    second = report(exc("E", None, frame("a", "b:c")))
    assert group(first).pattern_hash != group(second).pattern_hash
    assert group(first).components[1] == "frame:a\\:b:c"
    chain = report(exc("A", None, frame("m", "f")), exc("B", None, frame("m", "g")))
    flat = report(exc("A", None, frame("m", "f"), frame("m", "g")))
    assert group(chain).pattern_hash != group(flat).pattern_hash


def test_hashes_in_bundle_and_generated_class_names_do_not_split_patterns() -> None:
    first = report(
        exc(
            "TypeError",
            "x is undefined",
            frame(None, "render", filename="https://cdn.example.com/js/main.3f2a9c1b.js?v=2"),
        )
    )
    second = report(
        exc(
            "TypeError",
            "x is undefined",
            frame(None, "render", filename="https://cdn.example.com/js/main.77e0d4aa.js"),
        )
    )
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).components[1] == "frame:main.<hex>.js:render"


def test_pattern_hash_is_the_sha256_of_the_versioned_json_of_the_components() -> None:
    grouping = group(report(exc("KeyError", "'user_42'", *APP_FRAMES)))
    payload = json.dumps([GROUPING_VERSION, *grouping.components], separators=(",", ":"))
    assert grouping.pattern_hash == hashlib.sha256(payload.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", grouping.pattern_hash)


def test_pattern_hashes_are_stable_across_releases() -> None:
    # Stored patterns are keyed by these hashes: a change here splits every existing pattern.
    assert group(report(message="disk full on /var/lib/postgresql")).pattern_hash == (
        hashlib.sha256(b'["hookyard-grouping/1","message:disk full on <path>"]').hexdigest()
    )


def test_the_title_is_the_normalized_message_cut_to_255_characters() -> None:
    long_message = "could not parse " + "word " * 100
    grouping = group(report(exc("ValueError", long_message)))
    assert len(grouping.title) == TITLE_MAX_CHARS
    assert grouping.title.startswith("could not parse word word")
    assert grouping.title.endswith("\u2026")


def test_the_title_falls_back_to_the_report_message_then_the_type() -> None:
    assert group(report(exc("MemoryError", ""), message="worker ran out of memory at 3.9 GiB")).title == (
        "worker ran out of memory at <num> GiB"
    )
    assert group(report(exc("MemoryError", None))).title == "MemoryError"
    assert group(report()).title == "(no message)"
    assert group(report()).method == "message"


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("fatal", "critical"),
        ("critical", "critical"),
        ("error", "high"),
        ("warning", "medium"),
        ("warn", "medium"),
        ("info", "low"),
        ("debug", "low"),
        ("ERROR", "high"),
        (" Warning ", "medium"),
        (None, "high"),
        ("bogus", "high"),
    ],
)
def test_a_sentry_level_maps_to_a_severity(level: str | None, severity: str) -> None:
    assert severity_of(level) == severity


# --- Sentry events -----------------------------------------------------------------------------


def sentry_frame(
    module: str, function: str, lineno: int, *, in_app: bool, site: str = "/srv/app"
) -> dict[str, Any]:
    """One frame as sentry-sdk 2.x serializes it, with its source line and a local (trimmed: the SDK
    sends five lines of context each side and every local, which only makes the event longer)."""
    filename = module.replace(".", "/") + ".py"
    return {
        "filename": filename,
        "abs_path": f"{site}/{filename}",
        "function": function,
        "module": module,
        "lineno": lineno,
        "context_line": "            response = self.handle(request)",
        "vars": {"request": "<WSGIRequest: POST '/api/charges/'>"},
        "in_app": in_app,
    }


DJANGO = "/usr/local/lib/python3.12/site-packages"


def python_exception_event(
    user: str = "user_42", *, shift: int = 0, cause: str = "KeyError"
) -> dict[str, Any]:
    """A Django request failing with a chained exception, as sentry-sdk 2.x sends it: 20 frames."""
    library = [
        ("gunicorn.workers.sync", "handle_request", 178),
        ("django.core.handlers.wsgi", "__call__", 124),
        ("django.core.handlers.base", "get_response", 140),
        ("django.utils.deprecation", "__call__", 129),
        ("sentry_sdk.integrations.django.middleware", "__call__", 175),
        ("django.core.handlers.exception", "inner", 55),
        ("django.core.handlers.base", "_get_response", 197),
        ("django.views.decorators.csrf", "_view_wrapper", 65),
        ("django.views.generic.base", "view", 104),
        ("rest_framework.views", "dispatch", 509),
        ("rest_framework.views", "handle_exception", 469),
        ("rest_framework.views", "raise_uncaught_exception", 480),
    ]
    raised_frames = [sentry_frame(m, f, n, in_app=False, site=DJANGO) for m, f, n in library] + [
        sentry_frame("billing.api.views", "post", 41 + shift, in_app=True),
        sentry_frame("billing.services.charges", "charge", 88 + shift, in_app=True),
        sentry_frame("billing.services.charges", "_attempt", 120 + shift, in_app=True),
    ]
    cause_frames = [
        sentry_frame("billing.services.charges", "_attempt", 112 + shift, in_app=True),
        sentry_frame("billing.customers.store", "load_customer", 27 + shift, in_app=True),
        sentry_frame("contextlib", "inner", 81, in_app=False, site="/usr/local/lib/python3.12"),
        sentry_frame("cachetools._decorators", "wrapper", 36, in_app=False, site=DJANGO),
        sentry_frame("billing.customers.store", "_from_cache", 61 + shift, in_app=True),
    ]
    return {
        "event_id": hashlib.md5(f"{user}{shift}{cause}".encode(), usedforsecurity=False).hexdigest(),
        "timestamp": "2024-05-14T09:21:33.412871Z",
        "level": "error",
        "platform": "python",
        "logger": "django.request",
        "server_name": "web-7d9f8c6b5-x2k4l",
        "release": "billing@1.42.0",
        "environment": "production",
        "transaction": "/api/charges/",
        "transaction_info": {"source": "route"},
        "sdk": {
            "name": "sentry.python.django",
            "version": "2.19.2",
            "packages": [{"name": "pypi:sentry-sdk", "version": "2.19.2"}],
            "integrations": [
                "argv",
                "atexit",
                "dedupe",
                "django",
                "excepthook",
                "logging",
                "modules",
                "stdlib",
                "threading",
            ],
        },
        "contexts": {
            "runtime": {
                "name": "CPython",
                "version": "3.12.3",
                "build": "3.12.3 (main, Apr 10 2024) [GCC 12.2.0]",
            },
            "trace": {
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "op": "http.server",
            },
        },
        "request": {
            "url": "https://billing.example.com/api/charges/",
            "method": "POST",
            "headers": {"Content-Type": "application/json", "User-Agent": "python-httpx/0.27.0"},
            "data": {"customer_id": user, "amount": 1999},
        },
        "extra": {"sys.argv": ["/usr/local/bin/gunicorn", "billing.wsgi"]},
        "breadcrumbs": {
            "values": [
                {
                    "type": "default",
                    "category": "query",
                    "message": "SELECT ... FROM customers WHERE id = %s",
                    "timestamp": "2024-05-14T09:21:33.401Z",
                    "level": "info",
                },
            ]
        },
        "exception": {
            "values": [
                {
                    "module": None,
                    "type": cause,
                    "value": f"'{user}'" if cause == "KeyError" else "timed out",
                    "mechanism": {
                        "type": "chained",
                        "handled": True,
                        "source": "__cause__",
                        "exception_id": 1,
                        "parent_id": 0,
                    },
                    "stacktrace": {"frames": cause_frames},
                },
                {
                    "module": "billing.errors",
                    "type": "ChargeFailed",
                    "value": f"could not charge customer {user}: card declined (attempt 3 of 5)",
                    "mechanism": {"type": "django", "handled": False, "exception_id": 0},
                    "stacktrace": {"frames": raised_frames},
                },
            ]
        },
    }


def test_the_sample_event_is_a_realistic_size() -> None:
    event = python_exception_event()
    assert sum(len(value["stacktrace"]["frames"]) for value in event["exception"]["values"]) == 20
    assert 4_000 <= len(orjson.dumps(event)) <= 8_192


def test_a_sentry_python_event_reads_as_a_chain_cause_first() -> None:
    parsed = report_from_sentry_event(python_exception_event())
    assert [e.type for e in parsed.exceptions] == ["KeyError", "ChargeFailed"]
    assert parsed.exceptions[1].module == "billing.errors"
    assert parsed.exceptions[1].value == "could not charge customer user_42: card declined (attempt 3 of 5)"
    assert len(parsed.exceptions[1].frames) == 15
    assert parsed.exceptions[1].frames[-1] == Frame(
        module="billing.services.charges",
        filename="billing/services/charges.py",
        function="_attempt",
        lineno=120,
        in_app=True,
    )
    assert parsed.message is None
    assert parsed.fingerprint is None
    assert parsed.level == "error"


def test_sentry_events_of_one_bug_group_together_across_users_and_line_numbers() -> None:
    first = group(report_from_sentry_event(python_exception_event("user_42")))
    second = group(report_from_sentry_event(python_exception_event("user_9001", shift=3)))
    assert first.pattern_hash == second.pattern_hash
    assert first.method == "exception_frames"
    assert first.exception_type == "ChargeFailed"
    assert first.title == "could not charge customer user_<num>: card declined (attempt <num> of <num>)"
    assert first.severity == "high"
    assert first.components == (
        "type:KeyError",
        "frame:billing.services.charges:_attempt",
        "frame:billing.customers.store:load_customer",
        "frame:billing.customers.store:_from_cache",
        "type:ChargeFailed",
        "frame:billing.api.views:post",
        "frame:billing.services.charges:charge",
        "frame:billing.services.charges:_attempt",
    )


def test_a_sentry_event_with_another_cause_is_another_pattern() -> None:
    by_key = group(report_from_sentry_event(python_exception_event(cause="KeyError")))
    by_timeout = group(report_from_sentry_event(python_exception_event(cause="TimeoutError")))
    assert by_key.pattern_hash != by_timeout.pattern_hash


def test_a_sentry_fingerprint_and_level_are_read() -> None:
    event = python_exception_event() | {"fingerprint": ["{{ default }}", "eu-west-1", 42], "level": "fatal"}
    parsed = report_from_sentry_event(event)
    assert parsed.fingerprint == ("{{ default }}", "eu-west-1", "42")
    assert group(parsed).method == "fingerprint"
    assert group(parsed).severity == "critical"


def test_a_capture_message_event_groups_by_its_message() -> None:
    def message_event(text: str) -> dict[str, Any]:
        return {
            "event_id": "0" * 32,
            "level": "warning",
            "platform": "python",
            "message": text,
            "timestamp": "2024-05-14T09:21:33Z",
            "sdk": {"name": "sentry.python", "version": "2.19.2"},
        }

    first = report_from_sentry_event(message_event("Payment provider slow: 2345 ms for user_42"))
    second = report_from_sentry_event(message_event("Payment provider slow: 812 ms for user_7"))
    assert first.message == "Payment provider slow: 2345 ms for user_42"
    assert first.exceptions == ()
    assert group(first).pattern_hash == group(second).pattern_hash
    assert group(first).severity == "medium"


def test_a_logging_event_reads_its_formatted_logentry() -> None:
    event = {
        "level": "error",
        "logger": "billing.providers",
        "logentry": {
            "message": "Payment provider slow: %s ms for %s",
            "params": [2345, "user_42"],
            "formatted": "Payment provider slow: 2345 ms for user_42",
        },
    }
    assert report_from_sentry_event(event).message == "Payment provider slow: 2345 ms for user_42"


@pytest.mark.parametrize(
    ("logentry", "message"),
    [
        (
            {"message": "slow: %s ms for %s (%d%%)", "params": [2345, "user_42", 9]},
            "slow: 2345 ms for user_42 (9%)",
        ),
        ({"message": "slow: %(ms)s ms", "params": {"ms": 12}}, "slow: 12 ms"),
        ({"message": "slow: %s ms for %s", "params": [1]}, "slow: 1 ms for %s"),
        ({"message": "huge %999999999s", "params": ["x"]}, "huge x"),
        ({"message": "no params %s"}, "no params %s"),
        ({"formatted": "", "message": "fallback"}, "fallback"),
        ({"message": "%(missing)s", "params": {}}, "%(missing)s"),
    ],
)
def test_a_logentry_without_formatted_text_is_formatted_safely(
    logentry: dict[str, Any], message: str
) -> None:
    assert report_from_sentry_event({"logentry": logentry}).message == message


def test_a_legacy_message_object_is_read() -> None:
    assert report_from_sentry_event({"message": {"formatted": "disk full"}}).message == "disk full"
    assert (
        report_from_sentry_event({"message": {"message": "disk %s", "params": ["full"]}}).message
        == "disk full"
    )


def test_a_single_exception_object_and_a_bare_list_are_read() -> None:
    single = report_from_sentry_event({"exception": {"type": "ValueError", "value": "bad"}})
    bare = report_from_sentry_event({"exception": [{"type": "ValueError", "value": "bad"}]})
    assert single.exceptions == bare.exceptions == (ExceptionInfo("ValueError", "bad", None, ()),)


GARBAGE_EVENTS: list[Any] = [
    {},
    {"exception": None},
    {"exception": "boom"},
    {"exception": {"values": "nope"}},
    {"exception": {"values": {"0": {"type": "E"}}}},
    {"exception": {"values": [1, None, "x", [], {"type": 3, "value": ["v"], "module": {}}]}},
    {"exception": {"values": [{"stacktrace": "frames"}]}},
    {"exception": {"values": [{"stacktrace": {"frames": {"0": {}}}}]}},
    {
        "exception": {
            "values": [
                {
                    "type": "E",
                    "stacktrace": {
                        "frames": [
                            1,
                            "x",
                            None,
                            {"lineno": "12", "in_app": "yes", "function": 3, "module": 4.5, "filename": []},
                        ]
                    },
                }
            ]
        }
    },
    {
        "exception": {
            "values": [
                {
                    "type": "E",
                    "stacktrace": {"frames": [{"lineno": True, "in_app": 1, "abs_path": "/x/y.py"}]},
                }
            ]
        }
    },
    {"logentry": "not an object", "message": ["not", "a", "string"]},
    {"logentry": {"message": 5, "params": "x", "formatted": 7}},
    {"logentry": {"message": "%s %s %(k)s", "params": None}},
    {"message": {"message": None}},
    {"fingerprint": "abc", "level": 5},
    {"fingerprint": [None, True, {}, []], "level": ""},
    {"fingerprint": [], "level": ["error"]},
    {"exception": {"values": []}, "message": ""},
    [],
    None,
    "event",
]


@pytest.mark.parametrize("event", GARBAGE_EVENTS)
def test_a_malformed_sentry_event_never_raises_and_still_groups(event: Any) -> None:
    parsed = report_from_sentry_event(event)
    grouping = group(parsed)
    assert re.fullmatch(r"[0-9a-f]{64}", grouping.pattern_hash)


def test_values_python_cannot_print_are_dropped_not_raised() -> None:
    deep: list[Any] = []
    innermost = deep
    for _ in range(100_000):
        innermost.append([])
        innermost = innermost[0]
    huge = 10**5000  # the json module parses it; str() refuses more than 4,300 digits
    assert report_from_sentry_event({"fingerprint": [huge, "checkout"]}).fingerprint == ("checkout",)
    event = {"logentry": {"message": "%s then %s (%(n)s)", "params": [deep, huge]}}
    assert report_from_sentry_event(event).message == "%s then %s (%(n)s)"
    assert (
        report_from_sentry_event({"logentry": {"message": "%(n)s", "params": {"n": huge}}}).message == "%(n)s"
    )


def test_mistyped_fields_read_as_nothing() -> None:
    parsed = report_from_sentry_event(GARBAGE_EVENTS[8])
    assert parsed.exceptions[0].frames == (Frame(None, None, None, None, None),)
    parsed = report_from_sentry_event(GARBAGE_EVENTS[9])
    assert parsed.exceptions[0].frames == (Frame(None, "/x/y.py", None, None, None),)
    assert report_from_sentry_event(GARBAGE_EVENTS[14]).fingerprint is None
    assert report_from_sentry_event(GARBAGE_EVENTS[14]).level is None
    assert report_from_sentry_event(GARBAGE_EVENTS[15]).fingerprint is None


# --- /v1/errors bodies -----------------------------------------------------------------------------


def test_a_v1_body_with_frames_groups_by_file_base_names_and_functions() -> None:
    def body(root: str, lineno: int, order: str) -> dict[str, Any]:
        return {
            "id": f"err-{order}",
            "project": "billing",
            "message": f"order {order} has no customer",
            "exception_type": "LookupError",
            "level": "warning",
            "frames": [
                {"filename": f"{root}/billing/jobs.py", "function": "run", "lineno": lineno, "in_app": True},
                {
                    "filename": f"{root}/billing/orders.py",
                    "function": "customer_of",
                    "lineno": lineno + 7,
                    "in_app": True,
                },
            ],
        }

    first = group(report_from_v1(body("/srv/app", 10, "550e8400-e29b-41d4-a716-446655440000")))
    second = group(report_from_v1(body("/home/ci/work", 12, "6ba7b810-9dad-11d1-80b4-00c04fd430c8")))
    assert first.pattern_hash == second.pattern_hash
    assert first.components == ("type:LookupError", "frame:jobs.py:run", "frame:orders.py:customer_of")
    assert first.exception_type == "LookupError"
    assert first.title == "order <uuid> has no customer"
    assert first.severity == "medium"


def test_a_v1_body_without_frames_groups_by_type_and_message() -> None:
    parsed = report_from_v1({"message": "quota exceeded for tenant 42", "exception_type": "QuotaError"})
    assert parsed.exceptions == (ExceptionInfo("QuotaError", "quota exceeded for tenant 42", None, ()),)
    assert group(parsed).components == ("type:QuotaError", "value:quota exceeded for tenant <num>")


def test_a_v1_body_with_only_a_message_groups_by_the_message() -> None:
    parsed = report_from_v1({"message": "nightly export took 4102 s", "fingerprint": ["exports"]})
    assert parsed.exceptions == ()
    assert group(parsed).components == ("fingerprint:exports",)
    assert group(report_from_v1({"message": "nightly export took 4102 s"})).method == "message"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": 3, "exception_type": [], "frames": "x", "fingerprint": {}, "level": 2},
        {"frames": [5, {}]},
        None,
        [],
    ],
)
def test_a_malformed_v1_body_never_raises(body: Any) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", group(report_from_v1(body)).pattern_hash)
