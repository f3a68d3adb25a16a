"""Abusive content: insults, threats and raid slang in French and English.

``assess(text)`` says how abusive a text is (``AbuseLevel``) and which lexicon entries matched.
The lexicons are plain text files shipped in ``lexicons/`` (format described at the top of
``lexicons/insults_fr.txt``); each file has one level:

- ``threats_*.txt``  -> THREAT  (violence, rape, death, "we know where you live", "kill yourself")
- ``insults_*.txt``  -> INSULT  (an insult at the reader, sexual harassment, slurs)
- ``raid_slang.txt`` -> RUDE    (the 18-25 forum's slang, raid vocabulary, generic rude words)

How a text is matched, and why
------------------------------
Raiders disguise words (``S4L0P3``, ``saloooope``, ``p.u.t.e``, ``p u t e``, ``p*te``, Cyrillic
look-alikes, emoji glued to words), while ordinary texts are full of words that *contain* an
insult (``computer``, ``réputation``, ``constitution``, ``Scunthorpe``, ``salopette``). So we never
search for substrings: we compare whole *words*, after undoing the disguises.

1. Fold: NFKD, casefold, drop accents and invisible characters, map look-alike Cyrillic/Greek
   letters and ligatures to Latin, unify apostrophes.
2. Split on whitespace into chunks, and each chunk into words at any other separator (dots,
   dashes, emoji...). Apostrophes glue (``t'es`` -> ``tes``, as it is often typed), so the
   lexicon's ``t'es conne`` matches both spellings. Leetspeak (``0->o, 4->a, 3->e, @->a, 7->t``...)
   is undone only inside words that also contain a letter, so "18-25" or "à 20h" keep their digits.
3. Besides these words, a few extra single-word candidates catch split words: a whole chunk with
   its separators removed (``p.u.t.e``, ``sal.ope``), the pieces around an apostrophe
   (``l'enculé`` -> ``enculé``), runs of single letters (``p u t e``), and ``*`` used as a
   one-letter wildcard (``p*te``).
4. A word matches an entry when it has the same letters with each run of a letter *at least* as
   long as in the entry, plus an optional plural ``-s``/``-x``/``-es``. So ``saloooope`` and
   ``salopes`` match ``salope``, but ``cone`` (cône) does not match ``conne`` and ``salopette``
   does not match ``salope``. Entries ending in ``*`` are prefixes (``encul*``).
5. Phrases (several words) must appear as consecutive words; ``^``/``$`` anchor them to the start
   or end of the text.

Speed: the lexicons are parsed once (``functools.cache``) into dictionaries keyed by each word's
"skeleton" (the word with repeated letters collapsed), plus one compiled regex for the prefixes;
a text costs a few dictionary look-ups per word (well over 20,000 texts per second).

Known limits (see tests): context is ignored, so a quoted or reported insult ("il m'a traitée de
salope") still counts, and a few ordinary phrases can collide ("je vais te retrouver au bar").
Words glued together without a separator ("grossepute") only match when listed.
"""

from __future__ import annotations

import enum
import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources

__all__ = ["AbuseLevel", "AbuseVerdict", "assess", "is_clearly_abusive", "lexicon_stats"]


class AbuseLevel(enum.IntEnum):
    """How abusive a text is; levels are ordered, so ``max()`` and ``>=`` work."""

    NONE = 0
    RUDE = 1
    INSULT = 2
    THREAT = 3


@dataclass(frozen=True)
class AbuseVerdict:
    """The level of a text and the lexicon entries that matched: single words in text order,
    then phrases in text order (deterministic, so decisions' reasons replay identically)."""

    level: AbuseLevel
    matches: tuple[str, ...]


LEXICON_FILES: dict[str, AbuseLevel] = {
    "threats_fr.txt": AbuseLevel.THREAT,
    "threats_en.txt": AbuseLevel.THREAT,
    "insults_fr.txt": AbuseLevel.INSULT,
    "insults_en.txt": AbuseLevel.INSULT,
    "raid_slang.txt": AbuseLevel.RUDE,
}
_MAX_EXPANSIONS = 10_000  # per lexicon line: a typo in "(a|b)" groups should fail loudly

# --- folding -----------------------------------------------------------------------------------


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in range(0x0300, 0x0370):  # combining diacritical marks (accents after NFKD)
        table[code] = None
    for (
        ch
    ) in "\u00ad\u034f\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff":
        table[ord(ch)] = None  # invisible characters slipped between letters
    for ch in "’‘`´ʼʹ′＇":
        table[ord(ch)] = "'"
    pairs = {
        "œ": "oe",
        "æ": "ae",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        # Cyrillic and Greek letters that look Latin (lower case: the text is casefolded first)
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "з": "3",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "η": "n",
    }
    for src, dst in pairs.items():
        table[ord(src)] = dst
    return table


_FOLD = _fold_table()
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "€": "e",
        "£": "l",
        "!": "i",
        "|": "i",
        "+": "t",
    }
)
_LEET_L = str.maketrans({"1": "l", "|": "l"})  # "sa1ope": 1 and | also stand for l
_WORD = re.compile(r"[a-z0-9@$€£!|+*]+")  # a word: letters, digits and leet symbols
_LETTER = re.compile(r"[a-z]")
_LEET_CHARS = re.compile(r"[0-9@$€£!|+]")
_REPEAT = re.compile(r"(.)\1+")
_RUN = re.compile(r"(.)\1*")
_EDGE_SYMBOLS = "!|+*"  # "pute!!!", "*pute*": punctuation at a word's edges, not letters
_PLURALS = frozenset({"", "s", "x", "es"})
# How people type a few words in texts, so that the lexicon needs only one spelling.
_SMS: dict[str, tuple[str, ...]] = {
    "jvais": ("je", "vais"),
    "jvai": ("je", "vais"),
    "jte": ("je", "te"),
    "jsais": ("je", "sais"),
    "jsai": ("je", "sais"),
    "chui": ("je", "suis"),
    "chuis": ("je", "suis"),
    "jsuis": ("je", "suis"),
    "2": ("de",),  # "fils 2 pute"
    "u": ("you",),
    "r": ("are",),
    "urself": ("yourself",),
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).casefold().translate(_FOLD)


_WORD_CACHE = 1 << 16  # distinct words remembered by the per-word caches below


@functools.lru_cache(maxsize=_WORD_CACHE)
def _clean(raw: str) -> str:
    """A raw word with edge punctuation removed and leetspeak undone (if it has a letter)."""
    word = raw.strip(_EDGE_SYMBOLS)
    if _LETTER.search(word) and _LEET_CHARS.search(word):
        return word.replace("11", "ll").translate(_LEET)  # "ki11": a double 1 is a double l
    return word


def _skeleton(word: str) -> str:
    return _REPEAT.sub(r"\1", word)


def _runs(word: str) -> tuple[tuple[str, int], ...]:
    return tuple((m.group(1), len(m.group(0))) for m in _RUN.finditer(word))


@functools.lru_cache(maxsize=_WORD_CACHE)
def _keys(word: str) -> tuple[str, ...]:
    """The word's skeleton and, for a plural-looking word, the skeleton without -s/-x/-es."""
    skeleton = _skeleton(word)
    if len(skeleton) > 2 and skeleton[-1] in "sx":
        if skeleton[-2] == "e":
            return (skeleton, skeleton[:-1], skeleton[:-2])
        return (skeleton, skeleton[:-1])
    return (skeleton,)


@dataclass
class _Scan:
    """A text cut into words: the ordered stream (for phrases) and extra single-word candidates."""

    stream: list[str]
    extra: list[str]


def _scan(text: str) -> _Scan:
    stream: list[str] = []
    extra: list[str] = []
    raw_stream: list[str] = []
    for chunk in _fold(text).split():
        parts = _WORD.findall(chunk)
        if not parts:
            continue
        if "'" in chunk:
            extra.extend(parts)
            glued = _WORD.findall(chunk.replace("'", ""))
        else:
            glued = parts
        if len(parts) > 1:
            extra.append("".join(parts))
        raw_stream.extend(glued)
        extra.extend(g.translate(_LEET_L) for g in glued if "1" in g or "|" in g)  # "sa1ope"
    # "p u t e", "p.u.t.e", "s 4 l 0 p e": runs of one-character words spell a word
    letters: list[str] = []
    for raw in [*raw_stream, ""]:
        if len(raw) == 1:
            letters.append(raw)
            continue
        if len(letters) > 1:
            extra.append("".join(letters))
        letters = []
    for raw in raw_stream:
        word = _clean(raw)
        if not word:
            continue
        expansion = _SMS.get(word)
        if expansion is None:
            stream.append(word)
        else:
            stream.extend(expansion)
    return _Scan(stream, extra)


# --- lexicon -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    chars: str  # the folded word as written, e.g. "connasse"
    runs: tuple[tuple[str, int], ...]  # (("c", 1), ("o", 1), ("n", 2), ...)

    def fits(self, runs: tuple[tuple[str, int], ...], prefix: bool = False) -> bool:
        """Whether a text word (given by its runs) is this word, stretched and/or plural."""
        mine = self.runs
        if len(runs) < len(mine):
            return False
        for (char, count), (their_char, their_count) in zip(mine, runs, strict=False):
            if char != their_char or their_count < count:
                return False
        return prefix or "".join(c for c, _ in runs[len(mine) :]) in _PLURALS


@dataclass(frozen=True)
class _Entry:
    text: str  # as written in the lexicon (after expanding alternatives), for the verdict
    level: AbuseLevel
    words: tuple[_Word, ...]
    prefix: bool = False
    at_start: bool = False
    at_end: bool = False


@dataclass
class _Node:
    """A node of the phrase trie: children by word skeleton, and the phrases ending here."""

    children: dict[str, _Node] = field(default_factory=dict)
    entries: list[_Entry] = field(default_factory=list)


@dataclass(frozen=True)
class _Index:
    singles: dict[str, list[_Entry]]  # skeleton -> one-word entries
    prefixes: dict[str, list[_Entry]]  # skeleton -> prefix entries ("encul*")
    prefix_re: re.Pattern[str] | None  # matches the start of a skeleton against every prefix
    phrases: _Node  # trie of word skeletons -> phrases and anchored entries
    by_length: dict[int, list[_Entry]]  # len(word) -> one-word entries, for "*" wildcards
    stats: dict[str, tuple[int, int]]  # file -> (lines, entries after expansion)


_GROUP = re.compile(r"\(([^()]*)\)")


def _expand(line: str) -> list[str]:
    """Expand "(a|b) c (d|)" into ["a c d", "a c", "b c d", "b c"]."""
    pieces = _GROUP.split(line)
    options = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(pieces)]
    if any("(" in p or ")" in p for p in pieces[::2]):
        raise ValueError(f"unbalanced parentheses in lexicon line {line!r}")
    count = 1
    for opts in options:
        count *= len(opts)
    if count > _MAX_EXPANSIONS:
        raise ValueError(f"lexicon line expands to {count} entries: {line!r}")
    return [" ".join("".join(combo).split()) for combo in itertools.product(*options)]


def _entry(text: str, level: AbuseLevel) -> _Entry | None:
    body = text
    at_start = body.startswith("^")
    at_end = body.endswith("$")
    body = body.strip("^$").strip()
    prefix = body.endswith("*")
    body = body.rstrip("*")
    words = _scan(body).stream
    if not words:
        return None
    if prefix and len(words) != 1:
        raise ValueError(f"a prefix entry must be one word: {text!r}")
    parsed = tuple(_Word(w, _runs(w)) for w in words)
    display = body + "*" if prefix else body
    return _Entry(display, level, parsed, prefix, at_start, at_end)


def _read_lines(name: str) -> list[str]:
    data = resources.files(__package__).joinpath("lexicons", name).read_text(encoding="utf-8")
    lines = []
    for raw in data.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


@functools.cache
def _index() -> _Index:
    singles: dict[str, list[_Entry]] = {}
    prefixes: dict[str, list[_Entry]] = {}
    phrases = _Node()
    by_length: dict[int, list[_Entry]] = {}
    stats: dict[str, tuple[int, int]] = {}
    # Spellings that fold to the same words ("où"/"ou") are one entry; files are read from the
    # most to the least severe level, so the first one seen keeps the higher level.
    seen: set[tuple[tuple[str, ...], bool, bool, bool]] = set()
    for name, level in sorted(LEXICON_FILES.items(), key=lambda item: -item[1]):
        lines = _read_lines(name)
        count = 0
        for line in lines:
            for text in _expand(line):
                entry = _entry(text, level)
                if entry is None:
                    continue
                key = (
                    tuple(w.chars for w in entry.words),
                    entry.prefix,
                    entry.at_start,
                    entry.at_end,
                )
                if key in seen:
                    continue
                seen.add(key)
                count += 1
                first = _skeleton(entry.words[0].chars)
                if entry.prefix:
                    prefixes.setdefault(first, []).append(entry)
                elif len(entry.words) > 1 or entry.at_start or entry.at_end:
                    node = phrases
                    for word in entry.words:
                        node = node.children.setdefault(_skeleton(word.chars), _Node())
                    node.entries.append(entry)
                else:
                    singles.setdefault(first, []).append(entry)
                    by_length.setdefault(len(entry.words[0].chars), []).append(entry)
        stats[name] = (len(lines), count)
    prefix_re = None
    if prefixes:
        alternatives = sorted(prefixes, key=len, reverse=True)
        prefix_re = re.compile("|".join(re.escape(p) for p in alternatives))
    return _Index(singles, prefixes, prefix_re, phrases, by_length, stats)


def load() -> None:
    """Parse the lexicons now rather than on the first text: about 0.2 s, which made a new
    process's first decision some 100 times slower than the next. Processes that decide
    texts (the web app with inline intake, the worker with queued intake) call it at start."""
    _index()


def lexicon_stats() -> dict[str, tuple[int, int]]:
    """Per lexicon file: (non-comment lines, distinct entries after expanding alternatives)."""
    return dict(_index().stats)


# --- matching ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_WORD_CACHE)
def _word_entries(word: str) -> tuple[_Entry, ...]:
    """One-word and prefix entries matched by a single (cleaned) word, remembered per word."""
    return tuple(_word_matches(_index(), word))


def _word_matches(index: _Index, word: str) -> Iterator[_Entry]:
    keys = _keys(word)
    skeleton = keys[0]
    runs: tuple[tuple[str, int], ...] | None = None
    for key in keys:
        for entry in index.singles.get(key, ()):
            runs = runs or _runs(word)
            if entry.words[0].fits(runs):
                yield entry
    if index.prefix_re is not None:
        found = index.prefix_re.match(skeleton)
        if found:
            for entry in index.prefixes[found.group(0)]:
                runs = runs or _runs(word)
                if entry.words[0].fits(runs, prefix=True):
                    yield entry
    if "*" in word:
        yield from _wildcard_matches(index, word)


def _wildcard_matches(index: _Index, word: str) -> Iterator[_Entry]:
    """ "p*te", "sal*pe": each star stands for one letter; only when most of the word is letters."""
    stars = word.count("*")
    if len(word) - stars < 2 or stars >= len(word) - stars:
        return
    pattern = _wildcard_pattern(word)
    for entry in index.by_length.get(len(word), ()):
        if pattern.fullmatch(entry.words[0].chars):
            yield entry


@functools.lru_cache(maxsize=1024)
def _wildcard_pattern(word: str) -> re.Pattern[str]:
    return re.compile("".join("[a-z]" if c == "*" else re.escape(c) for c in word))


def _phrase_matches(index: _Index, stream: list[str]) -> Iterator[_Entry]:
    """Walk the phrase trie from every word; a phrase that reaches its end is then verified
    word by word (letter runs, plural), which the skeleton-keyed trie cannot tell."""
    size = len(stream)
    keys = [_keys(word) for word in stream]
    runs_cache: dict[int, tuple[tuple[str, int], ...]] = {}

    def runs_at(i: int) -> tuple[tuple[str, int], ...]:
        if i not in runs_cache:
            runs_cache[i] = _runs(stream[i])
        return runs_cache[i]

    root = index.phrases
    starts = root.children
    for start in range(size):
        if not any(key in starts for key in keys[start]):
            continue
        stack = [(root, start)]
        while stack:
            node, i = stack.pop()
            for entry in node.entries:
                if (entry.at_start and start != 0) or (entry.at_end and i != size):
                    continue
                if all(w.fits(runs_at(start + j)) for j, w in enumerate(entry.words)):
                    yield entry
            if i < size:
                for key in keys[i]:
                    child = node.children.get(key)
                    if child is not None:
                        stack.append((child, i + 1))


def _candidates(scan: _Scan) -> Iterable[str]:
    """Every distinct word to look up alone, in text order (a dict, not a set: the order of the
    verdict's matches must not depend on the process's string hashing)."""
    words = dict.fromkeys(scan.stream)
    words.update(dict.fromkeys(_clean(raw) for raw in scan.extra))
    words.pop("", None)
    return words


def assess(text: str) -> AbuseVerdict:
    """How abusive a text is, and which lexicon entries say so (see the module docstring)."""
    index = _index()
    scan = _scan(text)
    if not scan.stream and not scan.extra:
        return AbuseVerdict(AbuseLevel.NONE, ())
    found: dict[str, AbuseLevel] = {}
    for word in _candidates(scan):
        for entry in _word_entries(word):
            found[entry.text] = max(entry.level, found.get(entry.text, AbuseLevel.NONE))
    for entry in _phrase_matches(index, scan.stream):
        found[entry.text] = max(entry.level, found.get(entry.text, AbuseLevel.NONE))
    if not found:
        return AbuseVerdict(AbuseLevel.NONE, ())
    return AbuseVerdict(max(found.values()), tuple(found))


def is_clearly_abusive(text: str) -> bool:
    """An insult at the reader or a threat (INSULT or THREAT): by default such a first text gets
    no reply, even outside a raid."""
    return assess(text).level >= AbuseLevel.INSULT
