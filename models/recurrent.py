"""Recurrent networks: SimpleRNN, LSTM and GRU stacks over images, sequences, raw text or raw audio.

Images `(height, width, channels)` are read row by row, one row per time step; `(steps,)`
sequences get one feature per step; string inputs go through `TextVectorization` and an
`Embedding` (`models.text`); waveforms through a log-mel front end (`models.audio`), one
spectrogram frame per step. Every recurrent layer returns its whole hidden-state sequence and a small
`FinalHiddenState` layer picks the state after the last step, so the hidden states stay
reachable for `hidden_state_gradient_norms`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from models.audio import AudioFrontEnd, audio_features
from models.cells import LSTMStep, SimpleRNNStep
from models.heads import normalized_inputs, output_head
from models.spec import DataSpec
from models.text import adapt_text_vocabulary as adapt_text_vocabulary  # where callers found it first
from models.text import embedded_tokens

Implementation = Literal["keras", "reference"]


@keras.saving.register_keras_serializable(package="deeparch")
class FinalHiddenState(keras.layers.Layer):
    """The hidden state after the whole sequence was read, from a `return_sequences` output.

    The forward state is the last step (the last unmasked step when a padding mask comes
    along). A `Bidirectional` layer's backward half read the sequence in reverse, so its final
    state sits at step 0: with `bidirectional=True` the second half of the features is taken there.
    """

    def __init__(self, bidirectional: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.bidirectional = bidirectional
        self.supports_masking = True

    def call(self, sequence: Any, mask: Any = None) -> Any:
        if mask is None:
            forward = sequence[:, -1]
        else:
            # Text is padded at the end, so the last real step is at (number of tokens - 1).
            last = ops.maximum(ops.sum(ops.cast(mask, "int32"), axis=1) - 1, 0)
            forward = ops.take_along_axis(sequence, last[:, None, None], axis=1)[:, 0]
        if not self.bidirectional:
            return forward
        half = sequence.shape[-1] // 2
        return ops.concatenate([forward[:, :half], sequence[:, 0, half:]], axis=-1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        # The time axis is gone, so is the mask.
        return None

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bidirectional": self.bidirectional}


def build_rnn(
    spec: DataSpec,
    units: Sequence[int] = (64,),
    activation: str = "tanh",
    bidirectional: bool = False,
    dropout: float = 0.0,
    implementation: Implementation = "keras",
    dense_units: Sequence[int] = (),
    vocabulary: list[str] | None = None,
    sequence_length: int = 200,
    embedding_dim: int = 64,
    audio: AudioFrontEnd | None = None,
) -> keras.Model:
    """A stack of SimpleRNN layers h_t = σ(W_hx x_t + W_hh h_{t-1} + b), then the task's head."""
    if implementation == "keras":

        def recurrent_layer(width: int, name: str) -> keras.layers.Layer:
            return keras.layers.SimpleRNN(width, activation=activation, return_sequences=True, name=name)

    elif implementation == "reference":

        def recurrent_layer(width: int, name: str) -> keras.layers.Layer:
            return keras.layers.RNN(
                SimpleRNNStep(width, activation=activation), return_sequences=True, name=name
            )

    else:
        raise ValueError(f"implementation {implementation!r} is not known; allowed: keras, reference")
    return _build_recurrent(
        spec,
        "rnn",
        recurrent_layer,
        units=units,
        bidirectional=bidirectional,
        dropout=dropout,
        dense_units=dense_units,
        vocabulary=vocabulary,
        sequence_length=sequence_length,
        embedding_dim=embedding_dim,
        audio=audio,
    )


def build_lstm(
    spec: DataSpec,
    units: Sequence[int] = (64,),
    cell: Literal["lstm", "gru"] = "lstm",
    bidirectional: bool = False,
    dropout: float = 0.0,
    implementation: Implementation = "keras",
    dense_units: Sequence[int] = (),
    vocabulary: list[str] | None = None,
    sequence_length: int = 200,
    embedding_dim: int = 64,
    audio: AudioFrontEnd | None = None,
) -> keras.Model:
    """A stack of gated recurrent layers (LSTM or GRU), then the task's head.

    `implementation="reference"` runs the LSTM equations of `models.cells.LSTMStep`; the GRU
    exists only as Keras' own layer.
    """
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell {cell!r} is not known; allowed: lstm, gru")
    if implementation == "keras":
        keras_layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU

        def recurrent_layer(width: int, name: str) -> keras.layers.Layer:
            return keras_layer(width, return_sequences=True, name=name)

    elif implementation == "reference":
        if cell != "lstm":
            raise ValueError(
                f"implementation 'reference' has no {cell!r} cell; allowed: cell='lstm' with "
                "implementation='reference', or any cell with implementation='keras'"
            )

        def recurrent_layer(width: int, name: str) -> keras.layers.Layer:
            return keras.layers.RNN(LSTMStep(width), return_sequences=True, name=name)

    else:
        raise ValueError(f"implementation {implementation!r} is not known; allowed: keras, reference")
    return _build_recurrent(
        spec,
        cell,
        recurrent_layer,
        units=units,
        bidirectional=bidirectional,
        dropout=dropout,
        dense_units=dense_units,
        vocabulary=vocabulary,
        sequence_length=sequence_length,
        embedding_dim=embedding_dim,
        audio=audio,
    )


def _build_recurrent(
    spec: DataSpec,
    name: str,
    recurrent_layer: Callable[[int, str], keras.layers.Layer],
    *,
    units: Sequence[int],
    bidirectional: bool,
    dropout: float,
    dense_units: Sequence[int],
    vocabulary: list[str] | None,
    sequence_length: int,
    embedding_dim: int,
    audio: AudioFrontEnd | None,
) -> keras.Model:
    """Input adaptation, the recurrent stack, the final state, the dense layers and the head."""
    if not units:
        raise ValueError("units is empty; give at least one recurrent layer width, e.g. (64,)")
    inputs = keras.Input(shape=spec.input_shape, dtype=spec.input_dtype, name="inputs")
    x = _as_time_steps(
        normalized_inputs(inputs, spec), spec, vocabulary, sequence_length, embedding_dim, audio
    )
    for index, width in enumerate(units):
        layer = recurrent_layer(width, f"recurrent_{index}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
        x = layer(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    x = FinalHiddenState(bidirectional=bidirectional, name="final_state")(x)
    for index, width in enumerate(dense_units):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dense_dropout_{index}")(x)
    outputs = output_head(x, spec)
    return keras.Model(inputs, outputs, name=name)


def _as_time_steps(
    inputs: keras.KerasTensor,
    spec: DataSpec,
    vocabulary: list[str] | None,
    sequence_length: int,
    embedding_dim: int,
    audio: AudioFrontEnd | None,
) -> keras.KerasTensor:
    """The input as a `(steps, features)` sequence: image rows, scalar steps, embedded tokens or
    spectrogram frames."""
    if spec.input_dtype == "string":
        return embedded_tokens(inputs, vocabulary, sequence_length, embedding_dim)
    if spec.is_audio:
        return audio_features(inputs, spec, audio)
    if len(spec.input_shape) == 3:
        height, width, channels = spec.input_shape
        return keras.layers.Reshape((height, width * channels), name="rows_as_steps")(inputs)
    if len(spec.input_shape) == 1:
        return keras.layers.Reshape((spec.input_shape[0], 1), name="as_sequence")(inputs)
    if len(spec.input_shape) == 2:
        return inputs
    raise ValueError(
        f"input_shape {spec.input_shape} has no recurrent reading; allowed: (height, width, "
        "channels), (steps, features), (steps,), or a string input"
    )


def hidden_state_gradient_norms(
    model: keras.Model, x: Any, y: Any, loss_fn: Callable[[Any, Any], Any]
) -> np.ndarray:
    """‖∂loss/∂h_t‖ for each step t of the first recurrent layer's hidden states, shape `(T,)`.

    ∂loss/∂h_t is the total derivative, through every later step of the recurrence, of
    `loss_fn(y, model(x))` as that loss reduces the batch (usually its mean). For each example
    the L2 norm is taken over the hidden units (both directions of a bidirectional layer), then
    the norms are averaged over the batch. Numeric inputs only: padding masks are not followed.
    """
    first = next(
        (layer for layer in model.layers if isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional)),
        None,
    )
    if first is None:
        raise ValueError(f"model {model.name!r} has no recurrent layer to probe")
    # Split the graph around the first recurrent layer: what it reads, and what reads its states.
    reader = keras.Model(model.input, first.input)
    rest = keras.Model(first.output, model.output)
    sequence = reader(x, training=False)
    directions = (
        [first.forward_layer, first.backward_layer]
        if isinstance(first, keras.layers.Bidirectional)
        else [first]
    )
    with tf.GradientTape() as tape:
        # One list of per-step states per direction: each h_t must be the very tensor the next
        # step reads, so the two directions are joined only when handed to the rest of the model.
        hidden_states = [_unrolled_hidden_states(layer, sequence) for layer in directions]
        joined = ops.concatenate([ops.stack(states, axis=1) for states in hidden_states], axis=-1)
        loss = loss_fn(y, rest(joined, training=False))
    gradients = ops.concatenate(
        [ops.stack(step_gradients, axis=1) for step_gradients in tape.gradient(loss, hidden_states)],
        axis=-1,
    )
    return ops.convert_to_numpy(ops.mean(ops.norm(gradients, axis=-1), axis=0))


def _unrolled_hidden_states(layer: keras.layers.RNN, sequence: Any) -> list[Any]:
    """h_t for every input step t, one tensor per step, in input order.

    The layer's own loop hides h_t inside a while loop, where ∂loss/∂h_t only sees the direct
    path to the output; stepping its cell in Python keeps the path through h_{t+1}, h_{t+2}, ...
    """
    steps = sequence.shape[1]
    states = layer.get_initial_state(batch_size=ops.shape(sequence)[0])
    hidden_states: list[Any] = [None] * steps
    for t in reversed(range(steps)) if layer.go_backwards else range(steps):
        hidden_states[t], states = layer.cell(sequence[:, t], states, training=False)
        if not isinstance(states, list | tuple):
            states = [states]
    return hidden_states
