"""Graded exercises (nbgrader markup) and the student versions made from them (`make student`)."""

import nbformat
import pytest

from ganlib.course import find_notebooks
from ganlib.student import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    find_exercises,
    run_allowing_errors,
    student_version,
    write_student_versions,
)

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_two_to_four_graded_exercises(path):
    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb, path.name)
    assert 2 <= len(exercises) <= 4, f"{path.name} has {len(exercises)} graded exercises"
    for ex in exercises:
        assert BEGIN_HIDDEN in nb.cells[ex.test_cell].source, f"{ex.test_id} has no hidden tests"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_version_has_stubs_and_no_solutions_or_hidden_tests(path):
    nb = nbformat.read(path, as_version=4)
    student = student_version(nb)
    assert len(student.cells) == len(nb.cells)
    solution_cells = {ex.solution_cell for ex in find_exercises(nb)}
    test_cells = {ex.test_cell for ex in find_exercises(nb)}
    for i, (ours, theirs) in enumerate(zip(nb.cells, student.cells, strict=True)):
        assert BEGIN_SOLUTION not in theirs.source and BEGIN_HIDDEN not in theirs.source
        if i in solution_cells:
            assert "raise NotImplementedError()" in theirs.source
            # What surrounds the solution (signature, docstring, set-up) is kept.
            assert ours.source.split(BEGIN_SOLUTION)[0].rstrip() in theirs.source
        elif i in test_cells:
            assert theirs.source.strip() and len(theirs.source) < len(ours.source)
        else:
            assert theirs.source == ours.source


def test_bad_markup_is_named():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    )
    nb.cells = [cell]
    with pytest.raises(ValueError, match="no nbgrader metadata"):
        find_exercises(nb, "bad.ipynb")
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "ex1"}
    with pytest.raises(ValueError, match="locked test cell"):
        find_exercises(nb, "bad.ipynb")


def test_make_student_writes_every_notebook(tmp_path):
    written = write_student_versions(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for p in written:
        assert BEGIN_SOLUTION not in p.read_text()


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_version_fails_exactly_its_exercise_tests(path, tmp_path):
    """Run top to bottom with the exercises unfinished: only their test cells fail."""
    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb, path.name)
    student = tmp_path / "student" / path.name
    student.parent.mkdir()
    nbformat.write(student_version(nb), student)
    errored, executed = run_allowing_errors(student, tmp_path, "smoke")
    # Compared by cell id: the executed copy has papermill's injected-parameters cell.
    raised = [executed.cells[i].id for i in errored]
    expected = [nb.cells[ex.test_cell].id for ex in exercises]
    assert raised == expected, f"cells {raised} raised; expected only the exercise tests {expected}"
    for i in errored:
        error = next(o for o in executed.cells[i].outputs if o.output_type == "error")
        assert error.ename == "NotImplementedError", f"cell {i}: {error.ename}: {error.evalue}"
    if any("fallback(" in c.source for c in nb.cells):
        text = "".join(
            o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
        )
        assert "NOTICE: exercise" in text, "the fallback notice was not shown"


@pytest.mark.notebook
def test_nbgrader_grades_our_markup_as_is(tmp_path):
    """nbgrader's own pipeline on notebook 01: full marks for the instructor version, none for the stubs."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from nbgrader.api import Gradebook

    path = NOTEBOOKS[0]
    course = tmp_path / "course"
    (course / "source" / "hw").mkdir(parents=True)
    shutil.copy(path, course / "source" / "hw" / path.name)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from the venv
    env = os.environ | {
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "GANLIB_PROFILE": "smoke",
    }

    def nbgrader(*args):
        cmd = [sys.executable, "-m", "nbgrader", *args, "--CourseDirectory.root=."]
        done = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    nbgrader("generate_assignment", "hw")
    released = course / "release" / "hw" / path.name
    assert "raise NotImplementedError()" in released.read_text()
    for student, source in (("teacher", path), ("learner", released)):
        (course / "submitted" / student / "hw").mkdir(parents=True)
        shutil.copy(source, course / "submitted" / student / "hw" / path.name)
    nbgrader("autograde", "hw", "--ExecutePreprocessor.timeout=1200")
    points = sum(ex.points for ex in find_exercises(nbformat.read(path, as_version=4)))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission("hw", "teacher").score == points
        assert gb.find_submission("hw", "learner").score == 0


def test_student_versions_point_at_the_student_repository(tmp_path):
    from ganlib.colab import REPOSITORY

    written = write_student_versions(tmp_path, repository="school/gans-students", ref="fall")
    for path in written:
        text = path.read_text()
        assert REPOSITORY not in text
        assert f"github/school/gans-students/blob/fall/notebooks/{path.name}" in text
        assert "git+https://github.com/school/gans-students@fall" in text


def test_student_versions_without_a_repository_warn_that_badges_open_the_solutions(tmp_path):
    with pytest.warns(UserWarning, match="hold the solutions"):
        write_student_versions(tmp_path)
    with pytest.raises(ValueError, match="owner/name"):
        write_student_versions(tmp_path, repository="https://github.com/x/y")
