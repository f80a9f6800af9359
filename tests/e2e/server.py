"""The server process helper now lives in tests.support.process; kept for existing imports."""

from tests.support.process import REPO_ROOT, ChatServer, ServerError, free_port

__all__ = ["REPO_ROOT", "ChatServer", "ServerError", "free_port"]
