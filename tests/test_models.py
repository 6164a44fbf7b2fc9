"""Pinned shapes and parameter counts of every registered model."""

from __future__ import annotations

import pytest
import torch
from tests.rounding import magnitude, rounding_tolerance, to_float64

from permlmc.evaluation import functional_forward
from permlmc.models import MODELS, RESIDUAL_MODES, Architecture, build_model, model_names, permutation_spec
from permlmc.permutation import PermutationSpec, apply_permutation, random_permutation
from permlmc.types import StateDict

VGG11_W8 = (
    9 * (1 * 8 + 8 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 3 * 64 * 64) + 2 * (8 + 16 + 2 * 32 + 4 * 64) + 64 * 10 + 10
)
RESNET20_X1 = (
    (3 * 16 * 9 + 2 * 16)
    + 3 * (2 * 16 * 16 * 9 + 2 * 2 * 16)
    + (16 * 32 * 9 + 32 * 32 * 9 + 2 * 2 * 32 + 16 * 32 + 2 * 32) + 2 * (2 * 32 * 32 * 9 + 2 * 2 * 32)
    + (32 * 64 * 9 + 64 * 64 * 9 + 2 * 2 * 64 + 32 * 64 + 2 * 64) + 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)
    + 64 * 10 + 10
)

# (arch, depth, width, input shape, classes) -> parameter count, computed by hand.
PINNED = {
    # ViT d2 w32 on 28x28 (patches of 7 x 7, 16 + 1 tokens): patch embedding 32*49 + 32 = 1,600; class token 32;
    # positions 17*32 = 544; per block LayerNorms 2 * 64, q/k/v/out 4 * (32*32 + 32) = 4,224, MLP
    # 32*64 + 64 + 64*32 + 32 = 4,192: 8,544; final LayerNorm 64; head 32*10 + 10 = 330. Total 19,658.
    ("vit", 2, 32, (1, 28, 28), 10): 1600 + 32 + 544 + 2 * 8544 + 64 + 330,
    ("mlp", 1, 16, (1, 28, 28), 10): 784 * 16 + 16 + 16 * 10 + 10,
    ("mlp", 2, 512, (1, 28, 28), 10): 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10,
    ("mlp", 4, 1024, (3, 32, 32), 100): 3072 * 1024 + 1024 + 3 * (1024 * 1024 + 1024) + 1024 * 100 + 100,
    # Shallow CNN: conv3x3 weights (out * in * 9) plus biases, then the head over the 4x4-pooled map.
    # d2 w64: 1,792 + 36,928 + 10,250 = 48,970.
    ("cnn", 2, 64, (3, 32, 32), 10): (64 * 3 * 9 + 64) + (64 * 64 * 9 + 64) + (10 * 64 * 16 + 10),
    # d2 w1024 (the paper's main Shallow CNN): 28,672 + 9,438,208 + 163,850 = 9,630,730.
    ("cnn", 2, 1024, (1, 28, 28), 10): (1024 * 1 * 9 + 1024) + (1024 * 1024 * 9 + 1024) + (10 * 1024 * 16 + 10),
    # VGG-16 (configuration D) w64: bias-free conv3x3 channels 3-64-64 | 128 128 | 256 x3 | 512 x3 | 512 x3.
    # Convs: 9 * (3*64 + 64*64 + 64*128 + 128*128 + 128*256 + 2*256*256 + 256*512 + 5*512*512)
    #      = 9 * 1,634,496 = 14,710,464; BatchNorm weight+bias: 2 * (2*64 + 2*128 + 3*256 + 6*512) = 8,448;
    # head 512*10 + 10 = 5,130. Total 14,724,042.
    ("vgg", 16, 64, (3, 32, 32), 10): (
        9 * (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 2 * 256 * 256 + 256 * 512 + 5 * 512 * 512)
        + 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512)
        + 512 * 10 + 10
    ),
    # VGG-11 (configuration A) w8 on MNIST: channels 1-8 | 16 | 32 32 | 64 64 | 64 64.
    # Convs 9 * (8 + 8*16 + 16*32 + 32*32 + 32*64 + 3*64*64) = 9 * 16,008 = 144,072; BN 2 * (8+16+2*32+4*64) = 688;
    # head 64*10 + 10 = 650. Total 145,410.
    ("vgg", 11, 8, (1, 28, 28), 10): VGG11_W8,
    # ResNet-18 w64 (BasicBlocks [2, 2, 2, 2]); a BatchNorm of c channels has 2c parameters.
    #   stem   3*64*9 + 128                                                         =      1,856
    #   stage0 2 * (2*64*64*9 + 2*128)                                              =    147,968
    #   stage1 (64*128*9 + 128*128*9 + 2*256 + 64*128 + 256) + (2*128*128*9 + 2*256) =    525,568
    #   stage2 (128*256*9 + 256*256*9 + 2*512 + 128*256 + 512) + (2*256*256*9 + 2*512) = 2,099,712
    #   stage3 (256*512*9 + 512*512*9 + 2*1024 + 256*512 + 1024) + (2*512*512*9 + 2*1024) = 8,393,728
    #   head   512*10 + 10                                                          =      5,130
    #   total                                                                       = 11,173,962
    ("resnet", 18, 64, (3, 32, 32), 10): (
        (3 * 64 * 9 + 128)
        + 2 * (2 * 64 * 64 * 9 + 2 * 128)
        + (64 * 128 * 9 + 128 * 128 * 9 + 2 * 256 + 64 * 128 + 256) + (2 * 128 * 128 * 9 + 2 * 256)
        + (128 * 256 * 9 + 256 * 256 * 9 + 2 * 512 + 128 * 256 + 512) + (2 * 256 * 256 * 9 + 2 * 512)
        + (256 * 512 * 9 + 512 * 512 * 9 + 2 * 1024 + 256 * 512 + 1024) + (2 * 512 * 512 * 9 + 2 * 1024)
        + 512 * 10 + 10
    ),
    # ResNet-20 x1 = w16 (three stages of three BasicBlocks, planes 16, 32, 64; projections into stages 1, 2):
    #   stem   3*16*9 + 2*16                                                   =       464
    #   stage0 3 * (2*16*16*9 + 2*2*16)                                        =    14,016
    #   stage1 (16*32*9 + 32*32*9 + 2*2*32 + 16*32 + 2*32) + 2 * (2*32*32*9 + 2*2*32) = 51,648
    #   stage2 (32*64*9 + 64*64*9 + 2*2*64 + 32*64 + 2*64) + 2 * (2*64*64*9 + 2*2*64) = 205,696
    #   head   64*10 + 10                                                      =       650
    #   total                                                                  =   272,474
    ("resnet", 20, 16, (3, 32, 32), 10): RESNET20_X1,
    # LayerNorm has the same per-channel scale and shift as BatchNorm (and no running statistics).
    ("resnet_ln", 20, 16, (3, 32, 32), 10): RESNET20_X1,
    ("vgg_ln", 11, 8, (1, 28, 28), 10): VGG11_W8,
    # Without a norm each conv has a bias of c instead of BatchNorm's 2c: the 784 normalised channels of ResNet-20
    # x1 (16 + 6*16 + 6*32 + 32 + 6*64 + 64) and the 344 of VGG-11 w8 (8 + 16 + 2*32 + 4*64).
    ("resnet_none", 20, 16, (3, 32, 32), 10): RESNET20_X1 - 784,
    ("vgg_none", 11, 8, (1, 28, 28), 10): VGG11_W8 - 344,
    # ResNet-50 w16 (Bottlenecks [3, 4, 6, 3], planes p = 16, 32, 64, 128, outputs 4p): a block is
    # conv1x1 in->p, conv3x3 p->p, conv1x1 p->4p, BatchNorms 2*(p + p + 4p); the first block of each stage adds a
    # projection in*4p + 2*4p.
    #   stem   3*16*9 + 32                                                     =       464
    #   stage0 (16*16 + 16*16*9 + 16*64 + 192 + 16*64 + 128) + 2 * (64*16 + 2304 + 1024 + 192)
    #          = 4,928 + 2 * 4,544                                             =    14,016
    #   stage1 (64*32 + 32*32*9 + 32*128 + 384 + 64*128 + 256) + 3 * (128*32 + 9216 + 4096 + 384)
    #          = 24,192 + 3 * 17,792                                           =    77,568
    #   stage2 (128*64 + 64*64*9 + 64*256 + 768 + 128*256 + 512) + 5 * (256*64 + 36864 + 16384 + 768)
    #          = 95,488 + 5 * 70,400                                           =   447,488
    #   stage3 (256*128 + 128*128*9 + 128*512 + 1536 + 256*512 + 1024) + 2 * (512*128 + 147456 + 65536 + 1536)
    #          = 379,392 + 2 * 280,064                                         =   939,520
    #   head   512*10 + 10                                                     =     5,130
    #   total                                                                  = 1,484,186
    ("resnet", 50, 16, (3, 32, 32), 10): (
        (3 * 16 * 9 + 32)
        + (16 * 16 + 16 * 16 * 9 + 16 * 64 + 192 + 16 * 64 + 128) + 2 * (64 * 16 + 16 * 16 * 9 + 16 * 64 + 192)
        + (64 * 32 + 32 * 32 * 9 + 32 * 128 + 384 + 64 * 128 + 256) + 3 * (128 * 32 + 32 * 32 * 9 + 32 * 128 + 384)
        + (128 * 64 + 64 * 64 * 9 + 64 * 256 + 768 + 128 * 256 + 512) + 5 * (256 * 64 + 64 * 64 * 9 + 64 * 256 + 768)
        + (256 * 128 + 128 * 128 * 9 + 128 * 512 + 1536 + 256 * 512 + 1024)
        + 2 * (512 * 128 + 128 * 128 * 9 + 128 * 512 + 1536)
        + 512 * 10 + 10
    ),
}


@pytest.mark.parametrize("key", list(PINNED), ids=lambda k: f"{k[0]}-d{k[1]}-w{k[2]}")
def test_parameter_count(key: tuple) -> None:
    model = build_model(Architecture(*key))
    assert sum(p.numel() for p in model.parameters()) == PINNED[key]


def test_every_model_is_pinned() -> None:
    assert {k[0] for k in PINNED} == set(model_names())


def test_mlp_state_dict_names_and_output_shape() -> None:
    model = build_model(Architecture("mlp", 2, 8, (1, 8, 8), 10))
    assert list(model.state_dict()) == [
        "hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias", "head.weight", "head.bias"
    ]
    assert model.state_dict()["hidden.0.weight"].shape == (8, 64)
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


@pytest.mark.parametrize("field,value", [("width", 0), ("depth", -1), ("num_classes", 0)])
def test_non_positive_sizes_are_rejected(field: str, value: int) -> None:
    kwargs = dict(model_name="mlp", depth=1, width=4, input_shape=(1, 2, 2), num_classes=3) | {field: value}
    with pytest.raises(ValueError, match=field):
        Architecture(**kwargs)


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="resnet9000"):
        Architecture("resnet9000", 1, 4, (1, 2, 2), 3)


ALL_DEPTHS = [("cnn", d) for d in (1, 2, 4, 8)] + [
    (name, d) for name in ("vgg", "resnet") for d in MODELS[name].depths or ()
]


@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name,depth", ALL_DEPTHS, ids=lambda v: str(v))
def test_output_shape(name: str, depth: int, input_shape: tuple[int, int, int]) -> None:
    model = build_model(Architecture(name, depth, 4, input_shape, 7)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, *input_shape)).shape == (2, 7)


def test_cnn_state_dict_names() -> None:
    model = build_model(Architecture("cnn", 2, 8, (3, 8, 8), 10))
    assert list(model.state_dict()) == [
        "convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias", "head.weight", "head.bias"
    ]
    assert model.state_dict()["convs.0.weight"].shape == (8, 3, 3, 3)
    assert model.state_dict()["head.weight"].shape == (10, 8, 4, 4)


def test_vgg_state_dict_names() -> None:
    state = build_model(Architecture("vgg", 11, 4, (1, 8, 8), 10)).state_dict()
    norm_keys = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(state) == [
        key for i in range(8) for key in [f"blocks.{i}.conv.weight", *(f"blocks.{i}.norm.{k}" for k in norm_keys)]
    ] + ["head.weight", "head.bias"]
    assert [state[f"blocks.{i}.conv.weight"].shape[0] for i in range(8)] == [4, 8, 16, 16, 32, 32, 32, 32]
    assert state["head.weight"].shape == (10, 32)


def test_resnet_state_dict_names() -> None:
    basic = build_model(Architecture("resnet", 18, 4, (1, 8, 8), 10)).state_dict()
    assert {"stem.conv.weight", "stem.norm.running_var", "stages.0.1.conv2.weight", "stages.3.1.norm2.bias",
            "stages.1.0.shortcut.conv.weight", "stages.1.0.shortcut.norm.num_batches_tracked"} <= set(basic)
    assert not any(k.startswith("stages.0.0.shortcut") or ".conv3." in k for k in basic)
    assert basic["stages.1.0.shortcut.conv.weight"].shape == (8, 4, 1, 1)
    bottleneck = build_model(Architecture("resnet", 50, 4, (1, 8, 8), 10)).state_dict()
    assert bottleneck["stages.0.0.shortcut.conv.weight"].shape == (16, 4, 1, 1)
    assert bottleneck["stages.3.2.conv3.weight"].shape == (128, 32, 1, 1)
    assert bottleneck["head.weight"].shape == (10, 128)


def _randomise_norms(params: StateDict, generator: torch.Generator) -> StateDict:
    """BatchNorm affine parameters and running statistics as after training (not the constant init values), so
    that a spec permuting them with the wrong channels would change the function."""
    out = dict(params)
    for key, value in params.items():
        module, field = key.rsplit(".", 1)
        if not module.rsplit(".", 1)[-1].startswith("norm"):
            continue
        if field in ("weight", "bias", "running_mean"):
            out[key] = torch.randn(value.shape, generator=generator)
        elif field == "running_var":
            out[key] = 0.5 + torch.rand(value.shape, generator=generator)
    return out


@pytest.mark.parametrize("residual", RESIDUAL_MODES)
@pytest.mark.parametrize("name,depth", [
    ("vgg", 11), ("resnet", 18), ("resnet", 34), ("resnet", 50), ("resnet", 20), ("vgg_ln", 11), ("resnet_ln", 20),
])
def test_permutation_with_trained_norms_keeps_the_function(name: str, depth: int, residual: str) -> None:
    arch = Architecture(name, depth, 4, (1, 8, 8), 10)
    model = build_model(arch)
    g = torch.Generator().manual_seed(0)
    params = to_float64(_randomise_norms(model.state_dict(), g))  # float64: rounding far below any wrong channel
    spec = permutation_spec(arch, residual)
    spec.validate(params)
    permuted = apply_permutation(spec, random_permutation(spec, params, g), params)
    changed = [k for k in params if not torch.equal(params[k], permuted[k])]
    assert any("norm" in k for k in changed)
    x = torch.randn(16, 1, 8, 8, generator=g).double()
    forward = functional_forward(model)
    expected = forward(params, x)
    # permuted units reorder every sum: rounding only, tau = L sqrt(n) eps64 of the largest logit (tests/rounding.py)
    tau = rounding_tolerance(model, arch.input_shape, rows=len(x), dtype=torch.float64)
    torch.testing.assert_close(forward(permuted, x), expected, rtol=0, atol=tau * magnitude(expected))


def _touched(spec: PermutationSpec, key: str) -> list[str]:
    return [p for p in spec.axes[key] if p is not None]


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_internal_mode_leaves_the_residual_stream_alone(depth: int) -> None:
    arch = Architecture("resnet", depth, 4, (1, 8, 8), 10)
    spec = permutation_spec(arch, "internal")
    assert set(spec.axes) == set(build_model(arch).state_dict())
    last = "conv2" if depth == 18 else "conv3"
    for key in spec.axes:
        stream_key = key.startswith(("stem.", "head.")) or ".shortcut." in key
        if stream_key:
            assert not _touched(spec, key), key
        if key.endswith(f"{last}.weight"):  # writes the stream; reads the block's own channels
            assert spec.axes[key][0] is None and spec.axes[key][1] is not None
        if key.endswith("conv1.weight"):  # reads the stream
            assert spec.axes[key][1] is None and spec.axes[key][0] == key.removesuffix(".weight")
    assert all(name.startswith("stages.") and ".conv" in name for name in spec.names)


def test_resnet_full_mode_ties_each_stream() -> None:
    spec = permutation_spec(Architecture("resnet", 18, 4, (1, 8, 8), 10), "full")
    stem = spec.axes["stem.conv.weight"][0]
    assert stem is not None and spec.axes["stem.norm.running_mean"] == (stem,)
    for b in (0, 1):  # the stem's permutation also acts on the first stage's block outputs and inputs
        assert spec.axes[f"stages.0.{b}.conv2.weight"][0] == stem
        assert spec.axes[f"stages.0.{b}.norm2.weight"] == (stem,)
        assert spec.axes[f"stages.0.{b}.conv1.weight"][1] == stem
    assert spec.axes["stages.1.0.shortcut.conv.weight"][:2] == (spec.axes["stages.1.1.conv2.weight"][0], stem)
    streams = [spec.axes[f"stages.{s}.1.conv2.weight"][0] for s in range(4)]
    assert len(set(streams)) == 4 and spec.axes["head.weight"] == (None, streams[-1])
    for s in range(1, 4):  # the downsampling projection writes its stage's stream
        assert spec.axes[f"stages.{s}.0.shortcut.norm.weight"] == (streams[s],)
        assert spec.axes[f"stages.{s}.0.conv2.weight"][0] == streams[s]


def test_resnet50_full_mode_stem_feeds_the_first_projection() -> None:
    spec = permutation_spec(Architecture("resnet", 50, 4, (1, 8, 8), 10), "full")
    stem = spec.axes["stem.conv.weight"][0]
    stage0 = spec.axes["stages.0.0.shortcut.conv.weight"][0]
    assert stem is not None and stage0 is not None and stem != stage0
    assert spec.axes["stages.0.0.shortcut.conv.weight"][1] == stem
    assert spec.axes["stages.0.0.conv1.weight"][1] == stem
    assert all(spec.axes[f"stages.0.{b}.norm3.weight"] == (stage0,) for b in range(3))


def test_unknown_residual_mode_is_rejected_and_plain_families_ignore_the_mode() -> None:
    arch = Architecture("cnn", 2, 4, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="'bogus'.*internal.*full"):
        permutation_spec(arch, "bogus")
    with pytest.raises(ValueError, match="bogus"):
        MODELS["resnet"].spec(Architecture("resnet", 18, 4, (1, 8, 8), 10), "bogus")
    for name, depth in [("mlp", 2), ("cnn", 2), ("vgg", 11)]:
        a = Architecture(name, depth, 4, (1, 8, 8), 10)
        assert permutation_spec(a, "internal") == permutation_spec(a, "full")


@pytest.mark.parametrize("name,depth", [("vgg", 12), ("resnet", 22), ("resnet_ln", 19)])
def test_unsupported_depths_are_rejected(name: str, depth: int) -> None:
    with pytest.raises(ValueError, match=f"depth {depth}"):
        Architecture(name, depth, 4, (3, 32, 32), 10)


def test_a_vit_of_other_heads_patches_and_mlp_ratio_is_a_network_of_ones_own_with_heads_groups() -> None:
    from permlmc.models.vit import ViT

    arch = Architecture("myvit", 2, 8, (1, 8, 8), 10, factory="permlmc.models.vit:vision_transformer",
                        kwargs={"heads": 2, "patches_per_side": 2, "mlp_ratio": 3})
    model = build_model(arch)
    assert isinstance(model, ViT) and model.pos.shape == (1, 2 * 2 + 1, 8)
    assert model.blocks[0].mlp.fc1.out_features == 3 * 8
    spec = permutation_spec(arch)  # derived from the graph and verified
    assert [(len(g.members), g.head_size) for g in spec.heads] == [(2, 4), (2, 4)]  # per block: 2 heads of 4 units
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
