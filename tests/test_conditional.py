"""The class-conditional DCGAN: shapes, the projection formula, label packing, a few training steps."""

import pytest
import torch
import torch.nn.functional as F

from ganlib.models.conditional import (
    ConditionalBatches,
    ConditionalDiscriminator,
    ConditionalGenerator,
    PackedDiscriminator,
    PackedGenerator,
    pack_code,
    pack_images,
    random_shift,
    sample_digits,
    unpack_images,
)
from ganlib.train import GANRun, fit


def test_generator_shapes_range_and_conditioning():
    torch.manual_seed(0)
    G = ConditionalGenerator(z_dim=8, width=8).eval()
    z = torch.randn(4, 8)
    y = torch.tensor([0, 1, 2, 3])
    out = G(z, y)
    assert out.shape == (4, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1
    # the same noise with another label gives another image: the label reaches G
    assert not torch.allclose(out, G(z, torch.tensor([9, 9, 9, 9])))


def test_discriminator_is_the_projection_formula():
    torch.manual_seed(0)
    D = ConditionalDiscriminator(width=4).eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    y = torch.tensor([2, 5, 7])
    logits = D(x, y)
    assert logits.shape == (3,)
    with torch.no_grad():
        h = D.phi(x)
        # D(x, y) = psi(phi(x)) + <e_y, phi(x)>, with the spectrally normalised weights
        expected = F.linear(h, D.psi.weight, D.psi.bias).squeeze(1) + (D.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(logits, expected)


def test_pack_unpack_roundtrip_and_packed_adapters():
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 3, 9, 3, 1])
    packed = pack_images(x, y, 10)
    assert packed.shape == (5, 11, 28, 28)
    assert packed.min() >= -1 and packed.max() <= 1  # fit's range check accepts it
    x2, y2 = unpack_images(packed, 10)
    assert torch.equal(x2, x) and torch.equal(y2, y)
    G = ConditionalGenerator(z_dim=6, width=4).eval()
    code = pack_code(torch.randn(5, 6), y, 10)
    out = PackedGenerator(G)(code)
    assert torch.equal(unpack_images(out, 10)[1], y)
    torch.testing.assert_close(unpack_images(out, 10)[0], G(code[:, :6], y))
    D = ConditionalDiscriminator(width=4).eval()
    torch.testing.assert_close(PackedDiscriminator(D).eval()(packed), D(x, y))


def test_random_shift_moves_whole_images_by_at_most_the_shift():
    torch.manual_seed(0)
    x = -torch.ones(16, 1, 28, 28)
    x[:, :, 14, 14] = 1.0  # one bright pixel in the centre
    out = random_shift(x, 2)
    assert out.shape == x.shape
    for img in out:
        (r, c) = torch.nonzero(img[0] == 1)[0].tolist()
        assert abs(r - 14) <= 2 and abs(c - 14) <= 2
    assert len({tuple(torch.nonzero(img[0] == 1)[0].tolist()) for img in out}) > 1


def test_bad_labels_are_refused():
    G = ConditionalGenerator(z_dim=4, width=4)
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        G(torch.randn(2, 4), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="int64"):
        G(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    D = ConditionalDiscriminator(width=4)
    with pytest.raises(ValueError, match="must have 1 channel"):
        D(torch.zeros(2, 3, 28, 28), torch.tensor([0, 1]))


def test_a_few_fit_steps_train_and_samples_follow_labels(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(40, 1, 28, 28) * 2 - 1
    y = torch.arange(10).repeat(4)
    G, D = ConditionalGenerator(z_dim=8, width=8), ConditionalDiscriminator(width=8)
    before = [p.detach().clone() for p in G.parameters()]
    run = GANRun(
        PackedGenerator(G),
        PackedDiscriminator(D, shift=2),
        torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999)),
        g_input="batch",
    )
    history = fit(
        run,
        ConditionalBatches(x, y, 20, 8),
        6,
        log_every=3,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["loss_D"])) for h in history)
    assert any(not torch.equal(a, b) for a, b in zip(before, G.parameters(), strict=True))
    assert (tmp_path / "latest.pt").is_file()
    s = sample_digits(G, torch.tensor([1, 2, 3]), seed=0)
    assert s.shape == (3, 1, 28, 28)
    assert torch.equal(s, sample_digits(G, torch.tensor([1, 2, 3]), seed=0))  # fixed noise per seed
