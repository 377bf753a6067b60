"""Path and query parameters of the HTTP API: declared once, parsed strictly, documented.

A ``Param`` is both what a route reads and what /openapi.json says about it: its
kind parses the text and gives the JSON schema from the same bounds, so a client
that follows the document is never refused and one that does not always gets a
400 with the reason (404 for a dashboard file), never a 500 (DESIGN §9).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_HEIGHT = 2**63 - 1          # heights, and the ``before`` cursor of /txs
MAX_TIME_S = 2**62              # interval starts (unix seconds)
MAX_INTERVAL_INDEX = 2**40      # k of interval [kΔ, (k+1)Δ)
MAX_BLOCK_WAIT_S = 10           # GET /blocks/{h}?wait=: the longest wait for the next block
HEX32 = re.compile(r"[0-9a-f]{64}")
HEX_BYTES = re.compile(r"([0-9a-f]{2})+")
INT = re.compile(r"(0|[1-9][0-9]{0,18})")

Schema = dict[str, Any]
HEX32_SCHEMA: Schema = {"type": "string", "pattern": f"^{HEX32.pattern}$"}


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


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]; ``default`` when the parameter is absent."""

    low: int
    high: int
    default: int | None = None
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> int:
        return parse_int(text, what, self.low, self.high)

    def get_schema(self) -> Schema:
        schema: Schema = {"type": "integer", "minimum": self.low, "maximum": self.high}
        return schema if self.default is None else dict(schema, default=self.default)


@dataclass(frozen=True)
class Hex32:
    """A key, address or id; absent means None."""

    default: ClassVar[None] = None
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> bytes:
        return parse_hex32(text, what)

    def get_schema(self) -> Schema:
        return dict(HEX32_SCHEMA)


@dataclass(frozen=True)
class HexBytes:
    """Bytes of 1 to ``max_bytes``, as lowercase hex (a state key)."""

    max_bytes: int
    default: ClassVar[None] = None
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> bytes:
        if len(text) > 2 * self.max_bytes or HEX_BYTES.fullmatch(text) is None:
            raise HTTPException(400, f"{what} must be 1 to {self.max_bytes} bytes as lowercase hex")
        return bytes.fromhex(text)

    def get_schema(self) -> Schema:
        return {"type": "string", "pattern": f"^{HEX_BYTES.pattern}$", "minLength": 2,
                "maxLength": 2 * self.max_bytes}


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of names; ``refusal`` is the status for any other."""

    choices: tuple[str, ...]
    refusal: int = 400
    default: ClassVar[None] = None

    def parse(self, text: str, what: str) -> str:
        if text not in self.choices:
            raise HTTPException(self.refusal, f"{what} must be one of {', '.join(self.choices)}")
        return text

    def get_schema(self) -> Schema:
        return {"type": "string", "enum": list(self.choices)}


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``, nothing else."""

    default: bool = False
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> bool:
        if text not in ("true", "false"):
            raise HTTPException(self.refusal, f"{what} must be true or false")
        return text == "true"

    def get_schema(self) -> Schema:
        return {"type": "boolean", "default": self.default}


@dataclass(frozen=True)
class Text:
    """A string of at most ``max_len`` characters, matching ``pattern`` if one is given;
    an OAuth2 parameter is left to the OAuth2 layer, which refuses with its own codes."""

    max_len: int
    pattern: str | None = None
    default: ClassVar[None] = None
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> str:
        if len(text) > self.max_len:
            raise HTTPException(400, f"{what} is at most {self.max_len} characters")
        if self.pattern is not None and re.fullmatch(self.pattern, text) is None:
            raise HTTPException(400, f"{what} must match {self.pattern}")
        return text

    def get_schema(self) -> Schema:
        schema: Schema = {"type": "string", "maxLength": self.max_len}
        return schema if self.pattern is None else dict(schema, pattern=f"^{self.pattern}$")


@dataclass(frozen=True)
class Date:
    """A calendar date YYYY-MM-DD (Data Connect's start and end)."""

    default: ClassVar[None] = None
    refusal: ClassVar[int] = 400

    def parse(self, text: str, what: str) -> dt.date:
        try:
            if len(text) != 10:
                raise ValueError(text)
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise HTTPException(400, f"{what} must be a date YYYY-MM-DD") from None
        if not 1971 <= day.year <= 9998:
            raise HTTPException(400, f"{what} must be a date between the years 1971 and 9998")
        return day

    def get_schema(self) -> Schema:
        return {"type": "string", "format": "date"}


Kind = Int | Hex32 | HexBytes | Choice | Bool | Text | Date


@dataclass(frozen=True)
class Param:
    """One parameter of one operation; ``label`` names it in error messages."""

    name: str
    where: Literal["path", "query"]
    kind: Kind
    description: str
    required: bool = False
    label: str = ""
    example: str | None = None

    def get_doc(self) -> dict[str, Any]:
        """Its OpenAPI 3.0 Parameter Object."""
        doc = {"name": self.name, "in": self.where, "required": self.required,
               "schema": self.kind.get_schema(), "description": self.description}
        return doc if self.example is None else dict(doc, example=self.example)


def path_param(name: str, kind: Kind, description: str, label: str = "", example: str | None = None) -> Param:
    return Param(name, "path", kind, description, True, label, example)


def query_param(name: str, kind: Kind, description: str, required: bool = False) -> Param:
    return Param(name, "query", kind, description, required)


def parse_param(param: Param, text: str | None) -> Any:
    if text is None:
        if param.required:
            raise HTTPException(400, f"query parameter {param.name} is required")
        return param.kind.default
    return param.kind.parse(text, param.label or param.name)


def parse_params(params: Sequence[Param], request: Request) -> Mapping[str, Any]:
    """Every declared parameter of the request, parsed, in declaration order; others are ignored."""
    found = {}
    for param in params:
        source = request.path_params if param.where == "path" else request.query_params
        found[param.name] = parse_param(param, source.get(param.name))
    return found
