"""Path and query parameters of the HTTP API: strict parsing, a 400 with a reason otherwise.

Every bound here is also stated in the OpenAPI document (node/api/openapi.py), which
reads these constants, so a client that follows the document is never refused and
one that does not always gets a 400, never a 500.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_HEIGHT = 2**63 - 1          # heights, and the ``before`` cursor of /txs
MAX_TIME_S = 2**62              # interval starts (unix seconds)
MAX_INTERVAL_INDEX = 2**40      # k of interval [kΔ, (k+1)Δ)
MAX_BLOCK_WAIT_S = 10           # GET /blocks/{h}?wait=: the longest wait for the next block
HEX32 = re.compile(r"[0-9a-f]{64}")
INT = re.compile(r"(0|[1-9][0-9]{0,18})")


def parse_hex32(text: str, what: str) -> bytes:
    """A 32-byte key or id as 64 lowercase hex characters."""
    if HEX32.fullmatch(text) is None:
        raise HTTPException(400, f"{what} must be 64 lowercase hex characters")
    return bytes.fromhex(text)


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """A decimal integer in [low, high], written without sign or leading zeros."""
    if INT.fullmatch(text) is None:
        raise HTTPException(400, f"{what} must be a non-negative integer")
    value = int(text)
    if not low <= value <= high:
        raise HTTPException(400, f"{what} must be between {low} and {high}")
    return value


def get_int(request: Request, name: str, low: int, high: int, default: int | None = None) -> int | None:
    text = request.query_params.get(name)
    return default if text is None else parse_int(text, name, low, high)


def get_required_int(request: Request, name: str, low: int, high: int) -> int:
    value = get_int(request, name, low, high)
    if value is None:
        raise HTTPException(400, f"query parameter {name} is required")
    return value


def get_hex32(request: Request, name: str) -> bytes | None:
    text = request.query_params.get(name)
    return None if text is None else parse_hex32(text, name)


def get_choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    text = request.query_params.get(name)
    if text is not None and text not in choices:
        raise HTTPException(400, f"{name} must be one of {', '.join(choices)}")
    return text


def get_bool(request: Request, name: str, default: bool = False) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return default
    if text not in ("true", "false"):
        raise HTTPException(400, f"{name} must be true or false")
    return text == "true"
