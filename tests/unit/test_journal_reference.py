"""The reference our own API serves (references/api.json) is generated from
the endpoint table, in upstream's api.json format: same routes, scopes and
query options as the router, valid against upstream's api-reference schema."""

import json
from pathlib import Path

import jsonschema

from taskjournal.services.api_gateway.journal_api import DOCUMENTED_ENDPOINTS, JOURNAL_ENDPOINTS
from taskjournal.services.api_gateway.journal_reference import DOCS, SCHEMAS, reference
from tests.support import reference as upstream

SCHEMA_DIR = Path(__file__).parents[2] / "shared" / "schemas"


def test_every_route_is_in_the_reference_and_nothing_else():
    entries = {e["name"]: e for e in reference(DOCUMENTED_ENDPOINTS)["entries"]}
    served = {e.name: e for e in JOURNAL_ENDPOINTS if e.name != "apiReference"}
    assert set(entries) == set(served) == set(DOCS)
    for name, endpoint in served.items():
        entry = entries[name]
        assert (entry["method"], entry["route"], entry.get("scopes"), entry["query"], entry["args"]) == (
            endpoint.method.lower(), endpoint.route, endpoint.scopes, list(endpoint.query), list(endpoint.url_params))


def test_the_reference_is_valid_against_upstreams_api_reference_schema():
    schema = json.loads(upstream.require("schemas", "common", "api-reference-v0.json").read_text())
    jsonschema.Draft6Validator(schema).validate(reference(DOCUMENTED_ENDPOINTS))


def test_every_output_schema_of_ours_exists():
    ids = {json.loads(path.read_text()).get("$id") for path in SCHEMA_DIR.glob("*.json")}
    outputs = {e["output"] for e in reference(DOCUMENTED_ENDPOINTS)["entries"] if "output" in e}
    ours = {o for o in outputs if o.startswith(SCHEMAS)}
    assert ours and ours <= ids
    assert outputs == ours  # each is served at its $id (tests/e2e/test_history.py)
