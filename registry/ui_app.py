"""`mlflow ui --app-name demnistify`: MLflow's own server, whose UI opens experiments on their training runs."""

from __future__ import annotations

import json

# MLflow 3.17's UI takes an experiment's navigation (GenAI or Machine learning) from the choice
# stored in the browser under this key, not from the experiment's `mlflow.experimentKind` tag,
# and a browser that never chose gets GenAI. Where it never chose, the page served here makes
# Machine learning its choice; the sidebar's toggle still changes it (docs/design.md, "MLflow").
WORKFLOW_KEY = "mlflow.workflowType_v1"
DEFAULT_WORKFLOW = "machine_learning"
_KEY, _VALUE = json.dumps(WORKFLOW_KEY), json.dumps(json.dumps(DEFAULT_WORKFLOW))
DEFAULT_WORKFLOW_SCRIPT = (
    f"<script>try{{if(!localStorage.getItem({_KEY}))localStorage.setItem({_KEY},{_VALUE})}}catch(e){{}}</script>"
)


def create_app():
    """MLflow's tracking server app (FastAPI under uvicorn, else Flask) with the default set on its UI page.

    Registered as the `mlflow.app` entry point `demnistify`, as MLflow's own `basic-auth` is.
    """
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app

    app.after_request(with_default_workflow)
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def with_default_workflow(response):
    """The UI's HTML page with the default workflow script first in its head; any other response as it is."""
    if response.mimetype != "text/html" or response.status_code != 200:
        return response
    response.direct_passthrough = False
    page = response.get_data(as_text=True)
    if "<head>" in page and WORKFLOW_KEY not in page:
        response.set_data(page.replace("<head>", "<head>" + DEFAULT_WORKFLOW_SCRIPT, 1))
    return response
