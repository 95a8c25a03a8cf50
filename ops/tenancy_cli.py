"""``hookyard orgs``, ``hookyard projects`` and ``hookyard keys``: tenants, projects and their keys.

The groups are registered on the main group by ops/cli.py. This module does not import ops.cli
(that would be an import cycle), so it declares the --database-url option the same way.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from contracts.keys import ALL_SCOPES
from hookyard.config import load_settings

if TYPE_CHECKING:
    from ops.tenancy import Key

F = TypeVar("F", bound=Callable[..., Any])

_JSON_HELP = "One JSON document on stdout"


def database_option(fn: F) -> F:
    return click.option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        default=None,
        help="PostgreSQL URL [default: postgresql://postgres@127.0.0.1:5432/hookyard]",
    )(fn)


def _database_url(database_url: str | None) -> str:
    return load_settings(database_url=database_url).database_url


def _json(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        raise TypeError(f"{type(item).__name__} is not JSON serializable")

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [
            dataclasses.asdict(item)
            if dataclasses.is_dataclass(item) and not isinstance(item, type)
            else item
            for item in value
        ]
    return json.dumps(value, default=default)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


# --- orgs ---


@click.group()
def orgs() -> None:
    """Organizations: create, list."""


@orgs.command("create")
@click.argument("slug")
@click.option("--name", help="Display name [default: the slug]")
@database_option
def orgs_create(slug: str, name: str | None, database_url: str | None) -> None:
    """Create an organization and its read-only role hookyard_org_SLUG (reused when it exists)."""
    from ops import tenancy  # noqa: PLC0415 - keep --help fast

    org = tenancy.create_org(_database_url(database_url), slug, name)
    if org.role is None:
        click.echo(
            "WARNING: no role created: this database has no hookyard_create_org_role(text); "
            "run `hookyard migrate` once that migration exists",
            err=True,
        )
        click.echo(f"created organization {org.slug} with id {org.id}")
        return
    click.echo(f"created organization {org.slug} with id {org.id} and role {org.role}")


@orgs.command("list")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def orgs_list(as_json: bool, database_url: str | None) -> None:
    """List organizations with their number of projects."""
    from ops import tenancy  # noqa: PLC0415

    rows = tenancy.list_orgs(_database_url(database_url))
    if as_json:
        click.echo(_json(rows))
        return
    click.echo(f"{'id':>6}  {'slug':<24} {'projects':>8}  name")
    for org in rows:
        click.echo(f"{org.id:>6}  {org.slug:<24} {org.projects:>8}  {org.name}")


# --- projects ---


@click.group()
def projects() -> None:
    """Projects: create, list, show, archive, link webhooks to them.

    PROJECT is a slug in the default organization, or ORG/SLUG.
    """


@projects.command("create")
@click.argument("slug")
@click.option("--org", help="Organization slug [default: default]")
@click.option("--name", help="Display name [default: the slug]")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def projects_create(
    slug: str, org: str | None, name: str | None, as_json: bool, database_url: str | None
) -> None:
    """Create a project (SLUG, or ORG/SLUG) and print its id, the one Sentry DSNs carry."""
    from ops import tenancy  # noqa: PLC0415

    if org is not None:
        if "/" in slug:
            raise tenancy.InvalidValue(f"give the organization once: {slug!r} already names one; drop --org")
        slug = f"{tenancy.check_slug(org, 'organization')}/{slug}"
    ref = tenancy.parse_project(slug)
    project = tenancy.create_project(_database_url(database_url), ref, name)
    if as_json:
        click.echo(_json(project))
    elif project.created:
        click.echo(f"created project {ref} with id {project.id}")
    else:
        click.echo(f"project {ref} (id {project.id}) was discovered from reports; it is active now")


@projects.command("list")
@click.option("--org", help="Only this organization's projects")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def projects_list(org: str | None, as_json: bool, database_url: str | None) -> None:
    """List projects with their live keys and links."""
    from ops import tenancy  # noqa: PLC0415

    rows = tenancy.list_projects(_database_url(database_url), org)
    if as_json:
        click.echo(_json(rows))
        return
    if not rows:
        click.echo(f"no projects{' in ' + org if org else ''}")
        return
    click.echo(f"{'id':>6}  {'project':<40} {'status':<10} {'keys':>4} {'links':>5}  name")
    for project in rows:
        click.echo(
            f"{project.id:>6}  {project.org + '/' + project.slug:<40} {project.status:<10} "
            f"{project.active_keys:>4} {project.links:>5}  {project.name}"
        )


@projects.command("show")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def projects_show(project: str, as_json: bool, database_url: str | None) -> None:
    """Show a project's fields, its keys (never the secrets) and its links."""
    from ops import tenancy  # noqa: PLC0415

    shown = tenancy.show_project(_database_url(database_url), tenancy.parse_project(project))
    if as_json:
        click.echo(_json(shown))
        return
    fields = dataclasses.asdict(shown)
    keys, links = fields.pop("keys"), fields.pop("links")
    fields["project"] = f"{fields.pop('org')}/{fields.pop('slug')}"
    for name in ("project", *(name for name in fields if name != "project")):
        value = fields[name]
        if isinstance(value, dict | list):
            value = json.dumps(value)
        elif isinstance(value, datetime):
            value = _when(value)
        click.echo(f"{name:>16}: {'-' if value is None else value}")
    click.echo(f"{'keys':>16}: {len(keys) or 'none'}")
    for key in shown.keys:
        click.echo(f"{'':>18}{_key_line(key)}")
    click.echo(f"{'links':>16}: {len(links) or 'none'}")
    for link in shown.links:
        click.echo(f"{'':>18}{link.target}  (since {_when(link.created_at)})")


@projects.command("archive")
@click.argument("project")
@database_option
def projects_archive(project: str, database_url: str | None) -> None:
    """Archive a project: every hookyard serve stops accepting its keys."""
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    tenancy.archive_project(_database_url(database_url), ref)
    click.echo(f"archived project {ref}; its keys are no longer accepted")


@projects.command("link")
@click.argument("project")
@click.argument("target")
@click.option("--move", is_flag=True, help="Take the target from the project it is linked to now")
@database_option
def projects_link(project: str, target: str, move: bool, database_url: str | None) -> None:
    """Route a source's webhooks to PROJECT: TARGET is github:OWNER/REPO, slack:TEAM_ID or linear:TEAM_ID."""
    from ops import tenancy  # noqa: PLC0415

    ref, parsed = tenancy.parse_project(project), tenancy.parse_target(target)
    change = tenancy.link(_database_url(database_url), ref, parsed, move=move)
    if change.outcome == "moved":
        click.echo(f"moved {change.target} from {change.previous} to {change.project}")
    elif change.outcome == "unchanged":
        click.echo(f"{change.target} is linked to {change.project} already")
    else:
        click.echo(f"linked {change.target} to {change.project}")


@projects.command("unlink")
@click.argument("target")
@database_option
def projects_unlink(target: str, database_url: str | None) -> None:
    """Stop routing a source's webhooks to a project (github:OWNER/REPO, slack:TEAM_ID, linear:TEAM_ID)."""
    from ops import tenancy  # noqa: PLC0415

    parsed = tenancy.parse_target(target)
    project = tenancy.unlink(_database_url(database_url), parsed)
    click.echo(f"unlinked {parsed} from {project}")


# --- keys ---


@click.group()
def keys() -> None:
    """Project keys: create (shown once), list, revoke.

    A key is the bearer token of /v1/*, the public key of the project's Sentry DSN and the ping
    key of its check URLs.
    """


@keys.command("create")
@click.argument("project")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([scope.value for scope in ALL_SCOPES]),
    help="What the key may do (repeatable) [default: every scope]",
)
@click.option("--label", help="A note to tell keys apart (where the key is used)")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.option(
    "--public-url",
    envvar="HOOKYARD_PUBLIC_URL",
    show_envvar=True,
    default=None,
    help="Base URL senders reach `hookyard serve` at, for the DSN and ping URL "
    "[default: http://HOOKYARD_HOST:HOOKYARD_PORT]",
)
@click.option(
    "--serve-host",
    envvar="HOOKYARD_HOST",
    show_envvar=True,
    default="127.0.0.1",
    show_default=True,
    help="The host `hookyard serve` listens on (used without a public URL)",
)
@click.option(
    "--serve-port",
    envvar="HOOKYARD_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="The port `hookyard serve` listens on (used without a public URL)",
)
@database_option
def keys_create(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    project: str,
    scopes: tuple[str, ...],
    label: str | None,
    as_json: bool,
    public_url: str | None,
    serve_host: str,
    serve_port: int,
    database_url: str | None,
) -> None:
    """Create a key for PROJECT and print it once, with its Sentry DSN and ping URL.

    Hookyard stores only the key's SHA-256: copy the key now, it cannot be shown again.
    """
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    chosen = tenancy.parse_scopes(scopes)
    settings = load_settings(database_url=database_url, hookyard_public_url=public_url)
    base = tenancy.public_base_url(settings.hookyard_public_url, serve_host, serve_port)
    created = tenancy.create_key(settings.database_url, ref, public_url=base, scopes=chosen, label=label)
    if as_json:
        click.echo(_json(created))
        return
    click.echo(f"created key {created.id} for {created.project} (scopes: {', '.join(created.scopes)})")
    click.echo(f"  key       {created.key}")
    click.echo(f"  dsn       {created.dsn}")
    click.echo(f"  ping url  {created.ping_url}")
    click.echo("Copy the key now: Hookyard keeps only its hash and cannot show it again.", err=True)


@keys.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@database_option
def keys_list(project: str, as_json: bool, database_url: str | None) -> None:
    """List PROJECT's keys, revoked ones included: their prefixes, never the keys."""
    from ops import tenancy  # noqa: PLC0415

    ref = tenancy.parse_project(project)
    rows = tenancy.list_keys(_database_url(database_url), ref)
    if as_json:
        click.echo(_json(rows))
        return
    if not rows:
        click.echo(f"no keys for {ref}; create one with `hookyard keys create {project}`")
        return
    for key in rows:
        click.echo(_key_line(key))


@keys.command("revoke")
@click.argument("key_id", type=int)
@database_option
def keys_revoke(key_id: int, database_url: str | None) -> None:
    """Revoke a key: every hookyard serve refuses it within seconds."""
    from ops import tenancy  # noqa: PLC0415

    revoked = tenancy.revoke_key(_database_url(database_url), key_id)
    click.echo(f"revoked key {revoked.id} ({revoked.prefix}…) of {revoked.project}")


def _key_line(key: Key) -> str:
    state = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
    label = f"  {key.label}" if key.label else ""
    return (
        f"{key.id:>6}  {key.prefix}…  {state:<27} created {_when(key.created_at)}  "
        f"last used {_when(key.last_used_at)}  scopes {','.join(key.scopes)}{label}"
    )
