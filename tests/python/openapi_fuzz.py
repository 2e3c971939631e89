"""The feature server against its own `/openapi.json`: what the spec calls valid the server
accepts (or answers with a status the spec lists for names the repo does not have), what the
spec calls invalid the server rejects, and nothing is a 5xx.

    python openapi_fuzz.py http://127.0.0.1:PORT

Two parts:
1. Hand-picked bodies, each judged by the spec's own JSON Schema (jsonschema_rs, which schemathesis brings) and by the
   server: the two must agree on valid versus invalid (the edge cases a fuzzer found once:
   `{}`, `"feature_service": null`, `"features": null`, unknown fields).
2. A schemathesis run over every operation, bounded in examples and time, with every check
   (positive data accepted, negative data rejected, responses conform to the spec, no 5xx).

Prints "openapi fuzz: all checks passed" at the end.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema_rs
import requests

URL = sys.argv[1]

# A body is valid for the server when it is not a 400 (a 404 is a valid body naming a
# view, feature or service the repo lacks; a 200 is served).
BODIES = [
    {},
    {"entities": {}},
    {"features": ["txn:amount_log1p"]},
    {"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}},
    {"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}, "feature_service": None},
    {"features": None, "entities": {"user_id": [1]}},
    {"features": [], "entities": {"user_id": [1]}},
    {"features": [], "feature_service": "fraud", "entities": {"user_id": [1], "amount": [1.0]}},
    {"features": ["txn:amount_log1p"], "feature_service": "fraud", "entities": {"user_id": [1]}},
    {"feature_service": "fraud", "entities": {"user_id": [1], "amount": [1.0]}},
    {"feature_service": "no_such_service", "entities": {}},
    {"features": ["no_such_view:x"], "entities": {}},
    {"features": ["not a reference"], "entities": {"user_id": [1]}},
    {"features": ["txn:amount_log1p"], "entities": {"user_id": 1}},
    {"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}, "full_feature_names": None},
    {"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}, "unknown_field": 1},
    {
        "features": ["txn:amount_log1p"],
        "entities": {"user_id": [1]},
        "include_feature_view_version_metadata": True,
    },
    [],
    "features",
]


def request_schema(spec: dict, path: str) -> dict:
    """The request body schema of POST `path`, with the spec's components resolvable."""
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**body, "components": spec["components"]}


def agreement(spec: dict) -> None:
    schema = request_schema(spec, "/get-online-features")
    for body in BODIES:
        spec_valid = jsonschema_rs.Draft202012Validator(schema).is_valid(body)
        for path in ("/get-online-features", "/v1/online-features"):
            response = requests.post(f"{URL}{path}", json=body, timeout=10)
            assert response.status_code < 500, f"{path} {body}: {response.status_code}"
            server_valid = response.status_code != 400
            assert spec_valid == server_valid, (
                f"{path} {json.dumps(body)}: the spec says "
                f"{'valid' if spec_valid else 'invalid'}, the server answered "
                f"{response.status_code} {response.text}"
            )
    print(f"ok: the spec and the server agree on {len(BODIES)} bodies")


def fuzz() -> None:
    st = Path(sys.executable).with_name("schemathesis")
    command = [
        str(st),
        "run",
        f"{URL}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "40",
        "--max-time",
        "60",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        "--warnings",
        "off",
    ]
    # In a directory of its own: schemathesis keeps a cache where it runs.
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=600, cwd=work
        )
    if result.returncode != 0:
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
        raise AssertionError(f"schemathesis found problems (exit {result.returncode})")
    tail = "\n".join(result.stdout.strip().splitlines()[-25:])
    print(f"ok: schemathesis\n{tail}")


def main() -> None:
    spec = requests.get(f"{URL}/openapi.json", timeout=10).json()
    agreement(spec)
    fuzz()
    print("openapi fuzz: all checks passed")


if __name__ == "__main__":
    main()
