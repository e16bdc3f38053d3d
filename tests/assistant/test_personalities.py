"""Personalities: the built-ins, a person's own files over them, and broken files listed, not fatal."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aurora.app.assistant import export_builtin, find_personality, load_personalities, user_personalities_dir
from aurora.app.assistant.builtin import BUILTIN
from aurora.app.errors import InvalidInputError

OWN = """
name = "Grandma"
description = "Kind, practical, seen it all."
system_prompt = "You are the person's grandmother: warm, practical, and honest."
model = "llama3.1:8b"
temperature = 0.9
memory_scope = ["notes", "events"]
"""


def test_the_builtins_load_robbie_first_with_three_mentors_or_more() -> None:
    found, broken = load_personalities(None)
    assert broken == []
    assert next(iter(found)) == "Robbie"
    assert {"Robbie", "Stoic", "Coach", "Strategist"} <= set(found)
    robbie = found["Robbie"]
    assert robbie.model == "smollm2:135m" and 0 <= robbie.temperature <= 2
    assert set(robbie.memory_scope) == {
        "tasks",
        "notes",
        "mail",
        "events",
        "messages",
        "transcripts",
        "people",
    }
    assert "Marcus Aurelius" in found["Stoic"].system_prompt
    for text in BUILTIN.values():  # every built-in is valid TOML a person can copy
        tomllib.loads(text)


def test_a_missing_folder_is_just_the_builtins(tmp_path: Path) -> None:
    found, broken = load_personalities(tmp_path / "nowhere")
    assert set(found) >= {"Robbie"} and broken == []


def test_own_files_add_and_override_and_broken_ones_are_listed(tmp_path: Path) -> None:
    folder = tmp_path / "personalities"
    folder.mkdir()
    (folder / "grandma.toml").write_text(OWN, encoding="utf-8")
    (folder / "robbie.toml").write_text(
        'name = "robbie"\nsystem_prompt = "You are Robbie, terse edition."\nmax_tokens = 64\n',
        encoding="utf-8",
    )
    (folder / "a_syntax.toml").write_text('name = "Oops\nsystem_prompt = "x"\n', encoding="utf-8")
    (folder / "b_fields.toml").write_text('name = "Hot"\nsystem_prompt = "x"\ntemperature = 3.5\n')
    (folder / "c_unknown.toml").write_text('name = "Typo"\nsystem_prompt = "x"\nmodle = "y"\n')
    (folder / "d_scope.toml").write_text('name = "Nosy"\nsystem_prompt = "x"\nmemory_scope = ["bank"]\n')
    (folder / "e_long.toml").write_text(f'name = "Long"\nsystem_prompt = "{"x" * 9000}"\n')
    (folder / "f_name.toml").write_text(f'name = "{"n" * 41}"\nsystem_prompt = "x"\n')
    (folder / "g_binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (folder / "h_dupe.toml").write_text('name = "GRANDMA"\nsystem_prompt = "another"\n')
    (folder / "notes.txt").write_text("not a personality")

    found, broken = load_personalities(folder)

    assert found["Grandma"].model == "llama3.1:8b" and found["Grandma"].memory_scope == ("notes", "events")
    assert "Robbie" not in found and found["robbie"].system_prompt == "You are Robbie, terse edition."
    assert {"Stoic", "Coach", "Strategist"} <= set(found)
    reasons = {b.path.name: b.error for b in broken}
    assert set(reasons) == {
        "a_syntax.toml", "b_fields.toml", "c_unknown.toml", "d_scope.toml", "e_long.toml", "f_name.toml",
        "g_binary.toml", "h_dupe.toml",
    }  # fmt: skip
    for reason in reasons.values():
        assert "\n" not in reason and len(reason) < 200
    assert reasons["a_syntax.toml"].startswith("not valid TOML") and "line" in reasons["a_syntax.toml"]
    assert reasons["b_fields.toml"].startswith("temperature:")
    assert reasons["c_unknown.toml"].startswith("modle:")
    assert reasons["d_scope.toml"].startswith("memory_scope.0:")
    assert "bytes" in reasons["e_long.toml"]
    assert reasons["f_name.toml"].startswith("name:")
    assert reasons["g_binary.toml"] == "is not UTF-8 text"
    assert "grandma.toml already defines" in reasons["h_dupe.toml"]


def test_find_personality_is_case_blind_and_says_what_exists() -> None:
    found, _ = load_personalities(None)
    assert find_personality(found, "stoic").name == "Stoic"
    assert find_personality(found, None).name == "Robbie"
    with pytest.raises(InvalidInputError, match="choose one of: Robbie, Stoic"):
        find_personality(found, "Yoda")


def test_export_writes_editable_copies_and_keeps_edits(tmp_path: Path) -> None:
    folder = user_personalities_dir(tmp_path / "config.toml")
    assert folder == tmp_path / "personalities"
    written = export_builtin(folder)
    assert sorted(p.name for p in written) == sorted(BUILTIN)
    (folder / "stoic.toml").write_text(
        (folder / "stoic.toml").read_text().replace("temperature = 0.5", "temperature = 1.1")
    )
    assert export_builtin(folder) == []  # nothing overwritten
    found, broken = load_personalities(folder)
    assert broken == [] and found["Stoic"].temperature == 1.1
    assert len(export_builtin(folder, overwrite=True)) == len(BUILTIN)
    assert load_personalities(folder)[0]["Stoic"].temperature == 0.5
