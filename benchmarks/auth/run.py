"""auth: listing 1,000 DAGs and one DAG check with MlwfAuthManager vs SimpleAuthManager.

Two real ``airflow api-server`` processes on one throwaway PostgreSQL metadata database holding
1,000 serialized DAGs (``team<k>_dag<i>``, 50 teams x 20): the candidate with
``mlwf_auth.manager.MlwfAuthManager`` (a real slapd; the user is in 10 groups; the policy has 50
rules, 5 per group, each ``team<k>_*``, so the rules give the user all 1,000 DAGs), the
baseline with Airflow's SimpleAuthManager (role ``user``: every DAG, no DAG-level check). The
same requests go to both, paired and alternating which goes first (ABBA), after a warm-up:
``GET /api/v2/dags?limit=1000`` (the 1,000 DAGs) and ``GET /api/v2/dags/<id>`` (one
``is_authorized_dag``), ``ROUNDS`` rounds. Ratio (``ratio``, listing): the median of the
per-round ratios candidate time / baseline time with a 95 % bootstrap interval
(``mlwf_testsupport.benchmark``); target ≤ 1.2. LDAP (``ldap_searches``): slapd's operation log
counts the searches made while the candidate answered the measured requests; a count, so its
interval is the count itself; target 0 after the warm-up's first lookup. A wrong answer (status,
number of DAGs) stops the run with an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mlwf_testsupport import airflow_api_server, throwaway_database
from mlwf_testsupport.benchmark import abba, environment, estimate, paired_ratio, write_result
from mlwf_testsupport.slapd import LdapUser, directory_ldif, slapd_server

TEAMS, PER_TEAM, GROUPS = 50, 20, 10
ROUNDS = int(os.environ.get("MLWF_BENCH_AUTH_ROUNDS", "40"))
TARGET = 1.2
SUFFIX = "dc=example,dc=test"
PASSWORD = "bench-pw-1"


def _dag_file() -> str:
    return (
        "from airflow.sdk import DAG\n"
        f"for k in range({TEAMS}):\n"
        f"    for i in range({PER_TEAM}):\n"
        "        name = f'team{k}_dag{i}'\n"
        "        globals()[name] = DAG(name, schedule=None, tags=[f'team{k}'])\n"
    )


def _policy() -> dict[str, Any]:
    rules = [
        {"groups": [f"g{k % GROUPS}"], "dags": [f"team{k}_*"], "actions": ["read", "run"]}
        for k in range(TEAMS)
    ]
    return {"roles": {"users": [f"g{g}" for g in range(GROUPS)]}, "rules": rules}


def _timed(client: httpx.Client, path: str, expected: int) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text[:300]
    if path.startswith("/api/v2/dags?"):
        assert answer.json()["total_entries"] == expected, answer.json()["total_entries"]
    return took


def main() -> None:
    started = time.monotonic()
    env_before = environment("auth")
    orders = abba(ROUNDS)
    work = Path(tempfile.mkdtemp(prefix="mlwf-bench-auth-"))
    home, dags = work / "home", work / "home" / "dags"
    dags.mkdir(parents=True)
    (dags / "teams.py").write_text(_dag_file())
    (work / "policy.json").write_text(json.dumps(_policy()))
    (work / "passwords.json").write_text(json.dumps({"bench": PASSWORD}))
    users = [LdapUser("bench", PASSWORD, 1001, [f"g{g}" for g in range(GROUPS)])]
    ldif = directory_ldif(SUFFIX, users, {f"g{g}": "groupOfNames" for g in range(GROUPS)})
    with (
        throwaway_database("postgresql", "bench_auth") as url,
        slapd_server(work / "slapd", ldif, suffix=SUFFIX, log_level=256) as ldap,
    ):
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url.replace("+psycopg", "+asyncpg"),
            "AIRFLOW__API__SECRET_KEY": "bench-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-jwt-secret-0123456789abcdef",
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONFAULTHANDLER": "1",  # a crash of either server prints its threads' stacks
            # Both servers wait on PostgreSQL with psycopg's Python poll() loop, not its C
            # wait_c: with wait_c, the SimpleAuthManager server crashed (segfault, heap
            # corruption in psycopg and SQLAlchemy objects) in 7 of 7 runs of this benchmark on
            # psycopg-binary 3.3.9, and in 0 of 3 with wait_poll (docs/benchmarks.md, auth).
            "PSYCOPG_WAIT_FUNC": "wait_poll",
        }
        for args in (("db", "migrate"), ("dags", "reserialize")):
            subprocess.run([sys.executable, "-m", "airflow", *args], env=base, check=True,
                           capture_output=True, timeout=900)  # fmt: skip
        candidate_env = {
            **base,
            "AIRFLOW__CORE__AUTH_MANAGER": "mlwf_auth.manager.MlwfAuthManager",
            "AIRFLOW__MLWF_AUTH__POLICY_FILE": str(work / "policy.json"),
            "AIRFLOW__MLWF_AUTH__LDAP_URL": ldap.url,
            "AIRFLOW__MLWF_AUTH__LDAP_USER_BASE": f"ou=people,{SUFFIX}",
        }
        baseline_env = {
            **base,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bench:user",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(work / "passwords.json"),
        }
        with (
            airflow_api_server(candidate_env, work / "candidate.log") as candidate_url,
            airflow_api_server(baseline_env, work / "baseline.log") as baseline_url,
        ):
            clients = {}
            for name, server in (("candidate", candidate_url), ("baseline", baseline_url)):
                token = httpx.post(f"{server}/auth/token", json={"username": "bench",
                                   "password": PASSWORD}, timeout=60)  # fmt: skip
                assert token.status_code in (200, 201), token.text
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                clients[name] = httpx.Client(base_url=server, headers=headers, timeout=120)
            total = TEAMS * PER_TEAM
            paths = {"list": "/api/v2/dags?limit=1000", "one": "/api/v2/dags/team7_dag3"}
            for _ in range(3):  # warm-up (and the candidate's first LDAP lookup)
                for client in clients.values():
                    for path in paths.values():
                        _timed(client, path, total)
            log = work / "slapd" / "slapd.log"
            searches_before = log.read_text(errors="replace").count(" SRCH base=")
            samples: dict[str, list[float]] = {}
            for order in orders:
                for key, path in paths.items():
                    for side in order:
                        took = _timed(clients[side], path, total)
                        samples.setdefault(f"{key}_{side}_s", []).append(took)
            searches = log.read_text(errors="replace").count(" SRCH base=") - searches_before
            for client in clients.values():
                client.close()
    measured = ROUNDS * len(paths)
    estimates: dict[str, dict[str, Any]] = {}
    ratios: dict[str, list[float]] = {}
    for key, name in (("list", "ratio"), ("one", "ratio_one_dag")):
        pair = paired_ratio(samples[f"{key}_candidate_s"], samples[f"{key}_baseline_s"])
        ratios[key] = pair.pop("ratios")
        estimates[name] = pair
        for side in ("candidate", "baseline"):
            estimates[f"{key}_{side}_s"] = estimate(samples[f"{key}_{side}_s"])
    # A count, not a sample: its interval is the count itself.
    estimates["ldap_searches"] = {"value": searches, "ci95": [searches, searches], "n": measured}
    listing, one = estimates["ratio"], estimates["ratio_one_dag"]
    verdict = (
        "met"
        if listing["ci95"][1] <= TARGET
        else "missed"
        if listing["ci95"][0] > TARGET
        else "not shown"
    )
    write_result(
        "auth",
        description=(
            "GET /api/v2/dags?limit=1000 (1,000 DAGs) and GET /api/v2/dags/<id> on a real "
            "api-server with MlwfAuthManager (user in 10 groups, 50 rules, real slapd) vs "
            "SimpleAuthManager (role user), one PostgreSQL database, paired ABBA after warm-up; "
            "LDAP searches counted in slapd's log during the measured requests"
        ),
        estimates=estimates,
        headline="ratio",
        meaning=(
            "MlwfAuthManager time / SimpleAuthManager time listing 1,000 DAGs, median of "
            "per-round ratios; lower is better (target <= 1.2); ldap_searches: slapd searches "
            "during the measured requests (target 0)"
        ),
        samples={**samples, "ratios": ratios, "order": [list(o) for o in orders]},
        details={
            "dags": TEAMS * PER_TEAM,
            "rounds": ROUNDS,
            "measured_candidate_requests": measured,
            "psycopg_wait_func": "wait_poll (both servers; docs/benchmarks.md, auth)",
            "wall_s": time.monotonic() - started,
        },
        environment=env_before,
        summary=(
            f"auth: listing 1,000 DAGs {listing['value']:.2f}x SimpleAuthManager (95% CI "
            f"{listing['ci95'][0]:.2f}-{listing['ci95'][1]:.2f}, target {TARGET}: {verdict}); "
            f"one DAG {one['value']:.2f}x (95% CI {one['ci95'][0]:.2f}-{one['ci95'][1]:.2f}); "
            f"{searches} LDAP searches in {measured} measured requests (target 0)"
        ),
    )


if __name__ == "__main__":
    main()
