"""The harness's handle on the load generator process: send a job, wait for its result."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.servers import REPO_ROOT, ServerError


class LoadGenerator:
    """One long-lived ``python -m bench.loadgen`` process, restarted if a job hangs or fails.

    Keeping it alive between jobs saves an interpreter start and the imports per measurement,
    which add up over a hundred measurements on a small machine.
    """

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        with self._log_path.open("a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"],
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )

    def run(self, job: dict[str, Any], *, limit: float) -> dict[str, Any]:
        """Run one job; give up after ``limit`` seconds and restart the process."""
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({**job, "timeout": limit}) + "\n")
        process.stdin.flush()
        line = self._read_line(process, deadline=time.monotonic() + limit + 15)
        if line is None:
            self.close()
            raise ServerError(f"load generator gave no result for {job['kind']!r} in time")
        result: dict[str, Any] = json.loads(line)
        return result

    def _read_line(self, process: subprocess.Popen[str], *, deadline: float) -> str | None:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if selector.select(remaining):
                    line = process.stdout.readline()
                    return line or None
                if process.poll() is not None:
                    return None
        return None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
