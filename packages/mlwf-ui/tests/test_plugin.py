"""mlwf-ui's plugin: its React apps pass Airflow's model, its bundle route, and the pages in Chromium.

A react_apps entry that Airflow's model refuses drops the whole plugin silently, so the entries
are checked against that model and against the names the bundle registers. One real
``airflow api-server`` (SQLite, SimpleAuthManager) serves the module; the mlwf APIs the pages
call are not installed here, so the pages show their error state: what is checked is that Airflow's UI
loads the bundle and renders its components with the host's React and Chakra UI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.api_fastapi.core_api.datamodels.plugins import ReactAppResponse
from mlwf_testsupport import CHROMIUM_ARGS, airflow_api_server, require_executable
from mlwf_ui._plugin import BUNDLE_URL, REACT_APPS, STATIC

FRONTEND = Path(__file__).parents[1] / "frontend"


def test_the_react_apps_pass_airflows_model_with_unique_routes() -> None:
    for app in REACT_APPS:
        ReactAppResponse.model_validate(app)
    routes = [app["url_route"] for app in REACT_APPS]
    assert len(set(routes)) == len(routes)
    assert {app["bundle_url"] for app in REACT_APPS} == {BUNDLE_URL}
    assert not BUNDLE_URL.startswith("/")  # relative to the UI's base URL (path prefixes)


def test_the_bundle_registers_every_apps_name() -> None:
    pages = re.search(
        r"export const PAGES = \{(.*?)\}", (FRONTEND / "src/main.tsx").read_text(), re.S
    )
    assert pages is not None
    registered = set(re.findall(r"^\s*(\w+):", pages.group(1), re.M))
    assert registered == {app["name"] for app in REACT_APPS}
    bundle = (STATIC / "main.js").read_text()
    assert "Reflect.set(globalThis" in bundle
    # Only host globals: the bundle imports nothing (the UI's import() could not resolve it).
    assert not re.search(r"^\s*import\s", bundle, re.M)
    assert "globalThis.ChakraUI" in bundle and "globalThis.React" in bundle


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real api-server with the plugin; yields its URL and an admin's token."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    (home / "dags").mkdir(parents=True)
    (root / "passwords.json").write_text(json.dumps({"admin": "pw-admin"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "ui-tests-0123456789abcdef0123456789abcdef",
            "AIRFLOW__API__SECRET_KEY": "ui-tests",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    with airflow_api_server(env, root / "server.log") as url:
        answer = httpx.post(
            f"{url}/auth/token", json={"username": "admin", "password": "pw-admin"}, timeout=60
        )
        assert answer.status_code == 201, answer.text
        yield url, answer.json()["access_token"]


def test_airflow_lists_the_plugin_with_its_react_apps(server: tuple[str, str]) -> None:
    url, token = server
    plugins = httpx.get(
        f"{url}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=60
    ).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "mlwf_ui")
    assert [a["name"] for a in ours["react_apps"]] == [a["name"] for a in REACT_APPS]


def test_the_bundle_is_served_to_signed_in_users_only(server: tuple[str, str]) -> None:
    url, token = server
    bundle = f"{url}/{BUNDLE_URL}"
    assert httpx.get(bundle, timeout=60).status_code == 401
    answer = httpx.get(bundle, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.content == (STATIC / "main.js").read_bytes()
    again = httpx.get(
        bundle,
        headers={"Authorization": f"Bearer {token}", "If-None-Match": answer.headers["etag"]},
        timeout=60,
    )
    assert again.status_code == 304
    cookie = httpx.get(bundle, cookies={"_token": token}, timeout=60)
    assert cookie.status_code == 200  # the UI's import() sends the session cookie
    for name in ("other.js", "..%2F_plugin.py", "%2E%2E%2F__init__.py"):
        refused = httpx.get(
            f"{url}/mlwf/ui/static/{name}", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert refused.status_code == 404, name
        assert b"import" not in refused.content


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skips, or fails in CI, without it)."""
    chromium = require_executable("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


def test_the_pages_render_inside_airflows_ui(
    server: tuple[str, str], browser: Any, tmp_path: Path
) -> None:
    url, token = server
    context = browser.new_context()
    context.add_cookies([{"name": "_token", "value": token, "url": url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/plugin/mlwf-tunings")
    # The component ran with the host's React and Chakra: its error state names the failed call
    # (mlwf-tuning, which serves the data, is not installed in this environment).
    page.wait_for_selector("text=has no route /mlwf/tuning/tunings", timeout=60_000)
    page.goto(f"{url}/plugin/mlwf-constructors")
    page.wait_for_selector("text=has no route /mlwf/constructors/constructors", timeout=60_000)
    page.screenshot(path=str(tmp_path / "constructors.png"))
    # Both nav pages are in the Browse menu.
    page.get_by_role("button", name="Browse").click()
    for name in ("Constructors", "Tunings"):
        page.get_by_role("menuitem", name=name).wait_for(timeout=30_000)
    assert errors == []
