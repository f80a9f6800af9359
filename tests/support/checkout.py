"""A clean copy of the repository and a stock Python, as a newcomer on a fresh machine has them.

The copy holds the working-tree version of every tracked file (what a clean clone of this
commit would hold, plus uncommitted edits under test) and nothing else: no virtual environment,
no build directories, no databases. Where the machine's system Python is marked externally
managed (PEP 668, as on Debian and Ubuntu), that is the Python used, so commands that only work
with a permissive pip fail here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def copy_checkout(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        relative = name.decode()
        origin = REPO_ROOT / relative
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            destination.symlink_to(os.readlink(origin))
        elif origin.exists():  # a tracked file deleted in the working tree is not copied
            shutil.copy2(origin, destination)
    return target


def externally_managed(python: Path) -> bool:
    """Whether `python` refuses `pip install` outside a virtual environment (PEP 668)."""
    if not python.exists():
        return False
    stdlib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return bool(stdlib) and (Path(stdlib) / "EXTERNALLY-MANAGED").exists()


def stock_python() -> Path:
    """The PEP 668 system Python when there is one, else the interpreter behind this venv."""
    if externally_managed(SYSTEM_PYTHON):
        return SYSTEM_PYTHON
    return Path(sysconfig.get_config_var("BINDIR") or Path(sys.executable).parent) / "python3"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that could find the source tree, a virtual
    environment or a CHAT_* setting of the test run."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not key.startswith("CHAT_")
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}
