"""Imports every module that defines built-in steps, so that they register themselves."""

from tasks.steps import (  # noqa: F401
    backup,
    business_check,
    cache_rebuild,
    config_preprocess,
    data_migration,
    health,
    index_optimize,
    log_cleanup,
    post_process,
    post_upgrade,
    resource_package,
    resource_release,
    smoke_test,
    sql_script,
)
