#!/usr/bin/env python3
"""A client outside Rust: calls Sigil's POST /edge/validate the way Unleash
tooling does, with only the standard library, and checks the exact JSON.

Usage: edge_validate.py BASE_URL TOKENS_JSON EXPECTED_JSON [CA_FILE]
With CA_FILE (PEM), an https:// BASE_URL is verified against that CA only.
Exits 0 when every check holds, 1 with a message otherwise.
"""

import json
import ssl
import sys
import urllib.error
import urllib.request

TLS = None


def post(url, body, content_type):
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10, context=TLS) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def check(condition, message):
    if not condition:
        print(message, file=sys.stderr)
        sys.exit(1)


def main():
    global TLS
    base_url, tokens, expected = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    if len(sys.argv) > 4:
        TLS = ssl.create_default_context(cafile=sys.argv[4])
    url = base_url + "/edge/validate"

    body = json.dumps({"tokens": tokens}).encode()
    status, content_type, answer = post(url, body, "application/json; charset=utf-8")
    check(status == 200, f"status {status}: {answer!r}")
    check(content_type == "application/json", f"content type {content_type}")
    check(json.loads(answer) == expected, f"answer {answer!r} != {expected!r}")

    status, _, answer = post(url, b'{"tokens": []}', "application/json")
    check((status, json.loads(answer)) == (200, {"tokens": []}), f"empty: {status} {answer!r}")

    status, content_type, answer = post(url, body, "text/plain")
    check(status == 415, f"text/plain got {status}")
    check(content_type == "application/json", f"415 content type {content_type}")
    check(json.loads(answer)["reason"] == "UNSUPPORTED_MEDIA_TYPE", f"415 body {answer!r}")

    status, _, answer = post(url, b'{"tokens": "nope"}', "application/json")
    check(status == 400, f"bad shape got {status}")
    check(json.loads(answer)["field"] == "tokens", f"400 body {answer!r}")
    print("ok")


if __name__ == "__main__":
    main()
