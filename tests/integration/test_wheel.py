"""The built wheel is the whole server: installed in a fresh virtual environment, run from an
empty directory, it migrates, serves the page with its assets, chats and pages history.

Where the machine's system Python is marked externally managed (PEP 668, as on Debian and
Ubuntu), the environment is made from that Python, the way a newcomer on such a system would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.checkout import clean_env, copy_checkout, stock_python
from tests.support.process import free_port, wait_until_ready

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT_S = 300


def run(command: list[str], *, cwd: Path, timeout: float = INSTALL_TIMEOUT_S) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin/ directory of a fresh virtual environment with the built wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy, as from a fresh clone (and leaving no build/ directory here).
    source = copy_checkout(root / "source")
    dist = root / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), "."], cwd=source)
    (wheel,) = dist.glob("chat-*.whl")
    venv = root / "venv"
    run([str(stock_python()), "-m", "venv", str(venv)], cwd=root)
    pip = venv / "bin" / "pip"
    run([str(pip), "install", "--quiet", str(wheel)], cwd=root)
    shutil.rmtree(source)  # nothing may still read the sources
    yield venv / "bin"


def test_the_installed_wheel_migrates_serves_and_chats_from_an_empty_directory(
    installed: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    migrated = run([str(installed / "chat"), "migrate"], cwd=empty, timeout=60)
    assert "up to date" in migrated
    assert (empty / "chat.db").exists()  # the default database is in the working directory

    port = free_port()
    server = subprocess.Popen(
        [str(installed / "chat"), "--port", str(port)],
        cwd=empty,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server, timeout=30)
        with httpx.Client(base_url=base, timeout=5) as http:
            page = http.get("/")
            assert page.status_code == 200
            for asset in ("/static/chat.css", "/static/js/main.js", "/static/favicon.svg"):
                assert asset in page.text
                response = http.get(asset)
                assert response.status_code == 200, asset
                assert len(response.content) > 100, asset
            with connect(f"ws://127.0.0.1:{port}/chatsocket", open_timeout=5) as socket:
                socket.send(json.dumps({"body": "hello from the wheel"}))
                echo = json.loads(socket.recv(timeout=5))
            assert echo["body"] == "hello from the wheel"
            assert echo["id"] >= 1 and "<div" in echo["html"]
            history = http.get("/api/messages").json()
            assert [m["body"] for m in history["messages"]] == ["hello from the wheel"]
            assert "hello from the wheel" in http.get("/").text
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output


def test_python_dash_m_chat_is_the_same_command(installed: Path, tmp_path: Path) -> None:
    help_text = run([str(installed / "python"), "-m", "chat", "--help"], cwd=tmp_path, timeout=60)
    assert "migrate" in help_text
