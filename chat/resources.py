"""Files the server ships inside its package: page templates, static assets, migrations.

The repository keeps them at its top level (`templates/`, `static/`, `migrations/`); the package
holds symbolic links to them, so a checkout and an installed wheel (where the build copied the
files into `chat/`) find them the same way: through `importlib.resources`, never through paths
relative to the source tree or the current directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


class MissingResource(RuntimeError):
    """The installed package lacks a directory it needs (a broken or zipped install)."""


def templates_dir() -> Path:
    return _directory("templates")


def static_dir() -> Path:
    return _directory("static")


def migrations_dir() -> Path:
    return _directory("migrations")


def _directory(name: str) -> Path:
    # Wheels install unpacked, so the resource is a real directory; Jinja2, StaticFiles and
    # Alembic all need one.
    resource = files("chat") / name
    path = Path(str(resource))
    if not path.is_dir():
        raise MissingResource(f"the chat package has no {name!r} directory at {path}")
    return path
