"""Specs derived from traced networks: equal to the hand-written ones of every registered model, verified on
networks written as users write them, and refused with a way out where the tracer cannot follow."""

from __future__ import annotations

import pytest
import torch
from tests.traced_models import TRACED, Branching, Cumulative

from permlmc.axes import Heads, Piece, SpecError, axis_names
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import (
    PermutationSpec,
    apply_permutation,
    compose,
    invert,
    permutation_layout,
    random_permutation,
)
from permlmc.search import SearchData, get_search
from permlmc.search.features import unit_features
from permlmc.tracing import TraceError, TraceOptions, derive_spec
from permlmc.tracing.compare import matching_names, renamed
from permlmc.tracing.derive import trace
from permlmc.tracing.verify import SpecMismatch, require_verified, verify_spec


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _derived(arch: Architecture) -> tuple[torch.nn.Module, PermutationSpec]:
    model = build_model(arch)
    return model, derive_spec(model, torch.randn(2, *arch.input_shape)).spec


def test_derived_spec_equals_the_registered_one_up_to_names(arch: Architecture) -> None:
    _, derived = _derived(arch)
    registered = permutation_spec(arch, "full")
    names = matching_names(derived, registered)
    assert names is not None
    assert [names[n] for n in derived.names] == list(registered.names)  # same order: searches draw alike


def test_weight_matching_finds_the_same_permutation_with_either_spec(arch: Architecture) -> None:
    model, derived = _derived(arch)
    registered = permutation_spec(arch, "full")
    a, b = model.state_dict(), build_model(arch).state_dict()
    search = get_search("weight_matching")
    by_hand = search(registered, a, b, generator=torch.Generator().manual_seed(0))
    by_trace = search(derived, a, b, generator=torch.Generator().manual_seed(0))
    names = matching_names(derived, registered)
    assert names is not None
    assert _same({names[n]: p for n, p in by_trace.items()}, by_hand)


def test_verification_accepts_the_derived_spec_of_every_registered_model(arch: Architecture) -> None:
    model = build_model(arch)
    example = torch.randn(2, *arch.input_shape)
    derivation = derive_spec(model, example)
    report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    assert report.ok, report.failed
    assert len(report.checks) == len(derivation.spec.names) + len(derivation.spec.heads)  # and each group's heads
    registered = permutation_spec(arch)
    moved = sum(p.numel() for k, p in model.named_parameters() if any(a is not None for a in registered.axes[k]))
    assert report.parameter_share == pytest.approx(moved / sum(p.numel() for p in model.parameters()))
    assert report.parameter_share > 0.95  # all but the output layer's bias


@pytest.mark.parametrize("name", sorted(TRACED))
def test_user_networks_are_derived_and_verified(name: str) -> None:
    cls, shape = TRACED[name]
    torch.manual_seed(0)
    model, example = cls(), torch.randn(*shape)
    derivation = derive_spec(model, example)
    report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    assert report.ok, report.failed
    assert all(c.deviation <= report.tolerance for c in report.checks) and report.checks
    head = next(key for key in model.state_dict() if key.endswith("head.weight"))
    assert "model output" in derivation.fixed[(head, 0)]  # the output axis stays


def test_flatten_into_a_linear_permutes_channels_in_blocks_of_positions() -> None:
    model, example = TRACED["gated_conv"][0](channels=8, size=8), torch.randn(2, 3, 8, 8)
    spec = derive_spec(model, example).spec
    (piece,) = spec.axes["head.weight"][1]
    assert piece.units == 2 and piece.block == 4 * 16  # 2 groups (grouped conv) of 4 channels of 4 x 4 positions
    assert spec.axes["grouped.weight"][1] is None  # within a group nothing moves
    assert spec.axes["squeeze.weight"][0] == "squeeze"  # the gate's hidden units have their own permutation


def test_concatenated_parts_keep_their_own_permutations() -> None:
    spec = derive_spec(TRACED["concat"][0](), torch.randn(2, 3, 8, 8)).spec
    assert spec.axes["joined.weight"] == ((Piece("left", 4), Piece("right", 5)),)
    assert spec.axes["mix.weight"][1] == (Piece("left", 4), Piece("right", 5))
    assert permutation_layout(spec)["right"][-1] == ["mix.weight", 1, 4, 1]


def test_attention_heads_move_whole_and_units_within_them_by_query_key_and_value_output() -> None:
    spec = derive_spec(TRACED["tokens"][0](dim=8, heads=2), torch.randn(2, 3, 8, 8)).spec
    stream = spec.axes["patches.weight"][0]
    assert spec.axes["pos"] == (None, None, stream) and spec.axes["cls"] == (None, None, stream)
    qk, vo = spec.axes["q.weight"][0], spec.axes["v.weight"][0]
    assert qk == spec.axes["k.weight"][0] and vo == spec.axes["out.weight"][1] and qk != vo
    assert spec.heads == (Heads((qk, vo), 4),)  # 2 heads of 4 units


def test_a_fused_projection_cut_by_split_gives_query_key_and_value_their_own_permutations() -> None:
    spec = derive_spec(TRACED["causal_block"][0](), torch.randn(2, 5, 6)).spec
    qk, _, vo = spec.axes["c_attn.weight"][0]
    assert (qk.units, vo.units) == (8, 8) and qk.name != vo.name and spec.axes["c_proj.weight"][1] == vo.name
    assert spec.heads == (Heads((qk.name, vo.name), 4),)
    assert spec.axes["c_attn.bias"][0] == spec.axes["c_attn.weight"][0]


def test_multihead_attention_modules_and_products_of_heads_are_heads_groups() -> None:
    for name, prefix in (("module_attention", "attn.in_proj_weight"), ("matmul_attention", "q.weight")):
        cls, shape = TRACED[name]
        spec = derive_spec(cls(), torch.randn(*shape)).spec
        assert len(spec.heads) == 1 and spec.heads[0].head_size == 4, name
        assert set(axis_names(spec.axes[prefix][0])) == {spec.heads[0].members[0]} | (
            {spec.heads[0].members[1]} if name == "module_attention" else set())  # packed: queries, keys, values
    spec = derive_spec(TRACED["torchvision_vit"][0](), torch.randn(2, 3, 8, 8)).spec
    assert len(spec.heads) == 2  # one group per encoder layer


def test_a_norm_shared_by_every_head_keeps_units_within_heads_and_moves_heads_as_blocks() -> None:
    derivation = derive_spec(TRACED["qk_norm"][0](), torch.randn(2, 5, 8))
    spec = derivation.spec
    assert spec.heads == ()
    assert spec.axes["q.weight"][0] == spec.axes["v.weight"][0] == (Piece(spec.axes["q.weight"][0][0].name, 2, 4),)
    assert "within an attention head" in derivation.fixed[("qk_norm.weight", 0)]


class _HeadsSummed(torch.nn.Module):
    """Units split into heads and then summed over the heads: the order within a head must be one for all."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(5, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = self.inp(x).unflatten(-1, (4, 2)).sum(1)  # (N, 2): one unit per position within a head
        return (summed * summed).sum(-1, keepdim=True)


class _WideValues(torch.nn.Module):
    """Attention whose value heads (4 units) are wider than its query and key heads (2 units)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.q, self.k = torch.nn.Linear(3, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
        self.v, self.out, self.head = torch.nn.Linear(8, 16), torch.nn.Linear(16, 8), torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        q, k, v = (layer(h).unflatten(-1, (4, -1)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.head((h + self.out(y.transpose(1, 2).flatten(2))).mean(1))


def test_heads_that_mix_or_differ_in_size_move_as_blocks_and_a_spec_claiming_more_is_rejected() -> None:
    summed, x = _HeadsSummed(), torch.randn(3, 5)
    derivation = derive_spec(summed, x)
    assert derivation.spec.heads == () and derivation.spec.axes["inp.weight"][0] == (Piece("inp", 4, 2),)
    assert verify_spec(summed, derivation.spec, x, fixed=derivation.fixed).ok
    claimed = PermutationSpec({"inp.weight": ("inp", None), "inp.bias": ("inp",)}, heads=(Heads(("inp",), 2),))
    report = verify_spec(summed, claimed, x)  # each head's own order within would change the sum
    assert not report.ok and report.failed == ["inp"]
    wide, tokens = _WideValues(), torch.randn(2, 5, 3)
    derivation = derive_spec(wide, tokens)
    assert derivation.spec.heads == ()
    assert verify_spec(wide, derivation.spec, tokens, fixed=derivation.fixed).ok


@pytest.mark.slow
def test_torchvision_vit_b_16_is_derived_and_verified() -> None:
    import torchvision

    torch.manual_seed(0)
    model, example = torchvision.models.vit_b_16(image_size=32), torch.randn(1, 3, 32, 32)
    derivation = derive_spec(model, example)
    assert len(derivation.spec.heads) == 12 and len(derivation.spec.names) == 1 + 12 * 3  # stream; qk, vo, MLP
    report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    assert report.ok, report.failed
    assert report.parameter_share > 0.9999


def test_torchvision_stochastic_depth_is_the_identity_of_inference() -> None:
    """torch.fx keeps torchvision's stochastic depth whole (a node of its function): its rule passes the hidden
    units through, so they stay one permutation."""
    from torchvision.ops import StochasticDepth, stochastic_depth

    class Dropping(torch.nn.Module):  # drops its hidden activations for whole examples in training
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.outer = torch.nn.Linear(4, 6), torch.nn.Linear(6, 4)
            self.drop = StochasticDepth(0.5, "row")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.outer(self.drop(torch.relu(self.inner(x))))

    model, example = Dropping(), torch.randn(3, 4)
    derivation = derive_spec(model, example)
    assert derivation.spec.axes["inner.weight"][0] == derivation.spec.axes["outer.weight"][1] is not None
    assert verify_spec(model, derivation.spec, example).ok
    graph = trace(model, (example,), TraceOptions()).graph
    assert any(node.op == "call_function" and node.target is stochastic_depth for node in graph.nodes)


@pytest.mark.parametrize("name", sorted(TRACED))
def test_structured_specs_apply_invert_compose_and_match(name: str) -> None:
    cls, shape = TRACED[name]
    model = cls()
    spec = derive_spec(model, torch.randn(*shape)).spec
    params = model.state_dict()
    g = torch.Generator().manual_seed(0)
    p, q = random_permutation(spec, params, g), random_permutation(spec, params, g)
    assert _same(apply_permutation(spec, invert(p), apply_permutation(spec, p, params)), params)
    sequential = apply_permutation(spec, q, apply_permutation(spec, p, params))
    assert _same(apply_permutation(spec, compose(p, q), params), sequential)
    found = get_search("weight_matching")(spec, params, apply_permutation(spec, p, params), generator=g)
    assert _same(found, invert(p))


def test_searches_that_need_whole_axes_refuse_pieces_by_name() -> None:
    model = TRACED["concat"][0]()
    spec = derive_spec(model, torch.randn(2, 3, 8, 8)).spec
    params = model.state_dict()
    x = torch.randn(4, 3, 8, 8)
    data = SearchData(functional_forward(model), x, torch.zeros(4, dtype=torch.int64), unit_features(model, spec))
    for method in ("brute_force", "functional_difference"):
        with pytest.raises(SpecError, match=f"{method} handles only.*joined"):
            get_search(method)(spec, params, params, data=data, generator=torch.Generator())


def test_verification_rejects_a_spec_that_changes_the_function() -> None:
    arch = Architecture("resnet", 20, 6, (1, 8, 8), 10)
    model, spec = _derived(arch)
    name = spec.axes["stages.0.0.norm1.running_var"][0]
    wrong = PermutationSpec({**spec.axes, "stages.0.0.norm1.running_var": (None,)})  # statistics left behind
    report = verify_spec(model, wrong, torch.randn(2, 1, 8, 8))
    assert not report.ok and report.failed == [name]
    with pytest.raises(SpecMismatch, match=str(name)):
        require_verified(report, "resnet-d20-w6")


def test_an_unknown_op_is_refused_with_its_name_and_the_ways_out() -> None:
    with pytest.raises(TraceError, match="cumsum.*Ways out.*entrywise.*by_hand"):
        derive_spec(Cumulative(), torch.randn(2, 3, 8, 8))


def test_an_untraceable_module_is_named() -> None:
    with pytest.raises(TraceError, match="cannot trace Branching in module 'block'"):
        derive_spec(Branching(), torch.randn(2, 3, 8, 8))


def test_a_submodule_given_by_hand_stays_in_place_and_the_rest_is_derived() -> None:
    model, example = Branching(), torch.randn(2, 3, 8, 8)
    derivation = derive_spec(model, example, TraceOptions(by_hand={"block": {}}))
    assert derivation.spec.names == ()  # the block's input and output stay: nothing around it can move
    assert verify_spec(model, derivation.spec, example).ok


def test_pinned_axes_stay_in_place() -> None:
    arch = Architecture("mlp", 2, 6, (1, 8, 8), 10)
    model = build_model(arch)
    derivation = derive_spec(model, torch.randn(2, 1, 8, 8), TraceOptions(pinned={"hidden.1.weight": (0,)}))
    assert derivation.spec.names == ("hidden.0",)
    assert derivation.fixed[("head.weight", 1)].startswith("pinned by the caller")


def test_a_module_declared_entrywise_is_not_traced() -> None:
    class Swish(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.special.expit(x)

    model = torch.nn.Sequential(torch.nn.Linear(4, 6), Swish(), torch.nn.Linear(6, 2))
    with pytest.raises(TraceError, match="expit"):
        derive_spec(model, torch.randn(3, 4))
    spec = derive_spec(model, torch.randn(3, 4), TraceOptions(entrywise=("Swish",))).spec
    assert spec.axes["0.weight"][0] == spec.axes["2.weight"][1] == "0"
    assert verify_spec(model, spec, torch.randn(3, 4)).ok


def test_renaming_is_undone_by_matching_names() -> None:
    _, spec = _derived(Architecture("cnn", 2, 6, (1, 8, 8), 10))
    other = renamed(spec, {n: f"p{i}" for i, n in enumerate(spec.names)})
    assert matching_names(spec, other) == {n: f"p{i}" for i, n in enumerate(spec.names)}
    assert matching_names(spec, PermutationSpec({**spec.axes, "head.weight": (None, None, None, None)})) is None


def test_derivation_traces_inference_and_leaves_the_models_mode() -> None:
    model = TRACED["gated_conv"][0]()
    model.train()
    derive_spec(model, torch.randn(2, 3, 8, 8))
    assert model.training and all(m.training for m in model.modules())


def test_misreadable_arguments_are_read_as_torch_reads_them() -> None:
    spec = derive_spec(TRACED["awkward"][0](dim=6), torch.randn(2, 5, 4)).spec
    pieces = spec.axes["norm.weight"][0]
    assert [p.units for p in pieces] == [6, 6, 6] and len({p.name for p in pieces}) == 3  # three names, not two
    assert spec.axes["memory"][1] is None  # causal attention: key positions stay


@pytest.mark.parametrize(("options", "message"), [
    (TraceOptions(pinned={"hidden.9.weight": (0,)}), "pinned: 'hidden.9.weight'"),
    (TraceOptions(by_hand={"hidden.7": {}}), "by_hand: 'hidden.7' is not a submodule"),
    (TraceOptions(by_hand={"hidden.0": {"kernel": (None,)}}), r"by_hand: \['hidden.0.kernel'\]"),
])
def test_options_naming_what_the_network_lacks_are_refused(options: TraceOptions, message: str) -> None:
    model = build_model(Architecture("mlp", 2, 6, (1, 8, 8), 10))
    with pytest.raises(TraceError, match=message):
        derive_spec(model, torch.randn(2, 1, 8, 8), options)


def test_the_spec_report_lists_heads_groups_and_where_each_check_acts() -> None:
    from permlmc.tracing.report import report_data, report_text

    model, example = TRACED["tokens"][0](), torch.randn(2, 3, 8, 8)
    derivation = derive_spec(model, example)
    report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    data = report_data(derivation.spec, report)
    (group,) = derivation.spec.heads
    assert data["heads"] == [{"members": list(group.members), "head_size": group.head_size}]
    head_check = next(c for c in data["permutations"] if c["name"].startswith("heads of"))
    assert {key for key, *_ in head_check["acts_on"]} >= {"q.weight", "k.weight", "v.weight", "out.weight"}
    assert f"{len(derivation.spec.names)} permutations" in report_text(report, "tokens")
