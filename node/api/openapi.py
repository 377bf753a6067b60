"""The OpenAPI 3.0 document of the HTTP API (DESIGN §9), served at /openapi.json.

Its paths are made from the route table (node/api/routes.py) that also makes the
routes, and its parameters from the declarations the handlers parse with
(node/api/params.py), so its bounds are the ones enforced. Response schemas list
the fields a client can rely on; objects may carry more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.api.access import ACCESS_CLASSES, GRANT, HOUSEHOLD, OWN
from node.api.operations import Operation, Reply, compute_error_codes
from node.api.params import HEX32_SCHEMA, Schema

INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
HEX32: Schema = HEX32_SCHEMA
ANY_OBJECT: Schema = {"type": "object"}
BINARY: Schema = {"type": "string", "format": "binary"}
# POST /tx and POST /txs: canonical msgpack bytes (DESIGN §2).
MSGPACK_BODY = {"required": True, "content": {"application/msgpack": {"schema": BINARY},
                                              "application/octet-stream": {"schema": BINARY}}}
ERROR = {"$ref": "#/components/schemas/Error"}
REASONS = {400: "Bad input: the error says which parameter and why.",
           401: "Missing or wrong credentials: the API token, the household's signed-request headers, or an "
                "OAuth2 bearer token (x-access says which this route takes).",
           403: "Refused: signed by another household than the one the data belongs to, another household's "
                "node, a write from a non-loopback client while the node runs without --api-token, or an "
                "OAuth2 token without the scope (insufficient_scope) or the usage point (access_denied).",
           404: "Nothing there.", 409: "A limit of this node's consent store is reached.",
           410: "Pruned on this node (node run --pruning default); an archive node has it.",
           503: "The node is busy (mempool full)."}


SCOPE_NAMES = {"consumption_load_curve": "Half-hourly consumption (W)",
               "production_load_curve": "Half-hourly production (W)", "daily_consumption": "Wh per day",
               "max_power": "Highest half-hour mean consumption (W) per day"}
# The access classes (node/api/access.py) that need credentials, as OpenAPI security
# requirements. The others need none (REDACTED answers more to a household's signature
# or the API token, LOCAL takes the token from a remote client): their x-access says so.
SECURITY = {OWN: [{"householdSignature": []}],
            GRANT: [{"householdSignature": []}, {"dataConnect": list(SCOPE_NAMES)}],
            HOUSEHOLD: [{"householdSignature": []}, {"apiToken": []}]}
SECURITY_SCHEMES = {
    "apiToken": {"type": "http", "scheme": "bearer",
                 "description": "The token the node runs with (voisinage node run --api-token): its operator."},
    "householdSignature": {
        "type": "apiKey", "in": "header", "name": "X-Voisinage-Signature",
        "description": "Ed25519 signature (hex) by the household's key over b'voisinage/1/http:' + "
                       "METHOD\\nPATH\\nQUERY\\nTIME\\nNONCE, with X-Voisinage-Key (public key, hex), "
                       "X-Voisinage-Time (unix s, within 60 s) and X-Voisinage-Nonce (16 random bytes, hex); "
                       "each signature is taken once."},
    "dataConnect": {"type": "oauth2", "flows": {"authorizationCode": {
        "authorizationUrl": "/oauth/authorize", "tokenUrl": "/oauth/token", "refreshUrl": "/oauth/token",
        "scopes": SCOPE_NAMES}}},
}


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


def build_schemas() -> dict[str, Schema]:
    # kwh and hour always; a commune-defined class (docs/classes.md) once held.
    balances = dict(obj({"kwh": INT, "hour": INT}), additionalProperties=INT)
    token_class = obj({"name": STR, "unit": STR, "label": STR, "decimals": INT, "issued_by": STR,
                       "credit_limit": INT, "supply": nullable(INT)})
    # Without the household's signature or the token: only solidarity, since_height and
    # the last reading's seq and t (node/api/private.py).
    household = obj({"meter": STR, "prm": STR, "label": STR, "kva": INT, "peak_w": INT, "solidarity": BOOL,
                     "since_height": INT, "last_reading": ANY_OBJECT},
                    required=("solidarity", "since_height", "last_reading"))
    gift = obj({"id": HEX32, "beneficiary": HEX32, "solidarity": BOOL, "target": STR, "bp": INT, "until": INT})
    recovery = obj({"new_key": HEX32, "start": INT, "completes_at": INT})
    interval = obj({"start": INT, "end": INT, "k": INT, "export_wh": INT, "import_wh": INT, "minted_wh": INT,
                    "allocated_wh": INT, "settled": BOOL})
    consumer = obj({"consumer": HEX32, "wh": INT, "numerator": INT, "denominator": INT})
    validator = obj({"key": HEX32, "name": STR, "addr": STR, "active": BOOL, "scheduled": BOOL,
                     "equivocating": BOOL, "equivocation_heights": nullable(ANY_OBJECT), "peer_id": STR,
                     "self": BOOL, "connected": BOOL, "height": nullable(INT), "round": nullable(INT),
                     "signed_last_commit": BOOL, "heartbeat_age_s": nullable({"type": "number"}), "live": BOOL})
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
                       "settled_intervals": INT, "commune": STR, "interval_s": INT, "block_time_ms": INT,
                       "cut": nullable(obj({"cut_due": BOOL, "cut_pending_s": nullable(INT),
                                            "cut_overdue": BOOL}))}),
        "Block": obj({"id": HEX32, "height": INT, "header": ANY_OBJECT, "txs": arr(ANY_OBJECT),
                      "last_commit": nullable(ANY_OBJECT), "evidence": arr(ANY_OBJECT),
                      "commit": nullable(ANY_OBJECT)}),
        "Account": obj({"address": HEX32, "balances": balances, "nonce": INT, "pending_nonce": nullable(INT),
                        "household": nullable(household),
                        "recovery": nullable(recovery), "rotated_to": nullable(HEX32),
                        "deregistered_at": nullable(INT), "registrar": BOOL, "gifts": arr(gift),
                        "delegations": {"type": "object", "additionalProperties": nullable(HEX32)},
                        "ballot": nullable(bp_map), "ballot_by_category": nullable(bp_map), "redacted": BOOL},
                       required=("address", "nonce", "household", "recovery", "rotated_to", "deregistered_at",
                                 "registrar", "delegations", "ballot", "ballot_by_category")),
        "Aggregates": obj({"interval_s": INT, "from": INT, "to": INT, "min_aggregate": INT, "counted": BOOL,
                           "intervals": arr(obj({"start": INT, "end": INT, "k": INT,
                                                 "participants": nullable(INT), "producers": nullable(INT),
                                                 "consumers": nullable(INT), "sum_e": nullable(INT),
                                                 "sum_i": nullable(INT), "m": nullable(INT),
                                                 "suppressed": BOOL})),
                           "next_from": nullable(INT)}),
        "Intervals": obj({"address": HEX32, "interval_s": INT, "from": INT, "to": INT, "intervals": arr(interval),
                          "next_from": nullable(INT)}),
        "Consumers": obj({"address": HEX32, "interval": INT, "start": INT, "end": INT, "settled": BOOL,
                          "export_wh": INT, "sum_e": nullable(INT), "consumers_count": nullable(INT),
                          "local_wh": nullable(INT), "named": BOOL, "consumers": arr(consumer),
                          "next_cursor": nullable(HEX32)}),
        "Allocation": obj({"allocation": bp_map, "applied": bp_map, "categories": arr(STR), "rule": nullable(STR),
                           "vote_weight": nullable(STR), "ballots": INT, "epoch_s": nullable(INT), "height": INT}),
        "Proposals": obj({"proposals": arr(proposal), "next_cursor": nullable(HEX32)}),
        "Commune": obj({"name": STR, "insee": STR, "chain_id": HEX32, "height": INT, "time_ms": INT,
                        "households": INT, "treasury": balances,
                        "funds": {"type": "object", "additionalProperties": obj({"kwh": INT, "received": INT,
                                                                                 "spent": INT})},
                        "totals": obj({"minted": INT, "allocated": INT}), "categories": arr(STR),
                        "params": ANY_OBJECT,
                        "sealing": nullable(obj({"epoch": INT, "public": HEX32})),
                        "classes": arr(token_class)}),
        "Registrars": obj({"height": INT, "registrars": arr(HEX32), "next_nonce": INT, "validators": arr(HEX32),
                           "quorum": INT, "recovery_delay_s": INT,
                           "recoveries": arr(obj({"household": HEX32, "label": STR, "new_key": HEX32, "start": INT,
                                                  "completes_at": INT, "cancellable_by": HEX32})),
                           "moved_out": arr(obj({"key": HEX32, "height": INT}))}),
        "Validators": obj({"height": INT, "round": INT, "last_commit_round": nullable(INT),
                           "validators": arr(validator), "total": INT, "next_offset": nullable(INT)}),
        "ValidatorChange": obj({"height": INT, "next_nonce": INT, "validators": arr(HEX32), "latest": arr(HEX32),
                                "quorum": INT}),
        "Upgrades": obj({"next_nonce": INT, "validators": arr(HEX32), "quorum": INT, "height": INT, "version": INT,
                         "next_version": INT, "software_version": INT,
                         "scheduled": arr(obj({"version": INT, "height": INT, "supported": BOOL})),
                         "fork_id": obj({"hash": STR, "next": INT})}),
        "Txs": obj({"txs": arr(tx), "scanned": nullable({"type": "array", "items": INT, "minItems": 2,
                                                         "maxItems": 2}),
                    "next_before": nullable(INT)}),
        "Proof": obj({"height": INT, "header_height": INT, "root": HEX32, "key": STR, "value": nullable(STR),
                      "proof": STR, "salt": nullable(HEX32)}),
        **build_euro_schemas(balances),
        **build_reconcile_schemas(),
        **build_consent_schemas(),
        "Accepted": obj({"id": HEX32}),
        "BatchAccepted": obj({"ids": arr(HEX32), "accepted": INT,
                              "refused": arr(obj({"index": INT, "error": STR, "status": INT}))}),
    }


def build_euro_schemas(balances: Schema) -> dict[str, Schema]:
    """docs/euro.md: payouts, the accountant's ledger, the associations."""
    totals = obj({"redeemed_wh": INT, "owed_cents": INT, "paid_cents": INT, "outstanding_cents": INT,
                  "cleared_wh": INT, "received_cents": INT})
    payout = obj({"id": HEX32, "account": HEX32, "label": STR, "class": STR, "amount": INT, "price_cents": INT,
                  "cents": INT, "height": INT, "time": INT, "status": STR, "paid_height": nullable(INT),
                  "paid_time": nullable(INT), "ref": nullable(STR)})
    row = obj({"kind": STR, "id": HEX32, "key": STR, "payout": nullable(HEX32), "height": INT, "time": INT,
               "account": HEX32, "label": STR, "class": STR, "amount": INT, "price_cents": INT, "cents": INT,
               "status": STR, "ref": nullable(STR)})
    association = obj({"address": HEX32, "name": STR, "since_height": INT, "until_height": nullable(INT),
                       "balances": balances})
    return {
        "Payout": payout,
        "Payouts": obj({"payouts": arr(payout), "next_cursor": nullable(HEX32), "totals": totals}),
        "EuroLedger": obj({"from": INT, "to": INT, "rows": arr(row), "next_after": nullable(STR), "chain": totals,
                                 "height": INT}),
        "Associations": obj({"associations": arr(association)}),
    }


def build_reconcile_schemas() -> dict[str, Schema]:
    """docs/reconciliation.md: a household's corrections, the commune's share."""
    interval = obj({name: INT for name in (
        "start", "provisional_export_wh", "official_export_wh", "provisional_import_wh", "official_import_wh",
        "correction_export_wh", "correction_import_wh")})
    totals = obj({"days": INT, "streak": INT, "flagged": BOOL, "provisional_export_wh": INT,
                  "official_export_wh": INT, "provisional_import_wh": INT, "official_import_wh": INT,
                  "last_deviation_bp": INT})
    flagged = obj({"prm": STR, "address": HEX32, "label": STR, "streak": INT, "last_deviation_bp": INT})
    return {
        "HouseholdReconciliation": obj({"address": HEX32, "prm": STR, "label": STR,
                                        "consent": nullable(obj({"since_height": INT, "since_time": INT})),
                                        "totals": totals, "intervals": arr(interval)}),
        "Reconciliation": obj({**{name: INT for name in (
            "intervals_reconciled", "official_export_wh", "official_import_wh", "minted_wh", "burned_wh",
            "energy_in_state_wh", "reconciled_in_state_wh", "reconciled_share_bp", "households", "consenting",
            "flag_days", "flagged_count")}, "flagged": arr(flagged)}),
    }


def build_consent_schemas() -> dict[str, Schema]:
    """docs/privacy.md: Data Connect readings, the OAuth2 answers, grants and the access log."""
    reading = obj({"rank": INT, "value": STR}, required=("rank", "value"))
    meter_reading = obj({"usage_point_id": STR, "start": STR, "end": STR, "quality": STR,
                         "reading_type": ANY_OBJECT, "interval_reading": arr(reading)})
    grant = obj({"id": STR, "client_id": STR, "client_name": STR, "household": HEX32, "prm": STR,
                 "scopes": arr(STR), "duration_days": INT, "created": INT, "expires": INT,
                 "revoked": nullable(INT), "status": STR})
    client = obj({"client_id": STR, "name": STR, "redirect_uri": STR, "created": INT})
    entry = obj({"seq": INT, "t": INT, "who": STR, "client_id": nullable(STR), "client_name": nullable(STR),
                 "scope": STR, "usage_point_id": STR, "start": STR, "end": STR, "status": INT},
                required=("seq", "t", "who", "scope", "usage_point_id", "start", "end", "status"))
    return {
        "MeterReading": obj({"usage_point": arr(obj({"meter_reading": meter_reading}))}),
        "AuthorizationRequest": obj({"client_id": STR, "client_name": STR, "redirect_uri": STR, "scopes": arr(STR),
                                     "duration_days": INT, "usage_point_id": STR, "household": HEX32,
                                     "approve": STR}),
        "TokenResponse": obj({"access_token": STR, "token_type": STR, "expires_in": INT, "scope": STR},
                             required=("access_token", "token_type", "expires_in")),
        "Empty": {"type": "object"},
        "ConsentClient": obj({**client["properties"], "client_secret": STR}),
        "ConsentGrant": grant,
        "ConsentClientRemoved": obj({"client_id": STR, "name": STR, "revoked_grants": INT}),
        "ConsentGrants": obj({"address": HEX32, "usage_point_id": STR, "grants": arr(grant), "clients": arr(client)}),
        "AccessLog": obj({"entries": arr(entry), "next_before": nullable(INT)}),
        "PrivilegedReads": obj({"household": HEX32, "entries": arr(obj(
            {"seq": INT, "t": INT, "who": STR, "registrar": nullable(HEX32), "method": STR, "path": STR,
             "query": STR, "household": nullable(HEX32), "status": INT},
            required=("seq", "t", "who", "method", "path", "status"))), "next_before": nullable(INT)}),
    }


def get_reply_doc(reply: Reply) -> dict[str, Any]:
    return {"description": reply.description,
            "content": {media: {"schema": schema} for media, schema in reply.content.items()}}


def get_error_doc(op: Operation, code: int) -> dict[str, Any]:
    if code == 413 and op.body is not None:
        reason = f"Body larger than {op.body.what}: at most {op.body.limit} bytes."
    else:
        reason = REASONS[code]
    return json_response(reason, ERROR)


def get_operation_doc(op: Operation) -> dict[str, Any]:
    """The Operation Object of one row of the route table."""
    doc: dict[str, Any] = {"summary": op.summary}
    if op.description:
        doc["description"] = op.description
    doc["tags"] = [op.tag]
    if op.params:
        doc["parameters"] = [param.get_doc() for param in op.params]
    if op.body is not None and op.body.content is not None:
        doc["requestBody"] = {"required": True, "content": {media: {"schema": schema}
                                                            for media, schema in op.body.content.items()}}
    elif op.body is not None:
        doc["requestBody"] = MSGPACK_BODY
    doc["x-access"] = op.access
    if op.access in SECURITY:
        doc["security"] = SECURITY[op.access]
    doc["responses"] = {str(op.ok.status): get_reply_doc(op.ok),
                        **{str(code): get_error_doc(op, code) for code in compute_error_codes(op)}}
    return doc


def build_openapi(table: Sequence[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in table:
        paths.setdefault(op.path, {})[op.method.lower()] = get_operation_doc(op)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Voisinage node API", "version": "1",
                 "description": "A commune energy-community ledger node (DESIGN §9). JSON everywhere; every error "
                                "is {\"error\": \"...\"}. Amounts: kwh in Wh, hour in minutes; times in unix "
                                "seconds (time_ms: milliseconds). Lists page with limit and a cursor. Who may "
                                "read each route: its x-access, one of x-access-classes (docs/privacy.md "
                                "\"Who sees what through the API\")."},
        "x-access-classes": ACCESS_CLASSES,
        "paths": paths,
        "components": {"schemas": build_schemas(), "securitySchemes": SECURITY_SCHEMES},
    }
