"""Transfers between communes over HTTP (docs/communes.md): what a relayer and the
dashboard read. A relayer carries a header with its commit (GET /ibc/headers/{height}),
the packets in flight (GET /ibc/packets/{dest}) and proofs (GET /proofs/{key}) from one
commune to the other; it holds no key, and every tx it posts is checked by its proof."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from consensus.block import Block, Commit, Header
from node.api.access import PUBLIC
from node.api import params as P
from node.api.openapi import ANY_OBJECT
from node.api.operations import Call, Operation, Reply
from node.api.params import Hex32, Int, path_param, query_param
from tokens.books_ibc import get_book_entries
from tokens.queries import get_validator_set
from tokens.queries_ibc import encode_packet_json, get_ibc_view, get_in_flight, get_transfers
from wire import MAX_BLOCK_BYTES, decode

if TYPE_CHECKING:
    from node.api.app import Api

MAX_PACKETS = 1000


def read_signed_header(snap: Any, height: int) -> dict[str, Any] | None:
    """The header and commit of ``height`` (encoded, hex) and the keys of the set that signs
    height+1, which an UpdateClient carries when the header changes the set."""
    if height < 1 or height > snap.height():
        return None
    raw_block, raw_commit = snap.block(height), snap.commit(height)
    if raw_block is not None:
        header = decode(raw_block, Block, MAX_BLOCK_BYTES).header
    else:
        raw_header = snap.pruned_header(height)
        if raw_header is None:
            return None
        header = decode(raw_header, Header, MAX_BLOCK_BYTES)
    if raw_commit is None:
        return None
    commit = decode(raw_commit, Commit, MAX_BLOCK_BYTES)
    return {"height": height, "time_ms": header.time_ms, "state_hash": header.state_hash.hex(),
            "header": header.encode().hex(), "commit": commit.encode().hex(),
            "next_validators": [k.hex() for k in get_validator_set(snap.state, height + 1)]}


class IbcApi:
    """The handlers; reads use one store snapshot each, as the rest of the API."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def view(self, call: Call) -> Response:
        def read(snap) -> dict[str, Any]:
            return dict(get_ibc_view(snap.state), height=snap.height())
        return JSONResponse(self.api.with_snapshot(read))

    async def transfers(self, call: Call) -> Response:
        return JSONResponse(self.api.with_snapshot(lambda s: get_transfers(s.state, call["limit"])))

    async def packets(self, call: Call) -> Response:
        def read(snap) -> dict[str, Any]:
            found = get_in_flight(snap.state, call["dest"], call["limit"])
            return {"height": snap.height(), "packets": [encode_packet_json(p) for p in found]}
        return JSONResponse(self.api.with_snapshot(read))

    async def books(self, call: Call) -> Response:
        def read(snap) -> dict[str, Any]:
            entries = get_book_entries(snap.state, call["chain"])
            return {"height": snap.height(), "entries": {k.hex(): v.hex() for k, v in entries.items()}}
        return JSONResponse(self.api.with_snapshot(read))

    async def header(self, call: Call) -> Response:
        doc = self.api.with_snapshot(lambda s: read_signed_header(s, call["height"]))
        return self.api.found(doc, f"no committed header and commit of height {call['height']} here")


def build_ibc_rows(api: Api) -> tuple[Operation, ...]:
    ibc = IbcApi(api)
    ok = Reply(200, "JSON", {"application/json": ANY_OBJECT})
    return (
        Operation("/ibc", "GET", ibc.view,
                  "Linked communes: their light clients (latest height, frozen, evidence, validator sets), the "
                  "channels with their escrow and packets in flight, vouchers in circulation, and misbehaviour "
                  "of this chain's own validators relayed back (docs/communes.md).", "communes", ok, access=PUBLIC),
        Operation("/ibc/transfers", "GET", ibc.transfers,
                  "Transfers to and from other communes, newest first, with their status.", "communes", ok,
                  (query_param("limit", Int(1, 500, 50), "How many of each direction."),), access=PUBLIC),
        Operation("/ibc/packets/{dest}", "GET", ibc.packets,
                  "Packets sent to chain dest and not yet acknowledged or refunded, oldest first: what a "
                  "relayer carries.", "communes", ok,
                  (path_param("dest", Hex32(), "Destination chain id, hex.", label="chain id"),
                   query_param("limit", Int(1, MAX_PACKETS, 200), "Page size.")), access=PUBLIC),
        Operation("/ibc/books/{chain}", "GET", ibc.books,
                  "The state entries (hex keys and values) of this chain's books with chain ``chain``, all read at "
                  "one height: next sequence, escrow, vouchers, light client, every packet sent there and every "
                  "receipt of one from there; per-packet conservation is computed from two chains' reads "
                  "(tokens/books_ibc.py).", "communes", ok,
                  (path_param("chain", Hex32(), "The other chain's id, hex.", label="chain id"),), access=PUBLIC),
        Operation("/ibc/headers/{height}", "GET", ibc.header,
                  "A committed header and its commit (encoded, hex), with the keys of the set that signs the "
                  "next height: what UpdateClient carries to another commune.", "communes", ok,
                  (path_param("height", Int(1, P.MAX_HEIGHT), "Block height."),), errors=(404,), access=PUBLIC),
    )
