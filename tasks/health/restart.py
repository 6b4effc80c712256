"""On an unhealthy service: run its configured restart command, check again until healthy or out of time.

Used by health checks (requirements 4, 异常流程 4: record the failed service, try to restart it, notify
if that fails). Generic over the check: give a function that checks one target and a predicate
that says whether its outcome is healthy. The command runs without a shell, with a timeout; its
output is kept (tail, masked) for the report.

Example:
    ```python
    from tasks.service_restart import RestartCommand, restart_and_recheck

    spec = RestartCommand(command=["systemctl", "restart", "ft-manager"], recheck_seconds=90)
    first = step._check_http(endpoint)
    if not first.healthy:
        recovery = restart_and_recheck("ft-manager", first, check=lambda: step._check_http(endpoint),
                                       healthy=lambda o: o.healthy, spec=spec, logger=logger)
        first = recovery.last  # the last check's outcome; recovery.healthy says if it came back
    ```
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import Field

from tasks.core.language import words
from tasks.core.masking import mask_text
from tasks.core.steps import StepParams

T = TypeVar("T")
OUTPUT_TAIL = 2000

#: What a restart did, for logs (English) and the report (the site's language).
TEXT = {
    "zh": {"timed_out": "{seconds:.1f} 秒后超时", "exit": "退出码 {code}，耗时 {seconds:.1f} 秒",
           "healthy": "已恢复正常", "unhealthy": "仍然异常",
           "restarted": "已重启 {attempts} 次，{runs}；{checks} 次复查后{state}"},
    "en": {"timed_out": "timed out after {seconds:.1f}s", "exit": "exit {code} in {seconds:.1f}s",
           "healthy": "healthy again", "unhealthy": "still unhealthy",
           "restarted": "restarted {attempts}x ({runs}); {state} after {checks} re-check(s)"},
}


class RestartCommand(StepParams):
    """How to restart one service, and how long to wait for it to come back (a config fragment)."""

    command: list[str] = Field(min_length=1, description="argv, run without a shell.")
    timeout_seconds: float = Field(default=120, gt=0, le=3600, description="Limit for the command itself.")
    recheck_seconds: float = Field(default=60, ge=0, le=3600, description="Keep checking this long after it.")
    recheck_interval_seconds: float = Field(default=2, gt=0, le=300)
    attempts: int = Field(default=1, ge=1, le=5, description="Restart attempts before giving up.")


@dataclass
class CommandRun:
    """One run of the restart command."""

    returncode: int | None
    seconds: float
    output: str
    timed_out: bool = False

    def describe(self, language: str = "en") -> str:
        w = words(TEXT, language)
        if self.timed_out:
            return w["timed_out"].format(seconds=self.seconds)
        return w["exit"].format(code=self.returncode, seconds=self.seconds)


@dataclass
class RestartOutcome(Generic[T]):
    """What the restart achieved: ``healthy`` after ``attempts``; ``last`` is the last check's outcome."""

    target: str
    healthy: bool
    last: T
    attempts: int = 0
    checks: int = 0
    runs: list[CommandRun] = field(default_factory=list)

    def describe(self, language: str = "en") -> str:
        """What happened, in English (logs) unless ``language`` says otherwise (the report)."""
        w = words(TEXT, language)
        runs = ("，" if language != "en" else ", ").join(r.describe(language) for r in self.runs)
        return w["restarted"].format(attempts=self.attempts, runs=runs, checks=self.checks,
                                     state=w["healthy" if self.healthy else "unhealthy"])


def run_command(spec: RestartCommand, *, secrets: Iterable[str] = ()) -> CommandRun:
    """Run the restart command (no shell) and keep the tail of its output, masked."""
    start = time.monotonic()
    try:
        done = subprocess.run(spec.command, capture_output=True, timeout=spec.timeout_seconds, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"")
        return CommandRun(None, time.monotonic() - start, _tail(output, secrets), timed_out=True)
    except OSError as exc:  # command not found, not executable
        return CommandRun(None, time.monotonic() - start, mask_text(str(exc), secrets))
    return CommandRun(done.returncode, time.monotonic() - start, _tail(done.stdout + done.stderr, secrets))


def restart_and_recheck(target: str, failed: T, check: Callable[[], T], healthy: Callable[[T], bool],
                        spec: RestartCommand, *, logger: logging.Logger | logging.LoggerAdapter | None = None,
                        secrets: Iterable[str] = (), sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> RestartOutcome[T]:
    """Restart ``target`` and re-check it until healthy, up to ``spec.attempts`` times.

    Call it with the outcome of a failed check (``failed``). Each attempt runs the command, then calls ``check`` every
    ``recheck_interval_seconds`` until ``healthy(outcome)`` or ``recheck_seconds`` have passed
    (always at least once). Never raises for an unhealthy service: the caller decides.
    """
    log = logger or logging.getLogger("ft_upgrade")
    secrets = tuple(secrets)
    outcome = RestartOutcome(target, False, failed)
    while outcome.attempts < spec.attempts:
        outcome.attempts += 1
        log.warning("%s unhealthy: restart attempt %d/%d: %s", target, outcome.attempts, spec.attempts,
                    mask_text(" ".join(spec.command), secrets))
        run = run_command(spec, secrets=secrets)
        outcome.runs.append(run)
        if run.returncode not in (0, None) or run.timed_out:
            log.warning("%s: restart command %s: %s", target, run.describe(), run.output[-300:])
        deadline = clock() + spec.recheck_seconds
        while True:
            outcome.last = check()
            outcome.checks += 1
            if healthy(outcome.last):
                outcome.healthy = True
                log.info("%s healthy again: %s", target, outcome.describe())
                return outcome
            if clock() + spec.recheck_interval_seconds > deadline:
                break
            sleep(spec.recheck_interval_seconds)
    log.error("%s still unhealthy: %s", target, outcome.describe())
    return outcome


def _tail(output: bytes, secrets: Iterable[str]) -> str:
    text = output.decode("utf-8", "replace")
    return mask_text(text[-OUTPUT_TAIL:], secrets)
