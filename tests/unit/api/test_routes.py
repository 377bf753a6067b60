"""The route table (node/api/routes.py) against what the app serves (DESIGN §9).

Every route is a documented operation and every operation a route; every bound,
enum, pattern and requirement that /openapi.json states for a parameter is what the
handler refuses, and nothing inside them is refused; only the operations documented
as writes refuse a remote client. The cases are read from the served document, so a
parser that drifts from it fails here.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx

from node.api.app import build_app
from tests.support.fake_node import asgi_client

GOOD_HEX = "ab" * 32
REMOTE = "192.0.2.7"
TOKEN = "operator-token"


class Reached(Exception):
    """The handler used the node: the request got past the parameters and the guard."""


class UntouchableNode:
    key = SimpleNamespace(public=bytes.fromhex(GOOD_HEX))

    def __getattr__(self, name: str) -> Any:
        raise Reached(name)


def client_for(host: str = "127.0.0.1", token: str | None = None) -> httpx.AsyncClient:
    """A client of the app over a node it must not touch; with ``token``, the node runs
    with it and the client is its operator (node/api/access.py), so that every route's
    parameters are reached whoever the route serves."""
    client = asgi_client(UntouchableNode(), host, token)
    if token is not None:
        client.headers["authorization"] = f"Bearer {token}"
    return client


async def fetch_doc() -> dict[str, Any]:
    async with client_for() as client:
        return (await client.get("/openapi.json")).json()


def get_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method.upper(), op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def get_good_values(schema: dict[str, Any]) -> list[str]:
    if "enum" in schema:
        return [schema["enum"][0], schema["enum"][-1]]
    if schema["type"] == "integer":
        return [str(schema["minimum"]), str(schema["maximum"])]
    if schema["type"] == "boolean":
        return ["true", "false"]
    if schema.get("pattern") == "^[0-9a-f]{64}$":
        return [GOOD_HEX]
    if schema.get("pattern") == "^([0-9a-f]{2})+$":
        return ["ab", "ab" * (schema["maxLength"] // 2)]
    if schema.get("pattern") == "^\\d{14}$":
        return ["12345678901234"]
    if schema.get("pattern") == "^[0-9a-f]{16}$":
        return ["0123456789abcdef"]
    if schema.get("pattern") == "^[A-Za-z0-9_-]{22}$":
        return ["Az09_-" * 3 + "abcd"]
    if schema.get("format") == "date":
        return ["2026-06-21", "2024-02-29"]
    if "pattern" not in schema and "maxLength" in schema:
        return ["x", "é" * schema["maxLength"]]
    raise AssertionError(f"no test values for the schema {schema}")


def get_bad_values(schema: dict[str, Any]) -> list[str]:
    if "enum" in schema:
        return ["none-of-these", schema["enum"][0].upper() + "x"]
    if schema["type"] == "integer":
        return [str(schema["minimum"] - 1), str(schema["maximum"] + 1), "x"]
    if schema["type"] == "boolean":
        return ["yes", "1"]
    if schema.get("pattern") == "^\\d{14}$":
        return ["1234", "1" * 15, "x" * 14]
    if schema.get("pattern") == "^[0-9a-f]{16}$":
        return ["0" * 15, "G" * 16, "0" * 17]
    if schema.get("pattern") == "^[A-Za-z0-9_-]{22}$":
        return ["a" * 21, "a" * 23, "a" * 21 + "."]
    if schema.get("format") == "date":
        return ["2026-13-01", "2025-02-29", "21/06/2026", "2026-6-1", "0001-01-01"]
    if "pattern" not in schema and "maxLength" in schema:
        return ["x" * (schema["maxLength"] + 1)]
    if "maxLength" in schema:
        return ["AB", "a", "g0", "ab" * (schema["maxLength"] // 2 + 1)]
    return ["AB" * 32, "a" * 63, "g" * 64]


def get_request(path: str, params: list[dict[str, Any]], values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The URL and query of a request to ``path`` with ``values`` by parameter name."""
    query = {}
    for param in params:
        if param["name"] not in values:
            continue
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", values[param["name"]])
        else:
            query[param["name"]] = values[param["name"]]
    return path, query


async def send(client: httpx.AsyncClient, method: str, url: str, query: dict[str, str]) -> int | str:
    """The status, or "reached" when the handler used the node."""
    try:
        resp = await client.request(method, url, params=query, content=b"x" if method == "POST" else None)
    except Reached:
        return "reached"
    return resp.status_code


async def test_every_route_is_a_documented_operation_and_back():
    app = build_app(UntouchableNode(), peer_id_of=lambda key: "peer")
    # Starlette answers HEAD for every GET route; OpenAPI leaves it implied.
    served = {(route.path, method) for route in app.routes for method in route.methods if method != "HEAD"}
    documented = {(path, method) for path, method, _ in get_operations(await fetch_doc())}
    assert served == documented
    assert ("/txs", "POST") in served and ("/openapi.json", "GET") in served


async def test_invalid_parameter_values_are_refused_as_documented():
    doc = await fetch_doc()
    wrong, checked = [], set()
    async with client_for() as client:
        for path, method, op in get_operations(doc):
            params = op.get("parameters", [])
            # 400, or 404 where an operation refuses nothing with 400 (a dashboard file).
            refusal = min(int(code) for code in op["responses"] if code in ("400", "404")) if params else None
            required = {p["name"]: get_good_values(p["schema"])[0] for p in params if p["required"]}
            for param in params:
                checked.add((path, method, param["name"]))
                for value in get_bad_values(param["schema"]):
                    status = await send(client, method, *get_request(path, params, {**required, param["name"]: value}))
                    if status != refusal:
                        wrong.append((method, path, param["name"], value, status, refusal))
                if param["required"] and param["in"] == "query":
                    values = {name: v for name, v in required.items() if name != param["name"]}
                    status = await send(client, method, *get_request(path, params, values))
                    if status != refusal:
                        wrong.append((method, path, param["name"], "(missing)", status, refusal))
    assert wrong == []
    assert ("/households/{addr}/consumers", "GET", "interval") in checked and len(checked) >= 20


async def test_parameter_values_inside_the_documented_bounds_are_accepted():
    doc = await fetch_doc()
    wrong = []
    async with client_for(token=TOKEN) as client:
        for path, method, op in get_operations(doc):
            params = op.get("parameters", [])
            required = {p["name"]: get_good_values(p["schema"])[0] for p in params if p["required"]}
            for param in params:
                for value in get_good_values(param["schema"]):
                    status = await send(client, method, *get_request(path, params, {**required, param["name"]: value}))
                    if status != "reached" and not 200 <= status < 300:
                        wrong.append((method, path, param["name"], value, status))
    assert wrong == []


async def test_only_documented_writes_refuse_a_remote_client():
    doc = await fetch_doc()
    refused = {}
    async with client_for(REMOTE) as client:
        for path, method, op in get_operations(doc):
            params = op.get("parameters", [])
            values = {p["name"]: get_good_values(p["schema"])[0] for p in params}
            values = {p["name"]: p.get("example", values[p["name"]]) for p in params}
            refused[(method, path)] = await send(client, method, *get_request(path, params, values)) == 403
    # The routes of this machine or its operator (node/api/access.py LOCAL) refuse a remote
    # client of a node without --api-token; the others do not look where it comes from.
    documented = {(method, path): op["x-access"] == "local" for path, method, op in get_operations(doc)}
    assert refused == documented
    assert refused[("POST", "/tx")] and refused[("POST", "/txs")] and not refused[("GET", "/txs")]
