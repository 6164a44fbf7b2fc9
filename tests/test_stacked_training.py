"""Stacked multi-seed training: a seed's weights do not depend on its block, it is train()'s algorithm, each seed
stops on its own, a killed block resumes bitwise, and the engine choice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from permlmc.model_names import split_model_name
from permlmc.models import MODELS, Architecture, model_names
from permlmc.training import stacked
from permlmc.training.kernels import ALIGN, Layout, mlp_gradients, sgd_step
from permlmc.training.loop import TrainConfig, TrainResult, initialise, train
from permlmc.training.resume import ResumeFile
from permlmc.training.stacked import MAX_STACKED_WIDTH_CPU, choose_engine, sub_blocks, train_seeds

# Odd sizes on purpose: 5x5 inputs, width 13, a last minibatch of 6: no seed's slice of a stacked tensor is
# 64-byte aligned by accident, so an alignment-dependent kernel would show.
TINY = Architecture("mlp", 2, 13, (1, 5, 5), 3)
# The head product (10 x 517) whose rounding MKL was seen to change with the alignment of its output.
WIDE = Architecture("mlp", 1, 517, (1, 28, 28), 10)


def _data(arch: Architecture, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *arch.input_shape, generator=g)
    return x, x.flatten(1)[:, : arch.num_classes].argmax(1)


@pytest.fixture(params=[1, None], ids=["1-thread", "default-threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    before = torch.get_num_threads()
    torch.set_num_threads(request.param or before)
    yield torch.get_num_threads()
    torch.set_num_threads(before)


def _equal(a: TrainResult, b: TrainResult) -> bool:
    return a.state_dict.keys() == b.state_dict.keys() and all(
        torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict
    ) and a.history == b.history and a.steps == b.steps


@pytest.mark.parametrize(("arch", "n", "batch"), [(TINY, 70, 16), (WIDE, 40, 16)], ids=["tiny", "wide"])
def test_a_seeds_weights_do_not_depend_on_its_block(arch: Architecture, n: int, batch: int, threads: int) -> None:
    config = TrainConfig(lr=0.05, weight_decay=5e-4, batch_size=batch, max_epochs=2, target_loss=0.0)
    data = _data(arch, n)
    blocks = [[1, 2, 3], [2], [3, 2], [5, 4, 3, 2, 1]]
    results = [train_seeds(arch, seeds, config, data, data, engine="stacked")[2] for seeds in blocks]
    assert all(_equal(results[0], other) for other in results[1:])
    alone = train_seeds(arch, [3], config, data, data, engine="stacked")[3]
    assert not torch.equal(alone.state_dict["head.weight"], results[0].state_dict["head.weight"])


def test_sub_blocks_share_the_seeds_within_the_byte_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacked, "SUB_BLOCK_BYTES", 2 * 100 + 1)  # two seeds of 100 bytes fit in a sub-block
    plan = sub_blocks(7, 100, 2, torch.device("cpu"))
    assert [[len(block) for block in share] for share in plan] == [[1, 2], [2, 2]]  # even, at most 2
    assert [i for share in plan for block in share for i in block] == list(range(7))  # every seed once, in order
    assert sub_blocks(7, 100, 16, torch.device("cpu")) == [[[i]] for i in range(7)]
    assert sub_blocks(7, 100, 2, torch.device("meta")) == [[list(range(7))]]


def test_sub_blocks_do_not_change_a_seeds_weights(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    config = TrainConfig(lr=0.05, weight_decay=5e-4, batch_size=16, max_epochs=2, target_loss=0.0)
    data = _data(WIDE, 40)
    together = train_seeds(WIDE, [1, 2, 3], config, data, data, engine="stacked")
    monkeypatch.setattr(stacked, "SUB_BLOCK_BYTES", 1)  # one seed per sub-block
    apart = train_seeds(WIDE, [1, 2, 3], config, data, data, engine="stacked")
    assert all(_equal(together[seed], apart[seed]) for seed in (1, 2, 3))


def test_stacked_is_the_same_algorithm_as_train() -> None:
    config = TrainConfig(lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=16, max_epochs=3, target_loss=0.0)
    data, test = _data(TINY, 70), _data(TINY, 30, 1)
    results_stacked = train_seeds(TINY, [1, 2], config, data, test, engine="stacked")
    for seed, result in results_stacked.items():
        reference = train(TINY, seed, config, data, test)
        assert result.engine == "stacked" and reference.engine == "sequential"
        assert (result.epochs, result.steps, result.stopped_by) == (3, 3 * 5, "max_epochs")  # ceil(70/16) = 5
        assert (reference.epochs, reference.steps) == (result.epochs, result.steps)
        for ours, theirs in zip(result.history, reference.history, strict=True):
            assert ours["lr"] == theirs["lr"] and ours["train_error"] == pytest.approx(theirs["train_error"], abs=0.03)
            assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        for key, value in reference.state_dict.items():
            torch.testing.assert_close(result.state_dict[key], value, rtol=1e-4, atol=1e-5)
        assert result.test.loss == pytest.approx(reference.test.loss, rel=1e-4)


def test_gradients_are_those_of_autograd() -> None:
    x, y = _data(TINY, 12)
    models = [initialise(TINY, seed) for seed in (1, 2)]
    layout = Layout.of(dict(models[0].state_dict()))
    params = layout.pack([dict(m.state_dict()) for m in models], "cpu")
    grads = torch.zeros_like(params)
    totals = (torch.full((2,), 0.5, dtype=torch.float64), torch.ones(2, dtype=torch.int64))  # added to
    mlp_gradients(layout.views(params), layout.views(grads), torch.stack([x, x.flip(0)]),
                  torch.stack([y, y.flip(0)]), totals)
    losses, wrong = (totals[0] - 0.5) / len(y), totals[1] - 1
    for k, (model, xs, ys) in enumerate(zip(models, (x, x.flip(0)), (y, y.flip(0)), strict=True)):
        logits = model(xs)
        loss = torch.nn.functional.cross_entropy(logits, ys)
        loss.backward()
        assert losses[k].item() == pytest.approx(loss.item(), rel=1e-6)
        assert wrong[k].item() == int((logits.argmax(1) != ys).sum())
        for name, param in model.named_parameters():
            assert param.grad is not None
            torch.testing.assert_close(layout.views(grads)[name][k], param.grad, rtol=1e-5, atol=1e-7)
    assert grads.count_nonzero() == sum(int(p.grad.count_nonzero()) for m in models for p in m.parameters()
                                        if p.grad is not None)  # the padding stays zero


def test_sgd_step_is_torch_sgd_bitwise() -> None:
    config = TrainConfig(lr=0.03, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    # rows as a Layout lays them out, whole multiples of ALIGN: the fused kernel's vector loop then covers every
    # element (its scalar tail, never reached, adds the weight decay with other rounding)
    start = torch.randn(3, 3 * ALIGN, generator=g)
    stacked, momenta = start.clone(), None
    rows = [torch.nn.Parameter(row.clone()) for row in start]
    optimiser = torch.optim.SGD(rows, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    for _ in range(4):
        grads = torch.randn(3, 3 * ALIGN, generator=g)
        momenta = sgd_step(stacked, grads, momenta, config.lr, config)
        for row, grad in zip(rows, grads, strict=True):
            row.grad = grad.clone()
        optimiser.step()
    assert all(torch.equal(stacked[k], rows[k].detach()) for k in range(3))


def test_each_seed_stops_on_its_own() -> None:
    data = _data(TINY, 70)
    free = TrainConfig(lr=0.05, batch_size=16, max_epochs=4, target_loss=0.0)
    first = {s: r.history[0]["train_loss"] for s, r in train_seeds(TINY, [1, 2], free, data, data,
                                                                   engine="stacked").items()}
    early, late = sorted(first, key=first.__getitem__)
    assert first[early] < first[late]
    config = TrainConfig(lr=0.05, batch_size=16, max_epochs=4, target_loss=(first[early] + first[late]) / 2)
    results = train_seeds(TINY, [1, 2], config, data, data, engine="stacked")
    assert (results[early].epochs, results[early].steps, results[early].stopped_by) == (1, 5, "target_loss")
    assert results[late].epochs > 1
    # the seed left alone after its partner stopped trains exactly as it would alone
    assert _equal(results[late], train_seeds(TINY, [late], config, data, data, engine="stacked")[late])


class Interrupt(RuntimeError):
    pass


def test_interrupted_block_resumes_to_identical_weights(tmp_path: Path, threads: int) -> None:
    config = TrainConfig(lr=0.05, weight_decay=5e-4, batch_size=16, max_epochs=4, target_loss=0.0)
    data = _data(TINY, 70)
    seeds = [1, 2, 3]
    reference = train_seeds(TINY, seeds, config, data, data, engine="stacked")

    def resume(seed: int) -> ResumeFile:
        return ResumeFile(tmp_path / f"seed{seed}.safetensors", every=1)

    def stop_seed_3_in_epoch_3(seed: int, record: dict[str, float]) -> None:
        if seed == 3 and record["epoch"] == 3:
            raise Interrupt  # seeds 1 and 2 may have saved epoch 3 already: the rerun starts them at other epochs

    with pytest.raises(Interrupt):
        train_seeds(TINY, seeds, config, data, data, engine="stacked", on_epoch=stop_seed_3_in_epoch_3,
                    resume=resume)
    assert all(resume(seed).path.with_suffix(".json").exists() for seed in seeds)  # each seed saved a state
    epochs: dict[int, list[float]] = {}
    resumed = train_seeds(TINY, seeds, config, data, data, engine="stacked", resume=resume,
                          on_epoch=lambda seed, record: epochs.setdefault(seed, []).append(record["epoch"]))
    assert epochs[3] == [3, 4]  # seed 3 really restarted from its saved epoch 2
    assert all(_equal(resumed[seed], reference[seed]) for seed in seeds)


def test_a_sequential_state_is_not_resumed_by_the_stacked_engine(tmp_path: Path) -> None:
    config = TrainConfig(batch_size=16, max_epochs=2, target_loss=0.0)
    data = _data(TINY, 40)
    resume = ResumeFile(tmp_path / "state.safetensors", every=1)
    train(TINY, 1, config, data, data, resume=resume)
    results_stacked = train_seeds(TINY, [1], config, data, data, engine="stacked", resume=lambda seed: resume)[1]
    assert _equal(results_stacked, train_seeds(TINY, [1], config, data, data, engine="stacked")[1])


def test_engine_choice_depends_on_architecture_and_device_only() -> None:
    narrow = Architecture("mlp", 1, MAX_STACKED_WIDTH_CPU, (1, 28, 28), 10)
    wide = Architecture("mlp", 1, MAX_STACKED_WIDTH_CPU + 1, (1, 28, 28), 10)
    assert choose_engine(narrow, "cpu") == "stacked" and choose_engine(wide, "cpu") == "sequential"
    assert choose_engine(wide, "cuda") == "stacked"
    for name in set(model_names()) - {"mlp"}:
        arch = Architecture(name, MODELS[split_model_name(name)[0]].example_depths[0], 4, (3, 8, 8), 10)
        assert choose_engine(arch, "cpu") == choose_engine(arch, "cuda") == "sequential"


def test_engines_are_recorded_and_sequential_is_train() -> None:
    config = TrainConfig(batch_size=16, max_epochs=1, target_loss=0.0)
    data = _data(TINY, 40)
    assert {r.engine for r in train_seeds(TINY, [1, 2], config, data, data).values()} == {"stacked"}
    sequential = train_seeds(TINY, [4], config, data, data, engine="sequential")[4]
    assert sequential.engine == "sequential" and _equal(sequential, train(TINY, 4, config, data, data))
    with pytest.raises(ValueError, match="engine"):
        train_seeds(TINY, [1], config, data, data, engine="vmap")
    with pytest.raises(ValueError, match="repeat"):
        train_seeds(TINY, [1, 1], config, data, data)
    cnn = Architecture("cnn", 1, 4, (1, 5, 5), 3)
    with pytest.raises(ValueError, match="cannot train 'cnn'"):
        train_seeds(cnn, [1], config, data, data, engine="stacked")
