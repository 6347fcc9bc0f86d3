"""Run the code a notebook shows on the page, outside the notebook, to test it against ganlib."""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def cells_with_tag(notebook: str, tag: str) -> list[str]:
    """Sources of the code cells of ``notebooks/<notebook>`` that carry ``tag`` in their metadata."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    found = [
        c.source for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])
    ]
    if not found:
        raise LookupError(f"{notebook} has no code cell tagged {tag!r}.")
    return found


def cell_namespace(notebook: str, tag: str, **names) -> dict:
    """Execute the cells tagged ``tag`` in a fresh namespace (with ``names`` defined first).

    Such cells must be self-contained: their imports at their top, no use of earlier cells'
    variables except those passed in ``names``.
    """
    namespace = dict(names)
    for source in cells_with_tag(notebook, tag):
        exec(compile(source, f"{notebook}[{tag}]", "exec"), namespace)  # noqa: S102
    return namespace
