"""After the copy: count and checksum the migrated key range, segment by segment, source vs target.

Each segment's rows are summarised on both sides as (count, SUM and BIT_XOR of a CRC32 per row),
the source side through the configured transform and both sides cast to the target column types,
so a missing, extra, duplicated or different row shows up in its segment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from tasks.migration.spec import MigrationTask
from tasks.migration.sql import boundary_sql, source_checksum_sql, target_checksum_sql


@dataclass
class Verification:
    segments: int = 0
    source_rows: int = 0
    target_rows: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


class Verifier:
    """Checksums of ``(lower, upper]`` segments of about ``segment_rows`` source keys each."""

    def __init__(self, task: MigrationTask, *, source: Engine, target: Engine, source_ref: str, target_ref: str,
                 casts: Mapping[str, str], segment_rows: int) -> None:
        self.source = source
        self.target = target
        self.segment_rows = segment_rows
        self._boundary = {lower: boundary_sql(task, source_ref, has_lower=lower) for lower in (False, True)}
        self._source_sum = {lower: source_checksum_sql(task, source_ref, casts, has_lower=lower)
                            for lower in (False, True)}
        self._target_sum = {lower: target_checksum_sql(task, target_ref, casts, has_lower=lower)
                            for lower in (False, True)}

    def run(self, upper_key: Any, between: Callable[[], None] = lambda: None) -> Verification:
        """Verify every segment up to ``upper_key``; ``between`` runs before each (the throttle's pause)."""
        result = Verification()
        if upper_key is None:
            return result
        with self.source.connect() as src, self.target.connect() as tgt:
            src = src.execution_options(isolation_level="READ COMMITTED")
            tgt = tgt.execution_options(isolation_level="READ COMMITTED")
            lower: Any = None
            while True:
                between()
                upper = self._segment_end(src, lower, upper_key)
                bounds = ([lower] if lower is not None else []) + [upper]
                has_lower = lower is not None
                source_sum = _summary(src, self._source_sum[has_lower], bounds)
                target_sum = _summary(tgt, self._target_sum[has_lower], bounds)
                src.rollback()
                tgt.rollback()
                result.segments += 1
                result.source_rows += source_sum[0]
                result.target_rows += target_sum[0]
                if source_sum != target_sum:
                    result.mismatches.append({"from_key": lower, "to_key": upper, "source": list(source_sum),
                                              "target": list(target_sum)})
                if upper == upper_key:
                    return result
                lower = upper

    def _segment_end(self, conn: Connection, lower: Any, upper_key: Any) -> Any:
        bounds = ([lower] if lower is not None else []) + [upper_key]
        row = conn.exec_driver_sql(self._boundary[lower is not None], (*bounds, self.segment_rows - 1)).first()
        return row[0] if row is not None else upper_key


def _summary(conn: Connection, sql: str, bounds: list[Any]) -> tuple[int, int, int]:
    row = conn.exec_driver_sql(sql, tuple(bounds)).one()
    return int(row[0]), int(row[1]), int(row[2])
