"""Configuration errors, the exported schema file, and the schema's documentation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from gateway.ops.config import ConfigError, load_settings
from gateway.planning.executable import schema, schema_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_file_matches_the_code():
    assert (ROOT / "schema.graphql").read_text() == schema_sdl(), "run `casegraph export-schema`"


def test_every_type_field_and_argument_is_documented():
    missing = []
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description and arg_name not in {
                        "page",
                        "perPage",
                        "filter",
                        "order",
                        "first",
                    }:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(type_, GraphQLEnumType):
            assert type_.values, name
    assert missing == []


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PORT": "abc"}, "PORT: Input should be a valid integer"),
        ({"V2_URL": "not a url"}, "V2_URL: Input should be a valid URL"),
        ({"AUTH_MODE": "token"}, "UPSTREAM_TOKEN is required when AUTH_MODE=token"),
        ({"READ_TIMEOUT": "-1"}, "READ_TIMEOUT: Input should be greater than 0"),
    ],
)
def test_invalid_configuration_stops_start_up_naming_the_variable(env, words, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("casegraph: invalid configuration: ")
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("V2_URL=http://cases.example:9000\nREAD_TIMEOUT=4.5\n")
    settings = load_settings()
    assert settings.v2_base == "http://cases.example:9000"
    assert settings.read_timeout == 4.5


def test_token_mode_sends_the_configured_token():
    from gateway.upstream.credentials import credential_for

    settings = load_settings(auth_mode="token", upstream_token="abc")
    assert credential_for(settings, "Bearer caller").header == "Bearer abc"
    assert "abc" not in repr(credential_for(settings, None)) and "abc" not in str(
        credential_for(settings, None)
    )
    with pytest.raises(ConfigError):
        load_settings(auth_mode="token")


def test_the_configuration_reference_documents_every_setting():
    from gateway.ops.config import Settings

    reference = (ROOT / "docs" / "configuration.md").read_text()
    undocumented = [
        name.upper() for name in Settings.model_fields if f"| `{name.upper()}` |" not in reference
    ]
    assert undocumented == []
