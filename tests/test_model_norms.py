"""The ``norm`` option of VGG and ResNet (BatchNorm, LayerNorm over channels, none) and the CIFAR ResNet-20."""

from __future__ import annotations

import pytest
import torch

from permlmc.models import Architecture, build_model, model_names, permutation_spec
from permlmc.models.normalization import NORMS, ChannelLayerNorm


def test_model_names_are_each_family_with_each_norm() -> None:
    assert set(model_names()) == {"mlp", "cnn", "vgg", "vgg_ln", "vgg_none", "resnet", "resnet_ln", "resnet_none",
                                  "vit"}
    assert next(iter(NORMS)) == "bn"  # the default: model names without a suffix keep their BatchNorm
    arch = Architecture("resnet_ln", 20, 16, (1, 28, 28), 10)
    assert (arch.family, arch.norm, arch.name) == ("resnet", "ln", "resnet_ln-d20-w16")
    assert Architecture("vgg", 11, 4, (1, 8, 8), 10).norm == "bn"
    assert Architecture("mlp", 1, 4, (1, 8, 8), 10).norm is None


@pytest.mark.parametrize("name", ["vgg_gn", "mlp_ln", "resnet_bn", "cnn_none"])
def test_unknown_model_names_are_rejected_with_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}.*vgg_ln"):
        Architecture(name, 11, 4, (1, 8, 8), 10)


def test_layer_norm_normalises_each_position_over_channels() -> None:
    layer = ChannelLayerNorm(5)
    x = torch.randn(3, 5, 4, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    y = layer(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(3, 4, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(3, 4, 4), atol=1e-3, rtol=0)
    reference = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (5,)).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, reference)
    assert y.is_contiguous()  # the next convolution gets (N, C, H, W) memory (see ChannelLayerNorm.forward)


@pytest.mark.parametrize("name,depth", [("vgg_ln", 11), ("resnet_ln", 20), ("vgg_none", 11), ("resnet_none", 20)])
def test_networks_without_batchnorm_have_no_statistics_and_one_function(name: str, depth: int) -> None:
    model = build_model(Architecture(name, depth, 4, (1, 8, 8), 10))
    state = model.state_dict()
    assert not any(key.endswith(("running_mean", "running_var", "num_batches_tracked")) for key in state)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.train()(x), model.eval()(x), rtol=0, atol=0)


def test_norm_variants_key_their_layers() -> None:
    ln = build_model(Architecture("vgg_ln", 11, 4, (1, 8, 8), 10)).state_dict()
    assert [k for k in ln if k.startswith("blocks.0.")] == ["blocks.0.conv.weight", "blocks.0.norm.weight",
                                                             "blocks.0.norm.bias"]
    none = build_model(Architecture("vgg_none", 11, 4, (1, 8, 8), 10)).state_dict()
    assert [k for k in none if k.startswith("blocks.0.")] == ["blocks.0.conv.weight", "blocks.0.conv.bias"]
    resnet = build_model(Architecture("resnet_none", 20, 4, (1, 8, 8), 10)).state_dict()
    assert {"stem.conv.bias", "stages.2.2.conv2.bias", "stages.1.0.shortcut.conv.bias"} <= set(resnet)
    assert not any(".norm" in k for k in resnet)


def test_resnet20_layout_and_streams() -> None:
    arch = Architecture("resnet", 20, 8, (1, 28, 28), 10)
    state = build_model(arch).state_dict()
    assert {k.split(".")[1] for k in state if k.startswith("stages.")} == {"0", "1", "2"}
    assert state["stages.0.2.conv2.weight"].shape == (8, 8, 3, 3)
    assert state["stages.2.0.shortcut.conv.weight"].shape == (32, 16, 1, 1)
    assert "stages.0.0.shortcut.conv.weight" not in state  # stage 0 keeps the stem's width: identity shortcut
    assert state["head.weight"].shape == (10, 32)
    full = permutation_spec(arch, "full")
    assert {name for name in full.names if name.startswith("stream")} == {"stream.0", "stream.1", "stream.2"}
    internal = permutation_spec(arch, "internal")
    assert sorted(internal.names) == sorted(f"stages.{s}.{b}.conv1" for s in range(3) for b in range(3))
