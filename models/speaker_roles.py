"""The speaker-role check for voice conversations: which agent or customer turns read
like the other role, as a diariser that gave a turn to the wrong speaker leaves them.

Each speaker turn gets P(agent) from a small network (one hidden layer) over the encoder's
turn embedding and the rule cues (``call_cues.yaml``: phrases only one side says) when the
engine has an encoder, and from a logistic regression over the rule cues alone otherwise. A turn is flagged when the
probability of the other role reaches the model's threshold. Both models are fitted by
``kefuqa roles train`` on the training split's voice turns and kept in
``speaker_roles.json``: with the neural model it belongs to (its embeddings), the shipped
default in ``models/neural/default/``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kefuqa.contract import Conversation, ModelInfo
from kefuqa.models.call_cues import CallCues

log = logging.getLogger("kefuqa.roles")

ROLE_FILE = "speaker_roles.json"
EmbedFn = Callable[[list[str]], np.ndarray]  # texts → [N, dim] float32
CUE_CAP = 3  # more hits of one side's cues in a turn add nothing


class RoleFileError(Exception):
    """A speaker-role model file is unreadable or invalid; the message names the file."""


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: list[list[float]] = Field(min_length=1)  # [inputs][outputs]
    bias: list[float] = Field(min_length=1)


class RoleNet(BaseModel):
    """Dense layers, ReLU between them, one logit out: P(agent) = sigmoid(logit). One
    layer is a logistic regression."""

    model_config = ConfigDict(extra="forbid")

    layers: list[Layer] = Field(min_length=1)
    threshold: float = Field(gt=0.5, lt=1.0)
    validation: dict[str, Any] | None = None  # how the fit did on its validation turns

    @model_validator(mode="after")
    def _shapes(self) -> RoleNet:
        width = len(self.layers[0].weights)
        for k, layer in enumerate(self.layers):
            if len(layer.weights) != width or any(len(row) != len(layer.bias) for row in layer.weights):
                raise ValueError(f"layers[{k}]: weights must be {width} rows of {len(layer.bias)} (the bias's size)")
            width = len(layer.bias)
        if width != 1:
            raise ValueError("the last layer must have one output (the logit of P(agent))")
        return self


class RoleFile(BaseModel):
    """``speaker_roles.json``. ``encoder`` names the neural model whose embeddings
    ``embedding`` was fitted on; ``cues`` needs no encoder."""

    model_config = ConfigDict(extra="allow")

    format: int = 1
    encoder: ModelInfo
    cues: RoleNet
    embedding: RoleNet

    @model_validator(mode="after")
    def _cue_inputs(self) -> RoleFile:
        if len(self.cues.layers[0].weights) != 2:
            raise ValueError("cues takes 2 inputs (agent cues, customer cues)")
        return self


@dataclass(frozen=True)
class RoleModel:
    """P(agent) from a turn's features; flag at ``threshold``."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    threshold: float
    uses_embedding: bool

    @classmethod
    def of(cls, net: RoleNet, uses_embedding: bool) -> RoleModel:
        layers = tuple((np.asarray(x.weights, np.float64), np.asarray(x.bias, np.float64)) for x in net.layers)
        return cls(layers, net.threshold, uses_embedding)

    @property
    def n_features(self) -> int:
        return self.layers[0][0].shape[0]

    def p_agent(self, features: np.ndarray) -> np.ndarray:
        if features.shape[1] != self.n_features:
            raise ValueError(f"the speaker-role model takes {self.n_features} features per turn, "
                             f"got {features.shape[1]}: it was fitted for another encoder")
        h = features.astype(np.float64)
        for k, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))


def read_role_file(path: Path) -> RoleFile:
    try:
        return RoleFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise RoleFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        raise RoleFileError(f"{path}: not a speaker-role model file: {exc}") from exc


def default_role_file() -> Path:
    return Path(str(resources.files("kefuqa.models.neural").joinpath("default", ROLE_FILE)))


def role_model_for(info: ModelInfo | None, model_dir: Path | None) -> RoleModel:
    """The embedding model fitted for the neural model ``info`` (in ``model_dir``, or the
    shipped one when it was fitted for that version); with ``info`` None, or when no file
    fits, the cue model, which needs no encoder."""
    shipped = read_role_file(default_role_file())
    if info is None:
        return RoleModel.of(shipped.cues, uses_embedding=False)
    own = model_dir / ROLE_FILE if model_dir is not None else None
    if own is not None and own.exists():
        return RoleModel.of(read_role_file(own).embedding, uses_embedding=True)
    if shipped.encoder.version == info.version:
        return RoleModel.of(shipped.embedding, uses_embedding=True)
    log.warning("kefuqa: no speaker-role model for %s %s (%s); the role check uses the rule cues alone. "
                "Run `kefuqa roles train` to fit one", info.name, info.version, own or "no model folder")
    return RoleModel.of(shipped.cues, uses_embedding=False)


def cue_counts(cues: CallCues, text: str) -> tuple[int, int]:
    return (min(len(cues.role_spans(text, "agent")), CUE_CAP), min(len(cues.role_spans(text, "customer")), CUE_CAP))


def turn_features(cues: CallCues, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
    """One row per turn text: [embedding …,] agent cues, customer cues."""
    counts = np.asarray([cue_counts(cues, t) for t in texts], np.float32).reshape(len(texts), 2)
    return counts if vectors is None else np.concatenate([vectors.astype(np.float32), counts], axis=1)


def text_vectors(convs: Sequence[Conversation], embed: EmbedFn) -> dict[str, np.ndarray]:
    """Turn text → embedding for every turn of ``convs``, as the neural engine embeds a batch
    (``embedding_table``: one call, so a call's check does not depend on the calls scored
    with it, and texts of many calls share encoder calls); with the turn-embedding cache on,
    the engine's own pass over the same turns then finds them there."""
    from kefuqa.models.neural.features import embedding_table, turn_text

    return embedding_table((turn_text(t.text) for conv in convs for t in conv.turns), embed)


def turn_vectors(conv: Conversation, idx: list[int], table: dict[str, np.ndarray]) -> np.ndarray:
    """The embeddings of turns ``idx`` of ``conv``, from ``text_vectors``' table."""
    from kefuqa.models.neural.features import turn_text

    return np.stack([table[turn_text(conv.turns[i].text)] for i in idx])


def speaker_turns(conv: Conversation) -> list[int]:
    return [i for i, t in enumerate(conv.turns) if t.speaker in ("agent", "customer")]


class RoleChecker:
    """Flags the speaker turns of a voice conversation that read like the other role."""

    def __init__(self, cues: CallCues, model: RoleModel, embed: EmbedFn | None = None) -> None:
        if model.uses_embedding and embed is None:
            raise ValueError("this speaker-role model reads turn embeddings: give the engine's embed function")
        self.cues, self.model, self.embed = cues, model, embed

    def p_agent(self, conv: Conversation, table: dict[str, np.ndarray] | None = None) -> dict[int, float]:
        """Speaker turn → P(agent) from its text; ``table`` (``text_vectors``) holds its turns'
        embeddings when they were embedded with other calls'."""
        idx = speaker_turns(conv)
        if not idx:
            return {}
        texts = [conv.turns[i].text for i in idx]
        vectors = None
        if self.embed is not None and self.model.uses_embedding:
            vectors = turn_vectors(conv, idx, table if table is not None else text_vectors([conv], self.embed))
        p = self.model.p_agent(turn_features(self.cues, texts, vectors))
        return {i: float(v) for i, v in zip(idx, p)}

    def flags(self, conv: Conversation, table: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
        """``[{turn, likely_speaker, p}]`` for the turns whose other role reaches the threshold."""
        out = []
        for i, p in self.p_agent(conv, table).items():
            speaker = conv.turns[i].speaker
            other, p_other = ("customer", 1.0 - p) if speaker == "agent" else ("agent", p)
            if p_other >= self.model.threshold:
                out.append({"turn": i, "likely_speaker": other, "p": round(p_other, 4)})
        return out

    def flags_batch(self, convs: Sequence[Conversation]) -> list[list[dict[str, Any]]]:
        """``flags`` of each voice conversation of ``convs`` (``[]`` for a chat), the turns of
        all the calls embedded in one call to the encoder rather than one per call: short
        calls of one conversation's texts leave the cores idle between them."""
        voice = [c for c in convs if c.channel == "voice"]
        table = None
        if voice and self.embed is not None and self.model.uses_embedding:
            table = text_vectors(voice, self.embed)
        return [self.flags(c, table) if c.channel == "voice" else [] for c in convs]


def with_speakers(conv: Conversation, flags: list[dict[str, Any]]) -> Conversation:
    """``conv`` with each flagged turn given to its likely speaker: what the scorers see."""
    if not flags:
        return conv
    turns = list(conv.turns)
    for f in flags:
        turns[f["turn"]] = turns[f["turn"]].model_copy(update={"speaker": f["likely_speaker"]})
    return conv.model_copy(update={"turns": turns})
