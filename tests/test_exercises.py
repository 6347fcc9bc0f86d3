"""ganlib.exercises.fallback: an unfinished exercise hands over to the reference, visibly."""

import pytest

from ganlib.exercises import fallback


def _reference(x, scale=2):
    return x * scale


def test_finished_exercise_is_used(capsys):
    wrapped = fallback(lambda x, scale=2: x * scale + 1, _reference, name="double")
    assert wrapped(3) == 7 and wrapped(3, scale=3) == 10
    assert capsys.readouterr().out == ""
    assert not wrapped.uses_reference()


def test_unfinished_exercise_falls_back_once_with_notice(capsys):
    def double(x, scale=2):
        raise NotImplementedError()

    wrapped = fallback(double, _reference)
    assert wrapped(3) == 6 and wrapped(4, scale=3) == 12
    out = capsys.readouterr().out
    assert out.count("NOTICE") == 1 and "'double'" in out and "_reference" in out
    assert wrapped.uses_reference()


def test_other_errors_are_the_students_bug():
    def broken(x, scale=2):
        return x + "oops"

    with pytest.raises(TypeError):
        fallback(broken, _reference)(3)


def test_rejects_non_functions():
    with pytest.raises(TypeError, match="two functions"):
        fallback(None, _reference)


def test_reference_may_be_a_module_instance(capsys):
    import torch

    layer = torch.nn.Identity()

    def block(x):
        raise NotImplementedError()

    x = torch.ones(2)
    assert torch.equal(fallback(block, layer)(x), x)
    assert "this Identity" in capsys.readouterr().out
