#!/usr/bin/env python3
"""Vendor the parts of SendGrid's OpenAPI documents keyfire's `sendgrid` provider calls.

Usage: python3 scripts/vendor-sendgrid-spec.py SPEC_JSON_DIR COMMIT > tests/fixtures/spec/sendgrid/openapi-subset.json

SPEC_JSON_DIR is `spec/json` of a twilio/sendgrid-oai checkout. Takes the `/v3/api_keys`,
`/v3/api_keys/{api_key_id}` and `/v3/scopes` paths and every component they reference,
merging the two documents' components (same-named components must be identical).
"""
import json
import sys

SOURCES = {
    "tsg_api_keys_v3.json": ["/v3/api_keys", "/v3/api_keys/{api_key_id}"],
    "tsg_scopes_v3.json": ["/v3/scopes"],
}


def main():
    base, commit = sys.argv[1], sys.argv[2]
    out = {
        "openapi": None,
        "info": {"title": "SendGrid v3 API keys and scopes (subset)", "source": "twilio/sendgrid-oai", "commit": commit},
        "paths": {},
        "components": {},
    }
    for name, paths in SOURCES.items():
        with open(f"{base}/{name}") as f:
            doc = json.load(f)
        out["openapi"] = doc["openapi"]
        out["info"].setdefault("files", []).append(f"spec/json/{name}")
        for p in paths:
            out["paths"][p] = doc["paths"][p]
        for kind, items in doc.get("components", {}).items():
            slot = out["components"].setdefault(kind, {})
            for k, v in items.items():
                if k in slot and slot[k] != v:
                    raise SystemExit(f"components.{kind}.{k} differs between documents")
                slot[k] = v
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
