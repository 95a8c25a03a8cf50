"""structlog set-up: one event key per line, context bound through ``structlog.contextvars``."""

from __future__ import annotations

import logging
import sys

import structlog

from hookyard.outages import BrokerLogFilter


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and the standard library (dramatiq, pika, uvicorn) through one renderer.

    ``fmt="auto"`` renders for humans on a terminal and JSON lines otherwise.
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Filters by level before any processor runs: a debug line on a hot path costs nothing.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    # A broker outage is two lines, not a CRITICAL line and tracebacks per reconnect attempt.
    handler.addFilter(BrokerLogFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.processors.format_exc_info],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika narrates every connection step at INFO. BrokerLogFilter drops all of it, but reads the
    # INFO record that says a consumer is back, so pika must emit INFO (once per connection).
    logging.getLogger("pika").setLevel(logging.INFO)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
