"""ganlib: the shared package of the course "GANs for image improvement".

Notebooks import what they need from the modules by name, e.g. ``from ganlib.gan import GANRun,
gan_step`` and ``from ganlib.train import fit``; every concept has one module:

- the loop and the runs: ``train`` (``fit(run, step, batches, steps)``, ``SupervisedRun``),
  ``gan`` (``GANRun``, ``d_step``, ``g_step``, ``gan_step``), ``precision``, ``checkpoint``;
- the pieces: ``losses`` (every loss), ``models``, ``images`` (ranges, luma, crops), ``data``, ``fetch``,
  ``degrade``, ``metrics``, ``fid``, ``errors``, ``digits`` (the digit classifier), ``plotting``;
- one module per lesson's method, each with its step: ``sr`` (02), ``augment``, ``conditional``,
  ``restoration`` and ``baselines`` (03), ``cifar`` (04), ``translation``, ``pix2pix``, ``cyclegan`` (05);
- the course itself: ``course``, ``results``, ``exercises``, ``student``, ``colab``, ``env``.
"""

__version__ = "0.1.0"
