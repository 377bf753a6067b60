"""What one row of the route table says, and the Starlette routes made from the rows.

An ``Operation`` is one method on one path (DESIGN §9): its handler, the parameters
it reads, the body it takes, what it answers and whether it writes. The routes are
made here and /openapi.json in node/api/openapi.py, both from the same rows
(node/api/routes.py), so neither can list what the other lacks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.api.access import (
    ACCESS_CLASSES, GRANT, HOUSEHOLD, OWN, PUBLIC_VIEWER, AccessRefused, Gate, Viewer,
    get_identified_classes,
)
from node.api.auth import verify_write_allowed
from node.api.params import Param, Schema, parse_params


@dataclass(frozen=True)
class Call:
    """One request's inputs once its operation has checked them."""

    args: Mapping[str, Any]
    body: bytes = b""
    request: Request | None = None      # for the handlers that read headers (node/api/consent.py)
    viewer: Viewer = PUBLIC_VIEWER      # who asks (node/api/access.py): redacted routes answer by it

    def __getitem__(self, name: str) -> Any:
        return self.args[name]


Handler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Body:
    """A body of canonical msgpack (DESIGN §2), or of another ``content`` (a schema per
    media type): ``what`` it is, at most ``limit`` bytes."""

    limit: int
    what: str
    content: Mapping[str, Schema] | None = None


@dataclass(frozen=True)
class Reply:
    """The success answer: its status, and a schema per media type."""

    status: int
    description: str
    content: Mapping[str, Schema]


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    handler: Handler
    summary: str
    tag: str
    ok: Reply
    params: tuple[Param, ...] = ()
    body: Body | None = None
    write: bool = False             # guarded by node/api/auth.py: loopback, or the bearer token
    errors: tuple[int, ...] = ()    # answered by the handler itself: 404 nothing there, 503 busy
    description: str = ""
    access: str = ""                # who may read it: a class of node/api/access.py (every row names one)


def compute_error_codes(op: Operation) -> tuple[int, ...]:
    """Every error status ``op`` may answer: its parameters' refusals, a bad or too large
    body (400, 413), a refused writer (401, 403), and its handler's own."""
    codes = {p.kind.refusal for p in op.params} | set(op.errors)
    if op.body is not None:
        codes |= {400, 413}
    if op.write:
        codes |= {401, 403}
    if op.access in get_identified_classes() or op.access == OWN:
        codes.add(401)          # credentials given must be good (node/api/access.py)
    if op.access in (HOUSEHOLD, GRANT):
        # 403: another household's signature, or (GRANT) a token without the scope or usage point.
        codes |= {401, 403}
    return tuple(sorted(codes))


async def read_body(request: Request, body: Body) -> bytes:
    """The request body, refused with 413 as soon as it passes ``body.limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body.limit:
        raise HTTPException(413, f"{body.what} is at most {body.limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > body.limit:
            raise HTTPException(413, f"{body.what} is at most {body.limit} bytes")
    return b"".join(chunks)


def refuse(exc: AccessRefused) -> Response:
    headers = {"WWW-Authenticate": 'Voisinage-Signature realm="household"'} if exc.status == 401 else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def make_endpoint(op: Operation, api_token: str | None, gate: Gate) -> Endpoint:
    """The Starlette endpoint of ``op``: the write guard, then the parameters, then who
    asks and whether the route's access class serves them, then the body."""
    identified = op.access in get_identified_classes()

    async def endpoint(request: Request) -> Response:
        if op.write:
            verify_write_allowed(request, api_token)
        args = parse_params(op.params, request)
        viewer = PUBLIC_VIEWER
        try:
            if identified:
                viewer = gate.identify(request)
                gate.check(op.access, viewer, args)
            if op.body is None:
                response = await op.handler(Call(args, request=request, viewer=viewer))
            else:
                try:
                    data = await read_body(request, op.body)
                except ClientDisconnect:
                    # The client left before its body arrived: nobody to answer, nothing to log.
                    return Response(status_code=400)
                response = await op.handler(Call(args, data, request, viewer))
        except AccessRefused as exc:
            return refuse(exc)
        if identified:
            gate.log_read(op.access, viewer, args, request, response.status_code)
        return response
    return endpoint


def make_dispatch(endpoints: Mapping[str, Endpoint]) -> Endpoint:
    """The endpoint of a path: its one operation's, or one choosing by method."""
    if len(endpoints) == 1:
        return next(iter(endpoints.values()))

    async def dispatch(request: Request) -> Response:
        # HEAD is answered as GET would be; Starlette leaves the body out.
        return await endpoints["GET" if request.method == "HEAD" else request.method](request)
    return dispatch


def build_routes(table: Sequence[Operation], api_token: str | None, gate: Gate) -> list[Route]:
    """One Starlette route per path, in table order, so that a wrong method gets one 405
    whose Allow lists every method of the path."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in table:
        endpoints = by_path.setdefault(op.path, {})
        if op.method in endpoints:
            raise ValueError(f"the route table has {op.method} {op.path} twice")
        if op.access not in ACCESS_CLASSES:
            raise ValueError(f"{op.method} {op.path}: access class {op.access!r} is not one of node/api/access.py's")
        endpoints[op.method] = make_endpoint(op, api_token, gate)
    return [Route(path, make_dispatch(endpoints), methods=list(endpoints)) for path, endpoints in by_path.items()]
