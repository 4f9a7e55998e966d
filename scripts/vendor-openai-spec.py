#!/usr/bin/env python3
"""Extract from OpenAI's OpenAPI document (openai/openai-openapi, `openapi.json`, the JSON
twin of `openapi.yaml`) the operations keyfire calls and every schema their parameters and
200 responses reach, into tests/fixtures/spec/openai/openapi-subset.json.

    python3 scripts/vendor-openai-spec.py path/to/openapi.json COMMIT > tests/fixtures/spec/openai/openapi-subset.json

Every `/organization/usage/*` endpoint is taken too, so the contract suite can check that
keyfire reads each one that filters by `api_key_ids`. Descriptions are kept: they are the
documentation the contract tests cite (and read `limit` bounds from).
"""
import json
import sys

# (path, method) of every call keyfire's openai provider makes; the simulator serves these.
OPERATIONS = [
    ("/models", "get"),
    ("/organization/projects", "get"),
    ("/organization/projects/{project_id}/api_keys", "get"),
    ("/organization/projects/{project_id}/api_keys/{api_key_id}", "get"),
    ("/organization/projects/{project_id}/api_keys/{api_key_id}", "delete"),
    ("/organization/projects/{project_id}/service_accounts", "get"),
    ("/organization/projects/{project_id}/service_accounts", "post"),
    ("/organization/projects/{project_id}/service_accounts/{service_account_id}", "get"),
    ("/organization/projects/{project_id}/service_accounts/{service_account_id}", "delete"),
    ("/organization/usage/completions", "get"),
    ("/organization/usage/embeddings", "get"),
    ("/organization/usage/moderations", "get"),
    ("/organization/usage/images", "get"),
    ("/organization/usage/audio_speeches", "get"),
    ("/organization/usage/audio_transcriptions", "get"),
    ("/organization/usage/web_search_calls", "get"),
    ("/organization/usage/file_search_calls", "get"),
    ("/organization/costs", "get"),
    ("/organization/audit_logs", "get"),
]


def refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/components/schemas/"):
            out.add(r.rsplit("/", 1)[1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    src, commit = sys.argv[1], sys.argv[2]
    doc = json.load(open(src))
    schemas = doc["components"]["schemas"]
    paths = {}
    wanted = set()
    # Every usage endpoint, so the contract suite can tell which ones filter by api_key_ids.
    usage = [(p, "get") for p in sorted(doc["paths"]) if p.startswith("/organization/usage/")]
    for path, method in OPERATIONS + [u for u in usage if u not in OPERATIONS]:
        op = doc["paths"][path][method]
        op = {k: v for k, v in op.items() if k != "x-oaiMeta"}
        paths.setdefault(path, {})[method] = op
        refs(op, wanted)
    done = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        refs(schemas[name], wanted)
    out = {
        "openapi": doc["openapi"],
        "info": doc["info"],
        "x-keyfire-source": {
            "repository": "https://github.com/openai/openai-openapi",
            "file": "openapi.yaml (and its JSON twin openapi.json)",
            "commit": commit,
            "extracted": "the operations keyfire calls, every /organization/usage/* endpoint, and the schemas they reach; x-oaiMeta removed",
            "license": "MIT, see LICENSE beside this file",
        },
        "paths": paths,
        "components": {"schemas": {k: schemas[k] for k in sorted(done)}},
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
