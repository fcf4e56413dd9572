"""Did the consent recording say the consent text? A pure comparison of words, no I/O.

The expected statement and what the box heard are normalized to plain lowercase words and aligned
(word-level Levenshtein, jiwer). The *match ratio* is the share of the expected words the
alignment pairs with a heard word that is the same word — or, for the person's own name and
long words, a close spelling, because a small ASR model writes "Scaiecho" as "sky echo" and
"Siobhan" as "Shivaun". Words the person added count against the ratio too, so reading a long
text plus the statement is not the statement. Meaning is checked strictly: a negation the text
does not have ("I do *not* consent") fails whatever the ratio.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import jiwer

#: Words that turn a consent into a refusal when they appear in what was heard but not in the text.
NEGATIONS = frozenset({"not", "no", "never", "cannot", "refuse", "withdraw", "decline", "neither", "nor", "without"})
#: Small numbers Whisper writes as digits; the text may spell them out.
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")  # fmt: skip
#: Contractions written out, on both sides, so "I'm" and "I am" (and "don't", "do not") compare equal.
_CONTRACTIONS = (
    (r"\bcan't\b", "can not"),
    (r"\bwon't\b", "will not"),
    (r"n't\b", " not"),
    (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should)nt\b", r"\1 not"),  # typed without '
    (r"'m\b", " am"),
    (r"'re\b", " are"),
    (r"'ve\b", " have"),
    (r"'ll\b", " will"),
    (r"'d\b", " would"),
)
#: Letters a spelled variant must share with the expected word (difflib ratio) to count.
CLOSE_SPELLING = 0.75
#: The same for the words of the person's name, which a small ASR model spells worst.
CLOSE_NAME_SPELLING = 0.6
#: Words shorter than this must be heard exactly (short words differ by meaning, not spelling).
MIN_FUZZY_CHARS = 5


def words(text: str) -> list[str]:
    """Lowercase words without punctuation or accents; digits 0-20 spelled out."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    plain = plain.replace("\u2019", "'")
    for short, full in _CONTRACTIONS:
        plain = re.sub(short, full, plain)
    plain = plain.replace("'", "")
    tokens = re.findall(r"[^\W_]+", plain)
    return [_NUMBERS[int(t)] if t.isdigit() and int(t) < len(_NUMBERS) else t for t in tokens]


@dataclass(frozen=True)
class TextMatch:
    """How well the heard words follow the expected ones."""

    ratio: float
    """Matched expected words / max(expected words, heard words), 0-1."""
    expected_words: int
    heard_words: int
    missing: tuple[str, ...]
    """Expected words not heard, in order (at most 12, for the message)."""
    added_negations: tuple[str, ...]
    """Negations heard that the text does not contain: the statement's meaning changed."""

    def passes(self, threshold: float) -> bool:
        """True when the words match well enough and no negation was added."""
        return self.ratio >= threshold and not self.added_negations


def _close(expected: str, heard: str, lenient: frozenset[str]) -> bool:
    if expected == heard:
        return True
    name = expected in lenient
    if not name and len(expected) < MIN_FUZZY_CHARS:
        return False
    return difflib.SequenceMatcher(None, expected, heard).ratio() >= (CLOSE_NAME_SPELLING if name else CLOSE_SPELLING)


def _spellings(heard: list[str], j: int) -> list[str]:
    """The heard word at ``j``, and joined with each neighbour (an ASR may split one word in two)."""
    found = [heard[j]]
    if j > 0:
        found.append(heard[j - 1] + heard[j])
    if j + 1 < len(heard):
        found.append(heard[j] + heard[j + 1])
    return found


def match(expected_text: str, heard_text: str, names: str = "") -> TextMatch:
    """Compare the consent text with what was heard; ``names`` (the person's full name) is spelled leniently."""
    expected, heard = words(expected_text), words(heard_text)
    lenient = frozenset(words(names))
    added = tuple(sorted({w for w in heard if w in NEGATIONS} - set(expected)))
    if not expected or not heard:
        return TextMatch(0.0, len(expected), len(heard), tuple(expected[:12]), added)
    out = jiwer.process_words(" ".join(expected), " ".join(heard))
    matched = 0
    missing: list[str] = []
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            matched += chunk.ref_end_idx - chunk.ref_start_idx
        elif chunk.type == "delete":
            missing.extend(expected[chunk.ref_start_idx : chunk.ref_end_idx])
        elif chunk.type == "substitute":
            for i, e in enumerate(expected[chunk.ref_start_idx : chunk.ref_end_idx]):
                if any(_close(e, h, lenient) for h in _spellings(heard, chunk.hyp_start_idx + i)):
                    matched += 1
                else:
                    missing.append(e)
    ratio = matched / max(len(expected), len(heard))
    return TextMatch(round(ratio, 3), len(expected), len(heard), tuple(missing[:12]), added)
