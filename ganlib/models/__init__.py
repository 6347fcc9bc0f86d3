"""Networks of the course, each built by a direct call, e.g. ``DCGANGenerator(z_dim=100)``."""

from ganlib.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights
from ganlib.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "init_dcgan_weights",
]
