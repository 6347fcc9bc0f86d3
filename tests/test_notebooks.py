"""Every course notebook: committed clean and structured as a lesson. (Each is also executed, cell by
cell, by nbval: ``pytest`` collects ``notebooks/*.ipynb``, see conftest.py.)"""

import json

import nbformat
import pytest

from ganlib.course import REPO, find_notebooks

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name} has outputs in cells {dirty}; run `make format` or clear outputs before committing."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_structure(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and "you will be able to" in cells[0].source.lower(), (
        "start with objectives"
    )
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, (
        f"{path.name} needs exactly one cell tagged 'parameters', has {len(params)}"
    )
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            assert _same_section(cells, i), (
                f"{path.name}: code cell {i} has no prose in the 3 cells before it"
            )
    last_code = [c for c in cells if c.cell_type == "code"][-1]
    assert "assert" in last_code.source and "PROFILE" in last_code.source, (
        "the last cell must check profile thresholds"
    )
    assert any("exercise" in c.source.lower() for c in cells if c.cell_type == "markdown")


def _same_section(cells, i):
    # Consecutive code cells are fine inside a section that prose has introduced.
    return any(c.cell_type == "markdown" for c in cells[max(0, i - 3) : i])


def test_repo_root_is_where_the_notebooks_are():
    assert (REPO / "notebooks").is_dir() and NOTEBOOKS
