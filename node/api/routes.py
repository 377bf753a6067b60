"""The route table of the HTTP API (DESIGN §9): one row per operation.

Both the Starlette routes (node/api/operations.py) and /openapi.json
(node/api/openapi.py) are made from these rows, so adding an endpoint is adding a
row; its parameters are parsed by the declarations the document shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.api import params as P
from node.api.access import CLIENT, GRANT, HOUSEHOLD, LOCAL, OWN, PUBLIC, REDACTED
from node.api.assets import StaticAssets, get_file_media_types
from node.api.openapi import ANY_OBJECT, STR, ref
from node.api.operations import Body, Handler, Operation, Reply
from node.api.params import Bool, Choice, Date, Hex32, HexBytes, Int, Param, Text, path_param, query_param
from node.consent.dataconnect import MEASURES, PRM
from node.api.ibc import build_ibc_rows
from node.api.proofs import MAX_PROOF_KEY_BYTES
from tokens.queries_euro import EURO_LOG_KEY_BYTES, STATUS_OWED, STATUS_PAID
from tokens.rules_gov import STATUS_FAILED, STATUS_OPEN, STATUS_PASSED, STATUS_REJECTED
from tokens.txs import TX_TYPES
from wire.limits import MAX_GOSSIP_BYTES, MAX_TX_BYTES

if TYPE_CHECKING:
    from node.api.app import Api
    from node.api.consent import ConsentApi

TX_TAGS = tuple(t.TAG for t in TX_TYPES)
PROPOSAL_STATUSES = (STATUS_OPEN, STATUS_PASSED, STATUS_REJECTED, STATUS_FAILED)
TX_BODY = Body(MAX_TX_BYTES, "a transaction")
BATCH_BODY = Body(MAX_GOSSIP_BYTES, "a batch")
CURSOR = query_param("cursor", Hex32(), "Continue after this key (the previous page's next_cursor).")
TIME_S = Int(0, P.MAX_TIME_S)


def json_reply(description: str, schema_name: str, status: int = 200) -> Reply:
    return Reply(status, description, {"application/json": ref(schema_name)})


def limit_param(high: int, default: int) -> Param:
    return query_param("limit", Int(1, high, default), "Page size.")


def build_ledger_rows(api: Api, addr: Param) -> tuple[Operation, ...]:
    return (
        Operation("/blocks/{height}", "GET", api.block, "A committed block with its commit; txs decoded.", "ledger",
                  json_reply("The block", "Block"), (
                      path_param("height", Int(0, P.MAX_HEIGHT), "Block height."),
                      query_param("wait", Int(0, P.MAX_BLOCK_WAIT_S, 0),
                                  "If the block asked for is the next one, wait up to this many seconds "
                                  "for it to be committed before answering 404.")), errors=(404,), access=REDACTED),
        Operation("/accounts/{addr}", "GET", api.account,
                  "Balances per class, nonce, household, standing gifts, delegations, ballot.", "ledger",
                  json_reply("The account", "Account"), (addr,), errors=(404,), access=REDACTED),
        Operation("/households/{addr}/intervals", "GET", api.intervals,
                  "Production (export_wh) and consumption (import_wh) per settlement interval, oldest first. "
                  "Default: the last 48 intervals.", "ledger", json_reply("Intervals", "Intervals"), (
                      addr, query_param("from", TIME_S, "First interval start (unix s)."),
                      query_param("to", TIME_S, "Last interval start (unix s), inclusive."), limit_param(1000, 48)),
                  errors=(404,), access=HOUSEHOLD),
        Operation("/households/{addr}/reconciliation", "GET", api.household_reconciliation,
                  "Provisional (meter-signed) against official energy per reconciled interval still in the state, "
                  "the corrections, the consent and the running totals (docs/reconciliation.md).", "ledger",
                  json_reply("Reconciliation", "HouseholdReconciliation"), (addr,), errors=(404,), access=HOUSEHOLD),
        Operation("/households/{addr}/consumers", "GET", api.consumers,
                  "Who used my energy in interval k: a_i·E_j/ΣE per consumer (DESIGN §4 step 4).", "ledger",
                  json_reply("Consumers", "Consumers"), (
                      addr, query_param("interval", Int(0, P.MAX_INTERVAL_INDEX),
                                        "Interval index k: the interval [kΔ, (k+1)Δ).", required=True),
                      CURSOR, limit_param(1000, 100)), errors=(404,), access=HOUSEHOLD),
        Operation("/households/{addr}/reads", "GET", api.household_reads,
                  "What this node's operator (its API token) or a registrar read of the household's data through "
                  "this node's API, newest first (docs/privacy.md \"Privileged reads\").", "ledger",
                  json_reply("Privileged reads", "PrivilegedReads"), (
                      addr, query_param("before", Int(1, P.MAX_HEIGHT), "Entries below this seq (the previous "
                                                                        "page's next_before)."),
                      limit_param(1000, 100)), errors=(404,), access=HOUSEHOLD),
        Operation("/txs", "GET", api.txs,
                  "Committed transactions, newest first, found by walking back at most 512 blocks per page. Meter "
                  "readings are left out unless type=tx/reading or readings=true.", "ledger",
                  json_reply("Txs", "Txs"), (
                      query_param("account", Hex32(),
                                  "Only txs naming this account (signer, to, beneficiary, provider ...)."),
                      query_param("type", Choice(TX_TAGS), "Only this transaction type."),
                      query_param("before", Int(1, P.MAX_HEIGHT),
                                  "Only blocks below this height (the previous page's next_before)."),
                      query_param("readings", Bool(False), "Include meter readings."), limit_param(100, 20)), access=REDACTED),
        Operation("/proofs/{key}", "GET", api.proof,
                  "A state entry and its inclusion proof, or a proof of its absence, against the state root in "
                  "the header of block height+1 (docs/state.md).", "ledger", json_reply("The proof", "Proof"), (
                      path_param("key", HexBytes(MAX_PROOF_KEY_BYTES), "State key (tokens/layout.py), lowercase hex.",
                                 label="state key", example=b"meta/height".hex()),
                      query_param("height", Int(0, P.MAX_HEIGHT),
                                  "State after this height; default: the last height whose root a committed "
                                  "header carries (the last committed height minus one); a node run with "
                                  "--pruning default keeps the last --keep-states heights (410 below).")),
                  errors=(403, 404, 410), access=REDACTED),
    )


def build_write_rows(api: Api) -> tuple[Operation, ...]:
    """DESIGN §9: the node takes already-signed txs and never holds anyone else's key."""
    return (
        Operation("/txs", "POST", api.submit_batch,
                  "Submit many already-signed transactions at once, encoded as a gossip tx batch "
                  "(net/txbatch, at most 4096 txs and 1 MiB): a meter gateway, or readings buffered offline.",
                  "ledger", json_reply("Each tx taken or refused.", "BatchAccepted", 202), body=BATCH_BODY,
                  write=True, errors=(503,),
                  description="Each tx is judged on its own, as by POST /tx; the answer lists the refused ones by "
                              "index. 503 only when every tx was refused because the mempool is full. Same write "
                              "rules as POST /tx.", access=LOCAL),
        Operation("/tx", "POST", api.submit, "Submit an already-signed transaction (canonical msgpack, DESIGN §2).",
                  "ledger", json_reply("Accepted into the mempool (or already there).", "Accepted", 202),
                  body=TX_BODY, write=True, errors=(503,),
                  description="Accepted from loopback clients; from others only when the node runs with "
                              "--api-token and the request carries Authorization: Bearer <token>.", access=LOCAL),
    )


def build_commune_rows(api: Api) -> tuple[Operation, ...]:
    return (
        Operation("/governance/allocation", "GET", api.allocation,
                  "The standing allocation of the surplus: live from the ballots standing now, and as applied at "
                  "the last epoch.", "governance", json_reply("Allocation", "Allocation"), access=PUBLIC),
        Operation("/governance/proposals", "GET", api.proposals, "Parameter proposals with their tallies, by id.",
                  "governance", json_reply("Proposals", "Proposals"), (
                      query_param("status", Choice(PROPOSAL_STATUSES), "Only proposals in this state."),
                      CURSOR, limit_param(100, 20)), access=PUBLIC),
        Operation("/aggregates", "GET", api.aggregates,
                  "The commune per settled interval: ΣE (exported), ΣI (imported), M (matched locally) and how "
                  "many households took part; a sum fewer than min_aggregate households make up is null "
                  "(docs/privacy.md \"Public aggregates\"). Default: the last 48 intervals.", "governance",
                  json_reply("Aggregates", "Aggregates"), (
                      query_param("from", TIME_S, "First interval start (unix s)."),
                      query_param("to", TIME_S, "Last interval start (unix s), inclusive."), limit_param(1000, 48)),
                  access=PUBLIC),
        Operation("/commune", "GET", api.commune, "Treasury, category funds (received, spent), totals and parameters.",
                  "governance", json_reply("Commune", "Commune"), access=PUBLIC),
        *build_euro_rows(api),
        Operation("/reconciliation", "GET", api.reconciliation,
                  "Reconciliation with official load curves: corrections since genesis, the share of the energy "
                  "in the state that is official, households flagged for persistent deviations.", "governance",
                  json_reply("Reconciliation", "Reconciliation"), access=REDACTED),
        Operation("/registrars", "GET", api.registrars,
                  "Registrar keys in force at the next height, and what a RegistrarSetChange needs: its next "
                  "nonce, the validators who co-sign it and how many.", "governance",
                  json_reply("Registrars", "Registrars"), access=REDACTED),
        Operation("/validators", "GET", api.validators,
                  "Validators: active, equivocating, and as seen by this node: height, round, last commit "
                  "signature.", "node", json_reply("Validators", "Validators"), (
                      query_param("offset", Int(0, P.MAX_HEIGHT, 0), "Skip this many."), limit_param(100, 100)), access=PUBLIC),
        Operation("/upgrades", "GET", api.upgrades,
                  "Protocol versions: the one in force and at the next height, every scheduled upgrade and whether "
                  "this software holds it, the fork id (EIP-2124), and what the next ScheduleUpgrade needs: its "
                  "nonce, the validators who co-sign it and how many.", "node", json_reply("Upgrades", "Upgrades"), access=PUBLIC),
        Operation("/validators/change", "GET", api.validator_change,
                  "What the next ValidatorSetChange is built on: its nonce, the validators who co-sign it "
                  "and how many must, and the latest (possibly scheduled) set it applies to.", "node",
                  json_reply("Validator change basis", "ValidatorChange"), access=PUBLIC),
    )


def build_euro_rows(api: Api) -> tuple[Operation, ...]:
    """docs/euro.md: the redemption record and the associations."""
    return (
        Operation("/euro/payouts", "GET", api.payouts,
                  "Payouts the treasury owes or paid for redeemed kWh, by id, with the euro totals since genesis.",
                  "euro", json_reply("Payouts", "Payouts"), (
                      query_param("status", Choice((STATUS_OWED, STATUS_PAID)), "Only payouts in this state."),
                      CURSOR, limit_param(1000, 100)), access=REDACTED),
        Operation("/euro/payouts/{id}", "GET", api.payout, "One payout: the id of its Redeem transaction.", "euro",
                  json_reply("The payout", "Payout"),
                  (path_param("id", Hex32(), "Id of the Redeem transaction, lowercase hex.", label="payout id",
                              example="00" * 32),), errors=(403, 404), access=REDACTED),
        Operation("/euro/ledger", "GET", api.euro_ledger,
                  "The accountant's ledger: every redemption, payout paid and debt payment with block time in "
                  "[from, to], oldest first, and the totals since genesis they reconcile with.", "euro",
                  json_reply("Euro ledger", "EuroLedger"), (
                      query_param("from", TIME_S, "First block time (unix s); default 0."),
                      query_param("to", TIME_S, "Last block time (unix s), inclusive; default: no end."),
                      query_param("after", HexBytes(EURO_LOG_KEY_BYTES),
                                  "Continue after this row key (the previous page's next_after)."),
                      limit_param(5000, 1000)), access=REDACTED),
        Operation("/associations", "GET", api.associations,
                  "Associations registered by the registrar (gift and transfer targets), in force or struck off.",
                  "euro", json_reply("Associations", "Associations"), access=PUBLIC),
    )


FORM = "application/x-www-form-urlencoded"
FORM_BYTES = 64 * 1024          # the form's fields at their longest, percent-encoded
OAUTH_TEXT = Text(500)
OAUTH_QUERY = ("response_type", "client_id", "redirect_uri", "scope", "state", "duration", "code_challenge",
               "code_challenge_method")
TOKEN_FORM = {"type": "object", "required": ["grant_type"], "properties": {
    "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token"]},
    **{name: {"type": "string", "maxLength": 500} for name in (
        "code", "redirect_uri", "client_id", "client_secret", "code_verifier", "refresh_token", "scope")}}}
REVOKE_FORM = {"type": "object", "required": ["token"], "properties": {
    "token": {"type": "string", "maxLength": 500},
    "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
    **{name: {"type": "string", "maxLength": 500} for name in ("client_id", "client_secret")}}}


def build_dataconnect_rows(consent: ConsentApi) -> tuple[Operation, ...]:
    """Enedis Data Connect v5 paths under /dataconnect, one per scope (docs/privacy.md)."""
    params = (query_param("usage_point_id", Text(14, PRM.pattern), "The usage point (PRM, 14 digits).",
                          required=True),
              query_param("start", Date(), "First local day, YYYY-MM-DD.", required=True),
              query_param("end", Date(), "Day after the last one, YYYY-MM-DD (excluded).", required=True))
    return tuple(
        Operation("/dataconnect" + m.path, "GET", consent.dataconnect_handler(m),
                  f"Data Connect {m.scope} of this node's household (scope {m.scope}; at most {m.max_days} days).",
                  "consent", json_reply("Data Connect meter reading", "MeterReading"), params, errors=(400, 404),
                  access=GRANT,
                  description="Signed by the household's key (X-Voisinage-Key, -Time, -Signature), or with an "
                              "OAuth2 bearer token of a grant holding this scope and usage point. Load curves: "
                              "the mean W of each settled half hour; daily: Wh per local day, or the day's "
                              "highest half-hour mean W (max_power).")
        for m in MEASURES)


def build_consent_rows(consent: ConsentApi) -> tuple[Operation, ...]:
    """The OAuth2 authorization-code flow and the household's consents (docs/privacy.md)."""
    oauth_query = tuple(query_param(name, OAUTH_TEXT, f"OAuth2 {name} (RFC 6749 §4.1.1; duration: ISO 8601, "
                                                      "at most P3Y)" if name == "duration" else f"OAuth2 {name}.")
                        for name in OAUTH_QUERY)
    grant_id = path_param("id", Text(16, "[0-9a-f]{16}"), "Grant id.", label="grant id", example="00" * 8)
    client_id = path_param("client_id", Text(22, "[A-Za-z0-9_-]{22}"), "Client id.", label="client id",
                           example="A" * 22)
    return (
        Operation("/oauth/authorize", "GET", consent.authorize_show,
                  "What a client asks of this household: client, scopes, duration, usage point.", "consent",
                  json_reply("The request, to approve", "AuthorizationRequest"), oauth_query, errors=(400, 401, 404),
                  access=OWN,
                  description="Signed by the household's key (it names its usage point). A browser the client "
                              "sent here (Accept: text/html, unsigned) is answered 303 to the dashboard, "
                              "/?authorize=<this query>, whose approval panel signs the same question."),
        Operation("/oauth/authorize", "POST", consent.authorize_approve,
                  "The household's decision, signed by its key: a redirect to the client with the code.", "consent",
                  Reply(302, "To the redirect URI with code and state (or error=access_denied)", {}),
                  oauth_query + (query_param("decision", Choice(("approve", "deny")), "approve (default) or deny."),),
                  errors=(400, 404), access=OWN,
                  description="With Accept: application/json (the dashboard) the redirect is answered 200 "
                              "{\"location\": ...} instead of 302, for the page to show it."),
        Operation("/oauth/token", "POST", consent.token,
                  "An access token (3 h) and a refresh token for an authorization code or a refresh token "
                  "(client_secret_basic or client_secret_post; PKCE S256 or plain).", "consent",
                  json_reply("Bearer token (RFC 6749 §5.1)", "TokenResponse"),
                  body=Body(FORM_BYTES, "a token request", {FORM: TOKEN_FORM}), errors=(401, 404), access=CLIENT),
        Operation("/oauth/revoke", "POST", consent.revoke,
                  "RFC 7009: the client revokes a token, and with it its whole grant, at once.", "consent",
                  json_reply("Revoked (or an unknown token, RFC 7009 §2.2)", "Empty"),
                  body=Body(FORM_BYTES, "a revocation request", {FORM: REVOKE_FORM}), errors=(401, 404), access=CLIENT),
        Operation("/consent/clients", "POST", consent.add_client,
                  "The household registers a third party's client: its id and secret (shown once).", "consent",
                  json_reply("The client", "ConsentClient", 201), (
                      query_param("name", Text(100), "Who the client is, as the household will see it.",
                                  required=True),
                      query_param("redirect_uri", Text(500), "Where codes go: https, or http on loopback.",
                                  required=True)), errors=(404, 409), access=OWN),
        Operation("/consent/grants", "GET", consent.grants,
                  "The household's grants (active, expired, revoked) and clients.", "consent",
                  json_reply("Grants", "ConsentGrants"), errors=(404,), access=OWN),
        Operation("/consent/grants/{id}/revoke", "POST", consent.revoke_grant,
                  "The household revokes a grant: every token of it stops working at once.", "consent",
                  json_reply("The revoked grant", "ConsentGrant"), (grant_id,), errors=(404,), access=OWN),
        Operation("/consent/clients/{client_id}/remove", "POST", consent.remove_client,
                  "The household removes a client: every grant it holds is revoked at once and its codes and "
                  "tokens are forgotten; the grants stay listed, revoked.", "consent",
                  json_reply("The removed client", "ConsentClientRemoved"), (client_id,), errors=(404,),
                  access=OWN),
        Operation("/consent/log", "GET", consent.access_log,
                  "Every Data Connect read of this household's data, newest first: who, when, scope, dates, answer.",
                  "consent", json_reply("Access log", "AccessLog"), (
                      query_param("before", Int(1, P.MAX_HEIGHT), "Entries below this seq (the previous "
                                                                  "page's next_before)."),
                      limit_param(1000, 100)), errors=(404,), access=OWN),
    )


def build_route_table(api: Api, consent: ConsentApi, assets: StaticAssets, serve_openapi: Handler,
                      example_addr: str) -> tuple[Operation, ...]:
    """Every operation of the API, in the order Starlette tries the paths."""
    addr = path_param("addr", Hex32(), "Account: Ed25519 public key, lowercase hex.", label="address",
                      example=example_addr)
    dashboard = (
        Operation("/", "GET", assets.index, "The household and commune dashboard (?addr= to choose the household).",
                  "dashboard", Reply(200, "HTML page", {"text/html": STR}), access=PUBLIC),
        Operation("/static/{name}", "GET", assets.file, "A dashboard file.", "dashboard",
                  Reply(200, "The file", {media: STR for media in get_file_media_types()}),
                  (path_param("name", Choice(assets.names, refusal=404), "File name.", label="dashboard file"),), access=PUBLIC),
        Operation("/openapi.json", "GET", serve_openapi, "This document.", "node",
                  Reply(200, "OpenAPI 3.0", {"application/json": ANY_OBJECT}), access=PUBLIC),
        Operation("/status", "GET", api.status, "This node: chain, height, round, peers, state hash.", "node",
                  json_reply("Status", "Status"), access=PUBLIC),
    )
    backup = Operation("/backup", "GET", api.backup,
                       "A backup of this node's database from one snapshot (docs/operations.md \"Backups\"); "
                       "`voisinage node backup` adds the home's files.", "node",
                       Reply(200, "The backup file format of node/store/backup.py",
                             {"application/octet-stream": {"type": "string", "format": "binary"}}),
                       write=True,
                       description="It holds every reading: served like writes, to loopback clients or with "
                                   "the --api-token bearer token.", access=LOCAL)
    metrics = Operation("/metrics", "GET", api.metrics, "Prometheus metrics (DESIGN §9).", "node",
                        Reply(200, "Prometheus text format 0.0.4", {"text/plain": STR}), access=PUBLIC)
    return (dashboard + build_ledger_rows(api, addr) + build_write_rows(api) + build_commune_rows(api)
            + (backup, metrics) + build_dataconnect_rows(consent) + build_consent_rows(consent)
            + build_ibc_rows(api))
