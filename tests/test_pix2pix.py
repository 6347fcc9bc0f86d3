"""pix2pix networks: shapes, sizes against the reference implementation, receptive fields."""

import pytest
import torch
from torch import nn

from ganlib.models.pix2pix import (
    EncoderDecoderGenerator,
    PatchDiscriminator,
    UNetGenerator,
    receptive_field,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("cls", [UNetGenerator, EncoderDecoderGenerator])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generators_tiny_shapes(cls, norm):
    g = cls(in_ch=1, out_ch=3, width=4, depth=3, norm=norm)
    y = g(torch.randn(2, 1, 16, 24))
    assert y.shape == (2, 3, 16, 24)
    assert y.abs().max() <= 1.0  # tanh output


def test_reference_parameter_counts():
    # junyanz/pytorch-CycleGAN-and-pix2pix prints "Total number of parameters : 54.414 M" for
    # unet_256 (ngf 64, batch norm) and 2.769 M for the basic 70x70 D on a 6-channel pair.
    assert n_params(UNetGenerator(3, 3, width=64, depth=8)) == 54_413_955
    assert n_params(PatchDiscriminator(6, 64, n_layers=3)) == 2_768_705


def test_encoder_decoder_is_the_unet_without_skips():
    u = UNetGenerator(3, 3, width=8, depth=4)
    e = EncoderDecoderGenerator(3, 3, width=8, depth=4)
    # Same encoder; only the decoder's input widths differ (no concatenated skip features).
    assert [p.shape for p in u.encoder.parameters()] == [p.shape for p in e.encoder.parameters()]
    assert n_params(e) < n_params(u)
    # Cut the bottleneck (zero the innermost convolution, which has no bias under batch norm): the
    # encoder-decoder's output no longer depends on its input; the U-Net's still does, via the skips.
    x1, x2 = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    for g in (u, e):
        g.eval()
        with torch.no_grad():
            g.encoder[-1][1].weight.zero_()
    with torch.no_grad():
        assert torch.allclose(e(x1), e(x2))
        assert (u(x1) - u(x2)).abs().mean() > 1e-3


def test_dropout_sits_next_to_the_bottleneck_like_the_reference():
    g = UNetGenerator(3, 3, width=8, depth=8)
    drops = [
        i for i, block in enumerate(g.decoder) if any(isinstance(m, nn.Dropout) for m in block)
    ]
    assert drops == [1, 2, 3]  # decoder blocks after the innermost one: levels 6, 5, 4
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(dropout=0.0).modules())


def test_dropout_is_noise_in_train_mode_only():
    g = UNetGenerator(1, 3, width=4, depth=3, norm="instance", dropout=0.5)
    x = torch.randn(1, 1, 16, 16)
    g.train()
    assert not torch.equal(g(x), g(x))
    g.eval()
    assert torch.equal(g(x), g(x))


@pytest.mark.parametrize(("n", "expected"), [(0, 1), (1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_field_closed_form(n, expected):
    assert receptive_field(n) == expected


def _field_from_layers(d: PatchDiscriminator) -> int:
    # General formula: r = 1 + sum_l (k_l - 1) * prod_{j<l} s_j over the conv layers.
    r, jump = 1, 1
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            r += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return r


def _field_from_gradient(d: PatchDiscriminator, size: int) -> int:
    # Which input pixels move the centre logit: the receptive field measured, not computed.
    d.eval()
    x = torch.randn(1, d.in_ch, size, size, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_receptive_field_matches_the_layers_and_the_gradient(n):
    d = PatchDiscriminator(in_ch=2, width=4, n_layers=n, norm="batch")
    assert _field_from_layers(d) == receptive_field(n) == d.patch_size
    assert _field_from_gradient(d, size=receptive_field(n) + 2 * 2**n + 16) == receptive_field(n)


@pytest.mark.parametrize(("n", "size", "out"), [(0, 16, 16), (1, 64, 30), (3, 64, 6), (3, 256, 30)])
def test_patch_discriminator_output_map(n, size, out):
    d = PatchDiscriminator(in_ch=4, width=4, n_layers=n)
    assert d(torch.randn(2, 4, size, size)).shape == (2, 1, out, out)


def test_image_discriminator_covers_the_image():
    assert PatchDiscriminator.for_image(256, width=4).n_layers == 5  # the paper's 286x286 ImageGAN
    assert PatchDiscriminator.for_image(64, width=4).n_layers == 3  # at 64x64, 70x70 is the image
    assert PatchDiscriminator.for_image(32, width=4).n_layers == 2
    for size in (32, 64, 128):
        assert PatchDiscriminator.for_image(size, width=4).patch_size >= size


def test_bad_inputs_fail_clearly():
    g = UNetGenerator(3, 3, width=4, depth=4)
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.randn(1, 3, 20, 16))
    with pytest.raises(ValueError, match="3 channel"):
        g(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="alpha"):
        g(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match="batch dimension"):
        g(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="at least 24x24"):
        PatchDiscriminator(6, 4, n_layers=3)(torch.randn(1, 6, 16, 16))
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="layer")
    with pytest.raises(ValueError, match="depth"):
        UNetGenerator(depth=1)
    with pytest.raises(ValueError, match="n_layers"):
        PatchDiscriminator(n_layers=-1)
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator.for_image(4)


def test_a_few_pix2pix_steps_lower_the_l1_loss():
    torch.manual_seed(0)
    g = UNetGenerator(1, 3, width=8, depth=3, norm="batch")
    opt = torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    target = torch.cat([x, -x, x.flip(-1)], dim=1)
    losses = []
    for _ in range(60):
        loss = (g(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
