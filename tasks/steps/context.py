"""What a running step may see: who/what/where of the run, and the site's resources."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.core.language import language_of

if TYPE_CHECKING:
    from tasks.core.settings import Settings
    from tasks.site.resources import SiteResources


@dataclass
class StepContext:
    """Handed to a step's constructor; steps read nothing else."""

    execution_id: str
    cutpoint: str
    step_id: str
    step_key: str
    step_name: str
    version: str
    source_version: str
    target_version: str
    site_id: str
    environment: dict[str, Any]
    resources: SiteResources
    logger: logging.Logger | logging.LoggerAdapter = field(default_factory=lambda: logging.getLogger("ft_upgrade"))

    @property
    def settings(self) -> Settings:
        """The run's settings, built once where the run starts (CLI overrides included): never re-read here."""
        return self.resources.settings

    @property
    def language(self) -> str:
        """Of the markdown a step writes into the report: the site profile's (``zh`` unless it says ``en``)."""
        return language_of(self.resources.profile)
