"""Student versions of the notebooks: solutions replaced by stubs, hidden tests removed.

The notebooks in ``notebooks/`` are the instructor versions. Each graded exercise is a pair of
code cells in nbgrader markup (https://nbgrader.readthedocs.io), so instructors can use nbgrader
as is (``nbgrader generate_assignment`` / ``autograde``):

* a **solution cell** (``nbgrader.solution``): a function whose body sits between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
* the **test cell** right after it (``nbgrader.grade``, locked, with points): visible asserts, then
  asserts between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

``make student`` (``python -m ganlib student``) runs nbgrader's own preprocessors
(``ClearSolutions``, ``ClearHiddenTests``, ``ClearOutput``) over every notebook and writes the
results to ``student/``. Later cells call exercise functions through
:func:`ganlib.exercises.fallback`, so an unfinished exercise fails only its own test cell.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ganlib.course import REPO, find_notebooks, notebook_environment

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: the grade ids and cell indices of its solution and test cells."""

    solution_id: str
    test_id: str
    solution_cell: int
    test_cell: int
    points: float


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def find_exercises(nb, name: str = "the notebook") -> list[Exercise]:
    """The graded exercises of ``nb``, after checking that their nbgrader markup is complete.

    Raises:
        ValueError: naming the cell and what to fix, when a solution cell has no markers, is
            not followed by a test cell, or grade ids repeat.
    """
    found, seen = [], set()
    cells = nb.cells
    for i, cell in enumerate(cells):
        meta = _nbgrader(cell)
        where = f"{name}, cell {i} ({cell.get('id', '?')})"
        has_markers = BEGIN_SOLUTION in cell.source or BEGIN_HIDDEN in cell.source
        if has_markers and not (meta.get("solution") or meta.get("grade")):
            raise ValueError(
                f"{where} has nbgrader markers but no nbgrader metadata; give it "
                '{"nbgrader": {"solution": true, ...}} (see ganlib/student.py).'
            )
        if meta:
            if not meta.get("grade_id"):
                raise ValueError(f"{where}: nbgrader metadata without a grade_id.")
            if meta["grade_id"] in seen:
                raise ValueError(f"{where}: grade_id {meta['grade_id']!r} is used twice.")
            seen.add(meta["grade_id"])
        if not (meta.get("solution") and cell.cell_type == "code"):
            continue
        if BEGIN_SOLUTION not in cell.source or END_SOLUTION not in cell.source:
            raise ValueError(
                f"{where} is a solution cell without '{BEGIN_SOLUTION}' / '{END_SOLUTION}' lines."
            )
        nxt = next((j for j in range(i + 1, len(cells)) if cells[j].cell_type == "code"), None)
        test = _nbgrader(cells[nxt]) if nxt is not None else {}
        if not (test.get("grade") and test.get("locked") and test.get("points", 0) > 0):
            raise ValueError(
                f"{where}: the next code cell must be its locked test cell with points "
                '({"nbgrader": {"grade": true, "locked": true, "points": 1, ...}}).'
            )
        found.append(Exercise(meta["grade_id"], test["grade_id"], i, nxt, float(test["points"])))
    return found


def student_version(nb):
    """A copy of ``nb`` as students get it, made by nbgrader's preprocessors."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = nbformat.from_dict(nb)  # deep copy; the preprocessors edit in place
    resources: dict = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def point_at(nb, name: str, repository: str, ref: str = "main"):
    """Point ``nb``'s Colab badge and install cell at ``repository@ref`` (in place; returns it).

    Student versions are published in their own repository (a copy of the course without the
    instructor notebooks), so their badges must open, and their install cell install, that copy.
    """
    from ganlib.colab import COLAB_CELL, colab_badge, colab_cell

    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"repository must be a GitHub owner/name, got {repository!r}.")
    nb.cells[0].source = nb.cells[0].source.replace(
        colab_badge(name), colab_badge(name, repository, ref)
    )
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source == COLAB_CELL:
            cell.source = colab_cell(repository, ref)
    return nb


def write_student_versions(
    out_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
    repository: str | None = None,
    ref: str = "main",
) -> list[Path]:
    """Write the student version of every course notebook to ``out_dir`` (default ``student/``).

    With ``repository`` (GitHub owner/name of the public student copy), the badges and install
    cells point there; without it they keep pointing at the course repository, which holds the
    solutions, and a warning says so.
    """
    if repository is None:
        from ganlib.colab import REPOSITORY

        warnings.warn(
            f"The student notebooks' Colab badges point at {REPOSITORY}, whose notebooks hold the "
            "solutions. Pass the public student repository (make student "
            "STUDENT_REPOSITORY=owner/name) before publishing them.",
            stacklevel=2,
        )
    out_dir = Path(out_dir or REPO / "student")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in find_notebooks(notebooks_dir):
        nb = nbformat.read(path, as_version=4)
        exercises = find_exercises(nb, path.name)
        target = out_dir / path.name
        tmp = target.with_suffix(".ipynb.tmp")
        student = student_version(nb)
        if repository is not None:
            point_at(student, path.name, repository, ref)
        nbformat.write(student, tmp)
        os.replace(tmp, target)
        print(f"{target}: {len(exercises)} exercises, {sum(e.points for e in exercises):g} points")
        written.append(target)
    return written


def run_allowing_errors(
    path: Path, out_dir: Path, profile: str = "smoke", timeout: int = 600
) -> tuple[list[int], object]:
    """Execute a notebook top to bottom without stopping at errors, as "Run All" then "continue".

    Returns the indices of the cells that raised, and the executed notebook. The notebook runs in
    its own folder's context, under ``profile``, with checkpoints under ``out_dir``.
    """
    from nbclient import NotebookClient
    from papermill.parameterize import parameterize_notebook

    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("papermill", {})  # what papermill's parameterizer expects to find
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb = parameterize_notebook(nb, {"checkpoint_root": str(out_dir / "checkpoints")})
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    with notebook_environment(profile, out_dir):
        client.execute()
    errored = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs)
    ]
    return errored, nb
