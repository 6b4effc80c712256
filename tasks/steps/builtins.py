"""Imports every module that defines built-in steps, so that they register themselves."""

from tasks.steps import (  # noqa: F401
    backup,
    business_check,
    config_preprocess,
    data_migration,
    health,
    log_cleanup,
    post_upgrade,
    resource_release,
    sql_script,
)
