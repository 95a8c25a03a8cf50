"""Bodies of the ``/v1/*`` endpoints. Each endpoint takes one object or an array of them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: A project named in a body: its slug in the default organization, or ``org/slug``.
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}(/[a-z0-9][a-z0-9_-]{0,63})?$"


class DeploymentStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class DeploymentIn(BaseModel):
    """A deployment event from a pipeline. ``id`` is the client's idempotency key."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    service: str = Field(min_length=1, max_length=255)
    environment: str = Field(min_length=1, max_length=255)
    version: str = Field(min_length=1, max_length=255)
    status: DeploymentStatus
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); defaults to the project key's own project",
    )
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    commit_sha: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=2048)


class ErrorLevel(StrEnum):
    """Sentry's levels."""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"


class FrameIn(BaseModel):
    """One stack frame of a ``/v1/errors`` report; line numbers never take part in grouping."""

    model_config = ConfigDict(extra="allow")

    filename: str | None = Field(default=None, max_length=1024)
    function: str | None = Field(default=None, max_length=1024)
    lineno: int | None = Field(default=None, ge=0, le=2**31 - 1)
    in_app: bool | None = None


class ErrorIn(BaseModel):
    """An error report from a service. ``id`` is the client's idempotency key within its project."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    message: str = Field(min_length=1, max_length=65_536)
    service: str | None = Field(default=None, max_length=255)
    environment: str | None = Field(default=None, max_length=255)
    release: str | None = Field(default=None, max_length=255)
    level: ErrorLevel = ErrorLevel.ERROR
    exception_type: str | None = Field(default=None, max_length=1024)
    frames: list[FrameIn] = Field(default_factory=list, max_length=500)
    tags: dict[str, str] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None
    fingerprint: list[str] | None = Field(
        default=None, min_length=1, max_length=50, description="Replaces the computed grouping"
    )


class InstanceIn(BaseModel):
    """The process a heartbeat comes from."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    port: int | None = Field(default=None, ge=0, le=65535)


class HeartbeatSignal(StrEnum):
    OK = "ok"
    START = "start"
    FAIL = "fail"


class HeartbeatIn(BaseModel):
    """A heartbeat from one instance of a service. ``id`` is the client's idempotency key."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255, description="Client-chosen idempotency key")
    project: str | None = Field(
        default=None,
        pattern=PROJECT_NAME,
        description="Project slug (or org/slug); required with the operator token, "
        "defaults to the project key's own project",
    )
    instance: InstanceIn
    sent_at: AwareDatetime
    service: str = Field(
        default="default", pattern=r"^[a-z0-9_-]{1,100}$", description="The check this instance reports for"
    )
    signal: HeartbeatSignal = HeartbeatSignal.OK
    cpu_percent: float | None = Field(default=None, ge=0)
    memory_mb: float | None = Field(default=None, ge=0)
    metrics: dict[str, float] = Field(default_factory=dict, max_length=100)
