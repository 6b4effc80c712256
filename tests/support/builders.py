"""Test builders: resource packages (good and malicious) and a small real HTTP server."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text


def run_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements in one transaction on a database URL; the rows of the last one (if any)."""
    engine = create_engine(url)
    rows: list[tuple[Any, ...]] = []
    try:
        with engine.begin() as conn:
            for statement in statements:
                result = conn.execute(text(statement))
                rows = [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()
    return rows


def manifest_for(files: Mapping[str, bytes], version: str = "3.17.5", **overrides: Any) -> bytes:
    data = {"version": version, "name": "ft-resources",
            "files": [{"path": name, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
                      for name, body in files.items()]}
    data.update(overrides)
    return json.dumps(data).encode()


def write_zip(path: Path, files: Mapping[str, bytes], *, manifest: bytes | None = None,
              extra: Callable[[zipfile.ZipFile], None] | None = None) -> Path:
    """A zip with ``files`` plus a manifest (computed from ``files`` unless given)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", manifest if manifest is not None else manifest_for(files))
        for name, body in files.items():
            zf.writestr(name, body)
        if extra:
            extra(zf)
    return path


def zip_symlink(name: str, target: str) -> Callable[[zipfile.ZipFile], None]:
    def add(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return add


def write_targz(path: Path, files: Mapping[str, bytes], *, manifest: bytes | None = None,
                extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        members = {"manifest.json": manifest if manifest is not None else manifest_for(files), **files}
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for info in extra or []:
            tar.addfile(info)
    return path


def tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def tree(root: Path) -> dict[str, str]:
    """Every path below ``root`` with a fingerprint of its content (or link target)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        else:
            out[rel] = "dir"
    return out


VOLATILE_MARKER_KEYS = ("install_id", "installed_at")


def site_files(root: Path) -> dict[str, Any]:
    """:func:`tree`, with each package marker read as JSON minus what differs between two installs."""
    out: dict[str, Any] = tree(root)
    for rel in out:
        if rel.endswith(".ft-package.json"):
            marker = json.loads((root / rel).read_text())
            out[rel] = {k: v for k, v in marker.items() if k not in VOLATILE_MARKER_KEYS}
    return out


@dataclass
class Route:
    """A canned response; ``status`` and ``body`` may be callables (status(), body(request_body))."""

    status: int | Callable[[], int] = 200
    body: Any = field(default_factory=dict)


@dataclass
class FakeService:
    """A real HTTP server on 127.0.0.1: routes by ``METHOD path``; records request bodies."""

    url: str
    routes: dict[str, Route]
    requests: list[tuple[str, str, bytes]]


@contextmanager
def http_service(routes: Mapping[str, Route] | None = None) -> Iterator[FakeService]:
    service = FakeService("", dict(routes or {}), [])

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            service.requests.append((self.command, self.path, body))
            route = service.routes.get(f"{self.command} {self.path}")
            if route is None:
                self.send_response(404)
                self.end_headers()
                return
            payload = route.body(body) if callable(route.body) else route.body
            data = json.dumps(payload).encode()
            self.send_response(route.status() if callable(route.status) else route.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
