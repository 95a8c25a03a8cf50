"""The fleet as processes: ``hookyard serve`` and ``hookyard worker`` on the run's database and vhost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GITHUB_SECRETS, INGEST_TOKENS, LINEAR_SECRETS, SLACK_SECRETS, free_port
from tests.support.processes import HookyardProcess, fleet_env, start_web, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def env(database_url: str, empty_queues: str) -> dict[str, str]:
    return fleet_env(
        DATABASE_URL=database_url,
        AMQP_URL=empty_queues,
        GITHUB_WEBHOOK_SECRET=",".join(GITHUB_SECRETS),
        SLACK_SIGNING_SECRET=",".join(SLACK_SECRETS),
        LINEAR_WEBHOOK_SECRET=",".join(LINEAR_SECRETS),
        HOOKYARD_INGEST_TOKEN=",".join(INGEST_TOKENS),
        HOOKYARD_WORKER_METRICS_PORT="0",
        HOOKYARD_LOG_FORMAT="json",
    )


class Fleet:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[HookyardProcess] = []
        self._workers = 0

    def web(self, **env: str) -> HookyardProcess:
        process = start_web({**self.env, **env}, self.port, self.logs / "web.log")
        self.processes.append(process)
        return process

    def worker(self, **env: str) -> HookyardProcess:
        self._workers += 1
        process = start_worker({**self.env, **env}, self.logs / f"worker-{self._workers}.log")
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def fleet(env: dict[str, str], tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(env, tmp_path)
    try:
        yield running
    finally:
        running.stop()
