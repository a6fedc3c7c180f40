"""Two dashboard replicas on "two machines" share users and sessions through PostgreSQL (INSIGHTS_STORE=ducklake).

Each replica is its own process (`replica_driver`: app.py sessions under AppTest and the API routes)
with its own data dir and the same catalog URL, and no INSIGHTS_COOKIE_KEY: the stub mode's generated
key is shared through PostgreSQL too, so a cookie one replica minted is good on the other. What one
replica (or the `python -m insights_core.auth` CLI) changes, the other sees at its next page run or
request: a logout ends sessions and refuses cookies there, a lockout applies there, a role change
applies there, a revoked API token is refused there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PYTHON, ROOT, subprocess_env

LOGIN_FORM = ["Meta Insights"]
COOKIE = "meta_insights_auth"


def lake_env(tmp_path: Path, catalog_url: str, machine: str) -> dict[str, str]:
    return subprocess_env(
        tmp_path / machine,
        INSIGHTS_STORE="ducklake",
        INSIGHTS_CATALOG_URL=catalog_url,
        INSIGHTS_LAKE_DATA_PATH=str(tmp_path / "lake"),
    )


class Replica:
    """One replica process; `send` runs one command in it and returns its reply."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "tests.dashboard.replica_driver"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def send(self, jar: dict[str, str], op: str, **fields: Any) -> dict[str, Any]:
        """Run `op` in the browser whose cookie jar is `jar` (updated in place from the reply)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, "cookies": jar, **fields}) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("REPLY "):
                reply: dict[str, Any] = json.loads(line[len("REPLY ") :])
                assert "error" not in reply, reply["error"]
                assert not reply.get("exception"), reply["exception"]
                jar.clear()
                jar.update(reply["cookies"])
                return reply
        raise AssertionError(f"the replica exited with {self.process.wait()}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def replicas(tmp_path: Path, catalog_url: str) -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica(lake_env(tmp_path, catalog_url, "machine-a")), Replica(lake_env(tmp_path, catalog_url, "machine-b"))
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def cli(tmp_path: Path, catalog_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The user CLI as an admin runs it on machine A."""
    return subprocess.run(
        [PYTHON, "-m", "insights_core.auth", *args],
        cwd=ROOT,
        env=lake_env(tmp_path, catalog_url, "machine-a"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_session_logged_out_on_replica_a_is_refused_on_replica_b(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    laptop: dict[str, str] = {}
    phone: dict[str, str] = {}
    a.send(laptop, "open", tab="laptop-a")
    assert a.send(laptop, "login", tab="laptop-a", username="manager", password="demo")["title"] == ["Overview"]
    assert laptop.get(COOKIE)
    stolen = dict(laptop)
    # the same browser, sent to replica B by the proxy: its cookie logs it in there
    assert b.send(laptop, "open", tab="laptop-b")["title"] == ["Overview"]
    b.send(phone, "open", tab="phone-b")
    assert b.send(phone, "login", tab="phone-b", username="manager", password="demo")["title"] == ["Overview"]

    assert a.send(laptop, "logout", tab="laptop-a")["title"] == LOGIN_FORM
    assert b.send(laptop, "run", tab="laptop-b")["title"] == LOGIN_FORM  # the session B held on the cookie
    assert b.send(phone, "run", tab="phone-b")["title"] == LOGIN_FORM  # a session logged in on B itself
    assert b.send(dict(stolen), "open", tab="thief-b")["title"] == LOGIN_FORM  # a copy of the old cookie


def test_a_lockout_made_on_replica_a_applies_on_replica_b(
    replicas: tuple[Replica, Replica], tmp_path: Path, catalog_url: str
) -> None:
    a, b = replicas
    attacker: dict[str, str] = {}
    for attempt in range(5):
        a.send(attacker, "open", tab=f"guess-{attempt}")
        reply = a.send(attacker, "login", tab=f"guess-{attempt}", username="analyst", password="wrong guess")
        assert "Username or password is incorrect." in reply["texts"]
    b.send(attacker, "open", tab="try-b")
    reply = b.send(attacker, "login", tab="try-b", username="analyst", password="demo")
    assert reply["title"] == LOGIN_FORM and "Too many failed logins" in reply["texts"]

    unlocked = cli(tmp_path, catalog_url, "unlock", "analyst")
    assert unlocked.returncode == 0 and "was locked out" in unlocked.stdout, unlocked.stderr
    b.send(attacker, "open", tab="after-unlock-b")
    assert b.send(attacker, "login", tab="after-unlock-b", username="analyst", password="demo")["title"] == ["Overview"]


def test_a_role_change_made_on_machine_a_applies_on_replica_b_at_its_next_run(
    replicas: tuple[Replica, Replica], tmp_path: Path, catalog_url: str
) -> None:
    _, b = replicas
    browser: dict[str, str] = {}
    b.send(browser, "open", tab="b")
    assert b.send(browser, "login", tab="b", username="analyst", password="demo")["user"]["role"] == "analyst"
    changed = cli(tmp_path, catalog_url, "set-role", "analyst", "--role", "manager")
    assert changed.returncode == 0, changed.stderr
    assert b.send(browser, "run", tab="b")["user"]["role"] == "manager"  # still logged in, with the new role
    assert "analyst\tmanager" in cli(tmp_path, catalog_url, "list-users").stdout
    assert cli(tmp_path, catalog_url, "remove-user", "analyst").returncode == 0
    assert b.send(browser, "run", tab="b")["title"] == LOGIN_FORM  # removed on A: the session on B ends


def test_an_api_token_revoked_on_replica_a_is_refused_by_replica_b(
    replicas: tuple[Replica, Replica], tmp_path: Path, catalog_url: str
) -> None:
    a, b = replicas
    admin: dict[str, str] = {}
    a.send(admin, "open", tab="admin-a")  # the first run on an empty database seeds the demo users
    a.send(admin, "login", tab="admin-a", username="admin", password="demo")
    created = cli(tmp_path, catalog_url, "new-token", "viewer")
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    token_id = created.stdout.split()[1]
    path = "/meta/insights/overview"
    assert b.send({}, "api", path=path, token=token)["status"] != 401  # known on B (no data yet: 503)

    page = a.send(admin, "page", tab="admin-a", page="pages/users.py")
    assert page["title"] == ["Users"]
    a.send(admin, "click", tab="admin-a", key="users_token_revoke", select={"users_token_revoke_id": token_id})

    refused = b.send({}, "api", path=path, token=token)
    assert refused["status"] == 401 and "invalid or revoked" in refused["body"]
    assert "tok_" not in cli(tmp_path, catalog_url, "list-tokens").stdout


def test_two_real_servers_share_api_tokens_and_users(tmp_path: Path, catalog_url: str) -> None:
    """Two `streamlit run` servers (pages and API on one port each): a token made and revoked with the CLI on
    machine A, and a removed user, are seen by both servers at their next request."""
    import urllib.error
    import urllib.request

    from tests.servers import start_dashboard, stop, wait_healthy

    def status(url: str, token: str) -> int:
        request = urllib.request.Request(f"{url}/meta/insights/overview", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    added = subprocess.run(
        [PYTHON, "-m", "insights_core.auth", "add-user", "carol", "--role", "analyst", "--password-stdin"],
        input="correct horse 1\n",
        cwd=ROOT,
        env=lake_env(tmp_path, catalog_url, "machine-a"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    created = cli(tmp_path, catalog_url, "new-token", "carol")
    assert created.returncode == 0, created.stderr
    token, token_id = created.stdout.splitlines()[-1], created.stdout.split()[1]
    servers, urls = [], []
    try:
        for machine in ("machine-a", "machine-b"):
            out = tmp_path / f"{machine}.log"
            process, url = start_dashboard(lake_env(tmp_path, catalog_url, machine), out, PYTHON)
            servers.append(process)
            urls.append(url)
            wait_healthy(process, url, 90, out)
        assert 401 not in [status(url, token) for url in urls]  # known on both (no data yet: 503)
        assert cli(tmp_path, catalog_url, "revoke-token", token_id).returncode == 0
        assert [status(url, token) for url in urls] == [401, 401]
        second = cli(tmp_path, catalog_url, "new-token", "carol").stdout.splitlines()[-1]
        assert status(urls[1], second) != 401
        assert cli(tmp_path, catalog_url, "remove-user", "carol").returncode == 0
        assert [status(url, second) for url in urls] == [401, 401]
    finally:
        for process in servers:
            stop(process)


@pytest.mark.usefixtures("entrypoint_runs_every_time")
def test_an_unreachable_database_stops_the_dashboard_with_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.dashboard.app_harness import new_app, texts, use_data_dir
    from tests.servers import free_port

    url = f"postgresql://insights:s3cret-pw@127.0.0.1:{free_port()}/none"
    use_data_dir(
        monkeypatch,
        tmp_path / "data",
        INSIGHTS_STORE="ducklake",
        INSIGHTS_CATALOG_URL=url,
        INSIGHTS_LAKE_DATA_PATH=str(tmp_path / "lake"),
    )
    at = new_app("admin").run()  # a session claiming to be logged in gets no further either
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "The dashboard cannot start: cannot reach the shared state database" in shown
    assert "s3cret-pw" not in shown and not at.title
