"""A local PostgreSQL server for the lake's catalog and shared state: `scripts/cluster.sh` and the tests.

Debian's package provides the binaries (`apt-get install postgresql`); the cluster is initialised
under a directory we own and runs as an unprivileged user, because PostgreSQL refuses to run as root:
as root that user is Debian's `postgres`, otherwise the caller. The superuser `insights` has a random
password kept beside the cluster (0600), and the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from insights_core.errors import ConfigError

SUPERUSER = "insights"
_INSTALL_HINT = "PostgreSQL is not installed: apt-get install postgresql (scripts/test.sh and scripts/cluster.sh do it)"


def find_postgres_bin() -> Path:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin)."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists() and p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    if not found:
        raise ConfigError(_INSTALL_HINT)
    return found[-1]


@dataclass
class PostgresServer:
    """One cluster directory and the port it serves on; `start`, `stop` and `restart` are idempotent."""

    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    @property
    def password_file(self) -> Path:
        return self.root / "superuser-password"

    def url(self, database: str = "postgres") -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def ensure_initialised(self) -> None:
        """initdb once: the directory owned by the server's user, reachable through the root (0711)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        owner = _server_user()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)  # the server's user must reach pgdata; it cannot list the root
        if owner is not None:
            _allow_traversal(self.root.resolve().parent)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)
        staging = self.root / "pgdata.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        pwfile = self.root / ".initdb-pw"
        pwfile.write_text(self.password_file.read_text())
        try:
            if owner is not None:
                os.chown(staging, owner.pw_uid, owner.pw_gid)
                os.chown(pwfile, owner.pw_uid, owner.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(staging),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        staging.rename(self.data_dir)  # a crash mid-initdb leaves only the staging dir

    def start(self) -> None:
        self.ensure_initialised()
        if self.is_running():
            return
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.data_dir}'"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.data_dir / "server.log"), "-w", "start"
        )

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        done = subprocess.run(
            [*self._as_owner(), str(find_postgres_bin() / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            text=True,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        """Create `name` if missing; return its URL."""
        import psycopg  # imported here: the embedded store never needs it

        with psycopg.connect(self.url(), autocommit=True) as con:
            if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                con.execute(f'CREATE DATABASE "{name}"')  # a name we chose; identifiers cannot be parameters
        return self.url(name)

    def _as_owner(self) -> list[str]:
        owner = _server_user()
        return ["runuser", "-u", owner.pw_name, "--"] if owner is not None else []

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_owner(), str(find_postgres_bin() / tool), *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ConfigError(f"{tool} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")


def _allow_traversal(directory: Path) -> None:
    """Let the server's user pass through `directory` and its parents (search only, never list): a
    private data dir (0700) would otherwise keep it from the cluster inside."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & 0o001:
            os.chmod(path, (mode & 0o7777) | 0o001)


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: Debian's `postgres` when we are root (the server refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ConfigError(_INSTALL_HINT) from exc


def main(argv: list[str] | None = None) -> int:
    """`python -m insights_core.cluster.postgres_server start|stop|url --root DIR --port N` (scripts/cluster.sh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m insights_core.cluster.postgres_server")
    parser.add_argument("action", choices=("start", "stop", "url"))
    parser.add_argument("--root", type=Path, required=True, help="directory holding the cluster (created)")
    parser.add_argument("--port", type=int, default=5433)
    parser.add_argument("--database", default="insights", help="start: created if missing; url: printed")
    args = parser.parse_args(argv)
    server = PostgresServer(args.root.resolve(), args.port)
    try:
        if args.action == "start":
            server.start()
            print(server.create_database(args.database))
        elif args.action == "stop":
            server.stop()
        else:
            print(server.url(args.database))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
