"""Run AsyncDataMigrationStep once in this process, for tests that SIGKILL it: ``python -m <this> URL PARAMS_JSON``.

Exit 0 when the step finished; the parent reads the checkpoint table to see where a killed run stopped.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tasks.migration.step import AsyncDataMigrationStep, DataMigrationParams
from tests.helpers import step_context


def main(url: str, params_json: str) -> int:
    params = DataMigrationParams.model_validate(json.loads(params_json))
    with step_context(Path(tempfile.mkdtemp(prefix="ft-migrate-")), databases={"ft_db": url},
                      cutpoint="post_upgrade", step_id="migrate") as context:
        result = AsyncDataMigrationStep(params, context).run()
    print(json.dumps(result.details, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
