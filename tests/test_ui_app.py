"""The `mlflow ui --app-name demnistify` page: the default workflow script goes into the UI's HTML page only."""

from __future__ import annotations

from flask import Response

from registry.ui_app import DEFAULT_WORKFLOW_SCRIPT, with_default_workflow

PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"/></head><body><div id="root"></div></body></html>'


def test_the_ui_page_sets_the_default_workflow_first_in_its_head_once():
    response = with_default_workflow(Response(PAGE, mimetype="text/html"))
    page = response.get_data(as_text=True)
    assert page.startswith('<!doctype html><html lang="en"><head>' + DEFAULT_WORKFLOW_SCRIPT + "<meta")
    assert response.content_length == len(page.encode())
    assert with_default_workflow(response).get_data(as_text=True) == page


def test_other_responses_pass_unchanged():
    body = '{"experiments": [{"name": "<head>"}]}'
    assert with_default_workflow(Response(body, mimetype="application/json")).get_data(as_text=True) == body
    assert with_default_workflow(Response(PAGE, status=404, mimetype="text/html")).get_data(as_text=True) == PAGE
