"""Rate limits counted in one process and in Redis: the same answers from both
(a controlled clock drives each), and the 429s and headers calls get."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import need_redis
from tollway.limits import Admission, Limits, Subject
from tollway.limits.local import LocalLimiter
from tollway.limits.rules import headers_of, refusal, reset_text
from tollway.limits.shared import SharedLimiter

IDS = itertools.count(1)


class Clocked:
    """A limiter whose clock the test turns (seconds, as a float)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.now = 1_000_000.0
        self.limiter: LocalLimiter | SharedLimiter
        if kind == "local":
            self.limiter = LocalLimiter(clock=lambda: self.now)
        else:
            self.limiter = SharedLimiter(need_redis())

    async def admit(self, subjects: tuple[Subject, ...], tokens: int = 0) -> Admission:
        if isinstance(self.limiter, SharedLimiter):
            self.limiter.now_ms = int(self.now * 1000)
        return await self.limiter.admit(f"req-{next(IDS)}", subjects, tokens)

    async def finish(self, admission: Admission, used: int) -> None:
        assert admission.ticket is not None
        if isinstance(self.limiter, SharedLimiter):
            self.limiter.now_ms = int(self.now * 1000)
        await self.limiter.finish(admission.ticket, used)


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Clocked]:
    clocked = Clocked(request.param)
    yield clocked
    await clocked.limiter.close()


def token(limits: Limits) -> Subject:
    # A fresh id each test: Redis keeps windows between tests for a minute or two.
    return Subject("token", secrets.randbelow(10**12) + 10**6, limits)


def account(limits: Limits) -> Subject:
    return Subject("account", secrets.randbelow(10**12) + 10**6, limits)


async def test_requests_a_minute_slide_by_the_second(limiter: Clocked) -> None:
    subject = (token(Limits(rpm=3)),)
    passed = [await limiter.admit(subject) for _ in range(3)]
    assert all(not a.refused_by for a in passed)
    assert [a.requests.remaining for a in passed if a.requests] == [2, 1, 0]
    limiter.now += 10
    refused = await limiter.admit(subject)
    assert refused.refused_by == "requests" and refused.subject == "token"
    assert refused.retry_after_s == pytest.approx(50, abs=0.01)  # the first second leaves at +60
    limiter.now += 49.9
    assert (await limiter.admit(subject)).refused_by == "requests"
    limiter.now += 0.2  # the first second's calls have left the window
    assert not (await limiter.admit(subject)).refused_by


async def test_a_refused_call_is_not_counted(limiter: Clocked) -> None:
    subject = (token(Limits(rpm=1)),)
    assert not (await limiter.admit(subject)).refused_by
    for _ in range(5):
        assert (await limiter.admit(subject)).refused_by == "requests"
    limiter.now += 60
    assert not (await limiter.admit(subject)).refused_by


async def test_tokens_count_the_hold_then_what_was_used(limiter: Clocked) -> None:
    subject = (token(Limits(tpm=1000)),)
    first = await limiter.admit(subject, tokens=800)
    assert not first.refused_by and first.tokens and first.tokens.remaining == 200
    refused = await limiter.admit(subject, tokens=300)
    assert refused.refused_by == "tokens" and not refused.too_large
    await limiter.finish(first, used=100)  # it used far less than it held
    second = await limiter.admit(subject, tokens=300)
    assert not second.refused_by and second.tokens and second.tokens.remaining == 600


async def test_a_call_larger_than_the_limit_never_fits(limiter: Clocked) -> None:
    refused = await limiter.admit((token(Limits(tpm=100)),), tokens=101)
    assert refused.refused_by == "tokens" and refused.too_large
    error = refusal(refused, 101)
    assert error.status == 429 and "Lower max_tokens" in error.message


async def test_calls_at_once(limiter: Clocked) -> None:
    subject = (token(Limits(concurrent=2)),)
    one, two = await limiter.admit(subject), await limiter.admit(subject)
    third = await limiter.admit(subject)
    assert third.refused_by == "concurrent"
    await limiter.finish(one, 0)
    assert not (await limiter.admit(subject)).refused_by
    await limiter.finish(two, 0)


async def test_the_account_limit_binds_every_token(limiter: Clocked) -> None:
    shared = account(Limits(rpm=2))
    first = (token(Limits(rpm=100)), shared)
    second = (token(Limits(rpm=100)), shared)
    assert not (await limiter.admit(first)).refused_by
    assert not (await limiter.admit(second)).refused_by
    refused = await limiter.admit(first)
    assert refused.refused_by == "requests" and refused.subject == "account"
    # The token's own window did not count the refused call.
    assert refused.requests and refused.requests.limit == 2


async def test_the_tightest_headroom_is_reported(limiter: Clocked) -> None:
    admission = await limiter.admit((token(Limits(rpm=10, tpm=500)), account(Limits(rpm=3))), 50)
    assert admission.requests and (admission.requests.limit, admission.requests.remaining) == (3, 2)
    headers = headers_of(admission)
    assert headers["x-ratelimit-limit-tokens"] == "500"
    assert headers["x-ratelimit-remaining-tokens"] == "450"
    assert headers["x-ratelimit-remaining-requests"] == "2"


async def test_redis_shares_the_count_between_limiters() -> None:
    """Two processes' limiters on one Redis: the limit is the limit, not 2x."""
    url = need_redis()
    one, two = SharedLimiter(url), SharedLimiter(url)
    subject = (token(Limits(rpm=5)),)
    try:
        answers = await asyncio.gather(
            *(limiter.admit(f"r{i}", subject, 0) for i in range(10) for limiter in (one, two))
        )
        assert sum(not a.refused_by for a in answers) == 5
    finally:
        await one.close()
        await two.close()


async def test_redis_down_fails_open_or_closed() -> None:
    subject = (token(Limits(rpm=1)),)
    open_ = SharedLimiter("redis://127.0.0.1:1/0", fail_open=True)
    closed = SharedLimiter("redis://127.0.0.1:1/0", fail_open=False)
    try:
        for _ in range(3):  # past the limit: nothing counts
            answer = await open_.admit("r", subject, 0)
            assert not answer.refused_by and answer.ticket is None
        assert open_.unavailable == 3
        with pytest.raises(Exception) as refused:
            await closed.admit("r", subject, 0)
        assert getattr(refused.value, "status", None) == 503
    finally:
        await open_.close()
        await closed.close()


async def test_a_dead_replicas_calls_stop_counting_at_once() -> None:
    url = need_redis()
    limiter = SharedLimiter(url)
    subject = (token(Limits(concurrent=1)),)
    try:
        limiter.now_ms = 5_000_000
        assert not (await limiter.admit("a", subject, 0)).refused_by  # never finished
        assert (await limiter.admit("b", subject, 0)).refused_by == "concurrent"
        limiter.now_ms += 901_000  # past STALE_CALL_S
        assert not (await limiter.admit("c", subject, 0)).refused_by
    finally:
        await limiter.close()


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.02, "20ms"), (1, "1s"), (1.2, "2s"), (59, "59s"), (360, "6m0s")]
)
def test_reset_is_written_as_openai_does(seconds: float, text: str) -> None:
    assert reset_text(seconds) == text


async def test_finishes_wait_out_a_redis_outage_and_count_once() -> None:
    """Finishes made while Redis is unreachable are sent once it answers, each
    exactly once, however many finish at the same time."""
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(tpm=1000, concurrent=5)),)
    try:
        tickets = []
        for name in "abcd":
            admission = await limiter.admit(name, subject, 200)
            assert admission.ticket is not None
            tickets.append(admission.ticket)
        limiter._down_until = float("inf")  # as after a failed call: Redis left alone
        await limiter.finish(tickets[0], 0)
        await limiter.finish(tickets[1], 0)
        limiter._down_until = 0.0
        await asyncio.gather(limiter.finish(tickets[2], 0), limiter.finish(tickets[3], 0))
        after = await limiter.admit("e", subject, 1000)  # all 800 held tokens given back
        assert not after.refused_by, after
        assert after.tokens and after.tokens.remaining == 0
    finally:
        await limiter.close()


async def test_a_script_redis_forgot_is_loaded_again() -> None:
    """After SCRIPT FLUSH (or a Redis restart) the first call loads the script."""
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(rpm=5)),)
    try:
        assert not (await limiter.admit("a", subject, 0)).refused_by
        await limiter.client.run_raw(b"SCRIPT", b"FLUSH")
        assert not (await limiter.admit("b", subject, 0)).refused_by
        assert limiter.unavailable == 0
    finally:
        await limiter.close()


async def test_a_redis_that_never_answers_times_out_and_fails_open() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # takes the command, answers nothing
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = SharedLimiter(f"redis://127.0.0.1:{port}/0")
    try:
        started = asyncio.get_running_loop().time()
        answer = await limiter.admit("a", (token(Limits(rpm=1)),), 0)
        assert not answer.refused_by and answer.ticket is None
        assert limiter.unavailable == 1
        assert asyncio.get_running_loop().time() - started < 2  # the 0.5 s read timeout
    finally:
        await limiter.close()
        server.close()
        await server.wait_closed()


async def test_one_connection_carries_many_calls_at_once() -> None:
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(rpm=50)),)
    try:
        answers = await asyncio.gather(*(limiter.admit(f"r{i}", subject, 0) for i in range(200)))
        assert sum(not a.refused_by for a in answers) == 50
        assert limiter.unavailable == 0
    finally:
        await limiter.close()


async def test_calls_asked_together_go_in_one_script_call_and_stay_exact() -> None:
    """Admits asked in one loop turn are decided by one script call, in order,
    exactly as one by one: 30 of 100 pass (the account's limit), one token's
    5 at once refuse its other calls, and the headers count down."""
    limiter = SharedLimiter(need_redis())
    shared_account = account(Limits(rpm=30, tpm=10_000))
    tokens = [token(Limits(rpm=1000, concurrent=5)), token(Limits(rpm=1000))]
    try:
        answers = await asyncio.gather(
            *(limiter.admit(f"r{i}", (tokens[i % 2], shared_account), 100) for i in range(100))
        )
        assert limiter.script_calls == 1
        admitted = [a for a in answers if not a.refused_by]
        assert len(admitted) == 30
        assert [a.requests.remaining for a in admitted if a.requests] == list(range(29, -1, -1))
        refused = {(a.refused_by, a.subject) for a in answers if a.refused_by}
        assert refused == {("requests", "account"), ("concurrent", "token")}
        calls = limiter.script_calls
        await asyncio.gather(*(limiter.finish(a.ticket, 50) for a in admitted if a.ticket))
        assert limiter.script_calls == calls + 1  # the finishes went together too
        after = await limiter.admit("after", (tokens[0],), 0)
        assert after.ticket is not None  # each of the 5 at once was given back
    finally:
        await limiter.close()


async def test_an_admit_whose_caller_left_gives_its_slot_back() -> None:
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(concurrent=1)),)
    try:
        left = asyncio.ensure_future(limiter.admit("gone", subject, 0))
        await asyncio.sleep(0)  # asked, not yet sent
        left.cancel()
        await asyncio.sleep(0.1)
        assert limiter.script_calls == 0  # never sent: nothing counted
        left = asyncio.ensure_future(limiter.admit("gone too", subject, 0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # sent, not yet answered
        assert limiter.script_calls == 1
        left.cancel()
        await asyncio.sleep(0.1)  # admitted in Redis, then given back
        assert not limiter._unfinished and limiter.script_calls == 2
        assert (await limiter.admit("next", subject, 0)).ticket is not None
    finally:
        await limiter.close()


async def _closing_and_killed_connections_are_replaced(url: str) -> None:
    """A connection closing but not yet reported lost, and one Redis killed,
    are both replaced: later calls are counted, none passes unchecked for long."""
    limiter = SharedLimiter(url, leases=False)  # every call on the connection
    subject = (token(Limits(rpm=1000)),)
    try:
        assert (await limiter.admit("a", subject, 0)).ticket is not None
        conn = limiter.client._conn
        assert conn is not None and conn.transport is not None
        conn.transport.close()  # closing now; its loss is reported on a later tick
        assert (await limiter.admit("b", subject, 0)).ticket is not None
        assert limiter.unavailable == 0 and limiter.client._conn is not conn

        client_id = await limiter.client.run_raw(b"CLIENT", b"ID")
        killer = SharedLimiter(url)
        await killer.client.run_raw(b"CLIENT", b"KILL", b"ID", client_id)
        await killer.close()
        await asyncio.sleep(0.05)
        await limiter.admit("c", subject, 0)  # may pass unchecked: the loss is news
        await asyncio.sleep(1.1)  # past the limiter's DOWN_S
        counted = await limiter.admit("d", subject, 0)
        assert counted.ticket is not None and counted.requests is not None
        assert counted.requests.remaining == 1000 - (4 - limiter.unavailable)
    finally:
        await limiter.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_closing_and_killed_connections_are_replaced(loop: str) -> None:
    url = need_redis()
    if loop == "uvloop":
        import uvloop

        uvloop.run(_closing_and_killed_connections_are_replaced(url))
    else:
        asyncio.run(_closing_and_killed_connections_are_replaced(url))


async def counted_in_redis(subjects: tuple[Subject, ...], now_ms: int) -> Admission:
    """What Redis itself counts for ``subjects`` at ``now_ms``: one call more,
    admitted by a limiter without leases (the headers say what is left)."""
    check = SharedLimiter(need_redis(), leases=False)
    check.now_ms = now_ms
    try:
        return await check.admit("check", subjects, 0)
    finally:
        await check.close()


async def test_a_lease_admits_calls_far_from_their_limits_without_redis() -> None:
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(rpm=1000, tpm=100_000, concurrent=100)),)
    limiter.now_ms = 7_000_000_000
    try:
        first = await limiter.admit("first", subject, 100)
        assert first.ticket is not None and limiter.script_calls == 1
        later = [await limiter.admit(f"r{i}", subject, 100) for i in range(20)]
        assert all(a.ticket is not None for a in later) and limiter.script_calls == 1
        assert [a.requests.remaining for a in later if a.requests] == list(range(998, 978, -1))
        assert [a.tokens.remaining for a in later if a.tokens][-1] == 100_000 - 21 * 100
        for admission in later:  # they used half what they held: back to the lease
            assert admission.ticket is not None
            await limiter.finish(admission.ticket, 50)
        assert limiter.script_calls == 1
    finally:
        await limiter.close()
    # Closed, the lease gave back what it did not use: Redis counts the calls made.
    seen = await counted_in_redis(subject, 7_000_000_000)
    assert seen.requests and seen.requests.remaining == 1000 - 22
    assert seen.tokens and seen.tokens.remaining == 100_000 - 100 - 20 * 50


async def test_calls_queued_behind_a_lease_grant_are_admitted_from_that_lease() -> None:
    """Calls asked while the script that grants their subject a lease is on
    its way wait for it, then take from the lease: no second script call
    (which would hand the new lease back and take another, call after call)."""
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(rpm=1000, tpm=100_000, concurrent=100)),)
    limiter.now_ms = 8_000_000_000
    try:
        first = asyncio.ensure_future(limiter.admit("first", subject, 100))
        await asyncio.sleep(0)  # its script call is on its way
        queued = [asyncio.ensure_future(limiter.admit(f"q{i}", subject, 100)) for i in range(20)]
        answers = await asyncio.gather(first, *queued)
        assert all(a.ticket is not None for a in answers)
        assert limiter.script_calls == 1
        assert [a.requests.remaining for a in answers if a.requests][1:] == list(
            range(998, 978, -1)
        )
        for admission in answers:
            assert admission.ticket is not None
            limiter.end(admission.ticket, 100)
        assert limiter.script_calls == 1
    finally:
        await limiter.close()
    seen = await counted_in_redis(subject, 8_000_000_000)
    assert seen.requests and seen.requests.remaining == 1000 - 22
    assert seen.tokens and seen.tokens.remaining == 100_000 - 21 * 100


async def test_replicas_with_leases_never_pass_a_shared_limit() -> None:
    """Three limiters taking leases of one limit: together they never admit
    more than it; what leases hold only delays calls, and goes back when
    they end."""
    limiters = [SharedLimiter(need_redis()) for _ in range(3)]
    subject = (account(Limits(rpm=200)),)
    for limiter in limiters:
        limiter.now_ms = 9_000_000_000
    try:
        answers = []
        for i in range(300):
            answers.append(await limiters[i % 3].admit(f"r{i}", subject, 0))
        admitted = sum(a.ticket is not None for a in answers)
        assert 150 <= admitted <= 200  # never past; at most the leases' shares short
    finally:
        for limiter in limiters:
            await limiter.close()
    seen = await counted_in_redis(subject, 9_000_000_000)
    assert seen.requests and seen.requests.remaining == 200 - admitted - 1


async def test_a_lease_ends_with_its_second_and_gives_back_what_it_holds() -> None:
    """On Redis's clock: a lease's unused requests and slots are Redis's again
    once its second is over, with no call needed to notice."""
    limiter = SharedLimiter(need_redis())
    subject = (token(Limits(rpm=1000, concurrent=100)),)
    key = f"{limiter.prefix}{subject[0].key}"
    try:
        admission = await limiter.admit("a", subject, 0)
        assert admission.ticket is not None
        assert int(await limiter.client.run_raw(b"HGET", f"{key}:buckets", b"sr")) > 1
        assert int(await limiter.client.run_raw(b"ZCARD", f"{key}:running")) > 1
        await asyncio.sleep(1.2)
        assert int(await limiter.client.run_raw(b"HGET", f"{key}:buckets", b"sr")) == 1
        assert int(await limiter.client.run_raw(b"ZCARD", f"{key}:running")) == 1  # the call
        await limiter.finish(admission.ticket, 0)  # its lease is over: ended in Redis
        assert int(await limiter.client.run_raw(b"ZCARD", f"{key}:running")) == 0
    finally:
        await limiter.close()
