"""The access line: exactly one JSON line at INFO for every request that reaches a door, written when it ends.

The door's view opens the line (who is calling, which door and path) and finishes it with the status it
answered; the pipeline notes what the call was (model, tokens, cost, latency, attempts) when it records the
outcome. A stream's outcome is recorded after its last chunk, so its line waits for both: whichever of
"finished" and "noted" comes second writes it. No prompt, response text or key is ever in it (the key's
display prefix only).
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("router.access")

_line: contextvars.ContextVar[AccessLine | None] = contextvars.ContextVar("access_line", default=None)


@dataclass(slots=True)
class AccessLine:
    request_id: str
    door: str
    method: str
    path: str
    fields: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    expects_note: bool = False  # the pipeline has a row for this request: its outcome will be noted
    noted: bool = False
    written: bool = False

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        logger.info(
            "request",
            extra={
                "request_id": self.request_id,
                "door": self.door,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                **self.fields,
            },
        )


def access_open(*, request_id: str, door: str, method: str, path: str) -> AccessLine:
    line = AccessLine(request_id=request_id, door=door, method=method, path=path)
    line.fields = dict.fromkeys(
        ("key_prefix", "user_id", "team_id", "model", "provider", "cached", "prompt_tokens",
         "completion_tokens", "cost_usd", "latency_ms", "overhead_ms", "attempts"),
    )  # fmt: skip
    _line.set(line)
    return line


def access_caller(*, key_prefix: str | None, user_id: int, team_id: int | None) -> None:
    line = _line.get()
    if line is not None:
        line.fields.update(key_prefix=key_prefix, user_id=user_id, team_id=team_id)


def access_expect_note() -> None:
    """The pipeline wrote this request's row: its outcome will be noted, perhaps after the view returned."""
    line = _line.get()
    if line is not None:
        line.expects_note = True


def access_note(**outcome: Any) -> None:
    """What the call was, from the pipeline's record of it; writes the line if the view already finished."""
    line = _line.get()
    if line is None:
        return
    line.fields.update(outcome)
    line.noted = True
    if line.status is not None:
        line.write()


def access_finish(line: AccessLine, status: int, *, streamed: bool = False) -> None:
    """The view answered. A plain answer's outcome was recorded before it (the line is written now); a stream's
    last byte may go out before its outcome is recorded, and then the note writes the line."""
    if line.status is None:
        line.status = status
    if not streamed or line.noted or not line.expects_note:
        line.write()
