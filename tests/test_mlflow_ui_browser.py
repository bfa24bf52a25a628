"""`mlflow ui --app-name demnistify` on a store that training wrote, in a real headless Chromium: runs first."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from playwright.sync_api import expect

from registry.ui_app import WORKFLOW_KEY
from tests.server_support import free_port, healthy, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def mlflow_ui(trained_store, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "ui",
        "--app-name",
        "demnistify",
        "--backend-store-uri",
        trained_store.tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(url) or server.poll() is not None, 120, "mlflow ui")
    assert server.poll() is None, log.read_text()[-3000:]
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_the_experiment_opens_on_its_training_runs(mlflow_ui, trained_store, browser):
    client = MlflowClient(tracking_uri=trained_store.tracking_uri)
    experiment = client.get_experiment_by_name("demnistify")
    run = client.get_run(trained_store.result.run_id)
    # A fresh browser context: no workflow choice stored, as for a first visit.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{mlflow_ui}/#/experiments/{experiment.experiment_id}")
    expect(page.get_by_text(run.info.run_name).first).to_be_visible(timeout=90_000)
    assert f"/experiments/{experiment.experiment_id}/runs" in page.url
    # The run's page, from the version's description link, shows the run's datasets.
    link = client.get_model_version("demnistify-cnn", trained_store.result.model.version).description
    page.goto(f"{mlflow_ui}/{link.split('](', 1)[1].split(')', 1)[0]}")
    expect(page.locator("text=mnist-train >> visible=true").first).to_be_visible(timeout=90_000)
    context.close()


def test_a_browser_that_chose_genai_keeps_its_choice(mlflow_ui, trained_store, browser):
    experiment = MlflowClient(tracking_uri=trained_store.tracking_uri).get_experiment_by_name("demnistify")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(f"localStorage.setItem({json.dumps(WORKFLOW_KEY)}, {json.dumps(json.dumps('genai'))})")
    page = context.new_page()
    page.goto(f"{mlflow_ui}/#/experiments/{experiment.experiment_id}")
    # GenAI's navigation opens the experiment on its overview of traces.
    expect(page).to_have_url(re.compile(rf"/experiments/{experiment.experiment_id}/overview"), timeout=90_000)
    assert json.loads(page.evaluate(f"localStorage.getItem({json.dumps(WORKFLOW_KEY)})")) == "genai"
    context.close()
