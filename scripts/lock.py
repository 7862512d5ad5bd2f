"""The lock: `constraints.txt`, every distribution casegraph and its test tools resolve to, at the versions
the suite last passed with, so that a fresh clone, CI and the Docker image install exactly what was tested.

    python scripts/lock.py write   # pin what this venv holds for pyproject.toml's requirements
    python scripts/lock.py check   # does this venv hold exactly the lock's versions? (exit 1 if not)

The Makefile's venv (`make demo`, `make test`...) and docker/Dockerfile install with `pip install -c
constraints.txt`: pyproject.toml says which versions may work (ranges), the lock which ones do. Refreshing:
- `make upgrade` builds a venv of the newest versions the ranges allow, runs the whole suite on it and, when it
  passes, writes them here (then `make test` rebuilds .venv on them);
- `make lock` pins what .venv holds now: after adding a dependency to pyproject.toml (`make` installed the
  newest version of the new one, every other stays as locked).
tests/test_lock.py fails when the lock misses a requirement of pyproject.toml, pins one outside its range, or
differs from the venv the suite runs in.

The tree is read from the installed distributions' metadata (importlib.metadata), from pyproject.toml's
requirements down, markers evaluated for this interpreter: CPython 3.11 on Linux, the Docker image's.
A distribution needed only elsewhere (on Windows, on an older Python) is not pinned. Versions, not hashes:
pip takes no hashes in a constraints file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "constraints.txt"
EXTRAS = ("test",)  # the optional dependencies the venv installs (`pip install -e ".[test]"`)
ALSO = ("pip",)  # the installer itself: the Makefile upgrades the venv's pip to the locked one

HEADER = """\
# Every distribution casegraph and its test tools resolve to, at the versions the suite passed with
# (CPython 3.11, Linux). Written by scripts/lock.py, never by hand: `make upgrade` (newest versions
# pyproject.toml allows, the whole suite, then this file) or `make lock` (what .venv holds, after adding
# a dependency). The Makefile's venv and docker/Dockerfile install with `pip install -c constraints.txt`.
"""


def requirements() -> list[Requirement]:
    """pyproject.toml's requirements: the dependencies and those of the EXTRAS."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    return [
        Requirement(text) for text in [*project["dependencies"], *(r for e in EXTRAS for r in optional[e])]
    ]


def applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether a requirement holds here, for a distribution asked for with `extras`."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras})


def resolved() -> dict[NormalizedName, tuple[str, str]]:
    """Every installed distribution the requirements reach: canonical name -> (name, version). A requirement
    that is not installed stops it (the venv is not the project's)."""
    found: dict[NormalizedName, tuple[str, str]] = {}
    asked: dict[NormalizedName, set[str]] = {}  # the extras each distribution was walked with
    pending = [(r, set()) for r in requirements()] + [(Requirement(name), set()) for name in ALSO]
    while pending:
        requirement, parent_extras = pending.pop()
        if not applies(requirement, parent_extras):
            continue
        key = canonicalize_name(requirement.name)
        extras = {canonicalize_name(e) for e in requirement.extras}
        if key in asked and extras <= asked[key]:
            continue
        asked[key] = asked.get(key, set()) | extras
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"{requirement.name} (required: {requirement}) is not installed") from None
        found[key] = (distribution.metadata["Name"], distribution.version)
        pending += [(Requirement(text), asked[key]) for text in distribution.requires or []]
    return found


def locked() -> dict[NormalizedName, tuple[str, str]]:
    """The lock's pins: canonical name -> (name, version)."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = (name.strip(), version.strip())
    return pins


def differences(
    installed: dict[NormalizedName, tuple[str, str]], pins: dict[NormalizedName, tuple[str, str]]
) -> list[str]:
    lines = []
    for key in sorted(installed.keys() | pins.keys()):
        have, want = installed.get(key), pins.get(key)
        if have is None:
            lines.append(f"{want[0]}=={want[1]}: locked, but nothing installed requires it")  # type: ignore[index]
        elif want is None:
            lines.append(f"{have[0]}=={have[1]}: installed and required, not in the lock")
        elif have[1] != want[1]:
            lines.append(f"{have[0]}: {have[1]} installed, {want[1]} locked")
    return lines


def write() -> int:
    pins = resolved()
    LOCK.write_text(HEADER + "".join(f"{name}=={version}\n" for _, (name, version) in sorted(pins.items())))
    print(f"wrote {LOCK.name}: {len(pins)} distributions")
    return 0


def check() -> int:
    found = differences(resolved(), locked())
    for line in found:
        print(line, file=sys.stderr)
    print(f"{LOCK.name} {'differs from this venv' if found else 'is what this venv holds'}")
    return 1 if found else 0


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("action", choices=["write", "check"])
    return write() if args.parse_args().action == "write" else check()


if __name__ == "__main__":
    sys.exit(main())
