"""Refresh the GraphiQL files the gateway serves (gateway/http/static/vendor/) from the npm registry.

    python scripts/refresh_graphiql.py          # download the pinned packages, write the files and manifest.json
    python scripts/refresh_graphiql.py --check  # download them again and compare with the shipped files

To move to newer versions, change PINNED below and run the script. Each package comes from `npm pack` (npm
checks the tarball against the registry's integrity hash); the files the page loads are copied out of it
unchanged but for the PATCHES below, and manifest.json records each package's version and integrity, each
file's sha256 (tests/test_graphiql.py checks the shipped files against it) and, for a patched file, the
sha256 of the file as the package has it and what was changed. Needs npm and the registry, nothing else.

Why GraphiQL 4 and not 5 (the current major): the page must work offline and under a Content-Security-Policy
that allows scripts and styles from the gateway's own origin only.
- GraphiQL 5 ships only ES modules with bare imports (`react`, `@graphiql/react`, `monaco-editor`...) and no
  UMD build (its package.json leaves `dist/index.umd.*` and `dist/cdn.*` out). A browser runs those only
  through a bundler, or an import map pointing at a CDN, and an import map is an inline script.
- Bundled (esbuild, tried: 7 MB), it loads offline, but its editor, Monaco, writes inline style attributes
  and <style> elements (microsoft/monaco-editor#271): under `style-src 'self'` the editor draws every line
  on top of the first. It needs `'unsafe-inline'` for styles.
- GraphiQL 4.1.2, the last release of 4.x (CodeMirror 5), ships a UMD build that runs under that policy as
  it is, with React 18.3.1 (React 19 ships no UMD build) and the explorer plugin 4.0.6 (the last 4.x,
  made for the @graphiql/react 0.34 that GraphiQL 4.1.2 bundles).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "gateway" / "http" / "static" / "vendor"
MANIFEST = "manifest.json"
LICENSES = "THIRD_PARTY_LICENSES.txt"

PINNED = {
    "react": "18.3.1",
    "react-dom": "18.3.1",
    "graphiql": "4.1.2",
    "@graphiql/plugin-explorer": "4.0.6",
}
# shipped name -> (package, path in its tarball); gateway/http/graphiql.py loads them in this order
FILES = {
    "react.production.min.js": ("react", "package/umd/react.production.min.js"),
    "react-dom.production.min.js": ("react-dom", "package/umd/react-dom.production.min.js"),
    "graphiql.min.js": ("graphiql", "package/graphiql.min.js"),
    "graphiql-plugin-explorer.umd.js": ("@graphiql/plugin-explorer", "package/dist/index.umd.js"),
    "graphiql.min.css": ("graphiql", "package/graphiql.min.css"),
    "graphiql-plugin-explorer.css": ("@graphiql/plugin-explorer", "package/dist/style.css"),
}
LICENSE_NAMES = ("package/LICENSE", "package/LICENSE.md", "package/LICENCE")

# Fixes to the packages' own code, applied to the files as shipped: shipped name -> [(why, old, new, count)];
# the build fails unless `old` occurs exactly `count` times, so a new version cannot slip past a patch.
PATCHES = {
    "graphiql-plugin-explorer.umd.js": [
        (
            # graphiql-explorer draws no control for a list argument's value: for an enum or input-object
            # argument holding a list (the README's first example: `priority: [HIGH, CRITICAL]`) it draws
            # nothing and logs `arg mismatch between arg and selection` at every render (5 console errors on
            # GraphiQL's first view; OneGraph/graphiql-explorer#66, open, the project archived). Patched: the
            # value is shown as GraphQL text (graphql's `print`), read-only (it is edited in the query).
            "list argument values shown as text instead of a console error (OneGraph/graphiql-explorer#66)",
            'console.error("arg mismatch between arg and selection",u,a)',
            'c=i.createElement("span",{style:{color:p.colors.string2}},(0,o.print)(a))',
            2,
        )
    ]
}


def patched(name: str, data: bytes) -> bytes:
    for why, old, new, count in PATCHES.get(name, []):
        found = data.count(old.encode())
        if found != count:
            raise SystemExit(f"{name}: the patch '{why}' expects {count} of {old!r}, found {found}")
        data = data.replace(old.encode(), new.encode())
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(package: str, version: str, into: Path) -> tuple[dict[str, str], tarfile.TarFile]:
    """`npm pack` one package version (npm verifies the tarball's integrity); its registry facts and tarball."""
    argv = ["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", str(into)]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    (info,) = json.loads(result.stdout)
    assert info["version"] == version, info
    return (
        {"version": version, "tarball": info["filename"], "integrity": info["integrity"]},
        tarfile.open(into / info["filename"]),
    )


def build(out: Path, downloads: Path) -> dict[str, object]:
    packages: dict[str, dict[str, str]] = {}
    tarballs: dict[str, tarfile.TarFile] = {}
    for package, version in PINNED.items():
        packages[package], tarballs[package] = pack(package, version, downloads)
    files = {}
    for name, (package, member) in FILES.items():
        original = tarballs[package].extractfile(member).read()  # type: ignore[union-attr]
        data = patched(name, original)
        (out / name).write_bytes(data)
        files[name] = {"package": package, "from": member, "sha256": sha256(data), "bytes": len(data)}
        if data != original:
            files[name]["patched"] = [why for why, *_ in PATCHES[name]]
            files[name]["package_sha256"] = sha256(original)
    notices = []
    for package, tar in tarballs.items():
        info = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
        names = set(tar.getnames())
        found = next((n for n in LICENSE_NAMES if n in names), None)
        text = (
            tar.extractfile(found).read().decode().strip()  # type: ignore[union-attr]
            if found
            else f"(the package has no licence file; its package.json says {info['license']})"
        )
        packages[package]["license"] = info["license"]
        notices.append(f"{package} {info['version']} ({info['license']})\n\n{text}\n")
    (out / LICENSES).write_text(("\n" + "-" * 78 + "\n\n").join(notices))
    files[LICENSES] = {
        "sha256": sha256((out / LICENSES).read_bytes()),
        "bytes": (out / LICENSES).stat().st_size,
    }
    return {
        "generated_by": "scripts/refresh_graphiql.py (never edit these files by hand; its PATCHES are applied)",
        "why": "GraphiQL 4's UMD build runs offline under a Content-Security-Policy of 'self' for scripts and "
        "styles; GraphiQL 5 has no UMD build, and its Monaco editor needs 'unsafe-inline' styles "
        "(microsoft/monaco-editor#271). React 18 because React 19 has no UMD build. "
        "See the script's docstring.",
        "packages": packages,
        "files": files,
    }


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument(
        "--check", action="store_true", help="download again and compare with the shipped files"
    )
    check = args.parse_args().check
    with tempfile.TemporaryDirectory(prefix="casegraph-graphiql-") as tmp:
        out, downloads = Path(tmp) / "out", Path(tmp) / "downloads"
        out.mkdir()
        downloads.mkdir()
        manifest = build(out, downloads)
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        built = {p.name: p.read_bytes() for p in out.iterdir()}
    if check:
        shipped = {p.name: p.read_bytes() for p in VENDOR.iterdir()} if VENDOR.is_dir() else {}
        differ = sorted(
            name for name in built.keys() | shipped.keys() if built.get(name) != shipped.get(name)
        )
        print(
            f"differ from the registry's: {', '.join(differ)}" if differ else "the shipped files are current"
        )
        return 1 if differ else 0
    VENDOR.mkdir(parents=True, exist_ok=True)
    for stale in VENDOR.iterdir():
        if stale.name not in built:
            stale.unlink()
    for name, data in sorted(built.items()):
        (VENDOR / name).write_bytes(data)
        print(f"{len(data):>10,}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
