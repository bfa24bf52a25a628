"""The `demnistify` command line: entry points, global options, aliases, default paths, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demnistify import __version__
from demnistify.cli import INTERRUPTED, build_parser, main
from demnistify.constants import REPO_ROOT


def run_module(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m demnistify ARGUMENTS` in `cwd`, with the source tree importable and no tracking URI."""
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "demnistify", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_dash_m_prints_the_version(tmp_path):
    done = run_module("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"demnistify {__version__}"
    assert __version__ != "0+unknown"


@pytest.mark.parametrize("argv", [["-v", "serve"], ["serve", "-v"], ["serve", "--verbose"]])
def test_global_options_are_accepted_before_and_after_the_subcommand(argv):
    assert build_parser().parse_args(argv).verbose is True


def test_a_global_option_left_out_after_the_subcommand_keeps_its_value():
    assert build_parser().parse_args(["serve"]).verbose is False
    assert build_parser().parse_args(["-v", "models"]).verbose is True


def test_version_is_accepted_after_the_subcommand(capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["serve", "--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"demnistify {__version__}"


def test_serve_address_is_the_same_option_as_host():
    parser = build_parser()
    assert parser.parse_args(["serve", "--address", "0.0.0.0"]).host == "0.0.0.0"
    assert parser.parse_args(["serve", "--host", "localhost"]).host == "localhost"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["no-such-command"])
    assert stopped.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_bad_configuration_exits_2_with_a_clear_error(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_exit_codes_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert f"{INTERRUPTED} interrupted" in " ".join(capsys.readouterr().out.split())


def test_default_store_and_data_are_in_the_working_directory(tmp_path, monkeypatch):
    from training.data import default_data_dir

    monkeypatch.delenv("MNIST_DIR", raising=False)
    work = tmp_path / "project"
    (work / "data" / "mnist").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "mnist").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert default_data_dir().resolve() == work / "data" / "mnist"
    (work / "data" / "mnist").rmdir()
    assert default_data_dir().resolve() == tmp_path / "shared" / "data" / "mnist"

    done = run_module("models", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "No version" in done.stdout
    assert (work / "mlflow.db").is_file()
