"""Progress numbers of a migration: done, remaining, rows/s, ETA. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    """Where a task stands. ``rows_done`` counts all runs; the rate is this run's."""

    task: str
    rows_done: int
    total_rows: int
    run_rows: int
    run_seconds: float
    paused_seconds: float = 0.0

    @property
    def remaining(self) -> int:
        return max(self.total_rows - self.rows_done, 0)

    @property
    def rows_per_second(self) -> float:
        return self.run_rows / self.run_seconds if self.run_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rows_per_second
        return self.remaining / rate if rate > 0 else None

    @property
    def percent(self) -> float:
        return 100.0 if self.total_rows <= 0 else min(100.0, 100.0 * self.rows_done / self.total_rows)

    def describe(self) -> str:
        """One line for the progress artifact and the log."""
        return (f"{self.task}: {self.rows_done:,}/{self.total_rows:,} rows, {self.remaining:,} remaining, "
                f"{self.rows_per_second:,.0f} rows/s, ETA {format_duration(self.eta_seconds)}")


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``12s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
