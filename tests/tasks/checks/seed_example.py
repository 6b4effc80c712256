"""The requirements' example report (chapter 1 §1), set up on a real database and a real ZooKeeper."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

SEED_TABLES = [
    # the upgrade (re)creates the key on orders.id; 15 ids collide
    "CREATE TABLE orders (row_id BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, amount DECIMAL(12,2))",
    "INSERT INTO orders (id, amount) SELECT seq, seq * 1.5 FROM seq_1_to_100",
    "INSERT INTO orders (id, amount) SELECT seq, 0 FROM seq_1_to_15",
    "CREATE TABLE user_logs (user_id BIGINT, message TEXT)",
    "CREATE TABLE temp_data (k VARCHAR(32), v TEXT)",
    "CREATE TABLE audit_records (at DATETIME, what TEXT)",
]

MYSQL_TOO_OLD = "11.4.0"  # above the local MariaDB 10.11, so "MySQL too old" happens for real

SEED_RULES: list[dict[str, Any]] = [
    {"id": "mw_mysql", "title": "中间件版本检查", "type": "middleware_version", "component": "mysql",
     "target": "ft_db", "min_version": MYSQL_TOO_OLD, "severity": "fail"},
    {"id": "zk_data_disk", "title": "ZooKeeper磁盘挂载检查", "type": "zookeeper_data_disk", "target": "zookeeper",
     "severity": "warn"},
    {"id": "orders_pk_conflicts", "title": "主键冲突检测", "type": "duplicate_keys", "target": "ft_db",
     "table": "orders", "columns": ["id"], "threshold": 0, "severity": "fail"},
    {"id": "tables_without_pk", "title": "无主键表检测", "type": "missing_primary_key", "target": "ft_db",
     "severity": "warn"},
    {"id": "later_only", "title": "3.18专用检查", "type": "missing_primary_key", "target": "ft_db",
     "versions": "3.18.0~3.18.9"},
]


def create_seed_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in SEED_TABLES:
            conn.execute(text(sql))
    engine.dispose()


def expected_lines(mysql_version: str, zk_data_dir: str) -> list[str]:
    return [
        "1. 检查项: 中间件版本检查",
        f"    - 结果: 失败（MySQL版本{mysql_version}不满足最低要求{MYSQL_TOO_OLD}）",
        f"    - 建议: 升级MySQL至{MYSQL_TOO_OLD}或更高版本",
        "2. 检查项: ZooKeeper磁盘挂载检查",
        f"    - 结果: 警告（ZooKeeper数据目录与系统目录共用磁盘：{zk_data_dir} 与 / 同在挂载点 /）",
        "    - 建议: 为ZooKeeper配置独立的数据磁盘",
        "3. 检查项: 主键冲突检测",
        "    - 结果: 失败（发现15条冲突记录，阈值0）",
        "    - 建议: 执行 `SELECT * FROM orders WHERE id IN (SELECT id FROM orders GROUP BY id HAVING COUNT(*) > 1);` "
        "查看冲突记录",
        "4. 检查项: 无主键表检测",
        "    - 结果: 警告（发现3张无主键表）",
        "    - 建议: 为表 audit_records, temp_data, user_logs 添加主键",
        "5. 检查项: 3.18专用检查",
        "    - 结果: 跳过（源版本3.17.0和目标版本3.17.5均不在适用范围3.18.0~3.18.9内）",
        "    - 建议: 无",
    ]
