"""Scrape a live server's /metrics and read it with prometheus_client's own parser."""

from __future__ import annotations

import math
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

SampleKey = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """Every sample of one scrape, looked up by sample name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[SampleKey, float] = {}
        self.families: dict[str, str] = {}  # name -> type
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; a labelled sample that was never recorded reads 0."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return math.fsum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and wanted <= sample_labels
        )

    def delta(self, earlier: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - earlier.value(name, **labels)


def scrape(base_url: str, *, token: str | None = None, timeout: float = 5.0) -> Scrape:
    headers: Mapping[str, str] = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=timeout)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return Scrape(response.text)
