"""When a word of the phrase being spoken becomes final: agreement of two decodes, or the delay bound.

The session decodes the open phrase again and again as it grows (from the start of its buffer to
the newest audio). A word is committed, never to change again, when

- **two consecutive decodes agree** on it and on every word before it (LocalAgreement-2, as in
  whisper_streaming: the longest common prefix of the new words of the last two hypotheses), or
- **waiting would break the bound**: the word ended long enough ago that the next decode (which
  comes a "cycle" later) would deliver it past ``max_delay_s``. Then the newest decode's word is
  taken as it is. A word touching the end of the decoded audio is never forced: it may be cut.
- **Whisper is sure of it**: its probability is at least ``sure`` and the decoded audio goes on
  ``sure_after_s`` after it (and every word before it is final): one decode is enough.
- **the phrase closed**: its last decode is final and every new word in it is committed.

Decodes overlap what is already committed (the buffer keeps some committed audio for context),
so a hypothesis is first reduced to its *new* words: those whose middle lies after the end of
the last committed word, minus a repetition of the committed tail at the boundary (a word
Whisper hears again because its timing drifted). Times are seconds from the stream start.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.base import Word

#: A pause between two final words this long is a clean place to cut the decode buffer.
MIN_CUT_GAP_S = 0.12
#: A word ending closer than this to the end of the decoded audio may be cut: never forced.
TAIL_GUARD_S = 0.3
#: Longest repetition of the committed tail looked for at the start of a new hypothesis.
MAX_REPEAT = 4
#: A repeated word counts as a repetition only this close after the last committed word.
REPEAT_WINDOW_S = 0.6
#: Words that start closer than this one after the other and last less than this a word were not spoken (`crammed`).
MIN_WORD_S = 0.06
#: Squeezed words at the end of a decode taken as made up even when they repeat nothing.
MAX_SQUEEZED = 4

_NON_WORD = re.compile(r"[^\w']+")


def normal(text: str) -> str:
    """A word for comparison: lower case, no punctuation, no spaces."""
    return _NON_WORD.sub("", text.lower())


def shifted(words: Sequence[Word], offset_s: float) -> list[Word]:
    """``words`` with ``offset_s`` added to their times."""
    return [dataclasses.replace(w, start=w.start + offset_s, end=w.end + offset_s) for w in words]


def _squeezed(words: Sequence[Word]) -> bool:
    """Words lasting, all together, less than ``MIN_WORD_S`` a word."""
    return words[-1].end - words[0].start < MIN_WORD_S * len(words)


def crammed(hypothesis: Sequence[Word]) -> int:
    """How many words at the end of a decode Whisper made up: 0 mostly.

    Cut off in the middle of speech, Whisper sometimes ends a decode with words squeezed into the
    last instant of the audio, each starting less than ``MIN_WORD_S`` after the one before and all
    of them lasting less than ``MIN_WORD_S`` a word: the sentence it just heard said again (on
    the pyannote sample "Oh, I'm originally from Chicago." twice, the second time in 0.16 s), a
    stock phrase (on a tuning call "get a lot of stuff", five words at one instant, where nobody
    said it), or a loop (on a tuning meeting "If you want to see the video, please like and
    subscribe." three times over 0.8 s of the end of a reading). Nobody speaks that fast:

    - from the first squeezed repetition of two or more words just before it, every word is dropped;
    - then a squeezed tail is dropped when it repeats the words before it or holds
      ``MAX_SQUEEZED`` words or more.

    If speech was there, the next decode hears it. (Two or three squeezed words that repeat
    nothing are kept: Whisper squeezes the timing of real words cut off at the end of the audio
    too.)
    """
    said = [normal(w.text) for w in hypothesis]
    keep = next(
        (
            at
            for at in range(2, len(hypothesis) - 1)
            for n in range(2, min(at, len(hypothesis) - at) + 1)
            if said[at : at + n] == said[at - n : at] and _squeezed(hypothesis[at : at + n])
        ),
        len(hypothesis),
    )
    words = hypothesis[:keep]
    run = 1 if words else 0
    while run < len(words) and words[-run].start - words[-run - 1].start < MIN_WORD_S:
        run += 1
    if run >= 2 and _squeezed(words[-run:]):
        tail, before = said[keep - run : keep], said[keep - 2 * run : keep - run]
        if run >= MAX_SQUEEZED or tail == before:
            keep -= run
    return len(hypothesis) - keep


@dataclass(frozen=True)
class Update:
    """What one decode changed: the words committed by it, and those still tentative."""

    committed: list[Word]
    tentative: list[Word]
    #: How many of ``committed`` were forced by the delay bound (neither agreed nor sure).
    forced: int = 0


class Committer:
    """The commit state of one phrase.

    ``before`` is the commit state of the phrase before it, whose end its decodes hear again as
    context: until this phrase has final words of its own, a word belongs to it only if it lies
    after ``floor_s`` (where the phrase before ended) and after the last final word of that one.
    """

    def __init__(
        self,
        max_delay_s: float,
        before: Committer | None = None,
        floor_s: float = 0.0,
        *,
        sure: float | None = None,
        sure_after_s: float = 0.5,
    ) -> None:
        self.max_delay_s = max_delay_s
        self.sure = sure
        self.sure_after_s = sure_after_s
        self.committed: list[Word] = []
        self._previous: list[Word] = []  # the new words of the last hypothesis
        self._before = before
        self.floor_s = floor_s

    @property
    def committed_until(self) -> float | None:
        """End of the last committed word, or None before the first commit."""
        return self.committed[-1].end if self.committed else None

    def _final(self) -> list[Word]:
        """The final words a new word must come after: this phrase's, else the end of the one before."""
        if self.committed or self._before is None:
            return self.committed
        return self._before.committed[-MAX_REPEAT:]

    def new_words(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The words of a hypothesis after what is committed (see the module docstring)."""
        hypothesis = hypothesis[: len(hypothesis) - crammed(hypothesis)]
        final = self._final()
        last = max(final[-1].end, self.floor_s) if final else self.floor_s
        fresh = [w for w in hypothesis if (w.start + w.end) / 2 > last and normal(w.text)]
        tail = [normal(w.text) for w in final[-MAX_REPEAT:]]
        for n in range(min(MAX_REPEAT, len(fresh), len(tail)), 0, -1):
            head = fresh[:n]
            if [normal(w.text) for w in head] == tail[-n:] and head[-1].start < last + REPEAT_WINDOW_S:
                return fresh[n:]
        return fresh

    def update(self, hypothesis: Sequence[Word], audio_end_s: float, now_s: float, cycle_s: float) -> Update:
        """Take a decode of the open phrase up to ``audio_end_s``, whose result is in at stream time
        ``now_s``; the next decode is expected ``cycle_s`` later."""
        current = self.new_words(hypothesis)
        agreed = 0
        while agreed < min(len(current), len(self._previous)) and normal(current[agreed].text) == normal(
            self._previous[agreed].text
        ):
            agreed += 1
        take = forced = agreed
        for i in range(agreed, len(current)):
            word = current[i]
            late = now_s + cycle_s - word.end > self.max_delay_s and word.end <= audio_end_s - TAIL_GUARD_S
            sure = self._sure(word, audio_end_s)
            if not (late or sure):
                break
            take = i + 1
            forced += not sure
        committed = current[:take]
        self.committed.extend(committed)
        if self.committed:
            self._before = None  # its own final words are what new ones come after now
        self._previous = current[take:]
        return Update(committed, current[take:], forced=forced - agreed)

    def _sure(self, word: Word, audio_end_s: float) -> bool:
        """One decode is enough for ``word``: Whisper is at least ``sure`` of it and heard
        ``sure_after_s`` of audio after it."""
        return (
            self.sure is not None
            and word.probability is not None
            and word.probability >= self.sure
            and word.end <= audio_end_s - self.sure_after_s
        )

    def close(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The phrase's last decode: every new word in it is final."""
        final = self.new_words(hypothesis)
        self.committed.extend(final)
        self._previous, self._before = [], None
        return final


def buffer_cut(
    committed: Sequence[Word], buffer_start_s: float, context_s: float, max_context_s: float
) -> float | None:
    """Where the next decode of the open phrase may start, or None to keep the buffer as it is.

    Final words stay in the buffer as context; the buffer is cut only between two final words
    that leave at least ``context_s`` of final words after the cut, at the widest pause between
    such words. It is cut only at a pause of at least `MIN_CUT_GAP_S`, unless the final words in
    the buffer last more than ``max_context_s``: Whisper hears the first words of a buffer cut in
    the middle of speech badly, and it hears them the same wrong way in every decode that starts
    there, so two decodes would agree on the wrong words.
    """
    if not committed:
        return None
    latest = committed[-1].end - context_s
    gaps = [
        (b.start - a.end, (a.end + b.start) / 2)
        for a, b in itertools.pairwise(committed)
        if a.end > buffer_start_s and b.start <= latest
    ]
    if not gaps:
        return None
    gap, cut = max(gaps)
    if gap >= MIN_CUT_GAP_S or committed[-1].end - buffer_start_s > max_context_s:
        return cut
    return None
