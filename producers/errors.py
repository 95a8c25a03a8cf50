"""The refusals of SPEC.md, each a status code and a stable error code."""

from __future__ import annotations

from typing import Any


class IngestError(Exception):
    """A request refused before anything was published. ``code`` is stable; ``detail`` is for humans."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


def missing_header(name: str) -> IngestError:
    return IngestError(400, "missing_header", f"The {name} header is required.")


def invalid_json(what: str = "The body") -> IngestError:
    return IngestError(400, "invalid_json", f"{what} is not valid JSON.")


def missing_field(name: str) -> IngestError:
    return IngestError(400, "missing_field", f"The body has no {name} field.")


def secret_not_configured(variable: str) -> IngestError:
    return IngestError(
        401, "secret_not_configured", f"{variable} is not set, so this source accepts nothing."
    )


def missing_signature(header: str) -> IngestError:
    return IngestError(401, "missing_signature", f"The {header} header is required.")


def invalid_signature(header: str) -> IngestError:
    return IngestError(401, "invalid_signature", f"The {header} header does not match the body.")


def stale_timestamp(what: str, window: int) -> IngestError:
    return IngestError(401, "stale_timestamp", f"{what} is more than {window} s away from now.")


def unsupported_media_type(allowed: str) -> IngestError:
    return IngestError(415, "unsupported_media_type", f"This endpoint takes {allowed}.")
