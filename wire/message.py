"""Typed, canonical messages (DESIGN §2).

Every message is a msgpack array ``[type_tag, version, field...]`` with a fixed
field order. A message class is a frozen dataclass whose fields carry their wire
kind; ``register`` adds it to the tag registry that ``decode`` dispatches on.

Decoding is strict: wrong tag, version, field count or type, oversize input and
extra bytes are refused, and so is any encoding that is not the one we would
produce ourselves (re-encoding must give the same bytes), which rules out
non-minimal integers, maps, floats and str/bin confusion in one check.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack

from wire.errors import DecodeError
from wire.limits import MAX_TX_BYTES


class Kind(abc.ABC):
    """How one field is checked on decode and packed on encode."""

    @abc.abstractmethod
    def check(self, value: Any, where: str) -> Any:
        """Return the decoded value, or raise ``DecodeError`` saying what is wrong."""

    def pack(self, value: Any) -> Any:
        return value


class _Int(Kind):
    def __init__(self, lo: int, hi: int, name: str) -> None:
        self.lo, self.hi, self.name = lo, hi, name

    def check(self, value: Any, where: str) -> int:
        if type(value) is not int:
            raise DecodeError(f"{where}: expected {self.name}, got {type(value).__name__}")
        if not self.lo <= value <= self.hi:
            raise DecodeError(f"{where}: {value} out of range for {self.name}")
        return value


class _Bool(Kind):
    def check(self, value: Any, where: str) -> bool:
        if type(value) is not bool:
            raise DecodeError(f"{where}: expected bool, got {type(value).__name__}")
        return value


class Bytes(Kind):
    """Bytes of an exact ``size``, or of at most ``max`` bytes."""

    def __init__(self, size: int | None = None, max: int = MAX_TX_BYTES) -> None:
        self.size, self.max = size, max

    def check(self, value: Any, where: str) -> bytes:
        if type(value) is not bytes:
            raise DecodeError(f"{where}: expected bytes, got {type(value).__name__}")
        if self.size is not None and len(value) != self.size:
            raise DecodeError(f"{where}: expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max:
            raise DecodeError(f"{where}: {len(value)} bytes exceeds {self.max}")
        return value


class Str(Kind):
    """UTF-8 text of at most ``max_bytes`` encoded bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def check(self, value: Any, where: str) -> str:
        if type(value) is not str:
            raise DecodeError(f"{where}: expected str, got {type(value).__name__}")
        if len(value.encode()) > self.max_bytes:
            raise DecodeError(f"{where}: text exceeds {self.max_bytes} bytes")
        return value


class Opt(Kind):
    """``None`` or a value of ``inner``."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)

    def pack(self, value: Any) -> Any:
        return None if value is None else self.inner.pack(value)


class List(Kind):
    """A list of at most ``max_len`` values of ``inner``, returned as a tuple."""

    def __init__(self, inner: Kind, max_len: int) -> None:
        self.inner, self.max_len = inner, max_len

    def check(self, value: Any, where: str) -> tuple:
        if type(value) is not list:
            raise DecodeError(f"{where}: expected list, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise DecodeError(f"{where}: {len(value)} items exceeds {self.max_len}")
        check = self.inner.check
        return tuple(check(item, f"{where}[{i}]") for i, item in enumerate(value))

    def pack(self, value: Any) -> list:
        pack = self.inner.pack
        return [pack(item) for item in value]


class Nested(Kind):
    """An embedded message of one of the given classes."""

    def __init__(self, *classes: type[Message]) -> None:
        self.classes = classes

    def check(self, value: Any, where: str) -> Message:
        return decode_array(value, self.classes, where)

    def pack(self, value: Message) -> list:
        return value.to_array()


U64 = _Int(0, 2**64 - 1, "u64")
I64 = _Int(-(2**63), 2**63 - 1, "i64")
BOOL = _Bool()
KEY = Bytes(size=32)
HASH = Bytes(size=32)
SIG = Bytes(size=64)
OPT_KEY = Opt(KEY)
OPT_HASH = Opt(HASH)


def field_of(kind: Kind, **kwargs: Any) -> Any:
    """A dataclass field that carries its wire kind."""
    return dataclasses.field(metadata={"kind": kind}, **kwargs)


@dataclass(frozen=True)
class Message:
    """Base of every wire message. Subclasses are registered with ``register``."""

    TAG: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # (key field, signature field) pairs; signature fields are left out of the body.
    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Further fields left out of the body, e.g. a list of co-signatures.
    NOT_SIGNED: ClassVar[tuple[str, ...]] = ()
    _KINDS: ClassVar[tuple[tuple[str, Kind], ...]] = ()
    _UNSIGNED: ClassVar[tuple[tuple[str, Kind], ...]] = ()
    # The first byte of the encoding when its one signature field is its last field and
    # the array is a msgpack fixarray (wire.crypto.slice_signing_bytes); 0 otherwise.
    _SIG_LAST_HEAD: ClassVar[int] = 0
    # Per field: (name, its kind's check, where a decode error in it is said to be).
    _FIELDS: ClassVar[tuple[tuple[str, Any, str], ...]] = ()

    def to_array(self) -> list:
        return [self.TAG, self.VERSION, *(k.pack(getattr(self, n)) for n, k in self._KINDS)]

    def encode(self) -> bytes:
        return msgpack.packb(self.to_array(), use_bin_type=True)

    def body(self) -> bytes:
        """The encoding without signature fields: what every signer signs."""
        arr = [self.TAG, self.VERSION, *(k.pack(getattr(self, n)) for n, k in self._UNSIGNED)]
        return msgpack.packb(arr, use_bin_type=True)

    def id(self) -> bytes:
        return compute_id(self.encode())


def compute_id(data: bytes) -> bytes:
    """DESIGN §2: id = sha256(encoded signed message). A tx id is the id of its bytes."""
    return hashlib.sha256(data).digest()


_REGISTRY: dict[str, type[Message]] = {}


def register(tag: str, version: int = 1):
    """Class decorator: fix the tag and version and add the class to the registry."""

    def wrap(cls: type[Message]) -> type[Message]:
        if tag in _REGISTRY and _REGISTRY[tag] is not cls:
            raise ValueError(f"duplicate message tag {tag!r}")
        cls.TAG, cls.VERSION = tag, version
        kinds = tuple((f.name, f.metadata["kind"]) for f in dataclasses.fields(cls))
        sig_fields = {s for _, s in cls.SIGNERS} | set(cls.NOT_SIGNED)
        cls._KINDS = kinds
        cls._UNSIGNED = tuple(item for item in kinds if item[0] not in sig_fields)
        last = kinds[-1] if kinds else None
        one_sig_last = (len(cls._UNSIGNED) == len(kinds) - 1 and last is not None
                        and last[0] in {s for _, s in cls.SIGNERS} and isinstance(last[1], Bytes)
                        and last[1].size == 64)
        cls._SIG_LAST_HEAD = 0x90 | (2 + len(kinds)) if one_sig_last and 2 + len(kinds) <= 15 else 0
        cls._FIELDS = tuple((name, kind.check, f"{tag}.{name}") for name, kind in kinds)
        if "__post_init__" in vars(cls) or "__init__" not in vars(cls):
            # decode_array builds messages without calling __init__ (it only sets fields).
            raise ValueError(f"{tag}: a message class is a plain dataclass, without __post_init__")
        _REGISTRY[tag] = cls
        return cls

    return wrap


def registered() -> dict[str, type[Message]]:
    return dict(_REGISTRY)


def decode_array(arr: Any, expect: tuple[type[Message], ...] | None = None, where: str = "") -> Message:
    """Build a message from an already-unpacked array, checking every field."""
    if type(arr) is not list or len(arr) < 2:
        raise DecodeError(f"{where or 'message'}: expected [tag, version, ...]")
    tag, version = arr[0], arr[1]
    cls = _REGISTRY.get(tag) if type(tag) is str else None
    if cls is None:
        raise DecodeError(f"{where or 'message'}: unknown type tag {tag!r}")
    where = f"{where}.{tag}" if where else tag
    if expect is not None and cls not in expect:
        raise DecodeError(f"{where}: unexpected message type")
    if version != cls.VERSION or type(version) is not int:
        raise DecodeError(f"{where}: unsupported version {version!r}")
    fields = cls._FIELDS
    if len(arr) != 2 + len(fields):
        raise DecodeError(f"{where}: expected {len(fields)} fields, got {len(arr) - 2}")
    if where == tag:        # a message of its own: each field's place is named in advance
        values = [(name, check(value, place)) for (name, check, place), value in zip(fields, arr[2:])]
    else:                   # nested in another
        values = [(name, check(value, f"{where}.{name}")) for (name, check, _), value in zip(fields, arr[2:])]
    # Every field is checked and present: set them as the dataclass's __init__ would, at a
    # third of its cost (a frozen dataclass sets each field through object.__setattr__).
    msg = object.__new__(cls)
    msg.__dict__.update(values)
    return msg


def decode(data: Any, expect: type[Message] | tuple[type[Message], ...] | frozenset[type[Message]] | None = None,
           limit: int = MAX_TX_BYTES) -> Message:
    """Strictly decode ``data``; every failure is a ``DecodeError`` with a reason."""
    if type(data) is not bytes:
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise DecodeError(f"oversize: {len(data)} bytes exceeds {limit}")
    try:
        arr = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                              max_bin_len=limit, max_str_len=limit,
                              max_array_len=limit, max_map_len=0, max_ext_len=0)
    except msgpack.ExtraData:
        raise DecodeError("extra bytes after message") from None
    except Exception as exc:  # msgpack raises many types for garbage; all mean the same here
        raise DecodeError(f"malformed msgpack: {str(exc)[:80] or type(exc).__name__}") from None
    if isinstance(expect, type):
        expect = (expect,)
    msg = decode_array(arr, expect)
    if msgpack.packb(arr, use_bin_type=True) != data:
        raise DecodeError("non-canonical encoding")
    return msg
