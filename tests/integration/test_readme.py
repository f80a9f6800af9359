"""The README's run command, verbatim, works in a fresh copy of the repository with a stock
(PEP 668) Python: it sets up, migrates and serves the chat."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.checkout import REPO_ROOT, clean_env, copy_checkout, stock_python
from tests.support.process import free_port, wait_until_ready

pytestmark = pytest.mark.slow

SETUP_TIMEOUT_S = 300


def readme_commands() -> list[str]:
    """The shell commands of the README's first screen, in order (run, then test)."""
    first_screen = (REPO_ROOT / "README.md").read_text().split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", first_screen, re.S)]


def test_the_first_screen_has_a_run_and_a_test_command() -> None:
    run, test = readme_commands()
    assert "chat" in run and "venv" in run
    assert test == "bash .ci/run"


def test_the_run_command_serves_a_chat_from_a_fresh_copy(tmp_path: Path) -> None:
    run_command = readme_commands()[0]
    checkout = copy_checkout(tmp_path / "checkout")
    # `python3` on the PATH is the stock Python; the port is moved off 8080 (which may be busy)
    # through the setting the command's own server reads.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(stock_python())
    port = free_port()
    env = clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}", CHAT_PORT=str(port))
    process = subprocess.Popen(
        ["bash", "-c", run_command],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the whole command line, pip and server, can be stopped
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=SETUP_TIMEOUT_S)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert http.post("/api/messages", json={"body": "first!"}).status_code == 201
            assert "first!" in http.get("/").text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert (checkout / "chat.db").exists(), output  # SQLite, in the checkout, as promised
