"""The five CICD cutpoints, in the order CICD calls them."""

from __future__ import annotations

from enum import StrEnum


class Cutpoint(StrEnum):
    PRE_BUSINESS_CHECK = "pre_business_check"
    PRE_UPGRADE_PROCESS = "pre_upgrade_process"
    STARTUP_PRE_PROCESS = "startup_pre_process"
    STARTUP_POST_PROCESS = "startup_post_process"
    POST_UPGRADE = "post_upgrade"

    @property
    def position(self) -> int:
        return list(Cutpoint).index(self)


#: Old keys seen in the requirements' chapter 2, read as their current name (with a warning).
CUTPOINT_ALIASES: dict[str, Cutpoint] = {"pre_upgrade": Cutpoint.PRE_UPGRADE_PROCESS}

CUTPOINT_TITLES: dict[Cutpoint, str] = {
    Cutpoint.PRE_BUSINESS_CHECK: "前置业务检查 pre-business check",
    Cutpoint.PRE_UPGRADE_PROCESS: "前置升级处理 pre-upgrade process",
    Cutpoint.STARTUP_PRE_PROCESS: "启动前处理 startup-pre process",
    Cutpoint.STARTUP_POST_PROCESS: "启动后处理 startup-post process",
    Cutpoint.POST_UPGRADE: "升级后处理 post-upgrade",
}


def site_deployment_name(cutpoint: str, site_id: str) -> str:
    """A site's own deployment of a cutpoint (``deployments/deploy_sites.py`` names them): for site CN,
    ``startup-pre-process-cn``, in flow ``startup_pre_process``."""
    return f"{cutpoint.replace('_', '-')}-{site_id.lower().replace('_', '-')}"
