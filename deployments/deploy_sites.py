"""Per-site deployments on one Prefect server: a process work pool and the five cutpoint deployments per site.

    .venv/bin/python deployments/deploy_sites.py                       # every deployments/sites/*.json
    .venv/bin/python deployments/deploy_sites.py --site CN --site US   # or a list of sites
    .venv/bin/python deployments/deploy_sites.py --alerts-only         # alerts only, for prefect.yaml's deployments

For site CN this creates work pool ``ft-upgrade-cn`` (type ``process``; start one worker next to the
site's databases with ``prefect worker start --pool ft-upgrade-cn``) and deployments
``pre_business_check/pre-business-check-cn`` … ``post_upgrade/post-upgrade-cn`` whose ``site_id``
defaults to CN. It talks to ``PREFECT_API_URL`` directly (one process, no ``prefect deploy`` per site,
no git, no image), so hundreds of sites take seconds. Re-running it updates what exists. Like
``deployments/prefect.yaml``, the worker runs the flows from ``$FT_UPGRADE_PROJECT_DIR`` (its checkout).

The alerts match a site's runs by the tag ``site:<id>``: the site's deployments carry it, and every cutpoint
run tags itself with its ``site_id`` when it starts, so the runs of the shared deployments of ``prefect.yaml``
(the site a parameter) alert the same way. ``--alerts-only`` creates just the sites' automations, for an
installation that uses those shared deployments (pool ``--alerts-pool``, default ``ft-upgrade``).

Limits, so that a wave of triggers cannot overload the server and its PostgreSQL: ``--fleet-concurrency N``
(default 10) lets at most N cutpoint runs of all sites run at once, the rest waiting in Scheduled
(AwaitingConcurrencySlot) — a global concurrency limit ``ft-upgrade-fleet`` that every cutpoint deployment
shares; ``--pool-concurrency N`` limits the runs of each site's pool.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:  # runnable as `python deployments/deploy_sites.py`
    sys.path.insert(0, str(PROJECT))

from tasks.core.cutpoints import Cutpoint, site_deployment_name  # noqa: E402
from tasks.core.parameters import SITE_ID_PATTERN  # noqa: E402

SITES_DIR = PROJECT / "deployments" / "sites"
TAGS = ["ft-auto-upgrade"]
PULL_STEPS = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FT_UPGRADE_PROJECT_DIR }}"}}]
# The flow-run process: the engine of the worker host's checkout, straight away. Without a command Prefect
# 3.9's process worker first starts a workspace supervisor process that imports Prefect too (about two
# seconds per run). The shell reads FT_UPGRADE_PROJECT_DIR on the worker's host when the run starts, as the
# pull step does; `exec` leaves one process, the one Prefect watches and cancels. prefect.yaml says the same.
# Before that, a look (some 30 ms) that the interpreter runs and has Prefect: if not, the run ends Failed
# with a message naming the interpreter and the fix (sent by the host's python3, standard library only: the
# project's interpreter is the one missing), also printed to the worker's log; else the worker would only
# say "exit code 127, command not found".
ENGINE_SCRIPT = """\
py="$FT_UPGRADE_PROJECT_DIR/.venv/bin/python"
if "$py" -c "import sys, importlib.util as u; sys.exit(not u.find_spec(sys.argv[1]))" prefect 2>/dev/null; then
  exec "$py" -m prefect.engine
fi
if [ -x "$py" ]; then why="does not run, or has no prefect installed"; else why="does not exist"; fi
[ -n "$FT_UPGRADE_PROJECT_DIR" ] || why="does not exist (FT_UPGRADE_PROJECT_DIR is not set for the worker)"
msg="cannot start the flow run: the interpreter $py $why. On the worker host, install the project in \
the checkout FT_UPGRADE_PROJECT_DIR names (bash deployments/install.sh there makes its .venv), or start \
the worker with FT_UPGRADE_PROJECT_DIR set to the checkout whose .venv has it."
echo "ft-auto-upgrade: $msg" >&2
python3 - "$msg" <<"REPORT" || echo "ft-auto-upgrade: could not mark the flow run failed (python3)" >&2
import base64, json, os, sys, urllib.request as http
url = os.environ["PREFECT_API_URL"].rstrip("/") + "/flow_runs/" + os.environ["PREFECT__FLOW_RUN_ID"] + "/set_state"
headers = {"Content-Type": "application/json"}
if os.environ.get("PREFECT_API_KEY"):
    headers["Authorization"] = "Bearer " + os.environ["PREFECT_API_KEY"]
elif os.environ.get("PREFECT_API_AUTH_STRING"):
    headers["Authorization"] = "Basic " + base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
state = {"state": {"type": "FAILED", "name": "Failed", "message": sys.argv[1]}}
http.urlopen(http.Request(url, json.dumps(state).encode(), headers), timeout=30).read()
REPORT
exit 127"""
ENGINE_COMMAND = f"sh -c '{ENGINE_SCRIPT}'"
# The flow-run process retries an API call answered 500 as Prefect retries a 503 (5 times, backing off): a
# server busy with a wave answers 500 when its database pool runs dry (tests/bench/bench_fleet.py at 50 sites)
# and a run must not fail for that. prefect.yaml says the same.
RUN_ENV = {"PREFECT_CLIENT_RETRY_EXTRA_CODES": "500"}
_SITE = re.compile(SITE_ID_PATTERN)
# Cutpoint runs at once over the whole fleet, by default: what one server process was measured to hold beside
# 50 sites' workers without running out of database connections (README, Scale; tests/bench/bench_fleet.py).
FLEET_CONCURRENCY = 10


@dataclass(frozen=True)
class SiteDeployment:
    """One deployment to create (pure data, so the naming is testable without a server)."""

    site_id: str
    cutpoint: Cutpoint
    pool: str
    name: str
    entrypoint: str

    @property
    def full_name(self) -> str:
        return f"{self.cutpoint.value}/{self.name}"


def check_site(site_id: str) -> str:
    if not _SITE.match(site_id):
        raise ValueError(f"site id {site_id!r}: letters, digits, _ and - only (it names a pool and deployments)")
    return site_id


def pool_name(site_id: str, prefix: str = "ft-upgrade") -> str:
    return f"{prefix}-{site_id.lower()}"


def deployment_suffix(site_id: str) -> str:
    """What cicd.py's ``--deployment-suffix`` is for this site: ``-cn``."""
    return "-" + site_id.lower().replace("_", "-")


def plan_site(site_id: str, prefix: str = "ft-upgrade") -> list[SiteDeployment]:
    """The five deployments of one site, in cutpoint order."""
    check_site(site_id)
    return [SiteDeployment(site_id=site_id, cutpoint=cp, pool=pool_name(site_id, prefix),
                           name=site_deployment_name(cp.value, site_id),
                           entrypoint=f"flows/{cp.value}.py:{cp.value}") for cp in Cutpoint]


def sites_from_files(folder: Path) -> list[str]:
    """Site ids of the site files (``site_id`` of each ``*.json``), sorted, without duplicates."""
    sites = {json.loads(p.read_text(encoding="utf-8"))["site_id"] for p in sorted(folder.glob("*.json"))}
    return sorted(sites)


def alerts_from_files(folder: Path) -> dict[str, Any]:
    """Site id → its ``alerts`` section (:class:`AlertSettings`), for the site files that have one."""
    from blocks.notifications import AlertSettings

    found: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("alerts"):
            found[data["site_id"]] = AlertSettings.model_validate(data["alerts"])
    return found


def _parameter_schema(cutpoint: Cutpoint) -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    from flows.registry import CUTPOINT_FLOWS

    return parameter_schema(CUTPOINT_FLOWS[cutpoint].fn).model_dump_for_openapi()


def _rollback_schema() -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    from flows.rollback import rollback

    return parameter_schema(rollback.fn).model_dump_for_openapi()


def rollback_name(site_id: str) -> str:
    """``rollback-cn``: the site's rollback deployment (flow ``rollback``)."""
    return "rollback" + deployment_suffix(site_id)


def fleet_limit_name(prefix: str = "ft-upgrade") -> str:
    """``ft-upgrade-fleet``: the global concurrency limit every site's cutpoint deployments share."""
    return f"{prefix}-fleet"


def deploy(sites: Iterable[str], *, prefix: str = "ft-upgrade", pool_concurrency: int | None = None,
           fleet_concurrency: int = FLEET_CONCURRENCY, alerts: dict[str, Any] | None = None,
           echo: Any = print) -> list[SiteDeployment]:
    """Create/update each site's work pool and deployments (and its alert automations) on the Prefect API.

    ``pool_concurrency``: flow runs at once per site pool (None: no limit). ``fleet_concurrency``: cutpoint
    runs at once over all sites (0: no limit), a global concurrency limit the cutpoint deployments share;
    a run beyond it waits in Scheduled/AwaitingConcurrencySlot until a slot frees (the rollback deployments
    are not limited: an operator's rollback never queues behind a wave).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    schemas = {cp: _parameter_schema(cp) for cp in Cutpoint}
    rollback_schema = _rollback_schema()
    done: list[SiteDeployment] = []
    with get_client(sync_client=True) as client:
        fleet = None
        if fleet_concurrency > 0:
            client.upsert_global_concurrency_limit_by_name(fleet_limit_name(prefix), fleet_concurrency)
            fleet = client.read_global_concurrency_limit_by_name(fleet_limit_name(prefix))
            echo(f"fleet: at most {fleet.limit} cutpoint runs at once (global concurrency limit {fleet.name})")
        flow_ids = {cp: client.create_flow_from_name(cp.value) for cp in Cutpoint}
        rollback_flow = client.create_flow_from_name("rollback")
        for site in sites:
            planned = plan_site(site, prefix)
            pool = planned[0].pool
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template,
                                                       concurrency_limit=pool_concurrency,
                                                       description=f"ft-auto-upgrade worker of site {site}"))
            except ObjectAlreadyExists:
                client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=pool_concurrency))
            for d in planned:
                upsert_deployment(
                    client, d.full_name, fleet, flow_id=flow_ids[d.cutpoint], name=d.name, work_pool_name=d.pool,
                    work_queue_name="default", entrypoint=d.entrypoint, pull_steps=PULL_STEPS,
                    parameters={"site_id": site}, job_variables=job_variables((alerts or {}).get(site)),
                    parameter_openapi_schema=schemas[d.cutpoint], tags=[*TAGS, f"site:{site}"],
                    description=f"{d.cutpoint.value} of site {site} (pool {d.pool})", enforce_parameter_schema=True)
                done.append(d)
            upsert_deployment(  # the operator's rollback: never scheduled, started from the UI
                client, f"rollback/{rollback_name(site)}", None, flow_id=rollback_flow, name=rollback_name(site),
                work_pool_name=pool, work_queue_name="default", entrypoint="flows/rollback.py:rollback",
                pull_steps=PULL_STEPS, parameters={"site_id": site},
                job_variables=job_variables((alerts or {}).get(site)), parameter_openapi_schema=rollback_schema,
                tags=[*TAGS, f"site:{site}", "rollback"], enforce_parameter_schema=True,
                description=f"Rollback of site {site}'s upgrade (site_id alone: the one in progress): "
                            "rollback_steps newest first, its backup restored, the site back on the source version")
            echo(f"site {site}: pool {pool}, deployments {', '.join(d.name for d in planned)}, {rollback_name(site)}")
            if (alerts or {}).get(site):
                names = apply_site_alerts(client, site, pool, alerts[site])  # type: ignore[index]
                echo(f"site {site}: automations {', '.join(names)}")
    return done


def upsert_deployment(client: Any, full_name: str, fleet: Any, **fields: Any) -> Any:
    """Create or update one deployment; with ``fleet`` (the shared global concurrency limit) under it.

    Prefect 3.9 deletes the global concurrency limit a deployment points at when the deployment is created
    again without a limit of its own (or deleted): the fleet's limit is shared, so a deployment already under
    it is re-created with that same limit (which Prefect leaves alone), and one that must leave it lets go of
    it first.
    """
    from prefect.exceptions import ObjectNotFound

    try:
        current = client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        current = None
    held = current.global_concurrency_limit if current is not None else None
    on_fleet = fleet is not None and held is not None and held.id == fleet.id
    if held is not None and not on_fleet and not held.name.startswith("deployment:"):  # a shared limit
        _patch_deployment(client, current.id, {"global_concurrency_limit_id": None})
    deployment_id = client.create_deployment(**fields, concurrency_limit=fleet.limit if on_fleet else None)
    if fleet is not None and not on_fleet:
        _patch_deployment(client, deployment_id, {"global_concurrency_limit_id": str(fleet.id),
                                                  "concurrency_options": {"collision_strategy": "ENQUEUE"}})
    return deployment_id


def _patch_deployment(client: Any, deployment_id: Any, body: dict[str, Any]) -> None:
    """``PATCH /deployments/{id}``: the client's update model has no field for a shared limit."""
    client.request("PATCH", "/deployments/{id}", path_params={"id": deployment_id}, json=body).raise_for_status()


def job_variables(alert: Any = None) -> dict[str, Any]:
    """The flow-run process: the engine command, its API retries; with alerts, a heartbeat the server watches."""
    env = dict(RUN_ENV)
    if alert is not None:
        env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(alert.heartbeat_seconds)
    return {"command": ENGINE_COMMAND, "env": env}


def apply_site_alerts(client: Any, site: str, pool: str, settings: Any) -> list[str]:
    """The site's automations, sending through the notification blocks it names (each must exist)."""
    from deployments.alerts import apply_automations, site_automations

    by_name = {b.name: b.id for b in client.read_block_documents(include_secrets=False) if b.name}
    missing = [n for n in settings.notify if n not in by_name]
    if missing:
        raise ValueError(f"site {site}: alerts.notify names no block {', '.join(missing)} "
                         "(run `ft-upgrade blocks apply --file <site file>` first)")
    automations = site_automations(site, pool, settings, [by_name[n] for n in settings.notify])
    return apply_automations(client, site, automations)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", action="append", default=[], help="a site id (repeat); default: the site files")
    parser.add_argument("--sites-dir", type=Path, default=SITES_DIR, help="folder of site JSON files")
    parser.add_argument("--pool-prefix", default="ft-upgrade", help="work pools are <prefix>-<site>")
    parser.add_argument("--pool-concurrency", type=int, default=None,
                        help="flow runs at once per site pool (default: no limit; 1 queues a second trigger "
                             "for a busy site instead of refusing it)")
    parser.add_argument("--fleet-concurrency", type=int, default=FLEET_CONCURRENCY,
                        help=f"cutpoint runs at once over all sites, a global concurrency limit "
                             f"<prefix>-fleet (default {FLEET_CONCURRENCY}; 0: no limit); the others wait "
                             "in Scheduled/AwaitingConcurrencySlot")
    parser.add_argument("--alerts-only", action="store_true",
                        help="only the sites' alert automations (for the shared deployments of prefect.yaml)")
    parser.add_argument("--alerts-pool", default="ft-upgrade",
                        help="with --alerts-only: the work pool a late run's alert names")
    return parser.parse_args(argv)


def apply_alerts_only(sites: Sequence[str], alerts: dict[str, Any], pool: str, echo: Any = print) -> None:
    """The sites' automations alone (no pool, no deployment): the runs of prefect.yaml's deployments tag
    themselves ``site:<id>``. A site without an ``alerts`` section in its site file is an input error."""
    from prefect.client.orchestration import get_client

    missing = [s for s in sites if s not in alerts]
    if missing:
        raise ValueError(f"no alerts section in the site file of {', '.join(missing)}")
    with get_client(sync_client=True) as client:
        for site in sites:
            echo(f"site {site}: automations {', '.join(apply_site_alerts(client, site, pool, alerts[site]))}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sites = args.site or sites_from_files(args.sites_dir)
        for site in sites:
            check_site(site)
    except (ValueError, KeyError, OSError) as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    if not sites:
        print(f"no sites: pass --site or add site files to {args.sites_dir}", file=sys.stderr)
        return 2
    try:
        alerts = alerts_from_files(args.sites_dir)
        if args.alerts_only:
            apply_alerts_only(sites, alerts, args.alerts_pool)
        else:
            deploy(sites, prefix=args.pool_prefix, pool_concurrency=args.pool_concurrency,
                   fleet_concurrency=args.fleet_concurrency, alerts=alerts)
    except ValueError as exc:  # a site file's alerts section, or a block it names that does not exist
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
