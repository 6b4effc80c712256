"""StartupPostProcessStep: the seed's single 启动后处理 step, running the configured parts in order.

The seed's baseline config names one ``com.ft.upgrade.steps.StartupPostProcessStep`` for the whole
cutpoint, so this composite runs whichever parts its config gives, in the requirements' order:
resource packages → cache rebuild → index optimization → health checks → smoke tests (see
:mod:`tasks.composite.parts` for how parts run and combine).
"""

from __future__ import annotations

from tasks.cache.step import CacheRebuildParams, CacheRebuildStep
from tasks.composite.parts import CompositeParams, CompositeStep
from tasks.health.smoke_step import SmokeParams, SmokeTestStep
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tasks.indexes.step import IndexOptimizationStep, IndexOptimizeParams
from tasks.packages.step import ResourcePackageImportStep, ResourcePackageParams


class StartupPostProcessParams(CompositeParams):
    """Each part takes exactly the fields of its own step; leave a part out to skip it."""

    resource_packages: ResourcePackageParams | None = None
    cache: CacheRebuildParams | None = None
    indexes: IndexOptimizeParams | None = None
    health: HealthParams | None = None
    smoke: SmokeParams | None = None


class StartupPostProcessStep(CompositeStep):
    """Runs the configured post-start parts in order; the first failure stops the rest."""

    Params = StartupPostProcessParams
    description = "Startup post-process: resource packages, cache rebuild, index optimization, health, smoke tests"
    params: StartupPostProcessParams
    #: (config field, step class), in the order the requirements list the work.
    PARTS = (
        ("resource_packages", ResourcePackageImportStep),
        ("cache", CacheRebuildStep),
        ("indexes", IndexOptimizationStep),
        ("health", ServiceHealthCheckStep),
        ("smoke", SmokeTestStep),
    )
    TITLES = {
        "zh": {"resource_packages": "资源包导入", "cache": "缓存重建", "indexes": "索引优化", "health": "服务健康检查",
               "smoke": "冒烟测试"},
        "en": {"resource_packages": "Resource packages", "cache": "Cache rebuild", "indexes": "Index optimization",
               "health": "Health checks", "smoke": "Smoke tests"},
    }
