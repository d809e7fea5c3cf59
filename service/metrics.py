"""Prometheus metrics for the service, in a registry owned by the app (no
process-global collectors, so several apps can live in one test process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kefuqa.models.neural.embedding_cache import CacheStats

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("kefuqa_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("kefuqa_request_duration_seconds", "HTTP request latency", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.inference = Histogram("kefuqa_inference_seconds", "engine call time per batch",
                                   buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("kefuqa_batch_size", "conversations per engine call (dynamic batching)",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.batch_items = Histogram("kefuqa_request_items", "conversations per request",
                                     buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.model_info = Gauge("kefuqa_model_info", "the model serving (value 1)", ["name", "version"],
                                registry=self.registry)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def observe_inference(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def watch_embedding_cache(self, stats: Callable[[], CacheStats]) -> None:
        """Report the engine's turn-embedding cache at every scrape."""
        self.registry.register(EmbeddingCacheCollector(stats))


class EmbeddingCacheCollector(Collector):
    """The cache's counts, read when /metrics is scraped (the cache keeps them)."""

    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        yield CounterMetricFamily("kefuqa_embedding_cache_hits", "turn texts whose embeddings came from the cache",
                                  value=s.hits)
        yield CounterMetricFamily("kefuqa_embedding_cache_misses", "turn texts the encoder embedded", value=s.misses)
        yield GaugeMetricFamily("kefuqa_embedding_cache_hit_ratio", "hits / (hits + misses) since the start",
                                value=s.hit_rate)
        yield GaugeMetricFamily("kefuqa_embedding_cache_entries", "turn embeddings held", value=s.entries)
        yield GaugeMetricFamily("kefuqa_embedding_cache_bytes", "memory the cache takes (vectors and texts)",
                                value=s.bytes)
