"""Embedding vectors as the wire's base64 form holds them: little-endian IEEE-754 float32, concatenated."""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Sequence

FLOAT32_BYTES = 4
_BIG_ENDIAN = sys.byteorder == "big"


def floats_pack(values: Sequence[float]) -> bytes:
    """Floats as little-endian float32 bytes (what base64 embeddings carry). Raises TypeError for non-numbers."""
    packed = array("f", values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def floats_unpack(data: bytes) -> list[float]:
    """Little-endian float32 bytes as Python floats (each exactly the float32 value)."""
    unpacked = array("f")
    unpacked.frombytes(data)
    if _BIG_ENDIAN:
        unpacked.byteswap()
    return unpacked.tolist()


def vector_from_base64(text: str) -> bytes:
    """A base64 embedding as bytes; ValueError when it is not base64 of whole float32 values."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if len(data) % FLOAT32_BYTES:
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 values")
    return data


def vector_to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
