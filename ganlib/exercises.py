"""Graded exercises: keep a notebook running while a student's exercise is unfinished.

Each notebook's exercises are nbgrader solution cells (``### BEGIN SOLUTION`` ... ``### END SOLUTION``)
followed by test cells. In the student version (``make student``) the solution becomes
``raise NotImplementedError()``. Cells after an exercise call the student's function through
:func:`fallback`, so an unfinished exercise fails its own test cell and nothing else::

    cycle_loss = fallback(cycle_loss, ganlib.losses.cycle_consistency_loss)
"""

import functools
from collections.abc import Callable


def fallback(fn: Callable, reference: Callable, name: str | None = None) -> Callable:
    """``fn``, or ``reference`` with a visible notice while ``fn`` raises ``NotImplementedError``.

    Args:
        fn: The student's function (the exercise).
        reference: ganlib's implementation with the same signature.
        name: Shown in the notice. Default: ``fn.__name__``.

    Only ``NotImplementedError`` (an unfinished stub) switches to the reference: any other error
    in a finished exercise is the student's bug and is raised as usual.
    """
    if not callable(fn) or not callable(reference):
        raise TypeError(
            f"fallback needs two functions, got {type(fn).__name__} and {type(reference).__name__}."
        )
    label = name or getattr(fn, "__name__", "the exercise")
    # A function (ganlib.losses.d_loss) or a module instance (a ResidualBlock) both work.
    ref_name = getattr(reference, "__qualname__", None) or f"this {type(reference).__name__}"
    if getattr(reference, "__module__", None) and hasattr(reference, "__qualname__"):
        ref_name = f"{reference.__module__}.{ref_name}"
    noticed = False

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        nonlocal noticed
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            if not noticed:
                noticed = True
                print(
                    f"NOTICE: exercise {label!r} is not finished yet, so the cells below use "
                    f"{ref_name} instead. Finish it and re-run its cell to use your own."
                )
            return reference(*args, **kwargs)

    wrapper.uses_reference = lambda: noticed
    return wrapper
