import math

import pytest
import torch

from ganlib.losses import d_loss, g_loss_nonsaturating, g_loss_saturating


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_d_loss_matches_the_value_function_by_hand():
    real, fake = torch.tensor([2.0, -0.5]), torch.tensor([-1.0, 3.0])
    # L_D = -(mean log D(x) + mean log(1 - D(G(z))))
    expected = -(
        (math.log(sigmoid(2.0)) + math.log(sigmoid(-0.5))) / 2
        + (math.log(1 - sigmoid(-1.0)) + math.log(1 - sigmoid(3.0))) / 2
    )
    assert math.isclose(d_loss(real, fake).item(), expected, rel_tol=1e-6)


def test_d_loss_of_a_guessing_discriminator_is_2_log_2():
    assert math.isclose(
        d_loss(torch.zeros(4), torch.zeros(4)).item(), 2 * math.log(2), rel_tol=1e-6
    )


def test_generator_losses_by_hand():
    fake = torch.tensor([-3.0, 0.5])
    sat = (math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))) / 2
    ns = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.5))) / 2
    assert math.isclose(g_loss_saturating(fake).item(), sat, rel_tol=1e-6)
    assert math.isclose(g_loss_nonsaturating(fake).item(), ns, rel_tol=1e-6)


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
    for value in (d_loss(big, -big), g_loss_nonsaturating(big), g_loss_saturating(big)):
        assert torch.isfinite(value)


def test_hinge_losses_by_hand():
    from ganlib.losses import d_loss_hinge, g_loss_hinge

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.25])
    # L_D = mean(max(0, 1 - real)) + mean(max(0, 1 + fake))
    expected = (0.0 + 0.5) / 2 + (0.0 + 1.25) / 2
    assert math.isclose(d_loss_hinge(real, fake).item(), expected, rel_tol=1e-6)
    assert math.isclose(g_loss_hinge(fake).item(), (3.0 - 0.25) / 2, rel_tol=1e-6)


def test_hinge_choice_reaches_the_steps():
    from ganlib.train import d_step
    from tests.test_train import tiny_run

    run = tiny_run()
    with pytest.raises(ValueError, match="bce"):
        d_step(run.G, run.D, run.opt_D, torch.zeros(2, 1, 28, 28), run.noise(2), loss="wgan")
    stats = d_step(run.G, run.D, run.opt_D, torch.zeros(2, 1, 28, 28), run.noise(2), loss="hinge")
    assert 0.0 <= float(stats["loss_D"]) <= 4.0
