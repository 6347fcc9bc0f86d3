"""ResNet models of notebook 04: residual and plain blocks, the SNGAN ResNets, DnCNN, CycleGAN's G."""

import pytest
import torch
from torch import nn

from ganlib.gan import GANRun, gan_step
from ganlib.models.resnet import (
    DeepStack,
    DnCNN,
    PlainBlock,
    ResidualBlock,
    ResnetImageGenerator,
    StackGenerator,
)
from ganlib.models.sngan import SNResNetDiscriminator, SNResNetGenerator, power_iteration
from ganlib.train import SupervisedRun, fit, supervised_step


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("preact", [False, True])
def test_residual_block_is_identity_plus_its_plain_twin(norm, preact):
    res, plain = ResidualBlock(8, norm, preact), PlainBlock(8, norm, preact)
    plain.load_state_dict(res.state_dict())  # same layers, same names: the weights transfer
    x = torch.randn(2, 8, 6, 6)
    # y = x + H(x), with H the plain block
    assert torch.allclose(res(x), x + plain(x), atol=1e-6)
    assert n_params(res) == n_params(plain)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("preact", [False, True])
def test_zeroing_the_last_layer_makes_the_block_the_identity(norm, preact):
    block = ResidualBlock(8, norm, preact)
    # H's last layer with weights: the last batch norm, else (no norm, or instance norm without
    # affine parameters, or pre-activation) the last conv.
    last = next(m for m in reversed(block.body) if getattr(m, "weight", None) is not None)
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    x = torch.randn(2, 8, 5, 7)
    assert torch.allclose(block(x), x, atol=1e-6)


def test_post_activation_block_has_no_relu_after_the_sum():
    block = ResidualBlock(4, "none").eval()
    with torch.no_grad():
        block.body[-2].weight.zero_()
        block.body[-2].bias.zero_()
    x = -torch.ones(1, 4, 3, 3)  # a ReLU after the sum would clip this to 0
    assert torch.equal(block(x), x)


def test_block_orderings_follow_the_papers():
    post = [type(m) for m in ResidualBlock(4, "batch", preact=False).body]
    pre = [type(m) for m in ResidualBlock(4, "batch", preact=True).body]
    assert post == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d]
    assert pre == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d]


def test_bad_options_get_clear_errors():
    with pytest.raises(ValueError, match="norm must be one of batch, instance, none"):
        ResidualBlock(4, norm="group")
    with pytest.raises(ValueError, match="block must be one of plain, residual"):
        DeepStack(block="dense")
    with pytest.raises(ValueError, match="predict must be one of residual, clean"):
        DnCNN(predict="noise")
    with pytest.raises(ValueError, match="28x28 .* or 32x32"):
        SNResNetGenerator(image_size=64)


@pytest.mark.parametrize("depth", [1, 4])
def test_deep_stack_plain_and_residual_have_equal_parameters(depth):
    plain = DeepStack(depth=depth, width=8, block="plain")
    res = DeepStack(depth=depth, width=8, block="residual")
    assert n_params(plain) == n_params(res)
    assert len(res.convs()) == 2 * depth + 2
    x = torch.randn(3, 1, 12, 12)
    assert plain(x).shape == res(x).shape == (3, 1, 12, 12)


def test_residual_stack_keeps_gradients_where_the_plain_stack_loses_them():
    # Without normalisation and with PyTorch's default init, each plain layer shrinks the signal:
    # 20 blocks (42 convs) leave the first layer almost no gradient; the identity paths keep it.
    first = {}
    for kind in ("plain", "residual"):
        torch.manual_seed(0)
        net = DeepStack(depth=20, width=8, block=kind, norm="none").double()
        x = torch.randn(4, 1, 10, 10, dtype=torch.float64)
        ((net(x) - x) ** 2).mean().backward()
        first[kind] = net.convs()[0].weight.grad.norm().item()
    assert first["residual"] > 1e6 * first["plain"] > 0


@pytest.mark.parametrize("kind", ["plain", "residual"])
def test_stack_generator_shapes_and_parameters(kind):
    G = StackGenerator(z_dim=8, width=8, depth=3, block=kind)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    other = StackGenerator(
        z_dim=8, width=8, depth=3, block="residual" if kind == "plain" else "plain"
    )
    assert n_params(G) == n_params(other)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        G(torch.randn(5, 9))


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3)])
def test_sngan_resnets_shapes_logits_and_spectral_norm(size, channels):
    G = SNResNetGenerator(z_dim=16, width=8, image_size=size, channels=channels)
    D = SNResNetDiscriminator(width=8, image_size=size, channels=channels)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (4,)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    # Every weight layer of D is spectrally normalised; the generator has none (as in SNGAN).
    layers = [m for m in D.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in G.modules())
    with pytest.raises(ValueError, match=f"{size}x{size}"):
        D(torch.zeros(2, channels, size + 4, size + 4))


def test_spectral_norm_bounds_each_layer_after_power_iterations():
    D = SNResNetDiscriminator(width=8, image_size=28, channels=1)
    for _ in range(30):  # every training-mode forward runs one power iteration
        D(torch.randn(2, 1, 28, 28))
    D.eval()
    for m in D.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=0.05)


def test_power_iteration_is_the_step_torch_spectral_norm_takes():
    torch.manual_seed(0)
    layer = torch.nn.utils.parametrizations.spectral_norm(nn.Linear(7, 5))
    sn = layer.parametrizations.weight[0]
    W, v0 = layer.parametrizations.weight.original.detach(), sn._v.clone()
    u, v, sigma = power_iteration(W, v0)
    W_bar = layer.weight  # a training-mode access runs torch's own iteration from the same v
    torch.testing.assert_close(u, sn._u)
    torch.testing.assert_close(v, sn._v)
    torch.testing.assert_close(W / sigma, W_bar)


def test_power_iteration_converges_to_the_largest_singular_value_from_below():
    torch.manual_seed(0)
    W = torch.randn(16, 8 * 3 * 3)  # a conv weight (16, 8, 3, 3) as a matrix
    exact = torch.linalg.matrix_norm(W, ord=2)
    v = torch.nn.functional.normalize(torch.randn(8 * 3 * 3), dim=0)
    estimates = []
    for _ in range(200):
        u, v, sigma = power_iteration(W, v)
        estimates.append(sigma.item())
    assert all(s <= exact.item() + 1e-4 for s in estimates)
    assert estimates[-1] == pytest.approx(exact.item(), rel=1e-4)
    assert estimates[0] < estimates[-1]  # one iteration from a random v underestimates
    with pytest.raises(ValueError, match="flatten"):
        power_iteration(torch.randn(4, 3, 3, 3), torch.randn(27))


def test_power_iteration_sigma_has_the_gradient_u_v_transpose():
    W = torch.randn(4, 6, requires_grad=True)
    u, v, sigma = power_iteration(W, torch.nn.functional.normalize(torch.randn(6), dim=0))
    sigma.backward()
    torch.testing.assert_close(W.grad, torch.outer(u, v))  # d(u^T W v)/dW with u, v constant


def test_sngan_trains_a_few_steps_with_hinge_loss():
    torch.manual_seed(0)
    G = SNResNetGenerator(z_dim=8, width=8, image_size=28, channels=1)
    D = SNResNetDiscriminator(width=8, image_size=28, channels=1)
    run = GANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9)),
        torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9)),
        z_dim=8,
        g_loss="hinge",
        d_loss="hinge",
    )
    before = [p.detach().clone() for p in G.parameters()]
    batches = iter(lambda: torch.rand(8, 1, 28, 28) * 2 - 1, None)
    history = fit(run, gan_step, batches, 3, progress=False)
    assert run.step == 3 and all(torch.isfinite(torch.tensor(h["loss_D"])) for h in history)
    assert {"score_real", "score_fake"} <= set(history[-1])  # hinge: raw scores, not D_x
    assert any(not torch.equal(a, b) for a, b in zip(before, G.parameters(), strict=True))


def test_dncnn_modes_share_layers_and_differ_by_the_skip():
    res = DnCNN(width=8, depth=4, predict="residual")
    clean = DnCNN(width=8, depth=4, predict="clean")
    assert n_params(res) == n_params(clean)
    clean.load_state_dict(res.state_dict())
    res.eval(), clean.eval()
    y = torch.rand(2, 1, 16, 16) * 2 - 1
    # residual: x_hat = y - F(y); clean: x_hat = F(y)
    assert torch.allclose(res(y), y - clean(y), atol=1e-6)
    assert len([m for m in res.modules() if isinstance(m, nn.Conv2d)]) == 4


def test_dncnn_default_is_the_papers_size():
    assert n_params(DnCNN()) == 556_096  # 17 layers, 64 channels, grayscale: the paper's 0.56 M


def test_residual_dncnn_starts_near_the_identity_and_trains():
    torch.manual_seed(0)
    with torch.no_grad():
        res = DnCNN(width=8, depth=4).eval()
        y = torch.rand(2, 1, 16, 16) * 2 - 1
        # A fresh residual net outputs its input minus a small correction; a fresh "clean"
        # net outputs something unrelated to the input.
        assert (res(y) - y).abs().mean() < 0.2 * y.abs().mean()
    res.train()
    run = SupervisedRun(res, torch.optim.Adam(res.parameters(), 1e-3), loss="mse")
    x = torch.zeros(4, 1, 16, 16)
    batches = iter(lambda: (x, x + 0.1 * torch.randn_like(x)), None)
    fit(run, supervised_step, batches, 20, log_every=10, progress=False)
    assert run.history[-1]["loss"] < run.history[0]["loss"]


def test_resnet_image_generator_matches_cyclegan():
    G = ResnetImageGenerator()
    assert n_params(G) == 11_378_179  # junyanz/pytorch-CycleGAN-and-pix2pix: "11.378 M"
    blocks = [m for m in G.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 9
    assert all(
        m.padding_mode == "reflect" for b in blocks for m in b.modules() if isinstance(m, nn.Conv2d)
    )
    assert any(isinstance(m, nn.InstanceNorm2d) for m in G.modules())


def test_resnet_image_generator_shape_and_range():
    G = ResnetImageGenerator(in_ch=3, out_ch=1, width=4, n_blocks=2)
    x = torch.rand(2, 3, 20, 28) * 2 - 1
    y = G(x)
    assert y.shape == (2, 1, 20, 28)
    assert y.min() >= -1 and y.max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        G(torch.zeros(1, 3, 18, 28))
    with pytest.raises(ValueError, match="3 channel"):
        G(torch.zeros(1, 1, 20, 28))
