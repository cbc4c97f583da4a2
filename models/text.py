"""The text front end every model that reads raw strings shares: a vocabulary adapted on the
train split, then `TextVectorization` and an `Embedding` inside the model, so that the model (and
its SavedModel) takes raw strings."""

from __future__ import annotations

from typing import Any

import keras


def adapt_text_vocabulary(texts: Any, max_tokens: int | None = 20000) -> list[str]:
    """The vocabulary `TextVectorization.adapt` finds in `texts`, padding and OOV tokens first."""
    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens)
    vectorizer.adapt(texts)
    return [str(token) for token in vectorizer.get_vocabulary()]


def embedded_tokens(
    texts: keras.KerasTensor,
    vocabulary: list[str] | None,
    sequence_length: int,
    embedding_dim: int,
    mask_padding: bool = True,
) -> keras.KerasTensor:
    """Raw strings -> `(sequence_length, embedding_dim)` token embeddings, padded or cut at the end.

    `mask_padding` lets recurrent layers skip the end padding instead of reading it; a
    convolution reads the padding's (learnt) embedding instead, as in keras-io's text CNN.
    """
    if vocabulary is None:
        raise ValueError(
            "vocabulary is None for a string input; compute it with "
            "models.text.adapt_text_vocabulary(texts, max_tokens)"
        )
    vectorizer = keras.layers.TextVectorization(
        vocabulary=vocabulary, output_sequence_length=sequence_length, name="vectorize"
    )
    tokens = vectorizer(texts)
    return keras.layers.Embedding(
        vectorizer.vocabulary_size(), embedding_dim, mask_zero=mask_padding, name="embedding"
    )(tokens)
