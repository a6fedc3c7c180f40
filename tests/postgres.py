"""A real PostgreSQL for the lake tests: one server per test session, one fresh database per test.

The server comes from Debian's package (scripts/test.sh installs it) and is started under /tmp (the
server's unprivileged user cannot reach pytest's 0700 temp dirs). Tests get `lake_settings`: the
product's settings with INSIGHTS_STORE=ducklake pointed at their own catalog database and data dir.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.cluster.postgres_server import PostgresServer
from tests.servers import free_port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="insights-test-pg-"))
    server = PostgresServer(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def catalog_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server."""
    return postgres_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
