"""Real files with real ages for the cleanup tests, and a way to make one impossible to remove."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DAY = 86_400


def aged(path: Path, days: float, content: bytes = b"2024-01-01 INFO order 42 paid\n" * 200) -> Path:
    """Write ``path`` and set its access and modification times ``days`` days back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    set_age(path, days)
    return path


def set_age(path: Path, days: float) -> None:
    import os

    when = time.time() - days * DAY
    os.utime(path, (when, when))


@contextmanager
def immovable(path: Path) -> Iterator[Path]:
    """Make ``path`` immutable (``chattr +i``): even root cannot delete or rename it. Undone afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is needed to make a file that root cannot remove")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this file system refuses chattr +i: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
