"""Probes of a version's ``dependencies``: components at the site, free resources, the source range.

Components are read from the site profile (``services``: name → URL) and, where they should run,
probed the way the ``services_stopped`` precondition probes them. Memory, disk and CPU are measured
with the same commands locally and over SSH (``/proc/meminfo``, ``df``, ``nproc`` and ``/proc/loadavg``).
Grading is pure (:func:`grade_amount`, :func:`grade_cpu`); a value that cannot be read fails the check.
"""

from __future__ import annotations

from tasks.checks.hosts import disk_usage
from tasks.checks.outcome import CheckStatus, Measurement, Problem
from tasks.checks.rules import RequiredComponentsRule, RequiredResourceRule, SourceVersionRule
from tasks.checks.targets import CheckEnv
from tasks.core.errors import CheckError
from tasks.core.resources import describe, parse_amount
from tasks.core.versions import Version

_LABELS = {"memory": "可用内存", "disk": "可用磁盘空间", "cpu": "CPU核数"}


def grade_amount(available: float, required: float, headroom: float) -> CheckStatus:
    """Below the requirement fails; below ``required × headroom`` warns; else passes."""
    if available < required:
        return CheckStatus.FAIL
    return CheckStatus.WARN if available < required * headroom else CheckStatus.PASS


def grade_cpu(cores: float, load: float, required: float) -> CheckStatus:
    """Fewer cores than required fails; enough cores but fewer idle ones (1-minute load) warns."""
    if cores < required:
        return CheckStatus.FAIL
    return CheckStatus.WARN if cores - load < required else CheckStatus.PASS


def mem_available(meminfo: str) -> float:
    """Bytes of ``MemAvailable`` in ``/proc/meminfo`` (what the kernel says can be used without swapping)."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "MemAvailable":
            value, _, unit = rest.strip().partition(" ")
            if value.isdigit() and unit.strip().lower() in ("kb", ""):
                return float(value) * 1024
    raise CheckError(f"no MemAvailable in /proc/meminfo: {meminfo[:120]!r}")


def load_one(loadavg: str) -> float:
    """The 1-minute load average of ``/proc/loadavg``."""
    try:
        return float(loadavg.split()[0])
    except (IndexError, ValueError):
        raise CheckError(f"unexpected /proc/loadavg: {loadavg[:80]!r}") from None


def _cores(text: str) -> float:
    if not text.strip().isdigit():
        raise CheckError(f"unexpected nproc output: {text[:80]!r}")
    return float(text.strip())


def measure_resource(rule: RequiredResourceRule, env: CheckEnv) -> Measurement:
    shell = env.shell(rule.host)
    where = rule.host or "本机"
    required = parse_amount(rule.resource, rule.required)
    label = _LABELS[rule.resource]
    path = ""
    if rule.resource == "cpu":
        cores, load = _cores(shell.run(["nproc"])), load_one(shell.run(["cat", "/proc/loadavg"]))
        status = grade_cpu(cores, load, required)
        available, shown = cores, f"{cores:g}核（1分钟负载{load:.2f}）"
    else:
        if rule.resource == "memory":
            available = mem_available(shell.run(["cat", "/proc/meminfo"]))
        else:
            path = rule.path or str(env.resources.path("backup_dir"))
            usage = disk_usage(shell, path)
            available = float(usage.available_kb) * 1024
            label = f"{path}所在磁盘（{usage.mount}）{label}"
        status = grade_amount(available, required, rule.headroom)
        shown = describe(rule.resource, available)
    wanted = f"{required:g}核" if rule.resource == "cpu" else describe(rule.resource, required)
    state = f"{where}：{label}{shown}，要求{wanted}"
    reason = {CheckStatus.FAIL: "不足", CheckStatus.WARN: "余量不足" + (
        "（空闲核数低于要求）" if rule.resource == "cpu" else f"（低于要求的{rule.headroom:g}倍）")}.get(status, "")
    return Measurement(
        count=0 if status == CheckStatus.PASS else 1, status=status,
        breach_text=f"{state}，{reason}", pass_text=state,
        problems=(Problem(f"{shell.name}:{rule.resource}", f"{state}，{reason}"),) if reason else (),
        facts={"resource": rule.resource, "label": _LABELS[rule.resource], "required": wanted, "available": shown,
               "path": path, "host": rule.host or "local", "where": where, "available_amount": available,
               "required_amount": required},
    )


def measure_components(rule: RequiredComponentsRule, env: CheckEnv) -> Measurement:
    from tasks.site.service_probe import running_services

    profile = env.resources.profile
    services = dict(profile.services) if profile is not None else {}
    required = ", ".join(rule.components)
    if not services:
        text = f"局点配置（site profile）未列出任何服务，无法确认组件 {required}"
        return Measurement(count=len(rule.components), status=CheckStatus.FAIL, breach_text=text, pass_text=text,
                           problems=(Problem("site profile", text),),
                           facts={"missing": required, "silent": "-", "components": required})
    missing = [c for c in rule.components if c not in services]
    silent = [c for c in rule.components if c in services and rule.running
              and not running_services({c: services[c]})]
    problems = [Problem(c, f"组件{c}未在局点配置中登记") for c in missing]
    problems += [Problem(c, f"组件{c}在{services[c]}无响应") for c in silent]
    status = CheckStatus.FAIL if missing else CheckStatus.WARN if silent else CheckStatus.PASS
    parts = [f"{word}：{', '.join(names)}" for word, names in (("未登记", missing), ("无响应", silent)) if names]
    ok = "均已登记并正常响应" if rule.running else "均已登记"
    return Measurement(
        count=len(missing) + len(silent), status=status,
        breach_text=f"组件 {required}：" + "；".join(parts), pass_text=f"组件 {required} {ok}",
        problems=tuple(problems),
        facts={"missing": ", ".join(missing) or "-", "silent": ", ".join(silent) or "-", "components": required})


def measure_source_version(rule: SourceVersionRule, env: CheckEnv) -> Measurement:
    in_effect = Version.parse(rule.in_effect)
    problems = []
    if rule.min_version and in_effect < Version.parse(rule.min_version):
        problems.append(f"低于最低源版本{rule.min_version}")
    if rule.max_version and in_effect > Version.parse(rule.max_version):
        problems.append(f"高于最高源版本{rule.max_version}")
    if rule.base_version and in_effect.baseline != Version.parse(rule.base_version):
        problems.append(f"基线不是{rule.base_version}")
    span = f"{rule.min_version or ''}~{rule.max_version or ''}" if rule.min_version or rule.max_version else ""
    wanted = "，".join(filter(None, [f"范围{span}" if span else "", f"基线{rule.base_version}"
                                     if rule.base_version else ""])) or "无限制"
    state = f"{rule.config}的源版本为{rule.in_effect}（要求：{wanted}）"
    return Measurement(count=len(problems), breach_text=f"{state}，" + "，".join(problems), pass_text=state,
                       problems=tuple(Problem(rule.config, p) for p in problems),
                       facts={"config": rule.config, "in_effect": rule.in_effect, "range": span or wanted})
