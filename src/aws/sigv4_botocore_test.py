#!/usr/bin/python3
"""Byte-for-byte check of virga's SigV4 signer against botocore.

usage: sigv4_botocore_test.py AWS_SIGV4_VECTORS TABLE.json

Runs the C++ tool aws_sigv4_vectors on the table, signs every case again with
botocore (S3SigV4Auth for service s3, SigV4Auth otherwise) on an AWSRequest
built as botocore's own client builds it, at the case's fixed time, and
compares the wire path, wire query, canonical request, string to sign,
Authorization and the signing headers. Cases with an "operation" are also
serialized by botocore's serializer for that API operation, to check that the
table's path, query, headers and body are what the real client sends.

Exit status: 0 all identical, 1 a mismatch (a diff is printed), 2 a usage or
tool failure, 77 botocore missing (Debian python3-botocore, for /usr/bin/python3).
"""

import datetime
import difflib
import json
import subprocess
import sys
import types
from unittest import mock
from urllib.parse import unquote, urlsplit

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.config
    import botocore.credentials
    import botocore.serialize
    import botocore.session
    from botocore.utils import percent_encode
except ImportError as e:
    print(f"*** SKIPPED aws_sigv4_botocore: {sys.executable} cannot import botocore ({e}); "
          "install Debian python3-botocore ***")
    sys.exit(77)

SIGNING_HEADERS = ("authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token")


def frozen_clock(when):
    """Makes botocore.auth sign at `when` (naive UTC)."""
    if hasattr(botocore.auth, "get_current_datetime"):  # newer botocore
        return mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when)

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    clock = types.SimpleNamespace(datetime=FrozenDatetime)  # Debian 12's 1.29: utcnow()
    return mock.patch.object(botocore.auth, "datetime", clock)


def wire_path(service, path):
    # What botocore's REST serializers put on the request line: S3's greedy
    # {Key+} label keeps '/', the labels of other services are whole segments.
    if service == "s3":
        return percent_encode(path, safe="/~")
    return "/".join(percent_encode(segment) for segment in path.split("/"))


def wire_query(query):
    # As botocore's client joins a query: encoded pairs; a valueless parameter
    # bare, as in S3's "?uploads".
    return "&".join(percent_encode(k) + ("=" + percent_encode(v) if v else "") for k, v in query)


def sign_with_botocore(case, table):
    defaults = table["defaults"]
    keys = table["credentials"][case.get("credentials", defaults["credentials"])]
    credentials = botocore.credentials.Credentials(
        keys["access_key_id"], keys["secret_access_key"], keys.get("session_token"))
    service, region = case["service"], case.get("region", defaults["region"])
    url = f'{case.get("scheme", "https")}://{case["host"]}{wire_path(service, case["path"])}'
    if case.get("query"):
        url += "?" + wire_query(case["query"])
    request = botocore.awsrequest.AWSRequest(
        method=case["method"], url=url, data=case.get("body", "").encode())
    for name, value in case.get("headers", []):
        request.headers[name] = value  # HTTPHeaders: a repeated name is appended
    if case.get("unsigned_payload"):
        if service == "s3":
            request.context["client_config"] = botocore.config.Config(
                s3={"payload_signing_enabled": False})
        else:
            request.context["payload_signing_enabled"] = False

    auth_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    auth = auth_class(credentials, service, region)
    seen = {}

    def record(method, key):
        def wrapper(*args):
            seen[key] = method(*args)
            return seen[key]
        return wrapper

    auth.canonical_request = record(auth.canonical_request, "canonical_request")
    auth.string_to_sign = record(auth.string_to_sign, "string_to_sign")
    date = case.get("date", defaults["date"])
    with frozen_clock(datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")):
        auth.add_auth(request)
    if request.context.get("timestamp") != date:
        raise RuntimeError(f"botocore {botocore.__version__} signed at "
                           f"{request.context.get('timestamp')}, not at {date}: its clock "
                           "was not frozen")
    return {
        "wire_path": urlsplit(url).path,
        "wire_query": seen["canonical_request"].split("\n")[2],
        "canonical_request": seen["canonical_request"],
        "string_to_sign": seen["string_to_sign"],
        "authorization": request.headers["Authorization"],
        "headers": sorted((k.lower(), v) for k, v in request.headers.items()
                          if k.lower() in SIGNING_HEADERS),
    }


def serialize_operation(case, session):
    """What botocore's client sends for the case's API operation."""
    model = session.get_service_model(case["service"])
    operation = model.operation_model(case["operation"]["name"])
    serializer = botocore.serialize.create_serializer(
        model.metadata["protocol"], include_validation=True)
    r = serializer.serialize_to_request(case["operation"]["params"], operation)
    path, _, literal_query = r["url_path"].partition("?")
    query = [(unquote(k), unquote(v))
             for k, _, v in (p.partition("=") for p in literal_query.split("&") if p)]
    query += [(k, str(v)) for k, v in r["query_string"].items()]
    body = r["body"].encode() if isinstance(r["body"], str) else bytes(r["body"] or b"")
    return {
        "wire_path": path,
        "query": sorted(query),
        "headers": sorted((k.lower(), v) for k, v in r["headers"].items()),
        "body": body,
    }


def from_table(case, ours):
    return {
        "wire_path": ours["wire_path"],
        "query": sorted(tuple(p) for p in case.get("query", [])),
        "headers": sorted((k.lower(), v) for k, v in case.get("headers", [])),
        "body": case.get("body", "").encode(),
    }


def lines(value):
    if isinstance(value, str):
        return value.split("\n")
    return [repr(x) for x in value] if isinstance(value, list) else [repr(value)]


def diff(case_name, field, expected, actual, expected_name):
    if expected == actual:
        return True
    print(f"MISMATCH in case {case_name!r}, field {field}:")
    for line in difflib.unified_diff(lines(expected), lines(actual), expected_name, "virga",
                                     lineterm=""):
        print("  " + line)
    return False


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, table_path = sys.argv[1], sys.argv[2]
    with open(table_path, encoding="utf-8") as f:
        table = json.load(f)
    run = subprocess.run([tool, table_path], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"{tool} failed ({run.returncode}): {run.stderr}")
        return 2
    signed = json.loads(run.stdout)
    if [s["name"] for s in signed] != [c["name"] for c in table["cases"]]:
        print(f"{tool} did not sign every case of {table_path} in order")
        return 2

    session = botocore.session.get_session()
    failures = compared = 0
    for case, ours in zip(table["cases"], signed):
        ours = dict(ours, headers=sorted((k.lower(), v) for k, v in ours["headers"]))
        try:
            theirs = sign_with_botocore(case, table)
        except RuntimeError as e:
            print(f"case {case['name']!r}: {e}")
            return 2
        for field, expected in theirs.items():
            compared += 1
            failures += not diff(case["name"], field, expected, ours[field], "botocore")
        if "operation" in case:
            client = serialize_operation(case, session)
            table_side = from_table(case, ours)
            for field, expected in client.items():
                compared += 1
                failures += not diff(case["name"], "operation " + field, expected,
                                     table_side[field], "botocore serializer")
    print(f"{len(signed)} cases, {compared} fields compared with botocore "
          f"{botocore.__version__}: {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
