"""Command line and process set-up shared by the peer servers."""

from __future__ import annotations

import argparse
import logging
import resource


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    # Per-message INFO logging would measure the log handler, not the server: the harness runs
    # every server (chat included) at WARNING.
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    raise_fd_limit()
    return args


def raise_fd_limit() -> None:
    """Lift the soft open-file limit to the hard one: thousands of sockets are held open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
