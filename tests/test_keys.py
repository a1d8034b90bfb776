"""Keys and request ids."""

from __future__ import annotations

import re
import time

from tollway.keys import display_prefix, hash_key, new_key, new_request_id


def test_request_ids_are_unique_and_sort_in_the_order_they_were_made() -> None:
    ids = []
    for _ in range(2_000):
        ids.append(new_request_id())
    time.sleep(0.002)
    later = new_request_id()
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"req_[0-9a-f]{25}", i) for i in ids)
    # the time part never goes back (several in one microsecond share it)
    stamps = [i[4:17] for i in ids]
    assert stamps == sorted(stamps)
    assert later > max(ids)


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    a, b = new_key(), new_key()
    assert a != b and a.startswith("sk-") and len(a) > 40
    assert hash_key(a) == hash_key(a) != hash_key(b)
    assert len(hash_key(a)) == 64
    assert display_prefix(a) == f"{a[:7]}...{a[-4:]}"
