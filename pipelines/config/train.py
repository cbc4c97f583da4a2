"""The `train` section: optimisation, budget, checkpoints, devices."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from pipelines.config.base import Fraction, PositiveInt, StrictModel

# `train.refit: auto` refits a training split of at most this many examples (README, "Tables").
REFIT_AUTO_MAX_EXAMPLES = 20_000


class TrainConfig(StrictModel):
    epochs: PositiveInt = Field(10, description="Passes over the training split.")
    max_updates: PositiveInt | None = Field(
        None,
        description="Train at most this many batches (optimizer updates): fewer than train.epochs "
        "epochs when the training split is large, so the time does not grow with the data. "
        "None: train.epochs.",
    )
    batch_size: PositiveInt = Field(64, description="Global batch size.")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="Optimizer.")
    learning_rate: Annotated[float, Field(gt=0.0)] = Field(1e-3, description="Peak learning rate.")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning-rate schedule after warm-up."
    )
    warmup_fraction: Fraction = Field(0.0, description="Share of steps with linear warm-up.")
    weight_decay: Annotated[float, Field(ge=0.0)] = Field(
        0.0,
        description="AdamW weight decay, decoupled as Keras applies it: each step shrinks every weight "
        "by learning_rate x weight_decay (at a learning rate of 3e-4, 1e-4 is next to none, 10 is 0.3 %).",
    )
    weight_decay_per_epoch: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None,
        description="AdamW: the share of each weight that decay takes off in an epoch at the peak "
        "learning rate (0.01: 1 %), instead of train.weight_decay: the decay per step is this / "
        "(learning_rate x batches per epoch), so that a small table and a large one are regularised "
        "alike per pass over their rows. None: train.weight_decay.",
    )
    clipnorm: Annotated[float, Field(gt=0.0)] | None = Field(
        None, description="Clip each gradient to this norm; None disables clipping."
    )
    strategy: Literal["default", "mirrored", "multi_worker"] = Field(
        "default",
        description="tf.distribute strategy: one device, all local devices, or TF_CONFIG's cluster.",
    )
    jit_compile: bool = Field(False, description="Compile the train step with XLA.")
    steps_per_execution: PositiveInt = Field(1, description="Batches per compiled call.")
    checkpoint_seconds: Annotated[float, Field(ge=0.0)] = Field(
        10.0,
        description="Checkpoint, and write the epochs' metrics to MLflow, after the first epoch and then "
        "at the first epoch end this many seconds after the last checkpoint (0: every epoch).",
    )
    restore_best: Literal["none", "auto", "val_loss", "val_accuracy"] = Field(
        "none",
        description="Keep the weights of the epoch with the best value of this validation metric when "
        "training ends (none: the last epoch's; auto: val_accuracy for a classifier, val_loss otherwise).",
    )
    patience: PositiveInt | None = Field(
        None,
        description="Stop training when the validation metric of train.restore_best (val_loss when none) "
        "has not improved for this many epochs; train.epochs is then the most it trains. None: every epoch.",
    )
    patience_min_updates: PositiveInt | None = Field(
        None,
        description="With train.patience: wait at least this many batches (optimizer updates) without "
        "a better validation metric, in as many epochs as that takes: where an epoch is a few batches "
        "(a small table), train.patience epochs are too few steps for the network to move. None: "
        "train.patience epochs.",
    )
    refit: bool | Literal["auto"] = Field(
        False,
        description="After training, train a fresh model on the train and validation splits together "
        "for as many epochs as the best one (train.restore_best / train.patience; all epochs trained "
        "without them), and log that model: it learns from every labelled row. auto: when the training "
        f"split has at most {REFIT_AUTO_MAX_EXAMPLES:,} examples (past that a quarter more rows helped "
        "less than picking the best epoch on validation did). Not for GANs.",
    )
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0,
        description="Classification only: train towards 1 - this on the true class and this shared "
        "among all classes, instead of 1 and 0 (0: plain cross-entropy).",
    )
    augment_shift: Annotated[int, Field(ge=0)] = Field(
        0,
        description="Train-only random shift: sequences circularly by up to this many steps, images "
        "by up to this many pixels along each axis (zero-filled).",
    )
    augment_scale: Fraction = Field(
        0.0, description="Train-only random amplitude scaling of sequences and images, +/- this fraction."
    )
    sample_every: Annotated[int, Field(ge=0)] = Field(
        5, description="GAN only: log a grid of generated samples every this many epochs (0: never)."
    )
    gradient_probe_epochs: list[Annotated[int, Field(ge=0)]] = Field(
        [], description="rnn/lstm only: epochs after which to log ‖∂loss/∂h_t‖ per step (0: before training)."
    )

    @model_validator(mode="after")
    def _one_weight_decay(self) -> TrainConfig:
        if self.weight_decay and self.weight_decay_per_epoch is not None:
            raise ValueError(
                f"train.weight_decay ({self.weight_decay}) and train.weight_decay_per_epoch "
                f"({self.weight_decay_per_epoch}) both set; allowed: one of them (the other 0 or null)"
            )
        return self

    def decay_per_step(self, steps_per_epoch: int) -> float:
        """AdamW's weight decay for a training of `steps_per_epoch` batches an epoch: `weight_decay`,
        or the one that takes `weight_decay_per_epoch` off each weight per epoch."""
        if self.weight_decay_per_epoch is None:
            return self.weight_decay
        return self.weight_decay_per_epoch / (self.learning_rate * steps_per_epoch)

    def planned_epochs(self, steps_per_epoch: int) -> int:
        """The epochs a training of `steps_per_epoch` batches an epoch runs: `epochs`, fewer when
        `max_updates` would be passed (at least one)."""
        if self.max_updates is None:
            return self.epochs
        return max(1, min(self.epochs, self.max_updates // steps_per_epoch))

    def patience_epochs(self, steps_per_epoch: int) -> int | None:
        """The epochs without improvement after which a training of `steps_per_epoch` batches an
        epoch stops: `patience`, more when `patience_min_updates` asks for more batches."""
        if self.patience is None or self.patience_min_updates is None:
            return self.patience
        return max(self.patience, math.ceil(self.patience_min_updates / steps_per_epoch))

    def refits(self, train_examples: int) -> bool:
        """Whether a training of `train_examples` examples is refit (`refit`)."""
        return self.refit is True or (self.refit == "auto" and train_examples <= REFIT_AUTO_MAX_EXAMPLES)
