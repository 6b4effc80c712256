#!/usr/bin/env bash
# The demo: installs everything, starts a local Prefect server (PREFECT_HOME inside the project),
# applies the sample sites' blocks, deploys the five cutpoints to a process worker and upgrades the
# bundled sample FT system from 3.17.0 to 3.17.5-P1 at sites CN and US, the way CICD does.
# At CN one SQL statement fails on purpose (a conflicting row); the "operator" removes the row and
# resumes; the run continues at the failed statement. Then site US is rolled back by its site id
# (ft-upgrade info before and after). The server stays up so you can read the reports in the UI;
# stop what the demo started (worker, its flow runs, server) with:
#     bash deployments/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT="$PWD"
# shellcheck source=deployments/background.sh
source deployments/background.sh

if [ "${1:-}" = "stop" ]; then  # the worker first (it ends its flow runs), then the server
    stop_started "$PROJECT/.prefect/worker.pid" "$PROJECT/.prefect/server.pid"
    exit 0
fi

bash deployments/install.sh

export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_HOME="$PROJECT/.prefect"
export PREFECT_API_URL="http://127.0.0.1:4200/api" FT_UPGRADE_PROJECT_DIR="$PROJECT"
export FT_UPGRADE_HOME="$PROJECT/.ft-upgrade"
PATH="$PROJECT/.venv/bin:$PATH"
mkdir -p "$PREFECT_HOME" "$FT_UPGRADE_HOME"
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

if ! curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1; then
    say "starting the Prefect server on http://127.0.0.1:4200 (log: .prefect/server.log)"
    start_background "$PREFECT_HOME/server.pid" "$PREFECT_HOME/server.log" \
        prefect server start --host 127.0.0.1 --port 4200
    for _ in $(seq 120); do curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break; sleep 1; done
fi

say "sample databases (MariaDB) at 3.17.0 - created fresh"
for db in ft_demo_cn ft_demo_cn_middle ft_demo_us ft_demo_us_middle; do
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
done
rm -f "$FT_UPGRADE_HOME/metadata.db"*

# the sample sites list the FT services (configs' required_components) at ports where nothing runs: the
# demo has no FT services, so pre_business_check warns that they do not answer, startup_pre_process finds
# them stopped (a refused connection proves it) and startup_post_process waives services_started (recorded)
say "blocks of the sample sites (credentials in SecretStr fields)"
ft-upgrade blocks apply --file deployments/sites/demo-cn.json
ft-upgrade blocks apply --file deployments/sites/demo-us.json

say "validate configs and SQL; the plan for US (the overseas step is there) and CN (it is not)"
ft-upgrade validate
ft-upgrade plan --from 3.17.0 --to 3.17.5-P1 --site US
ft-upgrade plan --from 3.17.0 --to 3.17.5-P1 --site CN --cutpoint post_upgrade

say "install the 3.17.0 baseline schema at both sites (3.16.5 -> 3.17.0, startup_pre_process only), then record it"
for site in CN US; do
    # a fresh install: nothing to back up, so the pre_upgrade_process precondition is waived (recorded with why)
    PREFECT_LOGGING_LEVEL=WARNING ft-upgrade run startup_pre_process --from 3.16.5 --to 3.17.0 --site "$site" \
        --waive pre_upgrade_process --reason "fresh install of the 3.17.0 baseline" --by demo | tail -n 4
    ft-upgrade baseline --site "$site" --version 3.17.0 --by demo --notes "installed by the demo"
done

say "deploy the five cutpoints to the process work pool 'ft-upgrade' and start a worker"
prefect work-pool inspect ft-upgrade >/dev/null 2>&1 || prefect work-pool create ft-upgrade --type process >/dev/null
prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml >/dev/null
if [ ! -f "$PREFECT_HOME/worker.pid" ] || ! kill -0 "$(cat "$PREFECT_HOME/worker.pid")" 2>/dev/null; then
    # the demo resumes with the CLI, so its runs end Failed at a breakpoint instead of waiting for a decision
    # in the UI (README: "Deciding in the Prefect UI")
    FT_UPGRADE_DECIDE_IN_UI=false start_background "$PREFECT_HOME/worker.pid" "$PREFECT_HOME/worker.log" \
        prefect worker start --pool ft-upgrade --name demo-worker
fi

cutpoint() {  # CICD's call: prefect deployment run … --watch
    local flow="$1" site="$2" waive=()
    if [ "$flow" = startup_post_process ]; then  # no FT services to start: waived with why, in the report
        waive=(-p 'waive=["services_started"]' -p "reason=the demo has no FT services to start")
    fi
    prefect deployment run "$flow/${flow//_/-}" -p source_version=3.17.0 -p target_version=3.17.5-P1 \
        -p site_id="$site" -p 'environment={"PIPELINE": "demo"}' ${waive[@]+"${waive[@]}"} --watch >/dev/null 2>&1
}

say "a conflicting row at CN: the 3.17.5-P1 patch SQL will fail on it (on purpose)"
mariadb -h127.0.0.1 -uroot ft_demo_cn -e "INSERT INTO user_permissions VALUES (1001, 'order.export')"

for site in CN US; do
    for flow in pre_business_check pre_upgrade_process startup_pre_process startup_post_process post_upgrade; do
        if cutpoint "$flow" "$site"; then
            echo "  $site $flow: Completed"
        else
            execution=$(ft-upgrade executions --site "$site" --cutpoint "$flow" --latest)
            echo "  $site $flow: FAILED - the report (also in the UI) says where and how to resume:"
            ft-upgrade report "$execution" --format md | sed -n '/^\*\*失败位置/,/^- 命令行/p' | sed 's/^/    /'
            say "the operator removes the conflicting row and resumes (ft-upgrade resume)"
            mariadb -h127.0.0.1 -uroot ft_demo_cn -e "DELETE FROM user_permissions WHERE permission = 'order.export'"
            PREFECT_LOGGING_LEVEL=WARNING ft-upgrade resume "$execution" --by demo --notes "removed the conflicting row"
            echo "  $site $flow: resumed and Completed"
        fi
    done
done

say "CICD retries a job that already completed: nothing is executed again (deployments/cicd.py, exit 0)"
.venv/bin/python deployments/cicd.py --cutpoint startup_pre_process --from 3.17.0 --to 3.17.5-P1 --site CN \
    --poll 1 | grep -E 'already completed|: Completed' | sed 's/^> //; s/^/  /'

say "roll site US back by its site id (the rollback deployment): ft-upgrade info before and after"
ft-upgrade info --site US
if prefect deployment run rollback/rollback -p site_id=US -p 'upgrade=3.17.0->3.17.5-P1' -p requested_by=demo \
        -p 'reason=demo: the customer asked to go back' --watch >/dev/null 2>&1; then
    echo "  US rollback: Completed (report: artifact ft-us-rollback)"
else
    echo "  US rollback: FAILED - see the artifact ft-us-rollback"
fi
ft-upgrade info --site US

say "done. Reports: Prefect UI http://127.0.0.1:4200 -> Artifacts (keys ft-<site>-<cutpoint>), or"
echo "  PREFECT_API_URL=$PREFECT_API_URL .venv/bin/prefect artifact inspect ft-cn-startup-pre-process"
echo "  (the whole upgrade: ... artifact inspect ft-cn-upgrade-3-17-0-3-17-5-p1)"
echo "  .venv/bin/ft-upgrade status <execution id>   /   .venv/bin/ft-upgrade report <execution id>"
echo "Stop the worker and the server: bash deployments/demo.sh stop"

say "where site CN stands now"
ft-upgrade info --site CN
