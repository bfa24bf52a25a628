"""The server-only install: its dependencies hold neither TensorFlow nor tf2onnx, and the server needs neither."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from demnistify.constants import REPO_ROOT

TRAINING_ONLY = ("tensorflow", "tf2onnx", "mlflow", "matplotlib", "scikit-image", "scipy")


def names(requirements: list[str]) -> set[str]:
    return {
        requirement.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for requirement in requirements
    }


def test_the_serve_install_leaves_training_to_its_extra():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    served = names(project["dependencies"] + extras["serve"])
    assert not served & set(TRAINING_ONLY) and {"onnxruntime", "mlflow-skinny", "websockets"} <= served
    assert set(TRAINING_ONLY) <= names(extras["train"])
    assert "demnistify[train]" in extras["dev"]  # scripts/setup.sh installs dev: everything the tests need.


def test_the_server_and_cli_start_without_tensorflow_or_tf2onnx():
    # None in sys.modules makes any import of them fail, as on a server-only install.
    code = (
        "import sys\nfor name in ('tensorflow', 'tf2onnx', 'keras'): sys.modules[name] = None\n"
        "import serving.app, serving.workers, serving.model_store, clients.cli\n"
        "from demnistify.cli import build_parser\n"
        "print(build_parser().parse_args(['serve', '--workers', '2', '--port', '9000']).command)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "serve", done.stderr[-3000:]


def test_the_server_imports_nothing_from_training_nor_tensorflow():
    # The server loads its model through registry/; training code and TensorFlow stay out of its process.
    code = (
        "import sys\nimport serving.app, serving.workers, serving.cli, recognizer.pyfunc\n"
        "print(' '.join(sorted(name for name in sys.modules\n"
        "                      if name.split('.')[0] in ('training', 'tensorflow', 'keras', 'tf2onnx'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"the server imported {done.stdout.strip()}"
