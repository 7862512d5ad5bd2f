"""The layers hold: `lint-imports` (pyproject.toml's contracts, run by `make test`) passes on the code, and
fails on a copy of it given one wrong import: upward along the request's path, into the demo upstream, or
round in a cycle. Also: no module of the gateway outside the demo is over 450 lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_LINES = 450


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract", "found"),
    [
        (  # the upstream cache reaching up to the HTTP edge
            "upstream/cache.py",
            "from gateway.http import endpoint",
            "The request's path: each stage imports only the stages below it BROKEN",
            "gateway.upstream.cache -> gateway.http.endpoint",
        ),
        (
            "planning/plan.py",
            "import gateway.demo.data",
            "The gateway does not import the demo upstream BROKEN",
            "gateway.planning.plan -> gateway.demo.data",
        ),
        (  # the loaders import the v2 client: the client importing the loaders closes a cycle
            "upstream/v2.py",
            "from gateway.upstream import loaders",
            "No import cycles among the modules of any package BROKEN",
            ".v2 -> .loaders",
        ),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path, module, wrong_import, contract, found):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "gateway", tmp_path / "gateway", ignore=shutil.ignore_patterns("__pycache__", "static")
    )
    target = tmp_path / "gateway" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # a wrong import\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert contract in result.stdout, result.stdout
    assert found in result.stdout, result.stdout
    assert str(ROOT) not in result.stdout + result.stderr  # the copy was linted, not the repository


def test_no_module_of_the_gateway_is_over_450_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "gateway").rglob("*.py")
        if "demo" not in path.relative_to(ROOT / "gateway").parts
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
