"""The JSON Schema of case files (`conformance schema`) agrees with the loader: every bundled case file is valid,
every bundled file points editors at it, and every malformed file the schema can judge (all but the rules a schema
cannot express, listed below) is rejected by both."""

from __future__ import annotations

import json
from pathlib import Path

import malformed
import pytest
import yaml

from conformance.app.cli import main
from conformance.corpus import bundled

jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs jsonschema")
ROOT = Path(__file__).resolve().parent.parent
# Rules the loader checks and a JSON Schema cannot: agreement between fields and files, ranges that depend on
# another field, limits on size, and YAML-level checks (the schema sees the parsed document).
BEYOND_A_SCHEMA = ("duplicate id", "differs from logits", "should be [", "does not fit", "not rectangular", "applies to none",
                   "none applies to", "needs dense labels", "needs integer", "is out of range", "listed twice", "over the limit",
                   "options.weight", "cross-entropy options", "applies to sparse", "must have at least one dimension",
                   "field 'axis'", "'low' is too large", "must be finite", "is not one of inf", "options.ignore_index",
                   "needs a mask", "applies to masked_softmax", "does not broadcast", "at least one class")
# JSON has one number type (to a schema 1.0 is an integer); options that depend on the ops; rectangular nesting
BEYOND_NAMES = {"sparse-float.yaml", "options-on-softmax.yaml", "expect-value-ragged.yaml"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((ROOT / "conformance" / "corpus" / "schema" / "case-file.schema.json").read_text())


def test_conformance_schema_prints_it(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == "softmax-conformance case file"
    jsonschema.Draft202012Validator.check_schema(printed)


def test_every_bundled_case_file_is_valid_and_points_at_the_schema(schema):
    files = sorted((bundled.cases_dir()).glob("*.yaml"))
    assert files
    for f in files:
        text = f.read_text()
        assert text.startswith("# yaml-language-server: $schema=../../schema/case-file.schema.json\n"), f
        jsonschema.validate(yaml.safe_load(text), schema)


def test_the_schema_rejects_what_the_loader_rejects(schema):
    validator = jsonschema.Draft202012Validator(schema)
    judged = 0
    for bad in malformed.case_files():
        if any(n in bad.needle for n in BEYOND_A_SCHEMA) or bad.name in BEYOND_NAMES:
            continue
        try:
            doc = yaml.safe_load(bad.content)
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
            continue  # not YAML, so nothing for a schema to judge
        if b"&" in bad.content or bad.name.startswith(("dup-", "deep", "null-key", "int-key", "mixed-keys", "big")):
            continue  # aliases, duplicate keys, depth, key types and size are judged before a document exists
        judged += 1
        assert not validator.is_valid(doc), f"{bad.name}: the loader refuses it ({bad.needle}), the schema accepts it"
    assert judged >= 150


def test_the_schema_names_every_op_of_the_op_table(schema):
    """An op added to the table (conformance/model/ops.py) is one a case file may name: the schema's op lists follow."""
    from conformance.model.names import OPS

    ops = schema["$defs"]["caseFields"]["properties"]["ops"]["oneOf"]
    assert ops[0]["enum"] == list(OPS) and ops[1]["items"]["enum"] == list(OPS)
