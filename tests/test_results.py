import pytest

from ganlib.results import check


def test_check_passes_fails_and_skips_by_profile(capsys):
    figures = {"acc": 0.8, "fid": 120.0, "psnr": 20.0, "identity_psnr": 18.5}
    thresholds = {
        "acc": (">=", {"quick": 0.75, "full": 0.9}),
        "fid": ("<=", 150),
        "psnr": (">=", {"quick": lambda f: f["identity_psnr"] + 1}),
    }
    rows = check(figures, thresholds, profile="quick")
    assert [r["passed"] for r in rows] == [True, True, True]
    assert rows[2]["limit"] == 19.5
    rows = check(figures, {"acc": (">=", {"full": 0.9})}, profile="smoke")
    assert rows[0]["passed"] is None
    assert "not checked" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"acc = 0.8, needs >= 0.9"):
        check(figures, thresholds, profile="full")


def test_check_names_a_missing_figure_and_a_bad_operator():
    with pytest.raises(KeyError, match="fid"):
        check({"acc": 1.0}, {"fid": ("<=", 1)}, profile="quick")
    with pytest.raises(ValueError, match="op must be"):
        check({"acc": 1.0}, {"acc": ("=>", 1)}, profile="quick")
