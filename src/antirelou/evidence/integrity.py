"""Walking a chain and naming the first broken record: shared by both verifiers.

The walk reads records in seq order and checks, for each: that its seq is the next one,
that its fields still give its stored hash, and that its prev_hash is the previous
record's hash. At the first failure it works out what happened from what is left:

- removed:   a gap in the seqs; or a record whose fields hash correctly only at a LATER
             seq and whose predecessor is nowhere (the ones after were renumbered);
- reordered: a record whose fields hash correctly at ANOTHER seq (it was moved);
- inserted:  a record that hashes nowhere (or at its own seq) while the next record is
             chained straight to the one before it, or moved up by one to make room;
- changed:   fields that hash correctly at no seq; or a valid record that the next one
             does not chain to (it was rewritten and re-hashed); or content whose digest
             no longer matches.

A rewrite that re-hashes every later record too is consistent on its own: only the signed
checkpoints show it (checked by the callers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from antirelou.evidence.hashing import GENESIS, ChainRow

SEARCH = 200_000  # how far to look for the seq a moved record was written at


@dataclass(frozen=True)
class Problem:
    """What is wrong, where: `seq` is the first broken record (None if not a record)."""

    what: str  # changed | removed | reordered | inserted | signature | timestamp | file
    detail: str
    seq: int | None = None
    where: str = ""

    def __str__(self) -> str:
        place = f"record {self.seq}" if self.seq is not None else ""
        place = ", ".join(filter(None, [self.where, place]))
        return f"{place}: {self.what}: {self.detail}" if place else f"{self.what}: {self.detail}"


@dataclass
class Walk:
    """How far the chain held: the last good record, and the first problem if any."""

    count: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    problem: Problem | None = None
    hashes: dict[int, str] = field(default_factory=dict)  # seq -> hash, when asked for


Lookup = Callable[[str], int | None]  # record_hash -> the seq of the row holding it


def walk(
    rows: Iterable[ChainRow],
    by_hash: Lookup,
    first_seq: int = 1,
    prev_hash: str | None = GENESIS,
    keep: Callable[[int], bool] | None = None,
) -> Walk:
    """Check the chain from `first_seq`; `prev_hash=None` trusts the first link (a bundle's
    segment starts mid-chain). `keep(seq)` says which hashes to remember for checkpoints."""
    state = Walk(last_seq=first_seq - 1, last_hash=prev_hash or GENESIS)
    previous: ChainRow | None = None
    for row, following in _pairs(rows):
        expected_prev = state.last_hash if (previous or prev_hash) else row.prev_hash
        state.problem = _check(row, following, previous, state.last_seq + 1, expected_prev, by_hash)
        if state.problem:
            return state
        state.count += 1
        state.last_seq, state.last_hash, previous = row.seq, row.record_hash, row
        if keep and keep(row.seq):
            state.hashes[row.seq] = row.record_hash
    return state


def _pairs(rows: Iterable[ChainRow]) -> Iterator[tuple[ChainRow, ChainRow | None]]:
    iterator = iter(rows)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


def _check(
    row: ChainRow,
    following: ChainRow | None,
    previous: ChainRow | None,
    expected: int,
    prev_hash: str,
    by_hash: Lookup,
) -> Problem | None:
    if row.seq > expected:
        missing = f"{expected}" if row.seq == expected + 1 else f"{expected} to {row.seq - 1}"
        return Problem("removed", f"record(s) {missing} are missing", expected)
    if row.seq < expected:
        return Problem("inserted", f"a second record numbered {row.seq}", row.seq)
    if not row.intact:
        return _misplaced(row, following, prev_hash, by_hash)
    if row.prev_hash != prev_hash:
        return _broken_link(row, previous, by_hash)
    return None


def _misplaced(
    row: ChainRow, following: ChainRow | None, prev_hash: str, by_hash: Lookup
) -> Problem:
    """The row's fields do not give its hash at its seq: moved, inserted or changed?"""
    n = row.seq
    written_at = _written_at(row, by_hash)
    if written_at is None:
        if _skips_over(following, n, prev_hash):
            detail = "not part of the chain: the next record follows the one before it"
            return Problem("inserted", detail, n)
        return Problem("changed", "its fields no longer give its hash", n)
    linked = by_hash(row.prev_hash) is not None
    if written_at > n and not linked:
        detail = (
            f"{written_at - n} record(s) before the one written as {written_at} were "
            "deleted and the later ones renumbered"
        )
        return Problem("removed", detail, n)
    if written_at == n - 1 and linked:
        detail = f"the record after it was written as {written_at}: this one was slipped in"
        return Problem("inserted", detail, n - 1)
    return Problem("reordered", f"the record found here was written as record {written_at}", n)


def _skips_over(following: ChainRow | None, n: int, prev_hash: str) -> bool:
    """The next row was written at `n`, right after the previous one: this one is extra."""
    if following is None or following.prev_hash != prev_hash:
        return False
    return following.hash_as(n) == following.record_hash


def _written_at(row: ChainRow, by_hash: Lookup) -> int | None:
    """The seq at which the row's fields give its stored hash, if any."""
    linked = by_hash(row.prev_hash)
    candidates = [linked + 1] if linked is not None else []
    for distance in range(1, SEARCH):
        candidates += [row.seq + distance, row.seq - distance]
        for seq in candidates:
            if seq > 0 and row.hash_as(seq) == row.record_hash:
                return seq
        candidates = []
    return None


def _broken_link(row: ChainRow, previous: ChainRow | None, by_hash: Lookup) -> Problem:
    """Both rows hash fine but do not link: one of them was rewritten and re-hashed."""
    if previous is None:
        return Problem("changed", "the first record does not start the chain", row.seq)
    if by_hash(row.prev_hash) is None:
        return Problem(
            "changed",
            f"it was rewritten: record {row.seq} was chained to another version of it",
            previous.seq,
        )
    return Problem("reordered", "it is chained to a record that is elsewhere", row.seq)
