"""LUFFY's "repeatness" test: skip Math-Verify on long answers that mostly repeat themselves."""

from __future__ import annotations


def _suffix_array(codes: list[int]) -> list[int]:
    """Suffix array by prefix doubling (ranks of 2k-prefixes from ranks of k-prefixes)."""
    n = len(codes)
    rank = codes[:]
    order = list(range(n))
    k = 1
    while True:
        keys = [(rank[i], rank[i + k] if i + k < n else -1) for i in range(n)]
        order.sort(key=keys.__getitem__)
        new_rank = [0] * n
        for pos in range(1, n):
            new_rank[order[pos]] = new_rank[order[pos - 1]] + (keys[order[pos]] != keys[order[pos - 1]])
        rank = new_rank
        if rank[order[-1]] == n - 1 or k >= n:
            return order
        k *= 2


def _lcp_sum(codes: list[int], order: list[int]) -> int:
    """Sum over neighbours in suffix order of their common-prefix length (Kasai's method)."""
    n = len(codes)
    rank = [0] * n
    for pos, start in enumerate(order):
        rank[start] = pos
    total = common = 0
    for start in range(n):
        if rank[start] == n - 1:
            common = 0
            continue
        other = order[rank[start] + 1]
        while start + common < n and other + common < n and codes[start + common] == codes[other + common]:
            common += 1
        total += common
        common = max(common - 1, 0)
    return total


def is_repetitive(text: str, threshold: float = 0.2) -> bool:
    """True when the neighbouring-suffix common prefixes cover more than ``threshold`` of all n(n+1)/2 pairs."""
    n = len(text)
    if n <= 1:
        return False
    codes = [ord(ch) for ch in text]
    return _lcp_sum(codes, _suffix_array(codes)) * 2 / (n * (n + 1)) > threshold
