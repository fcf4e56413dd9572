"""The proof a consent record carries: the checks run on the consent recording at enrollment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


ConsentPolicy = Literal["enforce", "warn", "off"]
CheckStatus = Literal["passed", "failed", "skipped"]


class SpeakerCheck(_Document):
    """Is the consent recording the voice being enrolled?"""

    status: CheckStatus
    score: float | None = Field(None, description="cosine between the consent's and the reference's voice")
    threshold: float
    model: str | None = Field(None, description="the embedding model and its package versions")
    reason: str | None = Field(None, description="why the check was skipped or failed, in plain words")


class TextCheck(_Document):
    """Did the consent recording say the consent text?"""

    status: CheckStatus
    heard: str | None = Field(None, description="what the box transcribed from the consent recording")
    match_ratio: float | None = Field(None, description="share of the text's words heard, in order (0-1)")
    threshold: float
    missing_words: list[str] = Field(default_factory=list, description="words of the text not heard (first 12)")
    added_negations: list[str] = Field(default_factory=list, description="negations heard that the text lacks")
    language: str
    model: str | None = Field(None, description="the speech recognition model and its package versions")
    reason: str | None = None


class ConsentVerification(_Document):
    """The proof a consent record carries: who spoke it and what was said, as checked at enrollment."""

    policy: ConsentPolicy
    passed: bool = Field(description="both checks passed")
    speaker: SpeakerCheck
    text: TextCheck
    checked_at: str
