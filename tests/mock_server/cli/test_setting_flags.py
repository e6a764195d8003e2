"""Every setting is one field, with a flag and a variable made from it."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.mock_server.cli.main import build_parser
from wavespeed_mock.mock_server.cli.serve import settings_from_args
from wavespeed_mock.mock_server.settings import (
    ENV_PREFIX,
    Settings,
    flag_of,
    parse_bool,
    setting_fields,
)

README = Path(__file__).resolve().parents[3] / "README.md"
FIELDS = setting_fields()
# A value of each type, as text and as the field then holds it.
SAMPLES: dict[str, tuple[str, Any]] = {
    "bool": ("", True),
    "int": ("7", 7),
    "float": ("2.5", 2.5),
    "Path": ("/tmp/x", Path("/tmp/x")),
    "str": ("time", "time"),
    "tuple": ("a", ("a",)),
}
# Fields whose text has a shape of its own.
SHAPED: dict[str, tuple[str, Any]] = {
    "outputs": ("s3://bucket/prefix", "s3://bucket/prefix"),
    "database": (
        "postgresql://u@127.0.0.1:5432/db",
        "postgresql://u@127.0.0.1:5432/db",
    ),
}


def sample(f: dataclasses.Field[Any]) -> tuple[str, Any]:
    if f.name in SHAPED:
        return SHAPED[f.name]
    kind = str(f.type).split(" ")[0].split("[")[0]
    text, value = SAMPLES[kind]
    choices = f.metadata.get("choices")
    if choices:
        return choices[-1], choices[-1]
    return text, value


def test_every_field_but_the_engines_own_is_a_setting() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"engine_options"}
    assert {f.name for f in FIELDS} == names


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_each_setting_is_a_flag_that_fills_its_field(
    field: dataclasses.Field[Any],
) -> None:
    text, value = sample(field)
    argv = ["serve", flag_of(field)] + ([] if isinstance(value, bool) else [text])
    args: argparse.Namespace = build_parser().parse_args(argv)
    given = {k: v for k, v in settings_from_args(args).items() if v is not None}
    assert given == {field.name: value}


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_each_setting_reads_its_variable(field: dataclasses.Field[Any]) -> None:
    text, value = sample(field)
    if isinstance(value, bool):
        text = "yes"
    variable = ENV_PREFIX + field.name.upper()
    if field.name in ("record", "replay"):  # each needs its partner to build
        return
    assert getattr(Settings.from_env({variable: text}), field.name) == value


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_the_readme_table_names_each_flag_with_its_variable(
    field: dataclasses.Field[Any],
) -> None:
    rows = [
        line for line in README.read_text().splitlines() if line.startswith("| `--")
    ]
    variable = f"`{ENV_PREFIX}{field.name.upper()}`"
    flag = re.escape(f"`{flag_of(field)}`")
    assert any(re.match(rf"\| {flag}[ |(]", row) and variable in row for row in rows), (
        f"README's settings table has no row for {flag_of(field)} / {variable}"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("TRUE", True),
        (" on ", True),
        ("yes", True),
        ("0", False),
        ("off", False),
        ("", False),
    ],
)
def test_one_boolean_reading(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_a_boolean_variable_that_is_neither_is_refused() -> None:
    with pytest.raises(ValueError, match="'maybe' is not true or false"):
        parse_bool("maybe")
