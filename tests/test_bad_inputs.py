"""Bad input files give one clear error naming the file, never a silently wrong result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from permlmc.artifacts.checkpoints import load_checkpoints, save_checkpoint, save_permutation
from permlmc.artifacts.files import ArtifactError
from permlmc.cli.data import run_prepare_dataset
from permlmc.cli.main import main
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, permutation_spec
from permlmc.studies.permuted_copies import NotTheSameFunction, permuted_copy
from permlmc.training.loop import initialise

ARCH = Architecture("mlp", 1, 8, (1, 8, 8), 10)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    data = root / "digits.safetensors"
    run_prepare_dataset("digits", "unused", data, download=False, image_size=None, train_subset=None)
    paths = {"data": data}
    for seed in (1, 2):
        paths[f"model{seed}"] = root / f"seed{seed}" / "model.safetensors"
        save_checkpoint(paths[f"model{seed}"], ARCH, initialise(ARCH, seed).state_dict(), {"seed": seed})
    other = Architecture("mlp", 1, 16, (1, 8, 8), 10)
    paths["other"] = root / "other" / "model.safetensors"
    save_checkpoint(paths["other"], other, initialise(other, 1).state_dict(), {"seed": 1})
    paths["identity"] = root / "identity.safetensors"
    spec = permutation_spec(ARCH)
    save_permutation(paths["identity"], spec, {"hidden.0": torch.arange(8)}, {"method": "none"})
    return paths


def _barrier(files: dict[str, Path], tmp: Path, **override: Path) -> list[str]:
    paths = {"model-a": files["model1"], "model-b": files["model2"], "permutation": files["identity"],
             "data": files["data"], **{k.replace("_", "-"): v for k, v in override.items()}}
    argv = ["interpolate-pair", "--alphas", "3", "--expect", "mlp-d1-w8", "--out", str(tmp / "b.json"),
            "--curve-out", str(tmp / "c.csv")]
    for key, value in paths.items():
        argv += [f"--{key}", str(value)]
    return argv


def _fails(argv: list[str], *needles: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    for needle in needles:
        assert needle in message, message
    return message


def test_good_inputs_work(files: dict[str, Path], tmp_path: Path) -> None:
    main(_barrier(files, tmp_path))
    assert json.loads((tmp_path / "b.json").read_text())["barriers"]["interpolate"]["train"]["loss"]["sup"] >= 0


def test_truncated_checkpoint_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "seed2" / "model.safetensors"
    shutil.copytree(files["model2"].parent, broken.parent)
    broken.write_bytes(broken.read_bytes()[:-100])
    _fails(_barrier(files, tmp_path, model_b=broken), str(broken), "checksum")
    assert not (tmp_path / "b.json").exists()


def test_corrupted_checkpoint_with_same_size_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "seed2" / "model.safetensors"
    shutil.copytree(files["model2"].parent, broken.parent)
    data = bytearray(broken.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte inside a weight: still a readable file, silently wrong without a checksum
    broken.write_bytes(bytes(data))
    _fails(_barrier(files, tmp_path, model_b=broken), str(broken), "checksum")


def test_missing_sidecar_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    lonely = tmp_path / "model.safetensors"
    shutil.copy(files["model2"], lonely)
    _fails(_barrier(files, tmp_path, model_b=lonely), "model.json", "not found")


def test_checkpoint_of_another_architecture_is_rejected(files: dict[str, Path], tmp_path: Path) -> None:
    _fails(_barrier(files, tmp_path, model_a=files["other"]), str(files["other"]), "mlp-d1-w16", "mlp-d1-w8")
    argv = _barrier(files, tmp_path, model_b=files["other"])
    argv[argv.index("--expect") + 1] = "mlp-d1-w8"
    _fails(argv, str(files["other"]))


def test_permutation_of_the_wrong_size_is_rejected(files: dict[str, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.safetensors"
    save_permutation(wrong, permutation_spec(ARCH), {"hidden.0": torch.arange(5)}, {"method": "none"})
    _fails(_barrier(files, tmp_path, permutation=wrong), str(wrong), "range(8)")


def test_not_a_permutation_is_rejected(files: dict[str, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.safetensors"
    save_permutation(wrong, permutation_spec(ARCH), {"hidden.0": torch.zeros(8, dtype=torch.int64)}, {})
    _fails(_barrier(files, tmp_path, permutation=wrong), str(wrong), "permutation")


def test_garbage_dataset_file_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "digits.safetensors"
    shutil.copy(files["data"].with_suffix(".json"), garbage.with_suffix(".json"))
    garbage.write_bytes(b"not a tensor file")
    _fails(_barrier(files, tmp_path, data=garbage), str(garbage))


def test_a_group_of_checkpoints_is_of_one_architecture(files: dict[str, Path]) -> None:
    arch, states = load_checkpoints([files["model1"], files["model2"]], "mlp-d1-w8")
    assert arch == ARCH and len(states) == 2 and not torch.equal(states[0]["head.weight"], states[1]["head.weight"])
    with pytest.raises(ArtifactError, match="checkpoint is a mlp-d1-w16 with width 16 .expected 8., but this step "
                                            "expects a mlp-d1-w8"):
        load_checkpoints([files["model1"], files["other"]])
    with pytest.raises(ArtifactError, match="other.*expects a mlp-d1-w8"):
        load_checkpoints([files["other"], files["model1"]], "mlp-d1-w8")
    with pytest.raises(ArtifactError, match="no checkpoints given"):
        load_checkpoints([])


def test_a_permuted_copy_that_is_not_the_same_function_is_refused() -> None:
    """S′ rests on the spec fitting the network: a forward pass that reads a unit's place (here: the raw first
    weights, which a permutation moves) shows a copy that differs, and the copy is refused."""
    state = initialise(ARCH, 1).state_dict()
    x = torch.randn(4, *ARCH.input_shape)
    made = permuted_copy(permutation_spec(ARCH), state, functional_forward(initialise(ARCH, 0)), x, seed=1, copy=1,
                         tolerance=1e-4)
    assert made.max_logit_difference <= 1e-4
    assert not torch.equal(made.state["hidden.0.weight"], state["hidden.0.weight"])

    def by_place(params: dict, inputs: torch.Tensor) -> torch.Tensor:
        return params["hidden.0.weight"][:, :3].T.expand(len(inputs), -1, -1).flatten(1)

    with pytest.raises(NotTheSameFunction, match="permuted copy 1 is not the same function"):
        permuted_copy(permutation_spec(ARCH), state, by_place, x, seed=1, copy=1, tolerance=1e-4)
