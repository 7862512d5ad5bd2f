"""What the two code generators of the compiled path share (`answers.py`: decoders into answers;
`execution.py`: projections over dicts): the names the generated source refers to, its lines, and compiling
them once into a namespace."""

from __future__ import annotations

from typing import Any


class Source:
    """Generated Python source and the values it refers to by name."""

    def __init__(self, names: dict[str, Any] | None = None) -> None:
        self.names: dict[str, Any] = dict(names or {})
        self.lines: list[str] = []
        self.counter = 0

    def name(self, prefix: str, value: Any) -> str:
        """A new name in the namespace, bound to `value`."""
        self.counter += 1
        name = f"{prefix}{self.counter}"
        self.names[name] = value
        return name

    def number(self) -> int:
        """A new number, for names the source defines itself."""
        self.counter += 1
        return self.counter

    def namespace(self, filename: str, separator: str = "\n") -> dict[str, Any]:
        """The namespace after running the lines (named `filename` in tracebacks)."""
        namespace = dict(self.names)
        exec(compile(separator.join(self.lines), filename, "exec"), namespace)
        return namespace
