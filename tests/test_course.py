import pytest

from ganlib.__main__ import main
from ganlib.course import REPO, NotebookResult, find_notebooks, parse_params, results_table


def test_params_parse_python_literals_and_strings():
    assert parse_params(["mnist_split=test", "steps=200", "lr=2e-4", "resume=False"]) == {
        "mnist_split": "test",
        "steps": 200,
        "lr": 2e-4,
        "resume": False,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_params(["mnist_split"])


def test_only_selects_by_number_and_explains_a_miss():
    assert [p.stem for p in find_notebooks(only=["01"])] == ["01_gan_basics"]
    with pytest.raises(ValueError, match="01_gan_basics"):
        find_notebooks(only=["99"])


def test_table_has_a_row_per_notebook():
    rows = [
        NotebookResult("01_a", "ok", 90.0, {"fid": 3.14159, "split": "test"}),
        NotebookResult("02_b", "failed", 6.0, {}, "cell 3: ValueError: bad"),
    ]
    table = results_table(rows, "smoke").splitlines()
    assert table[0] == "Course results (profile smoke)"
    assert "| 01_a | ok | 1.5 | fid=3.142, split=test |" in table
    assert "| 02_b | failed | 0.1 | -; ERROR cell 3: ValueError: bad |" in table


def test_cli_reports_bad_arguments_without_a_traceback(capsys):
    assert main(["course", "--only", "99", "--profile", "smoke"]) == 2
    assert "No notebook matches" in capsys.readouterr().err


def test_full_dry_run_overrides_existing_step_parameters_of_every_notebook():
    # An unknown name would be injected silently and the "dry" run would train for hours.
    import importlib.util

    import nbformat

    spec = importlib.util.spec_from_file_location(
        "full_dry_run", REPO / "scripts" / "full_dry_run.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert set(script.STEPS) == {p.stem for p in find_notebooks()}
    for name, params in script.STEPS.items():
        cells = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4).cells
        (parameters,) = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        defined = {
            line.split("=")[0].strip() for line in parameters.source.splitlines() if "=" in line
        }
        assert set(params) | {"resume"} <= defined, f"{name}: {set(params) - defined}"
