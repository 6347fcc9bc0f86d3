"""environment.yml (conda) and pyproject.toml + Makefile (pip) describe the same environment."""

import re
import tomllib

import yaml

from ganlib.course import REPO

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name_and_spec(requirement: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement.strip())
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_conda_and_pip_list_the_same_packages():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = dict(_name_and_spec(r) for r in pyproject["dependencies"])
    for extra in pyproject["optional-dependencies"].values():
        pip.update(_name_and_spec(r) for r in extra if not r.startswith("ganlib"))
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {}
    deps = []
    for dep in env["dependencies"]:
        deps += dep["pip"] if isinstance(dep, dict) else [dep]
    for dep in deps:
        name, spec = _name_and_spec(
            dep.replace("=", "==", 1) if re.match(r"^[\w\-]+=\d", dep) else dep
        )
        conda[CONDA_NAMES.get(name, name)] = spec
    conda.pop("python"), conda.pop("pip")
    assert set(conda) == set(pip), (
        f"only in environment.yml: {set(conda) - set(pip)}; only in pyproject: {set(pip) - set(conda)}"
    )
    for name, spec in pip.items():
        if name not in ("torch", "torchvision"):
            assert conda[name] == spec, (
                f"{name}: pyproject says {spec!r}, environment.yml says {conda[name]!r}"
            )


def test_torch_pair_is_pinned_identically():
    makefile = (REPO / "Makefile").read_text()
    pinned = dict(re.findall(r"(torch|torchvision)==([\d.]+)", makefile))
    env = (REPO / "environment.yml").read_text()
    assert f"pytorch={pinned['torch']}" in env and f"torchvision={pinned['torchvision']}" in env


def test_requirements_txt_is_the_core_dependency_list():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = (REPO / "requirements.txt").read_text().splitlines()
    listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert listed == pyproject["dependencies"]


def test_a_student_install_brings_no_test_or_lint_tools():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    student = pyproject["dependencies"] + pyproject["optional-dependencies"]["lab"]
    names = {_name_and_spec(r)[0] for r in student}
    assert not names & {"pytest", "ruff", "playwright", "nbgrader"}
    assert "papermill" not in {_name_and_spec(r)[0] for r in pyproject["dependencies"]}
