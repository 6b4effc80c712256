"""How fast to copy: chunk size toward a target duration, a rows/s ceiling, when to pause. Pure.

The runner feeds observations in and acts on the answers, so every rule here is tested with plain
numbers (cf. alembic's pure ``RevisionStep.should_*``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Throttle:
    """The configured limits of one migration step."""

    max_rows_per_second: float | None = None
    max_threads_running: int | None = None
    target_chunk_seconds: float = 0.5
    min_chunk_rows: int = 100
    max_chunk_rows: int = 50_000
    initial_chunk_rows: int = 1_000
    pause_poll_seconds: float = 1.0


class ChunkSizer:
    """Chunk size that keeps each chunk near ``target_seconds``.

    After each chunk the size moves toward ``rows / seconds * target`` but at most halves or
    doubles at once (one slow chunk from a lock wait must not collapse it), within the bounds.
    """

    def __init__(self, target_seconds: float, minimum: int, maximum: int, initial: int) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"chunk bounds must satisfy 0 < min ({minimum}) <= max ({maximum})")
        self.target_seconds = target_seconds
        self.minimum = minimum
        self.maximum = maximum
        self.size = _clamp(initial, minimum, maximum)

    @classmethod
    def for_throttle(cls, throttle: Throttle) -> ChunkSizer:
        ceiling = chunk_ceiling(throttle)
        return cls(throttle.target_chunk_seconds, throttle.min_chunk_rows, ceiling,
                   min(throttle.initial_chunk_rows, ceiling))

    def observe(self, rows: int, seconds: float) -> int:
        """Record that ``rows`` keys took ``seconds``; returns the next size."""
        if rows > 0 and seconds > 0:
            ideal = rows / seconds * self.target_seconds
            step = _clamp(ideal, self.size / 2, self.size * 2)
            self.size = _clamp(round(step), self.minimum, self.maximum)
        return self.size


def chunk_ceiling(throttle: Throttle) -> int:
    """Largest chunk: under a rows/s ceiling, no more than one target duration's worth of allowed rows.

    So a throttled copy is many small chunks at a steady pace, not a big burst and then a long sleep.
    """
    ceiling = throttle.max_chunk_rows
    if throttle.max_rows_per_second:
        ceiling = min(ceiling, int(throttle.max_rows_per_second * throttle.target_chunk_seconds))
    return max(throttle.min_chunk_rows, ceiling)


def rate_delay(rows: int, seconds: float, max_rows_per_second: float | None) -> float:
    """Seconds to sleep after a chunk of ``rows`` that took ``seconds`` so the rate stays under the ceiling."""
    if not max_rows_per_second or rows <= 0:
        return 0.0
    return max(0.0, rows / max_rows_per_second - seconds)


def pause_reason(threads_running: dict[str, int], limit: int | None, flag: str | None) -> str | None:
    """Why the copy must wait now (a pause flag, or a server over its Threads_running limit), else None."""
    if flag:
        return flag
    if limit is not None:
        busy = [f"{server} Threads_running={n} > {limit}" for server, n in sorted(threads_running.items())
                if n > limit]
        if busy:
            return "server loaded: " + ", ".join(busy)
    return None


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
