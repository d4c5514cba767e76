"""mlwf-ui's Constructors page in Chromium on the package's laptop instance (issue 14).

Through the page only: open Browse → Constructors, start a new instance of
``train_evaluate_workflow``, submit a value its schema refuses (the error shows at the field and
nothing is stored), create the instance, follow its link to its DAG in Airflow's UI, then run it
(through the REST API) to success. Disable and delete go through the page's confirmation dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi

INSTANCE = "ui_made_model"


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(instance) as client:
        yield client


@pytest.fixture(scope="module")
def page(api: AirflowApi, signed_in_page: Callable[..., Any]) -> Iterator[Any]:
    """The module's signed-in Chromium page."""
    with signed_in_page(api) as signed_in:
        yield signed_in


def test_create_an_instance_from_the_page_and_run_its_dag(
    api: AirflowApi, page: Any, screenshots: Path
) -> None:
    page.goto(f"{api.url}/dags")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Constructors").click()
    row = page.locator("[data-constructor=train_evaluate_workflow]")
    row.wait_for(timeout=60_000)
    row.get_by_role("button", name="New instance").click()
    form = page.locator("[data-testid=instance-form]")
    form.get_by_label("instance id", exact=False).fill(INSTANCE)
    form.locator("select[name=dataset]").select_option(label="iris")
    form.locator("input[name=C]").fill("-1")  # the schema's minimum is 0
    form.get_by_role("button", name="Create").click()
    assert page.locator("[data-testid=error-C]").inner_text() == "must be at least 0"
    page.locator("[data-testid=error-C]").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "constructors-form.png"))
    with api.client_for("/mlwf/constructors") as constructors:
        assert constructors.get(f"/instances/{INSTANCE}").status_code == 404  # nothing stored
    form.locator("input[name=C]").fill("0.5")
    assert page.locator("[data-testid=error-C]").count() == 0  # edited: the error is gone
    form.get_by_role("button", name="Create").click()
    page.locator(f"[data-instance={INSTANCE}]").wait_for(timeout=60_000)
    assert "Saved ui_made_model" in page.locator("[data-testid=message]").inner_text()
    with api.client_for("/mlwf/constructors") as constructors:
        stored = constructors.get(f"/instances/{INSTANCE}").json()
    assert stored["values"]["C"] == 0.5 and stored["values"]["dataset"] == "iris"
    api.wait_dag(INSTANCE)
    page.locator(f"[data-instance={INSTANCE}] a").click()
    page.wait_for_url(f"**/dags/{INSTANCE}**", timeout=60_000)
    page.get_by_text(INSTANCE).first.wait_for(timeout=60_000)
    run_id = api.trigger(INSTANCE)
    assert api.wait_run(INSTANCE, run_id, timeout=300) == "success"


def test_disable_and_delete_ask_first(api: AirflowApi, page: Any) -> None:
    page.goto(f"{api.url}/plugin/mlwf-constructors")
    row = page.locator(f"[data-instance={INSTANCE}]")
    row.wait_for(timeout=60_000)
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Disable").click()
    with api.client_for("/mlwf/constructors") as constructors:
        assert constructors.get(f"/instances/{INSTANCE}").json()["enabled"] is True  # declined
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Disable").click()
    message = page.locator("[data-testid=message]")
    message.wait_for(timeout=60_000)
    assert message.inner_text() == f"{INSTANCE}: disabled"
    row.get_by_text("disabled", exact=True).wait_for(timeout=60_000)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    page.get_by_text(f"{INSTANCE}: deleted").wait_for(timeout=60_000)
    with api.client_for("/mlwf/constructors") as constructors:
        assert constructors.get(f"/instances/{INSTANCE}").status_code == 404


def test_create_a_tuning_from_the_tunings_page_and_run_it(api: AirflowApi, page: Any) -> None:
    """The spec builder: tune C of train_evaluate_workflow (2 experiments); the tuning runs."""
    tuning = "ui_made_tuning"
    page.goto(f"{api.url}/plugin/mlwf-tunings")
    page.get_by_role("button", name="Create a tuning").click()
    form = page.locator("[data-testid=tuning-form]")
    form.wait_for(timeout=60_000)
    form.locator("select[name=constructor]").select_option("train_evaluate_workflow")
    form.get_by_label("tuning id", exact=False).fill(tuning)
    form.get_by_label("tune C").check()
    form.get_by_label("C low").fill("0.01")
    form.get_by_label("C high").fill("10")
    form.get_by_label("C log").check()
    form.locator("input[name=metric]").fill("log_loss")
    form.locator("select[name=method]").select_option("random")
    form.locator("input[name=n_experiments]").fill("2")
    form.locator("textarea[name=base_conf]").fill('{"dataset": "iris"}')
    form.get_by_role("button", name="Create the tuning").click()
    page.get_by_text(f"Created the tuning DAG {tuning}").wait_for(timeout=60_000)
    run_id = api.trigger(tuning)
    assert api.wait_run(tuning, run_id, timeout=400) == "success"
    with api.client_for("/mlwf/tuning") as tuning_api:
        detail = tuning_api.get(f"/tunings/{tuning}/{run_id}").json()
    assert detail["states"] == {"succeeded": 2}
    assert [h["name"] for h in detail["hyperparameters"]] == ["C"]
    assert all(0.01 <= e["params"]["C"] <= 10 for e in detail["experiments"])
