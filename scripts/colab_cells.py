"""Give every notebook its Colab badge, its Colab set-up cell and a Drive-aware checkpoint root,
and the README a badge per notebook, all from ``ganlib.colab.REPOSITORY`` and ``REF``.

Idempotent; run after adding a notebook or changing REPOSITORY/REF (a fork), then `make format`:
    .venv/bin/python scripts/colab_cells.py [NN ...]
tests/test_colab.py checks the result.
"""

import re

import nbformat
from nbformat.v4 import new_code_cell

from ganlib.colab import COLAB_CELL, colab_badge
from ganlib.course import REPO, find_notebooks

BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n*")
OLD_ROOT = 'checkpoint_root = "../checkpoints"'
NEW_ROOT = 'checkpoint_root = default_checkpoint_root()  # on Colab a Google Drive folder, else "../checkpoints"'


def update(path) -> bool:
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    first = nb.cells[0]
    first.source = colab_badge(path.name) + "\n\n" + BADGE.sub("", first.source).lstrip()
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if "google.colab" not in nb.cells[code[0]].source:
        cell = new_code_cell(COLAB_CELL)
        cell.id = "colab-setup"
        nb.cells.insert(1, cell)
    else:
        nb.cells[code[0]].source = COLAB_CELL
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if OLD_ROOT in cell.source:
            cell.source = cell.source.replace(OLD_ROOT, NEW_ROOT)
        if "resolve_profile" in cell.source and "default_checkpoint_root" not in cell.source:
            cell.source = cell.source.replace(
                "from ganlib.env import ", "from ganlib.env import default_checkpoint_root, ", 1
            )
    changed = nbformat.writes(nb) != before
    if changed:
        nbformat.write(nb, path)
    return changed


README_BADGE = re.compile(
    r"\[!\[Open In Colab\]\([^)]*\)\]\(https://colab\.research\.google\.com/github/[^)]*/notebooks/"
    r"(?P<name>[\w.-]+\.ipynb)\)"
)


def update_readme() -> bool:
    """Point every notebook badge of README.md at REPOSITORY and REF."""
    path = REPO / "README.md"
    before = path.read_text()
    after = README_BADGE.sub(lambda m: colab_badge(m.group("name")), before)
    if after != before:
        path.write_text(after)
    return after != before


if __name__ == "__main__":
    import sys

    for path in find_notebooks(only=sys.argv[1:] or None):
        print(f"{path.name}: {'updated' if update(path) else 'unchanged'}")
    print(f"README.md: {'updated' if update_readme() else 'unchanged'}")
