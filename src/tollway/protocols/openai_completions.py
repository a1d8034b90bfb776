"""OpenAI's legacy completions stream (``object: "text_completion"`` chunks).

Its chunks are chat's but for where the text is: ``choices[].text`` instead
of ``choices[].delta.content``; the usage chunk (``choices: []``) is the same.
So a completions stream is read by chat's scanner with this tally.
"""

from __future__ import annotations

from typing import Any

from tollway.protocols.tally import Tally


class TextTally(Tally):
    """The text generated so far and the choices delivered, of completion chunks:
    a choice counts once a chunk of it carried text or its end."""

    def take(self, choices: Any) -> None:
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            text = choice.get("text")
            delivered = choice.get("finish_reason") is not None
            if isinstance(text, str) and text:
                self._text.append(text)
                delivered = True
            if delivered:
                index = choice.get("index", position)
                self._delivered.add(index if isinstance(index, int | str) else position)
