"""pymysql connections sharing one preferred-mode TLS context, against the real MariaDB."""

from __future__ import annotations

import ssl

import pytest
from sqlalchemy import create_engine, text

from tasks.site.connect import SharedTlsConnection, share_tls_context
from tasks.sql.session import client_connection

pytestmark = pytest.mark.mariadb


def test_pool_and_session_connections_share_one_context_and_still_connect(mariadb_database: str) -> None:
    engine = share_tls_context(create_engine(mariadb_database, pool_size=2))
    try:
        with engine.connect() as a, engine.connect() as b:
            first, second = a.connection.driver_connection, b.connection.driver_connection
            assert isinstance(first, SharedTlsConnection) and first.ctx is second.ctx
            assert first.ctx.verify_mode == ssl.CERT_NONE, "preferred mode: opportunistic, as pymysql's own"
            assert a.execute(text("SELECT 1")).scalar() == 1
        session = client_connection(engine)
        assert session.ctx is first.ctx
        session.close()
    finally:
        engine.dispose()


def test_explicit_tls_options_get_their_own_context(mariadb_database: str) -> None:
    """A CA named in the URL is pymysql's business: TLS required and verified, never the shared context."""
    engine = share_tls_context(create_engine(mariadb_database + "&ssl_ca=/etc/ssl/certs/ca-certificates.crt"))
    try:
        try:
            with engine.connect() as conn:
                ctx = conn.connection.driver_connection.ctx
        except Exception as exc:  # noqa: BLE001 - a server without TLS refuses a connection that requires it
            assert "SSL" in str(exc) or "TLS" in str(exc)
        else:
            assert ctx is not SharedTlsConnection._preferred and ctx.verify_mode == ssl.CERT_REQUIRED
    finally:
        engine.dispose()
