"""Pre-business checks (cutpoint 1): declarative rules → measurements → pass / warn / fail report.

Layers, one direction of calls (cf. alembic): ``rules`` (the reviewed rule models, pure),
``middleware_versions`` / ``sql_builders`` / ``kafka_zk`` / ``hosts`` parsing (pure), probes that talk
to the site (``middleware``, ``architecture``, ``data_quality``), ``verdict`` (threshold → status,
pure), ``runner`` (runs a rule list) and ``report`` (the seed's ``[FT前置业务检查报告]``, pure). The
step in ``tasks/checks/step.py`` only wires them.
"""
