"""The local PostgreSQL that scripts/cluster.sh and the lake tests run: a real server, not a stand-in."""

from __future__ import annotations

import psycopg

from insights_core.cluster.postgres_server import PostgresServer


def test_a_database_survives_a_restart_and_refuses_a_wrong_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("restart_check")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE IF NOT EXISTS kept (n INT)")
        con.execute("INSERT INTO kept VALUES (1)")
    postgres_server.restart()
    with psycopg.connect(url) as con:
        assert con.execute("SELECT count(*) FROM kept").fetchone() == (1,)
    wrong = url.replace(postgres_server.password_file.read_text().strip(), "not-the-password")
    try:
        psycopg.connect(wrong).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("a wrong password was accepted")
    assert oct(postgres_server.password_file.stat().st_mode & 0o777) == "0o600"


def test_shared_state_connections_use_the_insights_schema_and_hide_the_password(
    postgres_server: PostgresServer, catalog_url: str
) -> None:
    import pytest

    from insights_core.cluster.pg import ensure_shared_schema, shared_state
    from insights_core.errors import ControlChannelError

    with shared_state(catalog_url) as con:
        ensure_shared_schema(con)
        con.execute("CREATE TABLE probe (n INT)")
    with shared_state(catalog_url) as con:
        assert con.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe'"
        ).fetchone() == ("insights",)
    password = postgres_server.password_file.read_text().strip()
    closed = catalog_url.replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(ControlChannelError) as caught, shared_state(closed):
        pass
    assert password not in str(caught.value) and "cannot reach" in str(caught.value)
