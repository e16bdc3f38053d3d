"""The README documents every CLI command and every setting (a new one without docs fails here)."""

from __future__ import annotations

from pathlib import Path

import click

from aurora.app.config import Settings
from aurora.tui.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str) -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append(path)
        if isinstance(command, click.Group):
            found += _commands(command, path)
    return found


def test_every_cli_command_is_documented() -> None:
    missing = [c for c in _commands(cli, "aurora") if f"`{c}" not in README]
    assert not missing, f"commands missing from the README: {missing}"


def test_every_node_command_and_setting_is_documented() -> None:
    from aurora.node.cli import cli as node_cli
    from aurora.node.config import NodeSettings

    missing = [c for c in _commands(node_cli, "aurora-node") if f"`{c}" not in README]
    assert not missing, f"aurora-node commands missing from the README: {missing}"
    for name in NodeSettings.model_fields:
        assert f"`AURORA_NODE_{name.upper()}`" in README, name


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`{name}`" in README, name
        assert f"`AURORA_{name.upper()}`" in README, name


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    head = README.splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci and "AURORA_CI=1" in ci
