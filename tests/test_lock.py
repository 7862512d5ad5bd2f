"""The lock (constraints.txt, scripts/lock.py): it pins every requirement of pyproject.toml within its range
and every distribution they pull in, the venv the suite runs in holds exactly those versions, and the
Makefile's venv installs with it (the Docker image's install: tests/test_docker.py).

Under `make upgrade` (CASEGRAPH_LOCK=newest) the suite runs on the newest versions the ranges allow, which
the lock is about to be rewritten from: there the venv is not held to the lock."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import system_tool

ROOT = Path(__file__).resolve().parents[1]


def lock_script() -> Any:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOCK = lock_script()


def test_the_lock_pins_every_requirement_of_pyproject_within_its_range():
    pins = LOCK.locked()
    outside = []
    for requirement in LOCK.requirements():
        name = LOCK.canonicalize_name(requirement.name)
        if name not in pins:
            outside.append(f"{requirement}: not in constraints.txt")
        elif not requirement.specifier.contains(pins[name][1], prereleases=True):
            outside.append(f"{requirement}: constraints.txt pins {pins[name][1]}")
    assert outside == [], "run `make lock` (a new dependency) or `make upgrade`"


def test_the_lock_is_as_the_script_writes_it():
    text = (ROOT / "constraints.txt").read_text()
    assert text.startswith(LOCK.HEADER)
    pins = text.removeprefix(LOCK.HEADER).splitlines()
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+", line) for line in pins), pins
    assert pins == [f"{name}=={version}" for _, (name, version) in sorted(LOCK.locked().items())]


@pytest.mark.skipif(
    os.environ.get("CASEGRAPH_LOCK") == "newest",
    reason="make upgrade: the newest versions pyproject.toml allows, which the lock is rewritten from",
)
def test_the_venv_the_tests_run_in_holds_exactly_the_locked_versions():
    """Every distribution pyproject.toml's requirements reach is installed at its locked version, and the lock
    holds nothing else: what passed here is what a fresh clone and the image install."""
    assert LOCK.differences(LOCK.resolved(), LOCK.locked()) == [], (
        "the venv differs from constraints.txt: `make test` rebuilds it from the lock; after changing "
        "pyproject.toml, `make lock` (or `make upgrade`)"
    )


def test_the_makefile_venv_installs_with_the_lock_and_is_rebuilt_when_it_changes():
    make = system_tool("make", "apt-get install make")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)$", makefile, re.M)
    assert re.search(r"^LOCK := constraints\.txt$", makefile, re.M)
    # not a sub-make of `make upgrade`: its VENV= and CONSTRAINTS= would come along in MAKEFLAGS
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry = subprocess.run(
        [make, "--no-print-directory", "-n", "-B", ".venv/.installed"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
    )
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if " pip install " in line]
    assert len(installs) == 2 and all("--constraint constraints.txt" in line for line in installs), installs
    # make upgrade runs the suite with the lock off and tells this test so
    upgrade = re.search(r"^upgrade:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert upgrade and "CASEGRAPH_LOCK=newest $(MAKE) --no-print-directory test" in upgrade.group(1)
    assert "CONSTRAINTS=" in upgrade.group(1) and "scripts/lock.py write" in upgrade.group(1)
