"""Configuration errors, the exported schema file, and the schema's documentation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from gateway.ops.config import ConfigError, load_settings
from gateway.planning.executable import schema, schema_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_file_matches_the_code():
    assert (ROOT / "schema.graphql").read_text() == schema_sdl(), "run `casegraph export-schema`"


def test_every_type_field_argument_and_enum_value_is_documented():
    """What GraphiQL's docs pane and code generators show: the schema, every type, field, argument, input field
    and enum value has a description, and every custom scalar a `specifiedByURL` or a description of its form."""
    graphql_schema = schema._schema
    missing = [] if graphql_schema.description else ["schema"]
    for name, type_ in graphql_schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(type_, GraphQLEnumType):
            assert type_.values, name
            missing += [
                f"{name}.{value}" for value, definition in type_.values.items() if not definition.description
            ]
    assert missing == [], " ".join(missing)


def test_timestamps_and_dates_say_which_specification_they_follow():
    specified = {
        name: type_.specified_by_url
        for name, type_ in schema._schema.type_map.items()
        if isinstance(type_, GraphQLScalarType) and type_.specified_by_url
    }
    assert specified == {
        "DateTime": "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",
        "Date": "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",
        "JSON": "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf",
    }
    sdl = schema_sdl()
    assert '@specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc3339#section-5.6")' in sdl
    assert sdl.startswith('"""')  # the schema's own description, before `schema { query: Query }`


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


@pytest.mark.parametrize(
    ("upstream", "answered"),
    [
        ("2024-03-25T15:40:39Z", "2024-03-25T15:40:39Z"),  # RFC 3339 passes as it is
        ("2024-03-25T15:40:39.123456789+02:00", "2024-03-25T15:40:39.123456789+02:00"),
        ("2024-03-25 15:40", "2024-03-25T15:40:00Z"),  # other ISO 8601 forms: rewritten (no offset: UTC)
        ("2024-03-25T15:40:39.5", "2024-03-25T15:40:39.5Z"),
        ("2024-03-25T15:40:39+0200", "2024-03-25T15:40:39+02:00"),
        ("2024-13-25T15:40:39Z", None),  # no such month: the upstream's error
        ("2024-03-25T25:40:39Z", None),
    ],
)
async def test_timestamps_answer_rfc3339_on_both_execution_paths(upstream, answered):
    import orjson

    from tests.test_fast_path import FAST, PLAIN, SAMPLE, answer, services_for

    good = SAMPLE["cases"][0]
    body = {"cases": [{**good, "opened_at": upstream}], "meta": SAMPLE["meta"]}
    services = services_for(httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    try:
        query = "{ cases { items { caseId openedAt createdAt } } }"
        fast = await answer(FAST, services, query, {})
        assert fast == await answer(PLAIN, services, query, {})
    finally:
        await services.aclose()
    result = orjson.loads(fast)
    if answered is None:
        assert result["data"]["cases"]["items"][0]["openedAt"] is None
        assert result["errors"][0]["extensions"]["code"] == "UPSTREAM_BAD_RESPONSE"
    else:
        assert result["data"]["cases"]["items"][0]["openedAt"] == answered
        assert "errors" not in result
