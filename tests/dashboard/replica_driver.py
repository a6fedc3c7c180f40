"""One dashboard replica in its own process, for the multi-replica tests (`test_auth_replicas.py`).

It runs app.py sessions with AppTest, as `streamlit run` would run them on one machine, and its API
routes with a TestClient, and answers commands read as JSON lines on stdin with one `REPLY {json}`
line each on stdout. The test holds the browsers' cookie jars: every command carries the cookies of
the browser it runs in and the reply carries them back, updated from the cookie ticket the run drew
(fetched from this process's own cookie route, as the browser's image does).

Commands: open (a new tab), login, logout, run (the tab's next rerun), page (switch to a page file),
click (a button by key, after optional selectbox choices), api (GET a path with a bearer token).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import Any

import streamlit.runtime.scriptrunner.script_runner as script_runner_module
from streamlit.runtime.context import ContextProxy
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from insights_core.dashboard.cookie_handoff import cookie_routes, ticket_url
from insights_core.dashboard.login import PENDING_COOKIES_KEY
from tests.dashboard.app_harness import APP, texts

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.testclient import TestClient


class _NavigationMode(PagesManager):
    uses_pages_directory = False  # every run goes through app.py (see tests/conftest.py)


def main() -> None:
    script_runner_module.PagesManager = _NavigationMode  # type: ignore[misc]
    jar: dict[str, str] = {}
    ContextProxy.cookies = property(lambda self: dict(jar))  # type: ignore[assignment,method-assign]
    cookie_server = TestClient(Starlette(routes=cookie_routes()))
    api: TestClient | None = None
    tabs: dict[str, AppTest] = {}
    for line in sys.stdin:
        command = json.loads(line)
        jar.clear()
        jar.update(command.get("cookies", {}))
        reply: dict[str, Any] = {}
        try:
            op = command["op"]
            if op == "api":
                if api is None:
                    from insights_core.api.routes import api_routes
                    from insights_core.settings import load_settings

                    api = TestClient(Starlette(routes=api_routes(load_settings())))
                answer = api.get(command["path"], headers={"Authorization": f"Bearer {command['token']}"})
                reply = {"status": answer.status_code, "body": answer.text}
            else:
                at = _drive(tabs, command)
                _settle(at, cookie_server, jar)
                user = at.session_state["mi_user"] if "mi_user" in at.session_state else None  # noqa: SIM401  # AppTest state has no .get
                reply = {
                    "title": [t.value for t in at.title],
                    "texts": texts(at),
                    "exception": [e.value for e in at.exception],
                    "user": dict(user) if user else None,
                }
        except Exception:
            reply = {"error": traceback.format_exc()}
        reply["cookies"] = dict(jar)
        print("REPLY " + json.dumps(reply), flush=True)


def _drive(tabs: dict[str, AppTest], command: dict[str, Any]) -> AppTest:
    op, tab = command["op"], command["tab"]
    if op == "open":
        tabs[tab] = AppTest.from_file(APP, default_timeout=60)
        return tabs[tab].run()
    at = tabs[tab]
    if op == "login":
        at.text_input[0].input(command["username"])
        at.text_input[1].input(command["password"])
        return at.button[0].click().run()
    if op == "logout":
        return at.button(key="mi_logout").click().run()
    if op == "page":
        at.switch_page(command["page"])
        return at.run()
    if op == "click":
        for key, value in command.get("select", {}).items():
            at.selectbox(key=key).select(value)
        return at.button(key=command["key"]).click().run()
    if op == "run":
        return at.run()
    raise ValueError(f"unknown command {op!r}")


def _settle(at: AppTest, cookie_server: TestClient, jar: dict[str, str]) -> None:
    ticket = at.session_state[PENDING_COOKIES_KEY] if PENDING_COOKIES_KEY in at.session_state else None  # noqa: SIM401
    if not ticket:
        return
    answer = cookie_server.get(ticket_url(ticket))
    for header in answer.headers.get_list("set-cookie"):
        name, value = header.split(";")[0].split("=", 1)
        if "max-age=0" in header.lower() or not value.strip('"'):
            jar.pop(name, None)
        else:
            jar[name] = value


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # stdin closed: the test is done; AppTest's script threads need not be waited for
