"""Every loss of ganlib.losses against values computed by hand."""

import math

import pytest
import torch

from ganlib.losses import (
    D_LOSSES,
    G_LOSSES,
    PIXEL_LOSSES,
    bce_fake,
    bce_real,
    cycle_consistency_loss,
    d_loss,
    d_loss_hinge,
    d_loss_lsgan,
    discriminator_outputs,
    g_loss_hinge,
    g_loss_lsgan,
    g_loss_nonsaturating,
    g_loss_saturating,
    l1_loss,
    loss_by_name,
    lsgan_loss,
    masked_l1,
    mse_loss,
)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def close(tensor, value):
    return math.isclose(float(tensor), value, rel_tol=1e-6, abs_tol=1e-7)


# --- BCE: the original GAN --------------------------------------------------------------------


def test_bce_real_and_fake_by_hand():
    logits = torch.tensor([2.0, -0.5, 0.0])
    assert close(bce_real(logits), -sum(math.log(sigmoid(v)) for v in (2.0, -0.5, 0.0)) / 3)
    assert close(bce_fake(logits), -sum(math.log(1 - sigmoid(v)) for v in (2.0, -0.5, 0.0)) / 3)


def test_d_loss_matches_the_value_function_by_hand():
    real, fake = torch.tensor([2.0, -0.5]), torch.tensor([-1.0, 3.0])
    # L_D = -(mean log D(x) + mean log(1 - D(G(z))))
    expected = -(
        (math.log(sigmoid(2.0)) + math.log(sigmoid(-0.5))) / 2
        + (math.log(1 - sigmoid(-1.0)) + math.log(1 - sigmoid(3.0))) / 2
    )
    assert close(d_loss(real, fake), expected)


def test_d_loss_of_a_guessing_discriminator_is_2_log_2():
    assert close(d_loss(torch.zeros(4), torch.zeros(4)), 2 * math.log(2))


def test_generator_losses_by_hand():
    fake = torch.tensor([-3.0, 0.5])
    sat = (math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))) / 2
    ns = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.5))) / 2
    assert close(g_loss_saturating(fake), sat)
    assert close(g_loss_nonsaturating(fake), ns)


def test_gradients_saturate_only_for_the_saturating_loss():
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l);  d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    ell = torch.tensor([-12.0, -4.0, 0.0, 4.0], requires_grad=True)
    g_sat = torch.autograd.grad(g_loss_saturating(ell) * 4, ell)[0]
    g_ns = torch.autograd.grad(g_loss_nonsaturating(ell) * 4, ell)[0]
    assert torch.allclose(g_sat, -torch.sigmoid(ell.detach()), atol=1e-7)
    assert torch.allclose(g_ns, -(1 - torch.sigmoid(ell.detach())), atol=1e-7)
    assert abs(g_sat[0]) < 1e-5 and abs(g_ns[0] + 1) < 1e-5  # D wins: sat vanishes, ns stays ~ -1


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for value in (
        d_loss(big, -big),
        g_loss_nonsaturating(big),
        g_loss_saturating(big),
        bce_real(-big),
        bce_fake(big),
    ):
        assert torch.isfinite(value)
    assert close(bce_real(torch.tensor([-1e4])), 1e4)  # -log sigmoid(-1e4) = 1e4, not inf


# --- Hinge (SNGAN) and least squares (LSGAN, CycleGAN) ------------------------------------------


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.25])
    # L_D = mean(max(0, 1 - real)) + mean(max(0, 1 + fake))
    expected = (0.0 + 0.5) / 2 + (0.0 + 1.25) / 2
    assert close(d_loss_hinge(real, fake), expected)
    # L_G = -mean(fake)
    assert close(g_loss_hinge(fake), (3.0 - 0.25) / 2)


def test_lsgan_losses_by_hand():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 0.25])
    # E[(D - label)^2]
    assert close(lsgan_loss(real, 1.0), ((0.5 - 1) ** 2 + (2.0 - 1) ** 2) / 2)
    assert close(lsgan_loss(fake, 0.0), ((-1.0) ** 2 + 0.25**2) / 2)
    # L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2])
    assert close(d_loss_lsgan(real, fake), 0.5 * ((0.25 + 1.0) / 2 + (1.0 + 0.0625) / 2))
    # L_G = E[(D(G(z)) - 1)^2]
    assert close(g_loss_lsgan(fake), ((-2.0) ** 2 + (-0.75) ** 2) / 2)


def test_loss_tables_name_every_adversarial_loss():
    assert G_LOSSES == {
        "nonsaturating": g_loss_nonsaturating,
        "saturating": g_loss_saturating,
        "hinge": g_loss_hinge,
        "lsgan": g_loss_lsgan,
    }
    assert D_LOSSES == {"bce": d_loss, "hinge": d_loss_hinge, "lsgan": d_loss_lsgan}
    assert loss_by_name("hinge", D_LOSSES, "d_loss") is d_loss_hinge
    with pytest.raises(ValueError, match="d_loss must be one of bce, hinge, lsgan, got 'wgan'"):
        loss_by_name("wgan", D_LOSSES, "d_loss")


def test_discriminator_outputs_are_probabilities_only_for_bce():
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [-3.0]])
    bce = discriminator_outputs("bce", real, fake)
    assert set(bce) == {"D_x", "D_G_z"}
    assert close(bce["D_x"], (sigmoid(2.0) + 0.5) / 2)
    assert close(bce["D_G_z"], (sigmoid(-1.0) + sigmoid(-3.0)) / 2)
    for loss in ("hinge", "lsgan"):
        raw = discriminator_outputs(loss, real, fake)
        assert set(raw) == {"score_real", "score_fake"}
        assert close(raw["score_real"], 1.0) and close(raw["score_fake"], -2.0)
    bf16 = discriminator_outputs("bce", real.bfloat16().requires_grad_(), fake.bfloat16())
    assert all(v.dtype == torch.float32 and not v.requires_grad for v in bf16.values())


# --- Image losses -------------------------------------------------------------------------------


def test_pixel_losses_by_hand():
    pred, target = torch.tensor([0.5, -1.0, 0.0, 1.0]), torch.tensor([0.0, -0.5, 0.0, -1.0])
    # L_1 = E |y_hat - y|, L_2 = E (y_hat - y)^2
    assert close(l1_loss(pred, target), (0.5 + 0.5 + 0.0 + 2.0) / 4)
    assert close(mse_loss(pred, target), (0.25 + 0.25 + 0.0 + 4.0) / 4)
    assert PIXEL_LOSSES == {"l1": l1_loss, "mse": mse_loss}


def test_cycle_consistency_loss_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])  # (1, 1, 2, 2)
    x_rec = torch.tensor([[[[0.5, 1.0], [0.0, 0.0]]]])
    # L_cyc = E ||F(G(x)) - x||_1
    assert close(cycle_consistency_loss(x, x_rec), (0.5 + 0.0 + 1.0 + 0.5) / 4)
    assert close(cycle_consistency_loss(x, x), 0.0)


def test_masked_l1_averages_over_the_hole_and_its_channels():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, -2.0], [-3.0, -4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2): two missing pixels
    # L = sum m |x_hat - x| / sum m, over both channels: (1 + 4 + 1 + 4) / 4
    assert close(masked_l1(pred, target, mask), 10.0 / 4)
    assert close(masked_l1(pred, target, torch.zeros_like(mask)), 0.0)  # empty hole: 0, not NaN
    with pytest.raises(ValueError, match=r"mask must be \(1, H, W\) or \(B, 1, H, W\)"):
        masked_l1(pred, target, torch.ones(1, 2, 2, 2))
