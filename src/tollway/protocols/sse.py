"""Server-sent events, split out of bytes that arrive in any pieces."""

from __future__ import annotations

# An event longer than this without its blank line is not a stream we can
# read; past it, the pending bytes are dropped instead of growing forever.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SseSplitter:
    """Feeds bytes, yields ``(event type, data)`` for each complete event.

    CRLF and LF line ends are both accepted; ``event:`` defaults to
    ``b"message"``; several ``data:`` lines are joined with newlines;
    comments (``:``-lines) and events without data are skipped.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        if b"\r" in data or self._pending.endswith(b"\r"):
            data = (self._pending + data).replace(b"\r\n", b"\n")
            self._pending = b""
        self._pending += data
        if b"\n\n" not in self._pending:
            if len(self._pending) > MAX_EVENT_BYTES:
                self._pending = b""
            return []
        *blocks, self._pending = self._pending.split(b"\n\n")
        events = []
        for block in blocks:
            event = _parse(block)
            if event is not None:
                events.append(event)
        return events


def _parse(block: bytes) -> tuple[bytes, bytes] | None:
    kind = b"message"
    data: list[bytes] = []
    for line in block.split(b"\n"):
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"event":
            kind = value
        elif field == b"data":
            data.append(value)
    return (kind, b"\n".join(data)) if data else None
