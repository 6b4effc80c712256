"""Child process of the kill -9 test: runs the resource import and SIGKILLs itself at a named point.

``python -m tests.tasks.packages.package_kill_child '<json>'`` with ``home`` (the site's home),
``databases`` (logical name → URL), ``packages`` (the step's package specs) and ``point``
(``module:Owner.attr:when:n``: kill before or after the n-th call of that function). The point is
armed by wrapping the function here, in the child, so the product code carries no test hook.
Resources are a two-method stand-in (``path``, ``engine``) to spare the child Prefect's import time.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from tasks.core.settings import get_settings
from tasks.packages.step import ResourcePackageImportStep, ResourcePackageParams
from tasks.steps.context import StepContext


class Resources:
    """What the resource import step uses of :class:`SiteResources`."""

    def __init__(self, home: Path, databases: dict[str, str]) -> None:
        self.home, self.urls, self.engines = home, databases, {}
        self.settings = get_settings()  # the run's settings, as SiteResources carries them

    def path(self, name: str) -> Path:
        folder = self.home / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def engine(self, name: str) -> Engine:
        return self.engines.setdefault(name, create_engine(self.urls[name]))


def arm(point: str) -> None:
    """Wrap the named function so the process kills itself (SIGKILL: no cleanup) at that call."""
    module_name, path, when, nth = point.split(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    original: Callable[..., Any] = getattr(owner, attr)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if when == "before" and calls == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if when == "after" and calls == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, attr, wrapper)


def main(spec: dict[str, Any]) -> None:
    arm(spec["point"])
    params = ResourcePackageParams.model_validate({"packages": spec["packages"], "retry_wait_seconds": 0})
    context = StepContext(execution_id="EXEC_KILL", cutpoint="startup_post_process", step_id="resources",
                          step_key="317500:resources", step_name="resources", version="3.17.5",
                          source_version="3.17.0", target_version="3.17.5", site_id="CN", environment={},
                          resources=Resources(Path(spec["home"]), spec["databases"]))  # type: ignore[arg-type]
    ResourcePackageImportStep(params, context).run()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
    sys.exit(3)  # reached the end: the point was never hit
