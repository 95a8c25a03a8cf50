"""Start the real ``hookyard`` console script as processes, the way an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.waiting import wait_until

HOOKYARD = str(Path(sys.executable).parent / "hookyard")

_OURS = ("DATABASE_URL", "AMQP_URL", "GITHUB_", "SLACK_", "LINEAR_", "HOOKYARD_")


def fleet_env(**values: str) -> dict[str, str]:
    """The test runner's environment without any Hookyard setting, plus ``values``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    env.update(values)
    return env


class HookyardProcess:
    """One ``hookyard <args>`` process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [HOOKYARD, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acks, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


def start_web(env: dict[str, str], port: int, log_path: Path) -> HookyardProcess:
    web = HookyardProcess(["serve", "--host", "127.0.0.1", "--port", str(port)], env, log_path)

    def healthy() -> bool:
        if web.process.poll() is not None:
            raise AssertionError(f"hookyard serve exited:\n{web.log()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=30, what="hookyard serve to answer /healthz")
    return web


def start_worker(env: dict[str, str], log_path: Path, threads: int = 8) -> HookyardProcess:
    worker = HookyardProcess(["worker", "--processes", "1", "--threads", str(threads)], env, log_path)
    wait_until(
        lambda: "worker_started" in worker.log() or worker.process.poll() is not None,
        timeout=30,
        what="hookyard worker to start",
    )
    if worker.process.poll() is not None:
        raise AssertionError(f"hookyard worker exited:\n{worker.log()}")
    return worker
