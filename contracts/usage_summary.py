"""The answer of ``GET /v1/usage/summary``, as the OpenAPI document publishes it.

The endpoint (producers/usage_summary.py) writes this body as a plain dict, like every answer of
the web process; these models are its schema, checked against real answers by the contract test
and the endpoint's tests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: An exact decimal as text: no exponent, no trailing zeros after the point.
DECIMAL_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"

Window = Literal["hour", "day", "month"]


class UsageTotal(BaseModel):
    """The usage of one window, resource type and unit (and group, with ``group_by``)."""

    model_config = ConfigDict(extra="forbid")

    window_start: AwareDatetime = Field(description="The window's first instant, in UTC")
    resource_type: str
    unit: str | None = Field(description="The records' unit; null for records without one")
    records: int = Field(ge=1, description="Usage records in the total")
    amount: str = Field(pattern=DECIMAL_TEXT, description="The sum of their amounts, exact")
    cost_cad: str | None = Field(
        pattern=DECIMAL_TEXT, description="The sum of their costs in CAD, exact; null when none has a cost"
    )
    group: str | None = Field(
        default=None,
        description="With group_by only: the records' value of that metadata key (null: they have none)",
    )


class UsageSummary(BaseModel):
    """200: a project's usage totals per window over ``[from, to)``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    project: str = Field(description="The project: its slug, or org/slug outside the default organization")
    resource_type: str | None = Field(description="The resource type asked for; null: every type")
    window: Window
    group_by: str | None = Field(description="The metadata key the totals are grouped by, if any")
    from_: AwareDatetime = Field(alias="from", description="The range's start (included), in UTC")
    to: AwareDatetime = Field(description="The range's end (excluded), in UTC")
    totals: list[UsageTotal] = Field(
        description="By window start, resource type, unit and group; only windows with usage appear"
    )
