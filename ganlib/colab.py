"""Google Colab: the first code cell of every notebook, and what it sets up.

On Colab the cell installs this package from the repository, then :func:`setup_colab` checks for a
GPU, turns on Colab's widget manager (sliders need it) and, if you accept, keeps checkpoints in
Google Drive so that a disconnect loses nothing: re-run the notebook and training resumes.
Everywhere else the cell does nothing (it is guarded on ``google.colab`` in ``sys.modules``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Where the course lives: the one place a fork changes (then run scripts/colab_cells.py, which
# rewrites every badge and install cell from these two; tests/test_colab.py checks they agree).
REPOSITORY = "ganlib-course/gans-for-image-improvement"  # GitHub owner/name
REF = "main"  # the branch or tag the badges open and the install cell installs
CHECKPOINT_ENV = "GANLIB_CHECKPOINT_ROOT"


def colab_cell(repository: str = REPOSITORY, ref: str = REF) -> str:
    """The first code cell of every notebook: on Colab, install ganlib from ``repository@ref``."""
    return f"""\
# Colab only: install the course package, check for a GPU, keep checkpoints on Google Drive.
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/{repository}@{ref}"
    get_ipython().run_line_magic("pip", f"install --quiet {{package}}")
    from ganlib.colab import setup_colab

    setup_colab(use_drive=True)  # False: checkpoints stay on the Colab machine (lost on disconnect)"""


# The first code cell of every notebook (tests/test_colab.py checks that they all have it).
COLAB_CELL = colab_cell()


def colab_badge(notebook_name: str, repository: str = REPOSITORY, ref: str = REF) -> str:
    """The Markdown 'Open in Colab' badge for ``notebooks/<notebook_name>`` in ``repository@ref``."""
    url = f"https://colab.research.google.com/github/{repository}/blob/{ref}/notebooks/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def on_colab() -> bool:
    return "google.colab" in sys.modules


def setup_colab(
    use_drive: bool = True,
    folder: str = "ganlib-checkpoints",
    drive_root: str = "/content/drive",
) -> Path | None:
    """Set up a Colab session; does nothing (returns None) anywhere else.

    Args:
        use_drive: Mount Google Drive (Colab asks for permission) and keep checkpoints there.
        folder: Folder inside "My Drive" for checkpoints. Default: ``ganlib-checkpoints``.
        drive_root: Where Drive is mounted. Default: ``/content/drive``.

    Returns:
        The checkpoint folder on Drive, or None when checkpoints stay local.
    """
    if not on_colab():
        return None
    import torch
    from google.colab import output

    output.enable_custom_widget_manager()  # ipywidgets sliders render only with it
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; GANLIB_PROFILE=auto runs the full profile.")
    else:
        print(
            "No GPU in this session, so GANLIB_PROFILE=auto runs the quick (CPU) profile. For the full "
            "profile: Runtime > Change runtime type > T4 GPU (or better), then run the notebook again."
        )
    if not use_drive:
        print("Checkpoints stay on this Colab machine and are lost when it disconnects.")
        return None
    from google.colab import drive

    try:
        drive.mount(drive_root)
        root = Path(drive_root) / "MyDrive" / folder
        root.mkdir(parents=True, exist_ok=True)
    except Exception as err:  # noqa: BLE001 - declined, timed out or failed: same way on
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        print(
            f"WARNING: Google Drive could not be mounted ({reason}), so checkpoints stay on this "
            "Colab machine and are lost when it disconnects. The notebook continues; to keep "
            "them, run this cell again and allow access to Drive."
        )
        return None
    os.environ[CHECKPOINT_ENV] = str(root)
    print(f"Checkpoints go to {root}: after a disconnect, run the notebook again to resume.")
    return root
