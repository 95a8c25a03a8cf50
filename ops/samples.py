"""Signed sample deliveries shaped like the vendors' own, for the demo, the tests and the bench.

Each builder returns ``(path, headers, body)`` ready to POST. Sizes follow real deliveries:
a Slack message event is about 1 KB, a GitHub ``star`` about 6 KB, ``issues.opened`` about 13 KB.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import orjson

Request = tuple[str, dict[str, str], bytes]


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def github_headers(secret: str, body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": "sha256=" + _hmac_hex(secret, body),
        "User-Agent": "GitHub-Hookshot/hookyard-sample",
    }


def slack_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + _hmac_hex(secret, b"v0:" + ts.encode() + b":" + body),
    }


def linear_headers(
    secret: str, body: bytes, delivery_id: str | None = None, event: str = "Issue"
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Linear-Event": event,
        "Linear-Signature": _hmac_hex(secret, body),
    }
    if delivery_id:
        headers["Linear-Delivery"] = delivery_id
    return headers


def _user(login: str, user_id: int) -> dict[str, Any]:
    base = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def _repository(full_name: str, repo_id: int) -> dict[str, Any]:
    owner, name = full_name.split("/")
    api = f"https://api.github.com/repos/{full_name}"
    urls = {
        f"{key}_url": f"{api}/{key}{suffix}"
        for key, suffix in (
            ("forks", ""),
            ("keys", "{/key_id}"),
            ("collaborators", "{/collaborator}"),
            ("teams", ""),
            ("hooks", ""),
            ("issue_events", "/events{/number}"),
            ("events", ""),
            ("assignees", "{/user}"),
            ("branches", "{/branch}"),
            ("tags", ""),
            ("blobs", "{/sha}"),
            ("git_tags", "{/sha}"),
            ("git_refs", "{/sha}"),
            ("trees", "{/sha}"),
            ("statuses", "/{sha}"),
            ("languages", ""),
            ("stargazers", ""),
            ("contributors", ""),
            ("subscribers", ""),
            ("subscription", ""),
            ("commits", "{/sha}"),
            ("git_commits", "{/sha}"),
            ("comments", "{/number}"),
            ("issue_comment", "/comments{/number}"),
            ("contents", "/{+path}"),
            ("compare", "/{base}...{head}"),
            ("merges", ""),
            ("archive", "/{archive_format}{/ref}"),
            ("downloads", ""),
            ("issues", "{/number}"),
            ("pulls", "{/number}"),
            ("milestones", "{/number}"),
            ("notifications", "{?since,all,participating}"),
            ("labels", "{/name}"),
            ("releases", "{/id}"),
            ("deployments", ""),
        )
    }
    return {
        "id": repo_id,
        "node_id": f"R_kgDO{repo_id}",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": _user(owner, repo_id + 1),
        "html_url": f"https://github.com/{full_name}",
        "description": "Event-ingestion fleet: signed webhooks in, PostgreSQL exactly once.",
        "fork": False,
        "url": api,
        **urls,
        "created_at": "2026-01-04T10:00:00Z",
        "updated_at": "2026-11-20T08:00:00Z",
        "pushed_at": "2026-11-23T18:00:00Z",
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"https://github.com/{full_name}.git",
        "svn_url": f"https://github.com/{full_name}",
        "homepage": None,
        "size": 1210,
        "stargazers_count": 42,
        "watchers_count": 42,
        "language": "Python",
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 3,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 7,
        "license": None,
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": ["webhooks", "rabbitmq", "postgresql"],
        "visibility": "public",
        "forks": 3,
        "open_issues": 7,
        "watchers": 42,
        "default_branch": "main",
    }


def github_star(delivery_id: str | None = None, repository: str = "hookyard/fleet") -> tuple[str, bytes, str]:
    """A ``star`` (action ``created``) delivery: (event, body, delivery id), about 6 KB."""
    delivery_id = delivery_id or str(uuid.uuid4())
    body = {
        "action": "created",
        "starred_at": "2026-11-24T04:00:00Z",
        "repository": _repository(repository, 700_001),
        "sender": _user("octocat", 583_231),
    }
    return "star", orjson.dumps(body), delivery_id


def github_issue_opened(
    delivery_id: str | None = None, repository: str = "hookyard/fleet"
) -> tuple[str, bytes, str]:
    """An ``issues`` (action ``opened``) delivery: (event, body, delivery id), about 13 KB."""
    delivery_id = delivery_id or str(uuid.uuid4())
    repo = _repository(repository, 700_001)
    user = _user("octocat", 583_231)
    issue_url = f"{repo['url']}/issues/1347"
    body = {
        "action": "opened",
        "issue": {
            "url": issue_url,
            "repository_url": repo["url"],
            "labels_url": f"{issue_url}/labels{{/name}}",
            "comments_url": f"{issue_url}/comments",
            "events_url": f"{issue_url}/events",
            "html_url": f"https://github.com/{repository}/issues/1347",
            "id": 1_234_567,
            "node_id": "I_kwDOA",
            "number": 1347,
            "title": "Deliveries are stored twice after a broker restart",
            "user": user,
            "labels": [
                {
                    "id": 1,
                    "node_id": "LA_1",
                    "url": f"{repo['url']}/labels/bug",
                    "name": "bug",
                    "color": "d73a4a",
                    "default": True,
                    "description": "Something isn't working",
                }
            ],
            "state": "open",
            "locked": False,
            "assignee": user,
            "assignees": [user],
            "milestone": None,
            "comments": 0,
            "created_at": "2026-11-24T04:00:00Z",
            "updated_at": "2026-11-24T04:00:00Z",
            "closed_at": None,
            "author_association": "OWNER",
            "active_lock_reason": None,
            "body": "When RabbitMQ restarts while a worker holds unacked messages, " * 50,
            "reactions": {
                "url": f"{issue_url}/reactions",
                "total_count": 0,
                "+1": 0,
                "-1": 0,
                "laugh": 0,
                "hooray": 0,
                "confused": 0,
                "heart": 0,
                "rocket": 0,
                "eyes": 0,
            },
            "timeline_url": f"{issue_url}/timeline",
            "performed_via_github_app": None,
            "state_reason": None,
        },
        "repository": repo,
        "sender": user,
        "organization": {
            "login": repository.split("/", maxsplit=1)[0],
            "id": 9_001,
            "url": "https://api.github.com/orgs/hookyard",
        },
    }
    return "issues", orjson.dumps(body), delivery_id


def slack_message(event_id: str | None = None, team: str = "T0HOOKYARD", channel: str = "C0INGEST") -> bytes:
    """An Events API ``message`` callback, about 1 KB."""
    event_id = event_id or "Ev" + uuid.uuid4().hex[:16].upper()
    body = {
        "token": "XXYYZZ",
        "team_id": team,
        "context_team_id": team,
        "api_app_id": "A0HOOKYARD",
        "event": {
            "type": "message",
            "channel": channel,
            "user": "U0ALICE",
            "text": "Deploy of ingest 1.4.2 done. " * 8,
            "ts": "1732420800.000100",
            "event_ts": "1732420800.000100",
            "channel_type": "channel",
            "client_msg_id": str(uuid.uuid4()),
            "blocks": [
                {
                    "type": "rich_text",
                    "block_id": "b1",
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [{"type": "text", "text": "Deploy of ingest 1.4.2 done."}],
                        }
                    ],
                }
            ],
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": "U0BOT", "is_bot": True}],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }
    return orjson.dumps(body)


def linear_issue(entity_id: str | None = None, team: str = "team-ingest", now_ms: int | None = None) -> bytes:
    """A Linear ``Issue`` ``create`` webhook with a fresh ``webhookTimestamp``."""
    entity_id = entity_id or str(uuid.uuid4())
    body = {
        "action": "create",
        "type": "Issue",
        "createdAt": "2026-11-24T04:00:00.000Z",
        "organizationId": "org-hookyard",
        "webhookId": "wh-1",
        "webhookTimestamp": now_ms if now_ms is not None else int(time.time() * 1000),
        "url": f"https://linear.app/hookyard/issue/ING-12/{entity_id}",
        "actor": {"id": "user-ana", "name": "Ana", "type": "user"},
        "data": {
            "id": entity_id,
            "identifier": "ING-12",
            "title": "Replay dead letters from the CLI",
            "teamId": team,
            "team": {"id": team, "key": "ING", "name": "Ingest"},
            "priority": 2,
            "stateId": "state-todo",
            "labelIds": [],
            "createdAt": "2026-11-24T04:00:00.000Z",
        },
    }
    return orjson.dumps(body)


def deployment(
    deployment_id: str | None = None, status: str = "succeeded", service: str = "ingest"
) -> dict[str, Any]:
    return {
        "id": deployment_id or f"deploy-{uuid.uuid4()}",
        "service": service,
        "environment": "production",
        "version": "1.4.2",
        "status": status,
        "project": "hookyard",
        "commit_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "started_at": "2026-11-24T03:58:00Z",
        "finished_at": "2026-11-24T04:00:00Z",
    }


def signed_requests(
    *, github_secret: str, slack_secret: str, linear_secret: str, ingest_token: str, tag: str = ""
) -> list[tuple[str, str, Request]]:
    """One signed request per source: (source, delivery id, (path, headers, body))."""
    out: list[tuple[str, str, Request]] = []
    event, body, gid = github_issue_opened(f"demo-{tag}{uuid.uuid4()}")
    out.append(("github", gid, ("/webhooks/github", github_headers(github_secret, body, event, gid), body)))
    event_id = "Ev" + uuid.uuid4().hex[:16].upper()
    body = slack_message(event_id)
    out.append(
        ("slack", f"A0HOOKYARD:{event_id}", ("/webhooks/slack", slack_headers(slack_secret, body), body))
    )
    lid = str(uuid.uuid4())
    body = linear_issue()
    out.append(("linear", lid, ("/webhooks/linear", linear_headers(linear_secret, body, lid), body)))
    dep = deployment()
    body = orjson.dumps(dep)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ingest_token}"}
    out.append(("deployment", str(dep["id"]), ("/v1/deployments", headers, body)))
    return out
