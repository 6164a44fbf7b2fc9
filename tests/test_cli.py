"""The command line: one registry of verbs, each named like the rule that runs it, with its arguments beside the
function it runs."""

from __future__ import annotations

import importlib
import inspect
import io
import re
import sys
from pathlib import Path

import pytest

from permlmc.cli.main import RENAMED, VERBS, find_verb, main, verb_parser
from permlmc.cli.progress import Bar

REPO = Path(__file__).resolve().parents[1]


def test_the_registry_names_each_verb_where_it_is_declared() -> None:
    declared = {name: module for module in set(VERBS.values()) for name in importlib.import_module(module).VERBS}
    assert declared == VERBS


@pytest.mark.parametrize("name", sorted(VERBS))
def test_every_argument_is_a_parameter_of_the_verbs_function(name: str) -> None:
    verb = find_verb(name)
    parameters = inspect.signature(verb.run).parameters
    dests = {action.dest for action in verb_parser(name, verb)._actions if action.dest != "help"}
    assert dests <= set(parameters), f"{name}: arguments {sorted(dests - set(parameters))} are not parameters"
    needed = {p for p, spec in parameters.items() if spec.default is inspect.Parameter.empty}
    assert needed <= dests | {"device"}, f"{name}: parameters {sorted(needed - dests)} have no argument"
    assert ("device" in parameters) == (verb.tensors and verb.device), name


def test_every_verb_the_workflow_calls_is_registered_under_its_rule_name() -> None:
    shells = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    called = set(re.findall(r"python -m permlmc(?: --threads \{threads\})? ([a-z-]+)", shells))
    assert called and called <= set(VERBS)
    rules = set(re.findall(r"^(?:rule|use rule) (\w+)", shells, re.M))
    # rules of one verb per block or table: train_seeds_<block>, tabulate_<paper table>
    rule_like = {name.replace("-", "_") for name in called} - {"train_seeds", "tabulate_paper_table"}
    assert rule_like <= rules, sorted(rule_like - rules)


def test_an_earlier_verb_name_says_what_it_is_now(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="unknown verb 'train'; it is now 'train-seeds'"):
        main(["train"])
    assert set(RENAMED.values()) <= set(VERBS)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_is_drawn_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with Bar(10, "steps", "step") as bar:  # pytest's captured stderr is no terminal: nothing drawn
        bar.advance(3)
        assert not bar.shown
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Bar(10, "steps", "step") as bar:
        bar.reach(4, energy="0.1")
        bar.reach(2)  # never back
        assert bar.shown
    assert "steps" in terminal.getvalue() and "4/10" in terminal.getvalue()


def test_search_group_takes_one_kind_output_and_checkpoints_per_group(capsys: pytest.CaptureFixture[str]) -> None:
    parser = verb_parser("search-group", find_verb("search-group"))
    common = ["--method", "sa2", "--data", "d.safetensors"]
    args = parser.parse_args(["--group", "real", "r.json", "a", "b", "--group", "model", "m.json", "c", "d", *common])
    assert args.groups == [("real", "r.json", ["a", "b"]), ("model", "m.json", ["c", "d"])]
    with pytest.raises(SystemExit):
        parser.parse_args(["--group", "real", "r.json", "a", *common])
    assert "at least two checkpoints" in capsys.readouterr().err
