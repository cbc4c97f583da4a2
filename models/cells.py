"""The seed's equations written literally as Keras layers, with Keras' own weight layouts.

Each layer stores its weights exactly as the built-in layer it mirrors (`Dense`, `Conv2D`,
`SimpleRNN`, `LSTM`), so `reference.set_weights(builtin.get_weights())` makes the two compute
the same function; the tests check outputs and gradients against the built-ins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="deeparch")
class DenseStep(keras.layers.Layer):
    """One dense layer, a = σ(W a_prev + b), with `Dense`'s kernel `(inputs, units)` and bias."""

    def __init__(self, units: int, activation: str | Callable | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, a_prev: Any) -> Any:
        # Keras keeps W transposed, (inputs, units), so W a_prev is written a_prev @ W.
        z = ops.matmul(a_prev, self.kernel) + self.bias
        return self.activation(z)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="deeparch")
class ConvolutionStep(keras.layers.Layer):
    """A 2-D convolution as an explicit sum, z_ij = Σ_r Σ_c x_(i+r)(j+c) W_rc + b, a = σ(z).

    'valid' padding and stride 1; the kernel has `Conv2D`'s layout
    `(rows, columns, in_channels, filters)`, so W_rc is an `(in_channels, filters)` matrix.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        activation: str | Callable | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        rows, columns = self.kernel_size
        self.kernel = self.add_weight(
            shape=(rows, columns, input_shape[-1], self.filters),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x: Any) -> Any:
        rows, columns = self.kernel_size
        _, height, width, _ = ops.shape(x)
        out_height, out_width = height - rows + 1, width - columns + 1
        z = self.bias
        # Each kernel offset (r, c) sees the input shifted by (r, c): summing those shifted
        # slices times W_rc is the convolution, one term of the double sum at a time.
        for r in range(rows):
            for c in range(columns):
                shifted = x[:, r : r + out_height, c : c + out_width, :]
                z = z + ops.matmul(shifted, self.kernel[r, c])
        return self.activation(z)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, _ = input_shape
        rows, columns = self.kernel_size
        return (
            batch,
            None if height is None else height - rows + 1,
            None if width is None else width - columns + 1,
            self.filters,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
        }


def sgd_update(
    model: keras.Model,
    x: Any,
    y: Any,
    loss_fn: Callable[[Any, Any], Any],
    learning_rate: float,
) -> None:
    """One step of W := W − α · (1/m) Σ_i ∂J⁽ⁱ⁾/∂W on the batch `(x, y)`, in place.

    The per-example gradients ∂J⁽ⁱ⁾/∂W are computed one example at a time, on purpose: this is
    the definition that `keras.optimizers.SGD` on the batch-mean loss computes in one pass.
    """
    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y)
    m = int(x.shape[0])
    variables = model.trainable_variables
    gradient_sums = [tf.zeros_like(variable) for variable in variables]
    for i in range(m):
        with tf.GradientTape() as tape:
            prediction = model(x[i : i + 1], training=True)
            # fit adds the model's own losses (weight penalties) to every batch's loss.
            example_loss = loss_fn(y[i : i + 1], prediction) + sum(model.losses)
        example_gradients = tape.gradient(example_loss, variables)
        gradient_sums = [
            total + gradient for total, gradient in zip(gradient_sums, example_gradients, strict=True)
        ]
    for variable, total in zip(variables, gradient_sums, strict=True):
        variable.assign_sub(learning_rate * total / m)


@keras.saving.register_keras_serializable(package="deeparch")
class SimpleRNNStep(keras.layers.Layer):
    """One step of a simple RNN, h_t = σ(W_hx x_t + W_hh h_{t-1} + b_h); use in `keras.layers.RNN`.

    Weights follow `SimpleRNN`: `kernel` is W_hx `(features, units)`, `recurrent_kernel` is
    W_hh `(units, units)`, `bias` is b_h.
    """

    def __init__(self, units: int, activation: str | Callable | None = "tanh", **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x_t: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        # keras.layers.RNN passes the state as a list when state_size is given as a list.
        h_prev = states[0] if isinstance(states, list | tuple) else states
        h_t = self.activation(
            ops.matmul(x_t, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        )
        return h_t, [h_t] if isinstance(states, list | tuple) else h_t

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="deeparch")
class LSTMStep(keras.layers.Layer):
    """One step of an LSTM, gate by gate; use in `keras.layers.RNN`.

    f_t, i_t, o_t = σ(W·[h_{t-1}, x_t] + b), c̃_t = tanh(W_c·[h_{t-1}, x_t] + b_c),
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t, h_t = o_t ⊙ tanh(c_t). Weights follow `LSTM`: W·[h, x] is
    split into `kernel` (acting on x) and `recurrent_kernel` (acting on h), each holding the
    gates side by side in the order i, f, c, o; the forget bias starts at 1.
    """

    gate_order = ("input", "forget", "candidate", "output")

    def __init__(self, units: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4 * self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(4 * self.units,), initializer=self._unit_forget_bias, name="bias")

    def _unit_forget_bias(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """Zeros except ones for the forget gate, so the cell remembers by default at the start."""
        return ops.concatenate(
            [
                ops.zeros((self.units,), dtype=dtype),
                ops.ones((self.units,), dtype=dtype),
                ops.zeros((2 * self.units,), dtype=dtype),
            ]
        )

    def _pre_activation(self, gate: str, x_t: Any, h_prev: Any) -> Any:
        """W_gate·[h_{t-1}, x_t] + b_gate, with this gate's columns sliced out of the kernels."""
        start = self.gate_order.index(gate) * self.units
        columns = slice(start, start + self.units)
        return (
            ops.matmul(x_t, self.kernel[:, columns])
            + ops.matmul(h_prev, self.recurrent_kernel[:, columns])
            + self.bias[columns]
        )

    def call(self, x_t: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        h_prev, c_prev = states
        f_t = ops.sigmoid(self._pre_activation("forget", x_t, h_prev))
        i_t = ops.sigmoid(self._pre_activation("input", x_t, h_prev))
        o_t = ops.sigmoid(self._pre_activation("output", x_t, h_prev))
        c_tilde = ops.tanh(self._pre_activation("candidate", x_t, h_prev))
        c_t = f_t * c_prev + i_t * c_tilde
        h_t = o_t * ops.tanh(c_t)
        return h_t, [h_t, c_t]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}
