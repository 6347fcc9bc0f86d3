"""ganlib: the shared package of the course "GANs for image improvement".

Notebooks import what they need from the modules by name, e.g. ``from ganlib.train import
d_step, g_step``; every concept has one module: ``data``, ``models``, ``losses``, ``train``,
``checkpoint``, ``digits`` (the digit classifier), ``plotting``, ``results``, ``course``.
"""

__version__ = "0.1.0"
