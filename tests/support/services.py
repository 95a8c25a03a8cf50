"""Real PostgreSQL and RabbitMQ for the suite, isolated per run: a database and a vhost of its own.

Local services are used when they answer (the machine's PostgreSQL and RabbitMQ, or the ones
named by HOOKYARD_TEST_DATABASE_URL / HOOKYARD_TEST_AMQP_URL). When none answers but Docker
does, testcontainers starts them. Otherwise the tests that need them skip locally and fail
when CI is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

IN_CI = bool(os.environ.get("CI"))


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2
        ).close()
    except OSError:
        return False
    return True


def unavailable(what: str) -> None:
    message = f"{what} is not reachable and Docker cannot start it"
    if IN_CI:
        pytest.fail(f"{message}; CI never skips the tests that need it", pytrace=False)
    pytest.skip(message)


@dataclass
class RabbitAdmin:
    """Creates and deletes vhosts: rabbitmqctl on the host, or inside the container."""

    container: object | None = None

    def _run(self, *args: str) -> None:
        if self.container is not None:
            code, output = self.container.exec(["rabbitmqctl", *args])  # type: ignore[attr-defined]
            if code != 0:
                raise RuntimeError(output)
            return
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def add_vhost(self, name: str, user: str) -> None:
        self._run("add_vhost", name)
        self._run("set_permissions", "-p", name, user, ".*", ".*", ".*")

    def delete_vhost(self, name: str) -> None:
        self._run("delete_vhost", name)


def rabbit_admin_available() -> bool:
    return shutil.which("rabbitmqctl") is not None


def vhost_url(base: str, vhost: str) -> str:
    parts = urlsplit(base)
    return parts._replace(path="/" + quote(vhost, safe="")).geturl()
