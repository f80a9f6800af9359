"""A real OpenID Connect provider (panva/oidc-provider, tests/oidc/provider.mjs) on loopback.

`OidcProvider` runs one Node process on a port the kernel picks, with one confidential client
and a fixed set of users, and waits for the one JSON line the script prints when it listens.
The process exits when its stdin closes, so it dies with the test process however that ends.

Fixtures (imported by tests/conftest.py): `oidc_provider`, one provider for the session whose
client has `RP_REDIRECT_URI`, plus `register_client()` for tests whose relying party listens on
its own port; `make_oidc_provider`, a factory for tests that need their own provider. Under
`CI=true` a missing `node` or `tests/oidc/node_modules` fails those tests; elsewhere they skip.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest

from tests.support.services import unavailable

logger = logging.getLogger(__name__)

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
SCRIPT = OIDC_DIR / "provider.mjs"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 5.0
MIN_NODE = (20, 19)
SERVICE = "the OIDC test provider (node tests/oidc/provider.mjs)"

# Where the session provider's client is sent back to. Nothing listens there: the login helper
# returns that redirect without following it, and a browser test intercepts it.
RP_REDIRECT_URI = "http://127.0.0.1/rp/callback"

# Ada and Eve claim the same address; only Ada's is verified. An account must be linked by `sub`,
# never by email alone, and an unverified address must not be trusted.
TEST_USERS: tuple[Mapping[str, Any], ...] = (
    {
        "sub": "u-ada",
        "email": "ada@example.org",
        "email_verified": True,
        "preferred_username": "ada",
        "name": "Ada Lovelace",
    },
    {
        "sub": "u-eve",
        "email": "ada@example.org",
        "email_verified": False,
        "preferred_username": "eve",
        "name": "Eve Mallory",
    },
    {
        "sub": "u-bob",
        "email": "bob@example.org",
        "email_verified": True,
        "preferred_username": "bob",
        "name": "Bob Baker",
    },
)


class OidcProviderError(RuntimeError):
    """The provider did not start, stop or answer as expected; the message has its log."""


@dataclass(frozen=True)
class OidcClient:
    """A confidential client registered at the provider."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


def missing_prerequisite() -> str | None:
    """Why the provider cannot run on this machine, or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not on PATH (Node.js >= 20.19 is needed)"
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"`node --version` failed: {error!r}"
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < MIN_NODE:
        return f"node {version} is too old for oidc-provider 9 (>= 20.19 is needed)"
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return f"{OIDC_DIR / 'node_modules'} is missing: run `npm ci --prefix tests/oidc`"
    return None


class OidcProvider:
    """One oidc-provider process on 127.0.0.1; `issuer` is known once `start()` returns."""

    def __init__(
        self,
        *,
        redirect_uris: Sequence[str],
        users: Sequence[Mapping[str, Any]] = TEST_USERS,
        client_id: str = "chat-test",
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        conform_id_token_claims: bool = False,
        workdir: Path | None = None,
    ) -> None:
        """`conform_id_token_claims=True` keeps profile and email claims out of the ID token
        (userinfo only), as OIDC Core 5.4 reads; by default the ID token carries them, as most
        providers do."""
        self.client = OidcClient(
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(24),
            redirect_uris=tuple(redirect_uris),
        )
        self.client_id = self.client.client_id
        self.client_secret = self.client.client_secret
        self.redirect_uris = self.client.redirect_uris
        self.users = tuple(users)
        self._registration_token = secrets.token_urlsafe(24)
        self._config = {
            "clients": [
                {
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "redirect_uris": list(self.redirect_uris),
                    "response_types": ["code"],
                    "grant_types": ["authorization_code"],
                    "token_endpoint_auth_method": token_endpoint_auth_method,
                }
            ],
            "users": [dict(user) for user in self.users],
            "registration_token": self._registration_token,
            "conform_id_token_claims": conform_id_token_claims,
        }
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="oidc-provider-"))
        self.log_path = self.workdir / "oidc-provider.log"
        self._issuer: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def issuer(self) -> str:
        if self._issuer is None:
            raise OidcProviderError("the provider has not been started")
        return self._issuer

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise OidcProviderError("the provider is not running")
        return self._process.pid

    def start(self) -> Self:
        if self._process is not None:
            raise OidcProviderError("the provider is already started")
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("`node` is not on PATH")
        config_path = self.workdir / "oidc-provider.json"
        config_path.write_text(json.dumps(self._config))
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [node, str(SCRIPT), "--config", str(config_path), "--port", "0"],
                cwd=OIDC_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        try:
            ready = self._read_ready_line(started + START_TIMEOUT_S)
        except BaseException:
            self._kill()
            raise
        self._issuer = str(ready["issuer"])
        self.startup_seconds = time.monotonic() - started
        logger.info("oidc-provider %s ready in %.2fs", self._issuer, self.startup_seconds)
        return self

    def _read_ready_line(self, deadline: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OidcProviderError(
                        f"no ready line within {START_TIMEOUT_S}s\n{self.log_tail()}"
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    code = process.wait(timeout=STOP_TIMEOUT_S)
                    raise OidcProviderError(
                        f"the provider exited with {code} before it was ready\n{self.log_tail()}"
                    )
                buffer += chunk
        line = buffer.split(b"\n", 1)[0]
        try:
            ready = json.loads(line)
        except ValueError:
            raise OidcProviderError(
                f"the first stdout line is not JSON: {line!r}\n{self.log_tail()}"
            ) from None
        if not isinstance(ready, dict) or not str(ready.get("issuer", "")).startswith("http://"):
            raise OidcProviderError(f"unexpected ready line {line!r}\n{self.log_tail()}")
        return ready

    def stop(self) -> None:
        """Close stdin and SIGTERM; kill and raise if it is still there after STOP_TIMEOUT_S."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._close_pipes(process)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
                raise OidcProviderError(
                    f"the provider ignored SIGTERM for {STOP_TIMEOUT_S}s and was killed\n"
                    f"{self.log_tail()}"
                ) from None
        self._close_pipes(process)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def close_stdin(self) -> None:
        """What happens when the test process dies: the provider must exit by itself."""
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; its exit code."""
        if self._process is None:
            raise OidcProviderError("the provider is not running")
        return self._process.wait(timeout=timeout)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
            self._close_pipes(process)

    @staticmethod
    def _close_pipes(process: subprocess.Popen[bytes]) -> None:
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text() or "(empty)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"oidc-provider log {self.log_path}:\n{tail}"

    def register_client(
        self,
        *,
        redirect_uris: Sequence[str],
        token_endpoint_auth_method: str = "client_secret_basic",
    ) -> OidcClient:
        """Register one more confidential client (RFC 7591), e.g. for a server on its own port."""
        response = httpx.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": list(redirect_uris),
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": token_endpoint_auth_method,
            },
            headers={"Authorization": f"Bearer {self._registration_token}"},
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code != 201:
            raise OidcProviderError(
                f"client registration answered {response.status_code}: {response.text}\n"
                f"{self.log_tail()}"
            )
        body = response.json()
        return OidcClient(
            client_id=body["client_id"],
            client_secret=body["client_secret"],
            redirect_uris=tuple(body["redirect_uris"]),
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def require_provider() -> None:
    """Skip the test (fail it under CI=true) when the provider cannot run here."""
    reason = missing_prerequisite()
    if reason is not None:
        unavailable(SERVICE, reason)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    require_provider()
    workdir = tmp_path_factory.mktemp("oidc")
    with OidcProvider(redirect_uris=[RP_REDIRECT_URI], workdir=workdir) as provider:
        yield provider


OidcProviderFactory = Callable[..., OidcProvider]


@pytest.fixture
def make_oidc_provider(tmp_path: Path) -> Iterator[OidcProviderFactory]:
    """Start providers of this test's own; keyword arguments go to `OidcProvider`."""
    require_provider()
    started: list[OidcProvider] = []

    def factory(**options: Any) -> OidcProvider:
        options.setdefault("redirect_uris", [RP_REDIRECT_URI])
        workdir = tmp_path / f"oidc-{len(started)}"
        workdir.mkdir()
        provider = OidcProvider(workdir=workdir, **options)
        started.append(provider)
        return provider.start()

    yield factory
    for provider in reversed(started):
        provider.stop()
