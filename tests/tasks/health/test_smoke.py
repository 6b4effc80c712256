"""SmokeTestStep against a real HTTP server started here and the real MariaDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.site_profile import SiteProfile
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.health.smoke import MISSING, json_path, matches
from tasks.health.smoke_step import SmokeParams, SmokeTestStep
from tests.helpers import step_context
from tests.support.builders import Route, http_service, run_sql

HEALTH = {"status": "UP", "version": "3.17.5", "components": [{"name": "db", "status": "UP"}], "orders": 3}


def echo_order(body: bytes) -> dict[str, Any]:
    order = json.loads(body)
    return {"id": 1001, "status": "NEW", "items": order["items"]}


ROUTES = {"GET /actuator/health": Route(200, HEALTH), "POST /api/orders": Route(201, echo_order),
          "GET /api/broken": Route(500, {"error": "boom"})}


@pytest.fixture
def orders_db(mariadb_database: str) -> str:
    run_sql(mariadb_database, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), amount DECIMAL(8,2))",
            "INSERT INTO orders VALUES (1, 'PAID', 10.50), (2, 'NEW', 3.00)")
    return mariadb_database


def smoke(tmp_path: Path, db: str, services: dict[str, str] | None = None, **params: Any) -> StepResult:
    with step_context(tmp_path, databases={"ft_db": db}, cutpoint="startup_post_process") as ctx:
        ctx.resources.profile = SiteProfile(site_id="CN", services=services or {})
        return SmokeTestStep(SmokeParams.model_validate(params), ctx).run()


def test_core_flows_pass_over_http_and_sql_and_each_check_is_reported(tmp_path: Path, orders_db: str) -> None:
    with http_service(ROUTES) as service:
        result = smoke(tmp_path, orders_db, services={"ft-manager": service.url}, http=[
            {"name": "health", "service": "ft-manager", "path": "/actuator/health",
             "expect_json": {"status": "UP", "components[0].status": "UP", "version": {"$regex": r"^3\.17\."},
                             "orders": {"$gte": 1}, "missing": {"$exists": False}}},
            {"name": "place order", "url": service.url + "/api/orders", "method": "POST",
             "body": {"items": [{"sku": "A1", "qty": 2}]}, "expected_status": [201],
             "expect_json": {"status": "NEW", "items.0.sku": "A1"}},
        ], sql=[
            {"name": "paid orders", "database": "ft_db", "query": "SELECT COUNT(*) FROM orders WHERE status = 'PAID'",
             "expect": 1},
            {"name": "new order flow", "database": "ft_db",
             "setup": ["INSERT INTO orders VALUES (3, 'NEW', 9.99)", "UPDATE orders SET status = 'PAID' WHERE id = 3"],
             "query": "SELECT status, amount FROM orders WHERE id = 3", "expect": "PAID", "expect_rows": 1},
            {"name": "amount", "database": "ft_db", "query": "SELECT amount FROM orders WHERE id = 1",
             "expect": 10.5},
        ])
        assert service.requests[1] == ("POST", "/api/orders", b'{"items":[{"sku":"A1","qty":2}]}')
    assert result.status is StepStatus.SUCCESS, result.markdown
    assert result.details["passed"] == 5
    assert "| http | place order | ✅ 通过 | POST → HTTP 201，2 个 JSON 字段符合预期 |" in result.markdown
    assert run_sql(orders_db, "SELECT COUNT(*) FROM orders") == [(2,)], "setup was rolled back"


def test_every_failure_is_reported_and_the_step_fails(tmp_path: Path, orders_db: str) -> None:
    with http_service(ROUTES) as service, pytest.raises(StepFailed) as failed:
        smoke(tmp_path, orders_db, http=[
            {"name": "health", "url": service.url + "/actuator/health", "expect_json": {"status": "DOWN"}},
            {"name": "broken", "url": service.url + "/api/broken"},
            {"name": "dead", "url": "http://127.0.0.1:1/x", "timeout": 2},
            {"name": "unknown service", "service": "ft-report"},
        ], sql=[
            {"name": "count", "database": "ft_db", "query": "SELECT COUNT(*) FROM orders", "expect": {"$gte": 5}},
            {"name": "bad sql", "database": "ft_db", "query": "SELECT nope FROM orders", "expect_rows": 1},
        ])
    assert str(failed.value).startswith("冒烟测试通过 0/6：失败 health, broken, dead, unknown service")
    checks = {c["name"]: c for c in failed.value.result.details["checks"]}
    assert checks["health"]["detail"] == "status: expected 'DOWN', got 'UP'"
    assert checks["broken"]["detail"] == "HTTP 500, expected [200]"
    assert checks["dead"]["detail"].startswith("ConnectError")
    assert checks["unknown service"]["detail"] == "service 'ft-report' is not in the site profile"
    assert checks["count"]["detail"] == "expected {'$gte': 5}, got 2"
    assert "Unknown column 'nope'" in checks["bad sql"]["detail"]


@pytest.mark.parametrize(("change", "message"), [
    ({"setup": ["DROP TABLE orders"]}, "DDL would commit"),
    ({"query": "UPDATE orders SET status = 'x'"}, "must be a SELECT"),
    ({"expect": {"$between": [1, 2]}}, "unknown expectation"),
])
def test_bad_sql_checks_are_refused_at_plan_time(change: dict[str, Any], message: str) -> None:
    check = {"name": "x", "database": "ft_db", "query": "SELECT 1", "expect": 1, **change}
    with pytest.raises(ValidationError, match=message):
        SmokeParams.model_validate({"sql": [check]})


def test_json_paths_address_fields_and_list_items() -> None:
    doc = {"data": {"items": [{"id": 7}, {"id": 8}]}, "ok": True}
    assert json_path(doc, "data.items[1].id") == 8
    assert json_path(doc, "$.data.items.0.id") == 7
    assert json_path(doc, "data.items[-1].id") == 8
    assert json_path(doc, "data.items[5].id") is MISSING
    assert json_path(doc, "ok.deeper") is MISSING


def test_expectations_compare_values_and_apply_operators() -> None:
    assert matches(1, "1") and matches(10.5, 10.5) and not matches(1, True)
    assert matches(True, True) and not matches(True, 1)
    assert matches({"$in": ["UP", "OK"]}, "OK") and matches({"$ne": "DOWN"}, "UP")
    assert matches({"$contains": "ok"}, "all ok") and matches({"$lt": 3}, 2)
    assert not matches({"$gte": 1}, MISSING) and matches({"$exists": False}, MISSING)
