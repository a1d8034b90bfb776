"""What a stream delivered, read from its hub chunks as they pass."""

from __future__ import annotations

from typing import Any


class Tally:
    """The text generated so far (for counting when no usage comes) and the
    choices delivered: a choice counts once a delta of it carried something
    generated (text, a refusal, a tool call, audio) or its end
    (``finish_reason``); the opening ``{"role": "assistant", "content": ""}``
    is nothing yet."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._delivered: set[int | str] = set()

    def text(self) -> str:
        return "".join(self._text)

    def delivered(self) -> int:
        return len(self._delivered)

    def take(self, choices: Any) -> None:
        """Note a chunk's ``choices``."""
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            delivered = choice.get("finish_reason") is not None
            if isinstance(delta, dict):
                delivered = self._take_delta(delta) or delivered
            if delivered:
                index = choice.get("index", position)
                self._delivered.add(index if isinstance(index, int | str) else position)

    def _take_delta(self, delta: dict[str, Any]) -> bool:
        """Keep the delta's text; True when it carried anything generated."""
        if len(delta) == 1:  # most chunks: {"content": "..."}
            content = delta.get("content")
            if isinstance(content, str):
                if content:
                    self._text.append(content)
                return bool(content)
        generated = bool(delta.get("audio"))
        for key in ("content", "reasoning_content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._text.append(text)
                generated = True
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            generated = True
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                self._text.append(function["arguments"])
        return generated
