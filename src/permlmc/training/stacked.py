"""Train a block of K seeds of one architecture at once: stacked weights, one matrix product per layer for all
seeds, one process.

Each seed is the training of :func:`permlmc.training.loop.train` (paper App. A.1): its own initialisation
(:func:`permlmc.training.loop.initialise`), its own data order (``seeding.generator(seed, DATA_ORDER)``, one
``randperm`` per epoch), SGD with momentum and weight decay (``torch.optim.SGD``'s update), the same learning-rate
schedule, and its own stop at ``target_loss``. The K networks' parameters lie in one ``(K, P)`` tensor, so a layer is
one ``bmm`` over ``(K, B, in) x (K, in, out)`` instead of K small matmuls, and the SGD update is one fused kernel for
the whole block.

A seed's weights never depend on its block: ``train_seeds([1, 2, 3])``, ``train_seeds([2])`` and ``train_seeds([3, 2])``
give bitwise the same weights for seed 2 on CPU (tested). Two things would otherwise break this, both measured with MKL:
a GEMM's rounding depends on the 64-byte alignment of its operands, and on how many threads share one product (MKL
splits a lone product differently from a batch of them). So every seed's slice of every tensor a matmul reads or writes
starts on a 64-byte boundary (:func:`permlmc.training.kernels.empty_aligned`), and on CPU every op runs on one intra-op
thread; the cores are used by splitting a block into one sub-block per thread, trained side by side
(:func:`_run_blocks`). On CUDA the same held once a lone seed runs beside a copy of itself (:data:`MIN_ROWS`).
The seeds are not bitwise those of ``train`` (other kernels, other rounding) but the same algorithm: same steps and
data order, losses equal up to float rounding. The engine is chosen from the architecture, device and optimiser
(:func:`choose_engine`), never from the block size: the fused update is SGD's, so ``adamw`` trains sequentially.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from permlmc import seeding
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model
from permlmc.training.kernels import GRADIENTS, Layout, Workspace, gather_batches, one_thread, sgd_step
from permlmc.training.loop import (
    Run,
    TrainConfig,
    TrainResult,
    fingerprint,
    initialise,
    result_of,
    run_epochs,
    train,
)
from permlmc.training.resume import MODEL_PREFIX, RNG_KEY, ResumeFile, TrainingState, momentum_key
from permlmc.types import StateDict

ENGINES = ("auto", "stacked", "sequential")

MAX_STACKED_WIDTH_CPU = 1024
"""Widest MLP the ``auto`` engine batches on CPU: there a block of seeds was measured faster than one run per seed
up to this width, by less the wider the network (``bench/train_speed.py``; figures in ``docs/benchmarks.md``,
Training). Wider nets, not measured, stay sequential; on CUDA batching always paid."""


OnEpoch = Callable[[int, dict[str, float]], None]
"""``on_epoch(seed, record)`` after each epoch of each seed; ``record`` as in :func:`permlmc.training.loop.train`."""
ResumeFor = Callable[[int], ResumeFile | None]
"""The resume file of a seed (``None``: that seed keeps no state)."""


def choose_engine(arch: Architecture, device: torch.device | str = "cpu", optimizer: str = "sgd") -> str:
    """The engine ``engine="auto"`` uses for ``arch`` on ``device`` with ``optimizer`` (``training.optimizer``):
    ``"stacked"`` or ``"sequential"``."""
    if arch.model_name not in GRADIENTS or optimizer != "sgd":
        return "sequential"
    if torch.device(device).type == "cpu" and arch.width > MAX_STACKED_WIDTH_CPU:
        return "sequential"
    return "stacked"


@dataclass
class _Run(Run):
    """A seed of a block: ``params``/``momenta`` (CPU, state-dict keys) are current while it is not in a block."""

    order: torch.Generator = field(default_factory=torch.Generator)
    params: StateDict = field(default_factory=dict)
    momenta: StateDict | None = None


def _start(arch: Architecture, seed: int, config: TrainConfig, resume: ResumeFile | None) -> _Run:
    """A seed at initialisation, or where its saved state left it."""
    model = initialise(arch, seed)
    names = [name for name, _ in model.named_parameters()]
    if list(model.state_dict()) != names:
        raise ValueError(f"{arch.name} has buffers; the stacked engine trains parameter-only networks")
    run = _Run(seed, resume=resume, order=seeding.generator(seed, seeding.DATA_ORDER), params=dict(model.state_dict()))
    loaded = resume.load_state(fingerprint(arch, seed, config, "stacked")) if resume else None
    if loaded is not None:
        tensors, state = loaded
        run.params = {name: tensors[MODEL_PREFIX + name] for name in names}
        if momentum_key(0) in tensors:  # indexed by position in model.parameters(), as train() saves them
            run.momenta = {name: tensors[momentum_key(i)] for i, name in enumerate(names)}
        run.order.set_state(tensors[RNG_KEY])
        run.resumed(state, config)
    return run


def _save(run: _Run, arch: Architecture, config: TrainConfig, params: StateDict, momenta: StateDict | None,
          epoch: int) -> None:
    """Write ``run``'s state in :class:`permlmc.training.resume.ResumeFile`'s format (momenta by parameter position)."""
    assert run.resume is not None
    tensors = {MODEL_PREFIX + name: value for name, value in params.items()}
    for i, value in enumerate((momenta or {}).values()):
        tensors[momentum_key(i)] = value
    tensors[RNG_KEY] = run.order.get_state()
    stamp = fingerprint(arch, run.seed, config, "stacked")
    run.resume.save_state(tensors, TrainingState(epoch, run.steps, run.history), stamp)


SUB_BLOCK_BYTES = 8 * 2**20
"""Most bytes of training state (weights, gradients, momenta) in one CPU sub-block. A worker whose seeds hold
more trains them in several even sub-blocks, one after another, so that a step is bound by its products rather
than by moving state through the shared cache (measured in ``docs/benchmarks.md``, Training)."""


def sub_blocks(seeds: int, state_bytes: int, threads: int, device: torch.device) -> list[list[list[int]]]:
    """Positions ``0..seeds-1`` of a block split among ``threads`` workers, each worker's share cut into sub-blocks
    of at most :data:`SUB_BLOCK_BYTES` of state (``state_bytes`` a seed: weights, gradients, momenta) on the CPU;
    on other devices, one worker with the whole block."""
    positions = list(range(seeds))
    if device.type != "cpu":
        return [[positions]]
    per_block = max(1, SUB_BLOCK_BYTES // state_bytes)
    return [_even_split(share, -(-len(share) // per_block)) for share in _even_split(positions, min(threads, seeds))]


def _even_split(items: list[int], parts: int) -> list[list[int]]:
    """``items`` in ``parts`` consecutive pieces whose sizes differ by at most one."""
    return [items[i * len(items) // parts : (i + 1) * len(items) // parts] for i in range(parts)]


def _run_blocks(arch: Architecture, runs: list[_Run], config: TrainConfig, x: Tensor, y: Tensor,
                on_epoch: OnEpoch | None) -> None:
    """Train all ``runs``: one block per start epoch. On CPU a block is shared among as many workers as the caller
    had intra-op threads, trained side by side in Python threads (ops release the GIL), each on one thread and
    each in sub-blocks of :data:`SUB_BLOCK_BYTES`."""
    workers = torch.get_num_threads() if x.device.type == "cpu" else 1
    abort = threading.Event()  # set when a sub-block fails, so that the others stop at their next epoch
    with one_thread(x.device):
        # seeds resumed from different epochs are at different points of the schedule: one block per start epoch
        for start in sorted({r.start for r in runs if r.start < config.max_epochs}):
            group = [r for r in runs if r.start == start]
            state = 3 * sum(v.numel() * v.element_size() for v in group[0].params.values())  # weights, grads, momenta
            plan = sub_blocks(len(group), state, workers, x.device)
            shares = [[[group[i] for i in block] for block in share] for share in plan]
            if len(shares) == 1:
                _train_blocks(arch, shares[0], config, x, y, on_epoch, abort)
                continue
            with ThreadPoolExecutor(len(shares), thread_name_prefix="permlmc-block") as pool:
                futures = [pool.submit(_train_blocks, arch, share, config, x, y, on_epoch, abort) for share in shares]
            for future in futures:
                future.result()


def _train_blocks(arch: Architecture, blocks: list[list[_Run]], config: TrainConfig, x: Tensor, y: Tensor,
                  on_epoch: OnEpoch | None, abort: threading.Event) -> None:
    """Train ``blocks`` one after another (one worker's share)."""
    try:
        for runs in blocks:
            _train_stacked(arch, runs, config, x, y, on_epoch, abort)
    except BaseException:
        abort.set()
        raise


def _train_stacked(arch: Architecture, runs: list[_Run], config: TrainConfig, x: Tensor, y: Tensor,
                   on_epoch: OnEpoch | None, abort: threading.Event) -> None:
    """Train ``runs`` (all at the same start epoch) together in :func:`permlmc.training.loop.run_epochs` until each
    has stopped; a run that reaches ``target_loss`` leaves the block at the end of that epoch and the others go
    on."""
    block = _Block(arch, runs, config, x, y)
    run_epochs(config, runs, block, on_epoch=on_epoch, abort=abort.is_set, network=arch.name)
    block.leave(list(range(len(block.active))))


class _Block:
    """The stacked engine: runs as rows of ``(rows, P)`` parameter and momentum blocks. Row k is active run k;
    rows past the runs are copies of run 0 (see :data:`MIN_ROWS`)."""

    def __init__(self, arch: Architecture, runs: list[_Run], config: TrainConfig, x: Tensor, y: Tensor) -> None:
        self.arch, self.config, self.x, self.y = arch, config, x, y
        self.gradients, self.layout = GRADIENTS[arch.model_name], Layout.of(runs[0].params)
        self.rows = _rows(len(runs), x.device)
        self.params = self.layout.pack([runs[i].params for i in self.rows], x.device)  # (rows, P)
        saved = [r.momenta for r in runs if r.momenta is not None]  # a resumed block has them all, a fresh one none
        self.momenta = self.layout.pack([saved[i] for i in self.rows], x.device) if saved else None
        self.active, self.work = list(runs), Workspace()

    def epoch(self, lr: float, runs: Sequence[Run]) -> list[tuple[int, dict[str, float]]]:
        x, y, rows, layout = self.x, self.y, self.rows, self.layout
        grads = torch.zeros_like(self.params)  # its padding is never written
        param_views, grad_views = layout.views(self.params), layout.views(grads)
        # each seed's own generator, drawn exactly as train() draws its epoch order
        perms = [torch.randperm(len(x), generator=r.order) for r in self.active]
        order = torch.stack([perms[i] for i in rows]).to(x.device)  # (rows, N)
        totals = (torch.zeros(len(rows), dtype=torch.float64, device=x.device),
                  torch.zeros(len(rows), dtype=torch.int64, device=x.device))
        batches = order.split(self.config.batch_size, dim=1)
        for batch in batches:  # (rows, B)
            self.gradients(param_views, grad_views, *gather_batches(x, y, batch), totals, self.work)
            self.momenta = sgd_step(self.params, grads, self.momenta, lr, self.config)
        losses, counts = totals[0].tolist(), totals[1].tolist()  # the epoch's one host sync
        return [(len(batches), {"train_loss": losses[k] / len(x), "train_error": counts[k] / len(x)})
                for k in range(len(self.active))]

    def save(self, index: int, run: Run, epoch: int) -> None:
        momenta = None if self.momenta is None else self.layout.unpack(self.momenta, index)
        _save(self.active[index], self.arch, self.config, self.layout.unpack(self.params, index), momenta, epoch)

    def leave(self, indices: Sequence[int]) -> None:
        """Copy the rows of the stopped runs back into them, and keep the other rows (aligned, as packed)."""
        _leave([self.active[k] for k in indices], self.layout, self.params, self.momenta, list(indices))
        keep = [k for k in range(len(self.active)) if k not in indices]
        if not keep:
            self.active = []
            return
        self.rows = _rows(len(keep), self.x.device)
        index = torch.tensor([keep[i] for i in self.rows], dtype=torch.int64, device=self.x.device)
        self.params = self.params[index]
        self.momenta = None if self.momenta is None else self.momenta[index]
        self.active = [self.active[k] for k in keep]


MIN_ROWS = {"cuda": 2}
"""Fewest rows of a block, by device type. cuBLAS computes a lone product (batch 1) with another kernel than a
batch of them (on the GPU tried, a one-seed block differed in the last bits from the same seed in larger blocks,
which agreed with each other), so there a seed left alone trains beside a copy of itself."""


def _rows(runs: int, device: torch.device) -> list[int]:
    """Which run each row of a block of ``runs`` runs holds."""
    return list(range(runs)) + [0] * max(0, MIN_ROWS.get(device.type, 1) - runs)


def _leave(runs: list[_Run], layout: Layout, params: Tensor, momenta: Tensor | None, rows: list[int]) -> None:
    """Copy rows ``rows`` of the blocks back into ``runs`` (in order)."""
    for run, k in zip(runs, rows, strict=True):
        run.params = layout.unpack(params, k)
        run.momenta = None if momenta is None else layout.unpack(momenta, k)


def train_seeds(
    arch: Architecture,
    seeds: Sequence[int],
    config: TrainConfig,
    train_xy: tuple[Tensor, Tensor],
    test_xy: tuple[Tensor, Tensor],
    *,
    device: torch.device | str = "cpu",
    engine: str = "auto",
    on_epoch: OnEpoch | None = None,
    resume: ResumeFor | None = None,
) -> dict[int, TrainResult]:
    """Train networks ``seeds`` of ``arch``; ``{seed: result}``, each ``result.engine`` naming the engine used.

    ``engine``: ``"stacked"`` (one block of stacked networks), ``"sequential"`` (:func:`permlmc.training.loop.train` per
    seed) or ``"auto"`` (:func:`choose_engine`). With ``resume``, each seed keeps its own state, saved every
    ``resume(seed).every`` epochs and when it stops; a rerun continues every seed from its own state and ends
    with the same weights as an uninterrupted run. On CPU the stacked engine may call ``on_epoch`` from several
    threads at once (one per sub-block).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown training engine {engine!r}; choose one of {ENGINES}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {list(seeds)} repeat a seed")
    chosen = choose_engine(arch, device, config.optimizer) if engine == "auto" else engine
    if chosen == "sequential":
        return {seed: replace(train(arch, seed, config, train_xy, test_xy, device=device,
                                    on_epoch=None if on_epoch is None else _for_seed(on_epoch, seed),
                                    resume=resume(seed) if resume else None), engine="sequential")
                for seed in seeds}
    if arch.model_name not in GRADIENTS:
        raise ValueError(f"the stacked engine cannot train {arch.model_name!r}; it trains {sorted(GRADIENTS)}")
    if config.optimizer != "sgd":
        raise ValueError(f"training.optimizer {config.optimizer!r}: the stacked engine trains with SGD only; use "
                         "engine 'sequential' (or 'auto', which picks it): it trains every family with any optimizer")
    x, y = (t.to(device) for t in train_xy)
    runs = [_start(arch, seed, config, resume(seed) if resume else None) for seed in seeds]
    _run_blocks(arch, runs, config, x, y, on_epoch)
    forward = functional_forward(build_model(arch))  # final metrics exactly as permlmc.training.loop.train's
    return {r.seed: result_of(r, forward, r.params, train_xy, test_xy, device, "stacked") for r in runs}


def _for_seed(on_epoch: OnEpoch, seed: int) -> Callable[[dict[str, float]], None]:
    return lambda record: on_epoch(seed, record)
