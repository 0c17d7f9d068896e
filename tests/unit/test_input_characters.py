"""What api.intake.characters refuses: strings the database cannot store, documents nested too deep."""
from __future__ import annotations

import pytest

from api.intake.characters import (
    MAX_JSON_DEPTH,
    InvalidCharacters,
    InvalidNumber,
    JsonTooDeep,
    check_document,
    parse_json,
    unstorable_reason,
)


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("text", "reason"), [
    ("fine, with émoji 🎉 and U+FFFF \uffff", None),
    ("a\x00b", "contains a NUL character (U+0000)"),
    ("half \ud800 pair", "contains a lone surrogate (U+D800), which is not a Unicode character"),
    ("\udfff", "contains a lone surrogate (U+DFFF), which is not a Unicode character"),
])
def test_unstorable_reason(text, reason):
    assert unstorable_reason(text) == reason


def test_the_depth_limit_is_inclusive():
    assert parse_json(arrays(MAX_JSON_DEPTH))
    with pytest.raises(JsonTooDeep) as refused:
        parse_json(arrays(MAX_JSON_DEPTH + 1))
    assert refused.value.extensions()["max_depth"] == MAX_JSON_DEPTH


def test_nesting_past_the_parsers_recursion_is_too_deep_not_a_crash():
    with pytest.raises(JsonTooDeep):
        parse_json(arrays(100_000))


def test_a_deep_document_built_in_python_is_checked_without_recursing():
    document: list = []
    for _ in range(50_000):
        document = [document]
    with pytest.raises(JsonTooDeep):
        check_document(document)


@pytest.mark.parametrize(("raw", "field"), [
    ('{"input": {"text": "a\\u0000"}}', "input.text"),
    ('{"items": ["ok", {"id": "\\ud83d"}]}', "items.1.id"),
    ('["\\u0000"]', "0"),
    ('"\\u0000"', "body"),
    ('{"options": {"bad\\u0000key": 1}}', "options"),
])
def test_refusals_name_the_field_path(raw, field):
    with pytest.raises(InvalidCharacters) as refused:
        parse_json(raw)
    assert refused.value.field == field
    assert refused.value.extensions()["errors"][0]["field"] == field


def test_a_root_prefixes_the_path_and_a_surrogate_pair_is_fine():
    with pytest.raises(InvalidCharacters) as refused:
        parse_json('{"url": "\\u0000"}', root=("webhook",))
    assert refused.value.field == "webhook.url"
    assert parse_json('"\\ud83d\\ude00"') == "\U0001f600"


def test_syntax_errors_stay_value_errors_for_the_caller_to_word():
    with pytest.raises(ValueError) as error:
        parse_json("{not json")
    assert not isinstance(error.value, InvalidCharacters | JsonTooDeep)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_no_json_column_stores_are_refused(number):
    with pytest.raises(InvalidNumber) as refused:
        parse_json(f'{{"options": {{"ratio": {number}}}}}')
    assert refused.value.field == "options.ratio"
    assert parse_json('{"ratio": 1e308}') == {"ratio": 1e308}
