"""The CNN: `build_model(...) -> keras.Model`, compiled with a warm-up and cosine schedule."""

from __future__ import annotations

import keras

from demnistify.constants import INPUT_SHAPE, NUM_CLASSES


def build_model(
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = NUM_CLASSES,
    width: int = 32,
    dropout_rate: float = 0.4,
) -> keras.Model:
    """Build the digit CNN: two strided stages of batch-normalized convolutions, then a 4x4 head.

    The layout follows the strongest single-model MNIST CNNs (about 99.7 % with augmentation):
    a 5x5 stride-2 convolution replaces max pooling so the network learns its own
    downsampling, and dropout after each stage regularizes without slowing training.
    """
    if width < 1 or num_classes < 2 or not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"Bad model settings: width={width}, classes={num_classes}, dropout={dropout_rate}.")
    if tuple(input_shape)[:2] != (28, 28):
        raise ValueError(f"The CNN expects 28x28 inputs, got {input_shape}.")
    inputs = keras.Input(shape=input_shape, name="digit")
    features = _stage(inputs, width, dropout_rate, name="stage1")
    features = _stage(features, 2 * width, dropout_rate, name="stage2")
    features = _conv_block(features, 4 * width, 4, padding="valid", name="head_conv")
    features = keras.layers.Flatten(name="flatten")(features)
    features = keras.layers.Dropout(dropout_rate, name="head_dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(features)
    return keras.Model(inputs, outputs, name="demnistify_cnn")


def _stage(inputs: keras.KerasTensor, filters: int, dropout_rate: float, name: str) -> keras.KerasTensor:
    features = _conv_block(inputs, filters, 3, padding="valid", name=f"{name}_conv1")
    features = _conv_block(features, filters, 3, padding="valid", name=f"{name}_conv2")
    features = _conv_block(features, filters, 5, padding="same", strides=2, name=f"{name}_downsample")
    return keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(features)


def _conv_block(inputs, filters: int, kernel_size: int, padding: str, name: str, strides: int = 1):
    # Batch norm sits between the bias-free convolution and the ReLU, as in ResNet. A momentum
    # of 0.9 (Keras defaults to 0.99) lets the moving statistics settle within a few hundred
    # steps, so short runs are not wrong in inference mode.
    features = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(
        inputs
    )
    features = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(features)
    return keras.layers.Activation("relu", name=f"{name}_relu")(features)


def compile_model(
    model: keras.Model, learning_rate: float, total_steps: int, warmup_steps: int, ema_momentum: float = 0.0
) -> keras.Model:
    """Compile with Adam and a linear warm-up into a cosine decay over the whole run.

    With `ema_momentum` > 0 the model ends with the moving average of its weights over the
    last steps (about 1 / (1 - momentum) of them) instead of the last step's.
    """
    if learning_rate <= 0 or total_steps < 1 or not 0.0 <= ema_momentum < 1.0:
        raise ValueError(
            f"Need learning_rate > 0, total_steps >= 1 and ema_momentum in [0, 1), got "
            f"{learning_rate}, {total_steps}, {ema_momentum}."
        )
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10 if warmup_steps else learning_rate,
        decay_steps=total_steps - warmup_steps,
        alpha=0.01,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=schedule, use_ema=ema_momentum > 0, ema_momentum=ema_momentum or 0.99
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
