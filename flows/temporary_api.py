"""The temporary Prefect API of ``ft-upgrade run`` / ``resume`` without a server, started at once.

Without ``PREFECT_API_URL``, Prefect starts a temporary API server when the flow makes its first call: it
imports its whole server package into this process only to launch it (seconds), then waits for it to boot
(seconds more), while nothing else happens. Started here, as the command begins, the server boots in its
own process while this one imports Prefect and the project and checks the configs; this process never
imports the server package. The same command Prefect would run, with the same ``PREFECT_HOME`` and
settings; stopped when the command ends.

``FT_UPGRADE_EARLY_API=0`` leaves it to Prefect, as before. Only when the choice is certain: a ``PREFECT_API_URL`` in the environment or in the active profile of
``PREFECT_HOME`` (``profiles.toml``) leaves everything to Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

_process: subprocess.Popen[bytes] | None = None


def start_early() -> str | None:
    """Launch the temporary API server now and point this process at it (``PREFECT_API_URL``); None when a
    server is configured, Prefect is already imported (its settings are read), or the profile is unclear."""
    global _process
    if _process is not None or "prefect" in sys.modules or not _no_api_configured():
        return None
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        return None
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},
        stdin=subprocess.DEVNULL)
    atexit.register(stop)  # registered before Prefect's own handlers, so it runs after them (they flush logs)
    api = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_API_URL"] = api
    return api


def wait_ready(timeout: float = 120) -> None:
    """Return once the server started by :func:`start_early` answers (nothing to wait for without one)."""
    if _process is None:
        return
    import httpx

    api = os.environ["PREFECT_API_URL"]
    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if _process.poll() is not None:
                raise RuntimeError(f"the temporary Prefect API server exited with code {_process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{api}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"the temporary Prefect API server did not answer within {timeout:.0f} s")


def stop() -> None:
    global _process
    if _process is None:
        return
    _process.terminate()
    try:
        _process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _process.kill()
        _process.wait()
    _process = None


def _no_api_configured() -> bool:
    """True when neither the environment nor the active profile names an API URL."""
    if os.environ.get("PREFECT_API_URL") or os.environ.get("FT_UPGRADE_EARLY_API") == "0":
        return False
    if Path("prefect.toml").exists() or Path(".env").exists() or "tool.prefect" in _text(Path("pyproject.toml")):
        return False  # settings files Prefect also reads here: leave the choice to it
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    if not path.exists():
        return True
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    settings = data.get("profiles", {}).get(active, {})
    return isinstance(settings, dict) and not settings.get("PREFECT_API_URL")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""
