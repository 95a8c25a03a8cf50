"""Error reports into patterns: the grouping and message normalization producers and workers share.

A report's pattern is, in SPEC's order ("Error reports"), the first of:

1. ``fingerprint``: its ``fingerprint`` list, where an element ``{{ default }}`` (or
   ``{{default}}``) stands for the default components of steps 2-4. A fingerprint made only of
   ``{{ default }}`` is no custom fingerprint at all: it gives exactly the default pattern.
   Other Sentry variables (``{{ type }}``, ``{{ transaction }}``, ...) are plain strings here.
2. ``exception_frames``: for each exception of the chain, its type and its in-app frames.
3. ``exception_message``: for each exception of the chain, its type and its normalized message.
4. ``message``: the normalized message.

Decisions, each as Sentry makes it unless said otherwise:

- **Chain order.** ``Report.exceptions`` is the chain as Sentry sends ``exception.values``:
  oldest first, the cause first and the exception actually raised last (sentry-sdk walks
  ``__cause__``/``__context__`` from the raised exception and reverses the list). Every exception
  of the chain takes part in the components, so the same outer exception with another cause is
  another pattern; the last one is the "main" exception that names ``exception_type`` and ``title``.
- **In-app frames.** Only frames with ``in_app`` true count when the chain has at least one; when
  no frame of the whole chain is in-app (``in_app`` false or unknown everywhere, as from a client
  that does not mark frames), all frames count: Sentry's "system" variant, used when its "app"
  variant has no in-app frame to contribute. An exception of the chain with no counted frame
  contributes its type and normalized message instead, as Sentry's exception component does when
  its stack trace does not contribute.
- **A frame** is its ``module``, or else the base name of its file (directory dropped, with ``/``
  or ``\\`` separators, query string dropped; the extension stays, as in Sentry, since
  ``views.py`` and ``views.js`` are different files), and its ``function``. Never its line number.
  Hex ids in these names (bundler hashes such as ``main.3f2a9c1b.js``, generated proxy classes)
  become ``<hex>``. Consecutive identical frames count once, so a recursion's depth does not
  split a pattern.
- **Exception type** is the exception's ``type`` alone (``UniqueViolation``), not its ``module``,
  as in Sentry's grouping and issue titles.
- **Quoted text is a value.** SPEC says quoted values are replaced, and this module replaces every
  quoted string (single, double, back and curly quotes, and Ruby's backtick-apostrophe pair) with
  ``<str>``, names included. Sentry replaces only quoted strings after ``=``; we chose SPEC's wider rule so
  that user data in quotes (``KeyError: 'user_42'``, ``invalid input syntax for type integer:
  "abc"``) never makes one pattern per value. The consequence, accepted: reports grouped by their
  message (steps 3-4: no stack frames) merge when they differ only by a quoted name, e.g.
  PostgreSQL's ``relation "users" does not exist`` and ``relation "orders" does not exist``, or
  ``'NoneType' object has no attribute 'id'`` and ``'dict' object has no attribute 'get'``. Reports
  with frames are told apart by their frames; a sender who wants such names apart sets a
  ``fingerprint``.
- **Numbers** are digit runs not glued to a letter before them: ``utf8``, ``ipv4``, ``sha256``,
  ``v2`` and ``id42`` are names and stay; ``user_42`` and ``order-12345`` are ids and become
  ``user_<num>``, ``order-<num>``; ``HTTP/1.1`` becomes ``HTTP/<num>`` (the same everywhere, so
  harmless); a status code is a number, so ``status code 503`` and ``status code 404`` merge.
  Host names are not in SPEC's list and stay: ``ENOTFOUND api.example.com`` is another error
  than ``ENOTFOUND api.stripe.com``.
- **pattern_hash** is the lowercase hex SHA-256 of the JSON array ``[GROUPING_VERSION,
  *components]``: JSON keeps element boundaries, so two component lists never collide by
  concatenation, and the version tag lets a future grouping change say so. Each component is
  tagged (``fingerprint:``, ``type:``, ``frame:``, ``value:``, ``message:``) so a fingerprint
  element never equals a computed component; in ``frame:<module>:<function>`` the module's ``:``
  and ``\\`` are escaped.
- **title** is the main exception's normalized message, else the report's normalized message,
  else the exception type, cut to 255 characters.
- **severity** follows the Sentry level, see :func:`severity_of`.

Normalization (:func:`normalize_message`) is one pass of :data:`RULES`: at each position the
leftmost match wins, and of several rules matching at one position the first in ``RULES`` wins,
so a URL, e-mail, UUID, timestamp or IP address is replaced whole before its digits could become
``<num>``. Each rule carries an example that the tests run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, NamedTuple

#: Tags the hashed serialization; bump it when a change to this module moves existing reports.
GROUPING_VERSION: Final = "hookyard-grouping/1"
#: ``error_patterns.title`` is at most this long.
TITLE_MAX_CHARS: Final = 255
#: Only this much of a message is normalized: bounds the work a huge message costs a worker.
MESSAGE_MAX_CHARS: Final = 16_384

METHOD_FINGERPRINT: Final = "fingerprint"
METHOD_EXCEPTION_FRAMES: Final = "exception_frames"
METHOD_EXCEPTION_MESSAGE: Final = "exception_message"
METHOD_MESSAGE: Final = "message"


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame; ``lineno`` is kept for display and never used in grouping."""

    module: str | None
    filename: str | None
    function: str | None
    lineno: int | None
    in_app: bool | None


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """One exception of a chain; ``frames`` oldest call first, as Sentry orders them."""

    type: str | None
    value: str | None
    module: str | None
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """An error report, whatever its protocol; ``exceptions`` is the chain, cause first, raised last."""

    message: str | None
    exceptions: tuple[ExceptionInfo, ...]
    fingerprint: tuple[str, ...] | None
    level: str | None


@dataclass(frozen=True, slots=True)
class Grouping:
    """What a report's pattern is; equal ``pattern_hash`` means the same ``error_patterns`` row."""

    pattern_hash: str
    components: tuple[str, ...]
    method: str  # "fingerprint" | "exception_frames" | "exception_message" | "message"
    exception_type: str | None
    title: str
    severity: str


class Rule(NamedTuple):
    """One normalization rule, with the example that documents it and that the tests run."""

    name: str
    pattern: str
    placeholder: str
    example_in: str
    example_out: str


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?"
_OFFSET = r"(?:\s?Z(?![A-Za-z])|\s?[+-]\d{2}(?::?\d{2})?(?!\d))"
_ZONE_NAME = r"(?:\s(?:UTC|GMT|UT|[ECMP][SD]T)(?![A-Za-z]))"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_PATH_CHAR = r"[\w.@%+~-]"
_URL_TAIL = r"[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]"
_QUERY = r"(?:\?[^\s'\"<>`()\[\]{}]*[^\s'\"<>`()\[\]{}.,;:!?])?"
_WIN_PATH_TAIL = r"[^\s'\"<>|?*:]*[^\s'\"<>|?*:.,;)\]]"
# Whitespace, other control characters (PostgreSQL text refuses NUL) and lone surrogates.
_BLANK = r"[\s\x00-\x1f\x7f\ud800-\udfff]"
_BLANKS = rf"{_BLANK}{{2,}}|(?! ){_BLANK}"

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "pg_detail",
        # PostgreSQL writes a DETAIL's values unquoted, in parentheses: they are quoted values.
        # (A value holding a parenthesis is left to the other rules.)
        r"(?<=\)=\()[^()\n]+(?=\))|(?<=Failing row contains \()[^()\n]+(?=\)\.?(?:\s|$))",
        "<str>",
        "DETAIL: Key (email, org_id)=(bob@example.com, 7) already exists. "
        "Failing row contains (42, null, Bob Smith).",
        "DETAIL: Key (email, org_id)=(<str>) already exists. Failing row contains (<str>).",
    ),
    Rule(
        "url",
        rf"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://{_URL_TAIL}",
        "<url>",
        "fetching https://api.example.com/v1/users/42?page=2: EOF (via postgresql://app:pw@db:5432/app)",
        "fetching <url>: EOF (via <url>)",
    ),
    Rule(
        "email",
        r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])",
        "<email>",
        "no account for alice.smith+test@example.co.uk",
        "no account for <email>",
    ),
    Rule(
        "uuid",
        r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        r"(?![0-9A-Za-z])",
        "<uuid>",
        "order 550E8400-e29b-41d4-a716-446655440000 not found",
        "order <uuid> not found",
    ),
    Rule(
        "timestamp",
        # ISO 8601 / RFC 3339 (and Go's "+0000 UTC"), RFC 2822, ctime and Java's Date, d/m/y
        # dates, clock times with seconds, and Python's datetime reprs.
        rf"(?<![\w.:])(?:"
        rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_CLOCK}{_OFFSET}?{_ZONE_NAME}?)?(?!\d)"
        rf"|(?:{_WEEKDAY},\s)?\d{{1,2}}\s{_MONTH}\s\d{{4}}\s{_CLOCK}"
        rf"(?:\s(?:[+-]\d{{4}}|UTC|GMT|UT|[ECMP][SD]T)(?![A-Za-z]))?"
        rf"|{_WEEKDAY}\s{_MONTH}\s+\d{{1,2}}\s{_CLOCK}(?:\s[A-Z]{{3,4}})?\s\d{{4}}"
        rf"|(?:\d{{1,2}}/\d{{1,2}}/\d{{4}}|\d{{4}}/\d{{2}}/\d{{2}})(?:[ T]{_CLOCK})?(?![\d/])"
        rf"|\d{{1,2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?{_OFFSET}?(?![\d:])"
        rf"|datetime\.(?:datetime|date|time)\([^()\n]*\)"
        rf")",
        "<ts>",
        "token expired at 2024-01-15T10:30:00.123456+00:00, now Mon, 15 Jan 2024 10:31:07 GMT "
        "(Mon Jan 15 10:31:07 UTC 2024; 15/01/2024 10:31; 2024-01-15 10:31:07.5 +0000 UTC; "
        "10:31:07.250; datetime.datetime(2024, 1, 15, 10, 31))",
        "token expired at <ts>, now <ts> (<ts>; <ts>; <ts>; <ts>; <ts>)",
    ),
    Rule(
        "ip",
        # IPv4 with an optional CIDR suffix and port; IPv6 bracketed (with port) or bare, which
        # needs "::" or eight groups and a digit, so Ruby's Foo::Bar and clock times stay.
        rf"(?<![\w.]){_IPV4}(?:/\d{{1,2}})?(?::\d{{1,5}})?(?!\w|\.\d)"
        rf"|\[(?=[0-9A-Fa-f:.]*\d)[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\](?::\d{{1,5}})?"
        rf"|(?<![\w:.])(?=[0-9A-Fa-f:.]*\d)(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{{1,4}}:){{7}})"
        rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}})?(?![\w:])",
        "<ip>",
        "dial tcp 10.0.0.12:5432 from [2001:db8::1]:443 via fe80::1ff:fe23:4567:890a and 192.168.0.0/16",
        "dial tcp <ip> from <ip> via <ip> and <ip>",
    ),
    Rule(
        "path",
        # Windows (drive or UNC), absolute or home- or dot-relative POSIX paths (also a URL's path
        # and query), and relative paths with a slash and a file extension.
        rf"(?<!\w)[A-Za-z]:\\{_WIN_PATH_TAIL}"
        rf"|\\\\[\w.-]+\\{_WIN_PATH_TAIL}"
        rf"|(?<![\w.~/:)\]-])(?:~|\.{{1,2}})?(?:/{_PATH_CHAR}+)+/?(?<!\.){_QUERY}"
        rf"|(?<![\w.~/:@%+-])(?:{_PATH_CHAR}+/)+{_PATH_CHAR}*\.[A-Za-z][A-Za-z0-9]{{0,7}}(?![\w/+-])",
        "<path>",
        r"open /etc/app/config.yaml: denied; see C:\Users\bob\app.log, ~/.cache/x, "
        r"src/app/main.py:12 and GET /v1/charges?id=123 (I/O, HTTP/1.1, application/vnd.api+json)",
        "open <path>: denied; see <path>, <path>, <path>:<num> and GET <path> "
        "(I/O, HTTP/<num>, application/vnd.api+json)",
    ),
    Rule(
        "quoted",
        # An apostrophe inside a word (can't, users') neither opens nor closes; b'...' is bytes.
        r"(?<![\w'])[bBrRuU]?'(?:[^'\\\n]|\\.)*'(?!\w)"
        r"|\"(?:[^\"\\\n]|\\.)*\""
        r"|`[^`'\n]*[`']"
        r"|\u2018[^\u2018\u2019\n]*\u2019|\u201c[^\u201c\u201d\n]*\u201d",
        "<str>",
        "Couldn't find User with 'id'=42 in \"users\"; undefined method `name' for nil, b'\\xff'",
        "Couldn't find User with <str>=<num> in <str>; undefined method <str> for nil, <str>",
    ),
    Rule(
        "hex",
        # 0x literals (memory addresses, error codes), and hex ids of 7 or more characters with a
        # digit and a letter (git's short SHA is 7; words such as "deadbeef" or "facade" stay).
        r"(?<![A-Za-z0-9])(?:0[xX][0-9a-fA-F]+"
        r"|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,})(?![A-Za-z0-9])",
        "<hex>",
        "object at 0x7f3a2c1d5e80 (commit 3f2a9c1, blob e3b0c44298fc1c149afbf4c8996fb924)",
        "object at <hex> (commit <hex>, blob <hex>)",
    ),
    Rule(
        "number",
        # Digits glued to a letter before them are part of a name (utf8, ipv4, sha256, v2, id42);
        # after "_" or "-" they are an id's number (user_42, order-12345); a dotted version is one
        # number; a unit after the digits stays (30s, 250ms).
        r"(?<![A-Za-z0-9.])(?:-(?=\d))?\d+(?:\.\d+)*(?:[eE][-+]?\d+)?",
        "<num>",
        "retry 3 of 5 after 1.5s: worker_7 exit -11, version 2.3.1 (utf8, ipv4, sha256, v2 unchanged)",
        "retry <num> of <num> after <num>s: worker_<num> exit <num>, version <num> "
        "(utf8, ipv4, sha256, v2 unchanged)",
    ),
    Rule(
        "blank",
        # Runs of whitespace and control characters become one space (a lone space is left be).
        _BLANKS,
        " ",
        "connection reset\n\tby  peer\x00",
        "connection reset by peer",
    ),
)

# Where a match may start. Only an optimization, about 3x (the tests check that results equal
# the plain alternation's): inside a word no rule starts but a quote, "[", a backslash, a
# PostgreSQL value or a blank, and a plain word followed by a space or punctuation starts none
# either (a weekday may begin a timestamp), so the engine skips those positions after a test.
_GUARD: Final = (
    rf"(?:(?<![A-Za-z0-9])(?=[\w'.~/@%+:\-])(?!(?!{_WEEKDAY}[ ,])[A-Za-z]+(?:[ \t\n,;)!?]|$))"
    rf"|(?=[\"`\[\\\u2018\u201c])|(?<=\)=\()|(?<=contains \()|(?={_BLANKS}))"
)
_ALTERNATION: Final = "|".join(f"(?P<{rule.name}>{rule.pattern})" for rule in RULES)
_NORMALIZER: Final = re.compile(f"{_GUARD}(?:{_ALTERNATION})")
_PLACEHOLDERS: Final = {rule.name: rule.placeholder for rule in RULES}
_HEX_RULE: Final = re.compile(next(rule.pattern for rule in RULES if rule.name == "hex"))
_DEFAULT_MARKER: Final = re.compile(r"\{\{\s*default\s*\}\}")
_PRINTF: Final = re.compile(r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*\d*(?:\.\d+)?(?P<conv>[sdiufFeEgGxXorac%])")

_SEVERITIES: Final = {
    "fatal": "critical",
    "critical": "critical",
    "error": "high",
    "warning": "medium",
    "warn": "medium",
    "info": "low",
    "log": "low",
    "debug": "low",
}
#: Sentry's default level is "error": a report without a known level is as severe as an error.
DEFAULT_SEVERITY: Final = "high"


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDERS[match.lastgroup or ""]


def normalize_message(text: str) -> str:
    """``text`` with what varies between occurrences of one error replaced by placeholders.

    Guaranteed: a pure function of ``text``; the result has no leading, trailing or repeated
    whitespace and no control characters or lone surrogates (PostgreSQL stores it as is); the
    time taken is linear in the length, of which only the first :data:`MESSAGE_MAX_CHARS`
    characters are read. Not guaranteed: that two different errors keep different results (see
    the module docstring on quoted names), nor that normalizing a result again changes nothing
    (it does for real messages, not for every string).
    """
    if len(text) <= _CACHED_MAX_CHARS:
        return _normalize_cached(text)
    return _NORMALIZER.sub(_placeholder, text[:MESSAGE_MAX_CHARS]).strip()


#: Messages this short are remembered: an error that recurs verbatim is normalized once.
_CACHED_MAX_CHARS: Final = 512


@lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return _NORMALIZER.sub(_placeholder, text).strip()


def severity_of(level: str | None) -> str:
    """The pattern severity of a Sentry level.

    ``fatal`` (and ``critical``) → ``critical``; ``error`` → ``high``; ``warning`` (``warn``) →
    ``medium``; ``info``, ``log`` and ``debug`` → ``low``. Case and surrounding spaces are
    ignored; a missing or unknown level counts as ``error``, Sentry's default.
    """
    if not isinstance(level, str):
        return DEFAULT_SEVERITY
    return _SEVERITIES.get(level.strip().lower(), DEFAULT_SEVERITY)


def group(report: Report) -> Grouping:
    """The pattern of ``report``: SPEC's grouping order, see the module docstring.

    Guaranteed: a pure function of ``report`` (same report, same ``Grouping``, in any process);
    line numbers, frame directories, non-in-app frames (when some frame is in-app) and the
    variable parts of messages never change ``pattern_hash``.
    """
    normalized: dict[str, str] = {}

    def norm(text: str) -> str:
        found = normalized.get(text)
        if found is None:
            found = normalized[text] = normalize_message(text)
        return found

    chain = tuple(exc for exc in report.exceptions if exc.type or exc.value or exc.frames)
    main = chain[-1] if chain else None

    fingerprint = report.fingerprint
    if fingerprint and not all(_DEFAULT_MARKER.fullmatch(part.strip()) for part in fingerprint):
        method = METHOD_FINGERPRINT
        components: list[str] = []
        default: tuple[str, ...] | None = None
        for part in fingerprint:
            if _DEFAULT_MARKER.fullmatch(part.strip()):
                if default is None:
                    default = _default_components(report, chain, norm)[0]
                components.extend(default)
            else:
                components.append("fingerprint:" + part)
        chosen = tuple(components)
    else:
        chosen, method = _default_components(report, chain, norm)

    return Grouping(
        pattern_hash=_pattern_hash(chosen),
        components=chosen,
        method=method,
        exception_type=main.type if main else None,
        title=_title(report, main, norm),
        severity=severity_of(report.level),
    )


def _default_components(
    report: Report, chain: tuple[ExceptionInfo, ...], norm: Callable[[str], str]
) -> tuple[tuple[str, ...], str]:
    if any(exc.frames for exc in chain):
        any_in_app = any(frame.in_app is True for exc in chain for frame in exc.frames)
        components: list[str] = []
        contributed = False
        for exc in chain:
            components.append("type:" + (exc.type or ""))
            frames = _frame_components(exc.frames, only_in_app=any_in_app)
            if frames:
                contributed = True
                components.extend(frames)
            else:
                components.append("value:" + norm(exc.value or ""))
        if contributed:
            return tuple(components), METHOD_EXCEPTION_FRAMES
    if any(exc.type for exc in chain):
        components = []
        for exc in chain:
            components.append("type:" + (exc.type or ""))
            components.append("value:" + norm(exc.value or ""))
        return tuple(components), METHOD_EXCEPTION_MESSAGE
    text = report.message or (chain[-1].value if chain else None) or ""
    return ("message:" + norm(text),), METHOD_MESSAGE


def _frame_components(frames: Iterable[Frame], *, only_in_app: bool) -> list[str]:
    components: list[str] = []
    for frame in frames:
        if only_in_app and frame.in_app is not True:
            continue
        component = _frame_component(frame.module, frame.filename, frame.function)
        # Consecutive identical frames are one: a recursion's depth must not split a pattern.
        if component is not None and (not components or components[-1] != component):
            components.append(component)
    return components


@lru_cache(maxsize=16_384)
def _frame_component(module: str | None, filename: str | None, function: str | None) -> str | None:
    where = module or _base_name(filename)
    if not where and not function:
        return None
    where = _HEX_RULE.sub("<hex>", where)
    if ":" in where or "\\" in where:
        where = where.replace("\\", "\\\\").replace(":", "\\:")
    return f"frame:{where}:{_HEX_RULE.sub('<hex>', function or '')}"


def _base_name(filename: str | None) -> str:
    if not filename:
        return ""
    name = filename.split("?", 1)[0].split("#", 1)[0].replace("\\", "/").rstrip("/")
    return name.rsplit("/", 1)[-1]


def _pattern_hash(components: tuple[str, ...]) -> str:
    payload = json.dumps([GROUPING_VERSION, *components], separators=(",", ":"))
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _title(report: Report, main: ExceptionInfo | None, norm: Callable[[str], str]) -> str:
    for text in (main.value if main else None, report.message):
        if text:
            title = norm(text)
            if title:
                return _truncate(title)
    if main and main.type:
        return _truncate(main.type)
    return "(no message)"


def _truncate(text: str) -> str:
    if len(text) <= TITLE_MAX_CHARS:
        return text
    return text[: TITLE_MAX_CHARS - 1] + "\u2026"


# --- reading reports -------------------------------------------------------------------------


def report_from_sentry_event(event: Mapping[str, Any]) -> Report:
    """The report in a Sentry event payload (the JSON object of an ``event`` item or ``/store/``).

    Reads ``exception.values[]`` (``type``, ``value``, ``module``, ``stacktrace.frames[]`` with
    ``module``, ``filename`` or ``abs_path``, ``function``, ``lineno``, ``in_app``; also a bare
    list or a single exception object), the message from ``logentry`` (``formatted``, else
    ``message`` with ``params``) or ``message`` (a string or such an object), ``fingerprint`` and
    ``level``. Never raises on a JSON object: a field that is missing or of another shape is
    ``None`` (or empty). ``threads`` (a message's attached stack trace) is not read: SPEC groups
    a report without an exception by its message.
    """
    if not isinstance(event, Mapping):
        return Report(message=None, exceptions=(), fingerprint=None, level=None)
    return Report(
        message=_interface_message(event.get("logentry")) or _interface_message(event.get("message")),
        exceptions=_sentry_exceptions(event.get("exception")),
        fingerprint=_fingerprint(event.get("fingerprint")),
        level=_level(event.get("level")),
    )


def report_from_v1(body: Mapping[str, Any]) -> Report:
    """The report in a ``/v1/errors`` object (SPEC: ``message``, ``exception_type``, ``frames``,
    ``fingerprint``, ``level``); tolerant of missing or mistyped fields like
    :func:`report_from_sentry_event`. The message is also the exception's value, so a report with
    an ``exception_type`` and no frames groups by type and normalized message.
    """
    if not isinstance(body, Mapping):
        return Report(message=None, exceptions=(), fingerprint=None, level=None)
    message = _str(body.get("message"))
    exception_type = _str(body.get("exception_type"))
    frames = _frames(body.get("frames"))
    exceptions = (
        (ExceptionInfo(type=exception_type, value=message, module=None, frames=frames),)
        if exception_type or frames
        else ()
    )
    return Report(
        message=message,
        exceptions=exceptions,
        fingerprint=_fingerprint(body.get("fingerprint")),
        level=_level(body.get("level")),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _level(value: object) -> str | None:
    return (value.strip().lower() or None) if isinstance(value, str) else None


def _sentry_exceptions(raw: object) -> tuple[ExceptionInfo, ...]:
    values: object = raw
    if isinstance(raw, Mapping):
        values = raw.get("values")
        if values is None and ("type" in raw or "value" in raw):
            values = [raw]  # the legacy single-exception interface
    if not isinstance(values, list | tuple):
        return ()
    return tuple(
        ExceptionInfo(
            type=_str(item.get("type")),
            value=_str(item.get("value")),
            module=_str(item.get("module")),
            frames=_frames(stacktrace.get("frames"))
            if isinstance(stacktrace := item.get("stacktrace"), Mapping)
            else (),
        )
        for item in values
        if isinstance(item, Mapping)
    )


def _frames(raw: object) -> tuple[Frame, ...]:
    # The hot loop of reading an event (a plain loop and type() checks: about 4x the comprehension).
    if not isinstance(raw, list | tuple):
        return ()
    frames: list[Frame] = []
    for item in raw:
        if type(item) is not dict and not isinstance(item, Mapping):
            continue
        module = item.get("module")
        filename = item.get("filename")
        if not filename or not isinstance(filename, str):
            filename = item.get("abs_path")
        function = item.get("function")
        lineno = item.get("lineno")
        in_app = item.get("in_app")
        frames.append(
            _frame(
                module if isinstance(module, str) else None,
                filename if isinstance(filename, str) else None,
                function if isinstance(function, str) else None,
                lineno if type(lineno) is int else None,  # not bool, whose type is bool
                in_app if type(in_app) is bool else None,
            )
        )
    return tuple(frames)


@lru_cache(maxsize=16_384)
def _frame(
    module: str | None, filename: str | None, function: str | None, lineno: int | None, in_app: bool | None
) -> Frame:
    """One shared instance per distinct frame: the same code fails again and again, and a
    frozen dataclass costs more to build than to look up."""
    return Frame(module=module, filename=filename, function=function, lineno=lineno, in_app=in_app)


def _fingerprint(raw: object) -> tuple[str, ...] | None:
    if not isinstance(raw, list | tuple):
        return None
    # Sentry accepts numbers in a fingerprint and reads them as strings; other shapes are dropped.
    parts = tuple(
        text
        for part in raw
        if isinstance(part, str | int | float)
        and not isinstance(part, bool)
        and (text := _text(part)) is not None
    )
    return parts or None


def _text(value: object) -> str | None:
    """``str(value)``, or ``None`` where Python refuses: an integer of more than 4,300 digits
    (which the json module parses), a list nested deeper than the recursion limit."""
    try:
        return str(value)
    except (ValueError, RecursionError):
        return None


def _interface_message(raw: object) -> str | None:
    """A message from a string, or from Sentry's message/logentry object."""
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, Mapping):
        return None
    formatted = _str(raw.get("formatted"))
    if formatted:
        return formatted
    template = _str(raw.get("message"))
    if not template:
        return None
    return _format(template, raw.get("params"))


def _format(template: str, params: object) -> str:
    """printf-style ``%s``/``%(name)s`` substitution without widths: a sent ``%999999999s`` must
    not make a worker allocate it. A placeholder without a parameter stays as written."""
    if isinstance(params, Mapping):
        named: Mapping[Any, Any] = params
        positional: list[Any] = []
    elif isinstance(params, list | tuple):
        named, positional = {}, list(params)
    else:
        return template
    remaining = iter(positional)

    def substitute(match: re.Match[str]) -> str:
        if match["conv"] == "%":
            return "%"
        key = match["key"]
        if key is not None:
            text = _text(named[key]) if key in named else None
        else:
            text = next((_text(value) for value in remaining), None)
        return match[0] if text is None else text

    return _PRINTF.sub(substitute, template)
