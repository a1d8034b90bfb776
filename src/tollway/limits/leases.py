"""Leases of rate limits: a share of what a subject has left, taken from Redis
ahead of need, so its calls far from their limits are admitted in this
process without a round trip.

When Redis admits a call of a subject that has room to spare, it also counts
a lease to this process in the same script: a quarter (``SHARE``) of the
requests and tokens left in the window, counted in the current second as if
already used, and as many calls-at-once slots (members of the subject's
in-flight set, at most ``MAX_SLOTS``). Calls then take from the lease here.
Since what is leased is counted in Redis, every replica together still never
admits past a limit; what a lease can cost is the other way: the requests,
tokens and slots it holds are not free for other replicas until it ends. A
lease ends with its second (then what it did not use goes back to Redis),
so a refusal can come early by at most what leases hold for under a second.
Near a limit the share rounds to nothing and every call goes to Redis, as
without leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tollway.limits.rules import Admission, Headroom, Subject, Ticket, reset_text

SHARE = 4  # a lease takes at most 1/SHARE of what is left
MAX_SLOTS = 256  # calls-at-once slots a lease holds at most
UNLIMITED = -1  # the subject has no limit of this kind: nothing to count


@dataclass(slots=True)
class Lease:
    subject: Subject
    second: int  # the Redis second its requests and tokens were counted in
    expires: float  # event-loop time its second ends (unused then with a test clock)
    requests: int  # unused (UNLIMITED: no limit)
    tokens: int
    slots: list[str] | None  # idle slots, by member name (None: no limit)
    requests_left: int  # the subject's requests left beyond the lease, when granted
    tokens_left: int
    reset_s: float
    reset: str = ""  # reset_s as the x-ratelimit-reset-* headers write it
    open: bool = True

    def __post_init__(self) -> None:
        self.reset = reset_text(self.reset_s)

    def covers(self, tokens: int) -> bool:
        return (
            self.requests != 0
            and (self.tokens == UNLIMITED or self.tokens >= tokens)
            and (self.slots is None or bool(self.slots))
        )

    def take(self, tokens: int) -> str:
        """One call's share: its request, its tokens and a slot (its name, or '')."""
        if self.requests > 0:
            self.requests -= 1
        if self.tokens != UNLIMITED:
            self.tokens -= tokens
        if self.slots is None:
            return ""
        return self.slots.pop()

    def give_back(self, slot: str, unused_tokens: int) -> None:
        """A call ended while the lease is open: its slot and the tokens it
        held and did not use are the lease's again."""
        if slot and self.slots is not None:
            self.slots.append(slot)
        if self.tokens != UNLIMITED and unused_tokens > 0:
            self.tokens += unused_tokens


def admit_locally(
    request_id: str, subjects: Sequence[Subject], leases: Sequence[Lease], tokens: int
) -> Admission:
    """Admit a call from its subjects' leases (each covers it), with the
    headroom of the tightest for its headers."""
    slots = []
    requests: Headroom | None = None
    tokens_room: Headroom | None = None
    for lease in leases:
        slots.append(lease.take(tokens))
        limits = lease.subject.limits
        if limits.rpm is not None:
            left = lease.requests_left + lease.requests
            if requests is None or left < requests.remaining:
                requests = Headroom(limits.rpm, left, lease.reset_s, lease.reset)
        if limits.tpm is not None:
            left = lease.tokens_left + lease.tokens
            if tokens_room is None or left < tokens_room.remaining:
                tokens_room = Headroom(limits.tpm, left, lease.reset_s, lease.reset)
    ticket = Ticket(request_id, tuple(subjects), tokens, leases[0].second, tuple(slots), leases)
    return Admission(ticket, requests, tokens_room)
