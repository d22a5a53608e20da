"""The package's one bounded LRU cache: bounds in entries and bytes, recency, stale entries, resizing, threads."""

from __future__ import annotations

import threading

import pytest

from monai_baldsam.cache import BoundedLRU


def test_entries_and_bytes_bound_it_least_recently_used_first() -> None:
    cache: BoundedLRU[str, bytes] = BoundedLRU(max_items=3, max_bytes=10, size=len)
    for key in "abc":
        assert cache.put(key, b"xxx")
    assert cache.get("a") == b"xxx"  # now the most recently used
    cache.put("d", b"xxx")  # 12 bytes > 10: the least recently used ("b") goes
    assert list(cache) == ["c", "a", "d"] and cache.nbytes == 9
    assert not cache.put("c", b"x" * 11) and "c" not in cache  # larger than the cache: not kept, old value dropped
    assert (cache.hits, cache.misses) == (1, 0) and cache.get("b") is None and cache.misses == 1
    cache.resize(1)
    assert list(cache) == ["d"]
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.hits == 1
    cache.clear(reset_counters=True)
    assert (cache.hits, cache.misses) == (0, 0)


def test_a_stale_entry_is_dropped_and_counts_as_a_miss() -> None:
    cache: BoundedLRU[int, tuple[str, int]] = BoundedLRU(max_items=4)
    cache.put(1, ("sig-a", 7))
    assert cache.get(1, valid=lambda entry: entry[0] == "sig-a") == ("sig-a", 7)
    assert cache.get(1, valid=lambda entry: entry[0] == "sig-b") is None and 1 not in cache
    assert (cache.hits, cache.misses) == (1, 1)


def test_bounds_are_checked_and_values_are_made_once_across_threads() -> None:
    with pytest.raises(ValueError, match="positive"):
        BoundedLRU(max_items=0)
    with pytest.raises(ValueError, match="positive"):
        BoundedLRU(max_items=1, max_bytes=0)
    cache: BoundedLRU[str, object] = BoundedLRU(max_items=2)
    made = []
    threads = [threading.Thread(target=cache.get_or_put, args=("m", lambda: made.append(1) or object()))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(cache) == 1
