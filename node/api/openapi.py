"""The OpenAPI 3.0 document of the HTTP API, served at /openapi.json.

Written by hand from the same constants the handlers use (node/api/params.py and
the paging limits), so its bounds are the ones enforced. Response schemas list the
fields a client can rely on; objects may carry more.
"""

from __future__ import annotations

from typing import Any

from node.api import params as P

Schema = dict[str, Any]

INT: Schema = {"type": "integer"}
NAT: Schema = {"type": "integer", "minimum": 0}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
HEX32: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ANY_OBJECT: Schema = {"type": "object"}
BINARY: Schema = {"type": "string", "format": "binary"}
# POST /tx and POST /txs: canonical msgpack bytes (DESIGN §2).
MSGPACK_BODY = {"required": True, "content": {"application/msgpack": {"schema": BINARY},
                                              "application/octet-stream": {"schema": BINARY}}}
ERROR = {"$ref": "#/components/schemas/Error"}


def obj(props: dict[str, Schema], required: tuple[str, ...] | None = None) -> Schema:
    """An object whose listed fields are all required unless ``required`` says otherwise."""
    return {"type": "object", "required": list(props if required is None else required), "properties": props}


def nullable(schema: Schema) -> Schema:
    return dict(schema, nullable=True)


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "Bad input: the error says which parameter and why.", 401: "Missing or wrong bearer token.",
               403: "Writes from a non-loopback client while the node runs without --api-token.",
               404: "Nothing there.", 413: "Body larger than one transaction (4 KiB).",
               503: "The node is busy (mempool full)."}
    return {str(code): json_response(reasons[code], ERROR) for code in codes}


def query(name: str, schema: Schema, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path_param(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def limit_param(limits: dict[str, tuple[int, int]], name: str) -> dict[str, Any]:
    high, default = limits[name]
    return query("limit", {"type": "integer", "minimum": 1, "maximum": high, "default": default},
                 "Page size.")


def get_op(summary: str, ok: dict[str, Any], parameters: list | None = None, error_codes: tuple[int, ...] = (),
           tag: str = "ledger") -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": [tag], "parameters": parameters or [],
                    "responses": {"200": ok, **errors(*error_codes)}}}


def build_schemas() -> dict[str, Schema]:
    balances = obj({"kwh": INT, "hour": INT})
    household = obj({"meter": STR, "prm": STR, "label": STR, "kva": INT, "peak_w": INT, "solidarity": BOOL,
                     "since_height": INT, "last_reading": ANY_OBJECT})
    gift = obj({"id": HEX32, "beneficiary": HEX32, "bp": INT, "until": INT})
    interval = obj({"start": INT, "end": INT, "k": INT, "export_wh": INT, "import_wh": INT, "minted_wh": INT,
                    "allocated_wh": INT, "settled": BOOL})
    consumer = obj({"consumer": HEX32, "wh": INT, "numerator": INT, "denominator": INT})
    validator = obj({"key": HEX32, "name": STR, "addr": STR, "active": BOOL, "scheduled": BOOL,
                     "equivocating": BOOL, "equivocation_heights": nullable(ANY_OBJECT), "peer_id": STR,
                     "self": BOOL, "connected": BOOL, "height": nullable(INT), "round": nullable(INT),
                     "signed_last_commit": BOOL})
    tx = obj({"id": HEX32, "type": STR, "height": INT, "time_ms": INT}, required=("id", "type", "height", "time_ms"))
    proposal = obj({"id": HEX32, "proposer": HEX32, "param": STR, "value": STR, "voting_end": INT, "status": STR,
                    "yes": INT, "no": INT, "abstain": INT, "participation_bp": INT,
                    "votes": {"type": "object", "additionalProperties": STR}})
    bp_map = {"type": "object", "additionalProperties": INT}
    return {
        "Error": obj({"error": STR}),
        "Status": obj({"chain_id": HEX32, "name": STR, "height": INT, "state_hash": HEX32, "time_ms": INT,
                       "peers": INT, "peer_id": nullable(STR), "listen_addrs": arr(STR), "validator": BOOL,
                       "address": HEX32, "syncing": BOOL, "round": INT, "step": STR, "mempool_txs": INT,
                       "settled_intervals": INT, "commune": STR, "interval_s": INT, "block_time_ms": INT}),
        "Block": obj({"id": HEX32, "height": INT, "header": ANY_OBJECT, "txs": arr(ANY_OBJECT),
                      "last_commit": nullable(ANY_OBJECT), "evidence": arr(ANY_OBJECT),
                      "commit": nullable(ANY_OBJECT)}),
        "Account": obj({"address": HEX32, "balances": balances, "nonce": INT, "household": nullable(household),
                        "registrar": BOOL, "gifts": arr(gift),
                        "delegations": {"type": "object", "additionalProperties": nullable(HEX32)},
                        "ballot": nullable(arr(INT)), "ballot_by_category": nullable(bp_map)}),
        "Intervals": obj({"address": HEX32, "interval_s": INT, "from": INT, "to": INT, "intervals": arr(interval),
                          "next_from": nullable(INT)}),
        "Consumers": obj({"address": HEX32, "interval": INT, "start": INT, "end": INT, "settled": BOOL,
                          "export_wh": INT, "sum_e": INT, "consumers": arr(consumer),
                          "next_cursor": nullable(HEX32)}),
        "Allocation": obj({"allocation": bp_map, "applied": bp_map, "categories": arr(STR), "rule": nullable(STR),
                           "vote_weight": nullable(STR), "ballots": INT, "epoch_s": nullable(INT), "height": INT}),
        "Proposals": obj({"proposals": arr(proposal), "next_cursor": nullable(HEX32)}),
        "Commune": obj({"name": STR, "insee": STR, "chain_id": HEX32, "height": INT, "time_ms": INT,
                        "households": INT, "treasury": balances,
                        "funds": {"type": "object", "additionalProperties": obj({"kwh": INT, "received": INT,
                                                                                 "spent": INT})},
                        "totals": obj({"minted": INT, "allocated": INT}), "categories": arr(STR),
                        "params": ANY_OBJECT}),
        "Validators": obj({"height": INT, "round": INT, "last_commit_round": nullable(INT),
                           "validators": arr(validator), "total": INT, "next_offset": nullable(INT)}),
        "Txs": obj({"txs": arr(tx), "scanned": nullable({"type": "array", "items": INT, "minItems": 2,
                                                         "maxItems": 2}),
                    "next_before": nullable(INT)}),
        "Accepted": obj({"id": HEX32}),
        "BatchAccepted": obj({"ids": arr(HEX32), "accepted": INT,
                              "refused": arr(obj({"index": INT, "error": STR, "status": INT}))}),
    }


def build_paths(tx_tags: tuple[str, ...], statuses: tuple[str, ...], limits: dict[str, tuple[int, int]],
                example_addr: str, assets: tuple[str, ...]) -> dict:
    # The example is this node's own key: a household node's is a real household.
    addr = dict(path_param("addr", HEX32, "Account: Ed25519 public key, lowercase hex."), example=example_addr)
    cursor = query("cursor", HEX32, "Continue after this key (the previous page's next_cursor).")
    time_s = {"type": "integer", "minimum": 0, "maximum": P.MAX_TIME_S}
    paths = {
        "/status": get_op("This node: chain, height, round, peers, state hash.", json_response("Status", ref("Status")),
                          tag="node"),
        "/blocks/{height}": get_op("A committed block with its commit; txs decoded.",
                                   json_response("The block", ref("Block")),
                                   [path_param("height", {"type": "integer", "minimum": 0, "maximum": P.MAX_HEIGHT},
                                               "Block height."),
                                    query("wait", {"type": "integer", "minimum": 0, "maximum": P.MAX_BLOCK_WAIT_S},
                                          "If the block asked for is the next one, wait up to this many seconds "
                                          "for it to be committed before answering 404.")], (400, 404)),
        "/accounts/{addr}": get_op("Balances per class, nonce, household, standing gifts, delegations, ballot.",
                                   json_response("The account", ref("Account")), [addr], (400, 404)),
        "/households/{addr}/intervals": get_op(
            "Production (export_wh) and consumption (import_wh) per settlement interval, oldest first. "
            "Default: the last 48 intervals.", json_response("Intervals", ref("Intervals")),
            [addr, query("from", time_s, "First interval start (unix s)."),
             query("to", time_s, "Last interval start (unix s), inclusive."), limit_param(limits, "intervals")],
            (400, 404)),
        "/households/{addr}/consumers": get_op(
            "Who used my energy in interval k: a_i·E_j/ΣE per consumer (DESIGN §4 step 4).",
            json_response("Consumers", ref("Consumers")),
            [addr, query("interval", {"type": "integer", "minimum": 0, "maximum": P.MAX_INTERVAL_INDEX},
                         "Interval index k: the interval [kΔ, (k+1)Δ).", required=True),
             cursor, limit_param(limits, "consumers")], (400, 404)),
        "/governance/allocation": get_op(
            "The standing allocation of the surplus: live from the ballots standing now, and as applied at the "
            "last epoch.", json_response("Allocation", ref("Allocation")), tag="governance"),
        "/governance/proposals": get_op(
            "Parameter proposals with their tallies, by id.", json_response("Proposals", ref("Proposals")),
            [query("status", {"type": "string", "enum": list(statuses)}, "Only proposals in this state."),
             cursor, limit_param(limits, "proposals")], (400,), tag="governance"),
        "/commune": get_op("Treasury, category funds (received, spent), totals and parameters.",
                           json_response("Commune", ref("Commune")), tag="governance"),
        "/validators": get_op(
            "Validators: active, equivocating, and as seen by this node: height, round, last commit signature.",
            json_response("Validators", ref("Validators")),
            [query("offset", {"type": "integer", "minimum": 0, "maximum": P.MAX_HEIGHT}, "Skip this many."),
             limit_param(limits, "validators")], (400,), tag="node"),
        "/txs": get_op(
            "Committed transactions, newest first, found by walking back at most 512 blocks per page. Meter "
            "readings are left out unless type=tx/reading or readings=true.", json_response("Txs", ref("Txs")),
            [query("account", HEX32, "Only txs naming this account (signer, to, beneficiary, provider ...)."),
             query("type", {"type": "string", "enum": list(tx_tags)}, "Only this transaction type."),
             query("before", {"type": "integer", "minimum": 1, "maximum": P.MAX_HEIGHT},
                   "Only blocks below this height (the previous page's next_before)."),
             query("readings", {"type": "boolean", "default": False}, "Include meter readings."),
             limit_param(limits, "txs")], (400,)),
        "/tx": {"post": {
            "summary": "Submit an already-signed transaction (canonical msgpack, DESIGN §2).",
            "description": "Accepted from loopback clients; from others only when the node runs with --api-token "
                           "and the request carries Authorization: Bearer <token>.",
            "tags": ["ledger"],
            "requestBody": MSGPACK_BODY,
            "responses": {"202": json_response("Accepted into the mempool (or already there).", ref("Accepted")),
                          **errors(400, 401, 403, 413, 503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (DESIGN §9).", "tags": ["node"], "responses": {
            "200": {"description": "Prometheus text format 0.0.4",
                    "content": {"text/plain": {"schema": STR}}}}}},
        "/openapi.json": {"get": {"summary": "This document.", "tags": ["node"],
                                  "responses": {"200": json_response("OpenAPI 3.0", ANY_OBJECT)}}},
        "/": {"get": {"summary": "The household and commune dashboard (?addr= to choose the household).",
                      "tags": ["dashboard"], "responses": {"200": {
                          "description": "HTML page", "content": {"text/html": {"schema": STR}}}}}},
        "/static/{name}": {"get": {"summary": "A dashboard file.", "tags": ["dashboard"],
                                   "parameters": [path_param("name", {"type": "string", "enum": list(assets)},
                                                             "File name.")],
                                   "responses": {"200": {"description": "The file", "content": {
                                       "text/javascript": {"schema": STR}, "text/css": {"schema": STR},
                                       "image/svg+xml": {"schema": STR}}}, **errors(404)}}},
    }
    paths["/txs"]["post"] = {
        "summary": "Submit many already-signed transactions at once, encoded as a gossip tx batch "
                   "(net/txbatch, at most 4096 txs and 1 MiB): a meter gateway, or readings buffered offline.",
        "description": "Each tx is judged on its own, as by POST /tx; the answer lists the refused ones by index. "
                       "503 only when every tx was refused because the mempool is full. Same write rules as POST /tx.",
        "tags": ["ledger"],
        "requestBody": MSGPACK_BODY,
        "responses": {"202": json_response("Each tx taken or refused.", ref("BatchAccepted")),
                      **errors(400, 401, 403, 413, 503)}}
    return paths


def build_openapi(tx_tags: tuple[str, ...], statuses: tuple[str, ...], limits: dict[str, tuple[int, int]],
                  example_addr: str = "00" * 32, assets: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Voisinage node API", "version": "1",
                 "description": "A commune energy-community ledger node (DESIGN §9). JSON everywhere; every error "
                                "is {\"error\": \"...\"}. Amounts: kwh in Wh, hour in minutes; times in unix "
                                "seconds (time_ms: milliseconds). Lists page with limit and a cursor."},
        "paths": build_paths(tx_tags, statuses, limits, example_addr, assets),
        "components": {"schemas": build_schemas()},
    }
