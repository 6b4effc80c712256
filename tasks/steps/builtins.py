"""Imports every module that defines built-in steps, so that they register themselves."""

from tasks.steps import (
    health,  # noqa: F401
    sql_script,  # noqa: F401
)
