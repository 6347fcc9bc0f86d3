import pytest
import torch
from torch import nn

from ganlib.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize(
    ("G", "D", "z_dim"),
    [
        (MLPGenerator(z_dim=16, hidden=32), MLPDiscriminator(hidden=32), 16),
        (DCGANGenerator(z_dim=10, width=8), DCGANDiscriminator(width=8), 10),
    ],
)
def test_shapes_and_ranges(G, D, z_dim):
    x = G(torch.randn(5, z_dim))
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1  # tanh output: the model range
    logits = D(x)
    assert logits.shape == (5,)


@pytest.mark.parametrize("D", [MLPDiscriminator(hidden=32), DCGANDiscriminator(width=8)])
def test_discriminator_returns_logits_not_probabilities(D):
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    with torch.no_grad():
        for (
            m
        ) in D.modules():  # scale the last layer so logits leave [0, 1] if nothing squashes them
            if isinstance(m, nn.Linear | nn.Conv2d):
                last = m
        last.weight.mul_(100)
        out = D(torch.rand(16, 1, 28, 28) * 2 - 1)
    assert out.min() < 0 or out.max() > 1


def test_dcgan_init_follows_the_paper():
    G = DCGANGenerator(width=64)
    w = G.net[3].weight  # the second transposed convolution
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 2e-3


@pytest.mark.parametrize("D", [MLPDiscriminator(hidden=32), DCGANDiscriminator(width=8)])
def test_bad_input_gets_a_clear_error(D):
    with pytest.raises(ValueError, match=r"3 channel|1 channel"):
        D(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="unsqueeze"):
        D(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="28x28"):
        D(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="to_model_range"):
        D(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_generator_rejects_wrong_noise_shape():
    with pytest.raises(ValueError, match=r"\(B, 100\)"):
        DCGANGenerator(z_dim=100)(torch.randn(4, 64))
