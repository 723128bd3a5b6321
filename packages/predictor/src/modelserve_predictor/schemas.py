"""Response shapes of the BentoML routes, for the OpenAPI spec BentoML publishes."""

from __future__ import annotations

from pydantic import BaseModel


class Identity(BaseModel):
    model: str
    version: int
    variant: str
    synthetic: bool


class SentimentResult(Identity):
    label: str
    scores: dict[str, float]
    truncated: bool


class SentimentResponse(Identity):
    device: str
    worker: int
    results: list[SentimentResult]


class EmbedResponse(Identity):
    device: str
    worker: int
    dimension: int
    embeddings: list[list[float]]
    truncated: list[bool]
