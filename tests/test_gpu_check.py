"""scripts/gpu_check.py on CPU with --tiny: every section is written (figures, "skipped: deadline"
or "needs CUDA"), the deadline skips sections instead of crashing, one failing section does not
stop the others. No timing assertions: tiny sizes say nothing about speed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


@pytest.fixture
def one_thread():
    """One torch thread: on 2 shared cores, two threads wait on each other whenever another job
    holds a core (the tiny run then takes minutes instead of seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def names(gpu_check) -> list[str]:
    return [name for name, _, _ in gpu_check.SECTIONS]


def errors(value) -> list[str]:
    if isinstance(value, dict):
        return [e for v in value.values() for e in errors(v)]
    return [value] if isinstance(value, str) and value.startswith("error") else []


def test_tiny_cpu_run_fills_every_section(gpu_check, tmp_path, one_thread):
    t0 = time.perf_counter()
    result = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)])
    seconds = time.perf_counter() - t0
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == json.loads(json.dumps(result))
    sections = result["sections"]
    assert list(sections) == names(gpu_check)
    assert errors(sections) == [], errors(sections)
    assert sections["cuda_graph"] == "needs CUDA"
    assert all(isinstance(sections[n], dict) for n in names(gpu_check)[:-1])

    assert sections["environment"]["gpu"] is None and sections["environment"]["torch"]
    for case, rows in sections["throughput"].items():
        assert list(rows) == ["reference", "ganlib, fp32", "ganlib + bf16 autocast"], case
        assert rows["reference"]["speedup"] == pytest.approx(1.0)
        assert rows["ganlib, fp32"]["ms_per_step"] > 0 and rows["ganlib, fp32"]["params_changed"]
        assert rows["ganlib + bf16 autocast"] == "needs CUDA"
    assert sections["throughput"]["dcgan_b128"]["reference"]["size"].startswith("batch 16")
    assert "compile_s" in sections["compile"]["ganlib + torch.compile aot_eager"]
    prof = sections["profile"]
    assert prof["kernels_per_step"] > 10 and 0 < prof["busy_fraction"] <= 2  # 2 threads at most
    for case in sections["memory"].values():
        assert case["ganlib, fp32"]["peak_mib"] is None  # CPU: no CUDA allocator to ask
    assert sections["sr_tiled"]["lr_32"]["output"] == [3, 128, 128]
    for notebook, est in sections["estimates"].items():
        expected = est["ms_per_step"] * est["steps"] * est["runs"] / 60000
        assert est["estimate_min"] == pytest.approx(expected), notebook
    assert sections["estimates"]["05_image_to_image"]["runs"] > 1  # one run per ablation row

    md = (tmp_path / "gpu_check.md").read_text()
    assert all(f"## {name}" in md for name in names(gpu_check))
    assert "| dcgan_b64 / reference | batch 8, " in md
    print(f"tiny run: {seconds:.1f} s")


def test_zero_minutes_skips_every_section_after_the_environment(gpu_check, tmp_path):
    result = gpu_check.main(["--device", "cpu", "--tiny", "--minutes", "0", "--out", str(tmp_path)])
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert sections == result["sections"]
    assert isinstance(sections["environment"], dict)
    assert {sections[n] for n in names(gpu_check)[1:]} == {"skipped: deadline"}
    assert "skipped: deadline" in (tmp_path / "gpu_check.md").read_text()


def test_a_failing_section_is_recorded_and_a_slow_one_stopped(gpu_check, tmp_path, monkeypatch):
    sections = (
        ("boom", lambda c: 1 / 0, 0),
        ("slow", lambda c: time.sleep(10), 0),  # the 0.6 s deadline stops it
        ("after", lambda c: {"ran": True}, 0),  # needs nothing: runs after the deadline too
        ("late", lambda c: {"ran": True}, 1),
    )
    monkeypatch.setattr(gpu_check, "SECTIONS", sections)
    t0 = time.perf_counter()
    out = gpu_check.main(["--device", "cpu", "--minutes", "0.01", "--out", str(tmp_path)])
    assert time.perf_counter() - t0 < 5
    s = out["sections"]
    assert s["boom"].startswith("error: ZeroDivisionError")
    assert s["slow"] == "error: TimeoutError: ran past the --minutes deadline"
    assert s["after"] == {"ran": True} and s["late"] == "skipped: deadline"


def test_full_parameters_reads_the_full_profile_of_a_parameters_cell(gpu_check, tmp_path):
    source = (
        'steps = {"smoke": 3, "quick": 30, "full": 300}[PROFILE]\n'
        'rows = {"smoke": ["a"], "full": ["a", "b"]}[PROFILE]\n'
        "z_dim = 64\n"
        "root = default_checkpoint_root()\n"
    )
    cells = [
        {"cell_type": "code", "metadata": {}, "source": "steps = 1\n"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert gpu_check.full_parameters(path) == {"steps": 300, "rows": ["a", "b"], "z_dim": 64}


def test_busy_time_is_the_union_of_overlapping_kernels(gpu_check):
    spans = [(20.0, 25.0), (0.0, 10.0), (5.0, 15.0), (6.0, 7.0)]
    assert gpu_check._busy_us(spans) == 20.0
    assert gpu_check._busy_us([]) == 0.0
    assert gpu_check._busy_us([(0.0, 5.0), (5.0, 8.0)]) == 8.0
