"""The Keras backend of training-time optimization (see :class:`edgekit.optimize.backend.Backend`).

Models are trained as tf_keras (Keras 2) models, the only kind tensorflow-model-optimization accepts: a
Keras 3 model is rebuilt as one by :func:`prepare`. Importing tfmot sets ``TF_USE_LEGACY_KERAS=1`` for the
whole process (``tf.keras`` then means tf_keras): run this backend in a worker process. Loading Keras 3
files and the Keras 3 routes still work in that process, whichever of Keras 3 and tfmot came first.
Every training function seeds tf_keras with :data:`SEED` first, so its numbers are reproducible.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError, did_you_mean
from edgekit.optimize.backend import SEED, ModelStats, StepProgress, TrainingSet
from edgekit.optimize.keras_rebuild import clone_with_weights, tf_keras_copy
from edgekit.optimize.steps import DistillStep, PruneStep, QatStep

_TFMOT_VARIABLE = re.compile(r"(_min|_max|optimizer_step|/mask|/threshold|pruning_step)(:\d+)?$")


def prepare(model: Any) -> Any:
    """A tf_keras copy of ``model`` with its weights (a Keras 3 model is rebuilt and checked for parity)."""
    return tf_keras_copy(model)


def load_teacher(teacher: Any) -> Any:
    """A teacher model file (loaded safely) or in-memory model, as a tf_keras copy."""
    if isinstance(teacher, (str, Path)):
        from edgekit.sources import load_source

        teacher = load_source(teacher).model
    return prepare(teacher)


def predict(model: Any, x: Any, batch_size: int = 256) -> np.ndarray:
    """The model's first output on ``x`` (inference mode)."""
    result = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(result[0] if isinstance(result, (list, tuple)) else result)


def stats(model: Any) -> ModelStats:
    """Parameters (trainable and not, fake-quant ranges excluded), non-zero ones, and their float32 bytes."""
    values = [np.asarray(w) for w in _model_weights(model)]
    parameters = sum(v.size for v in values)
    return ModelStats(parameters=parameters, nonzero_parameters=int(sum(np.count_nonzero(v) for v in values)),
                      weight_bytes=4 * parameters)


def _model_weights(model: Any) -> list:
    """The model's float weights without tfmot's own variables (fake-quant ranges, pruning masks and steps)."""
    return [w for w in model.weights if w.dtype.is_floating and not _TFMOT_VARIABLE.search(w.name)]


def fit(model: Any, data: TrainingSet, epochs: int, learning_rate: float, batch_size: int, progress: StepProgress) -> Any:
    """A copy of ``model`` trained on the labels alone."""
    import tf_keras

    tf_keras.utils.set_random_seed(SEED)
    trained = clone_with_weights(model)
    _train(trained, data, epochs, learning_rate, batch_size, progress, "training")
    return trained


def prune(model: Any, step: PruneStep, data: TrainingSet, progress: StepProgress) -> Any:
    """Structured (channels removed, model rebuilt narrower) or unstructured (tfmot magnitude) pruning, fine-tuned."""
    import tf_keras

    tf_keras.utils.set_random_seed(SEED)
    _check_names(model, step.exclude)
    if step.structured:
        from edgekit.optimize.keras_channels import prune_channels

        progress(0.0, f"removing {step.sparsity:.0%} of the channels")
        pruned = prune_channels(model, step.sparsity, exclude=step.exclude)
        _train(pruned, data, step.epochs, step.learning_rate, step.batch_size, progress, "fine-tuning")
        return pruned
    from edgekit.optimize.keras_tfmot import prune_weights

    return prune_weights(model, step, data, progress, _train)


def qat(model: Any, step: QatStep, data: TrainingSet, progress: StepProgress) -> Any:
    """A tfmot fake-quantized copy (``step.exclude`` kept float), its ranges first set from a pass over the
    training data, then fine-tuned for ``step.epochs``; its outputs keep the model's names."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(SEED)
    _check_names(model, step.exclude)
    from edgekit.optimize.keras_tfmot import quantize

    quantized = quantize(model, step.exclude)
    progress(0.0, "setting the fake-quant ranges from the training data")
    for batch in tf.data.Dataset.from_tensor_slices(data.x_train).batch(max(step.batch_size, 64)):
        quantized(batch, training=True)  # the range trackers see the data before any weight moves
    _train(quantized, data, step.epochs, step.learning_rate, step.batch_size, progress, "quantization-aware training")
    return quantized


def derive_student(teacher: Any, step: DistillStep, data: TrainingSet) -> Any:
    """The teacher with ``step.student_width`` of its channels: the strongest ones' weights, or fresh weights
    (``data`` is not needed: the channels follow from the Keras graph)."""
    import tf_keras

    from edgekit.optimize.keras_channels import prune_channels

    tf_keras.utils.set_random_seed(SEED)
    student = prune_channels(teacher, 1.0 - step.student_width)
    if step.student_init == "random":
        student = tf_keras.models.clone_model(student)  # same architecture, freshly initialized
    student._name = f"{teacher.name}_student"
    return student


def distill(student: Any, teacher: Any, step: DistillStep, data: TrainingSet, progress: StepProgress) -> Any:
    """A copy of ``student`` trained on ``alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(labels)``.

    Probabilities (``data.from_logits`` False) are turned into logits by their log. For regression the soft
    loss is the mean squared error to the teacher's outputs.
    """
    import tf_keras

    from edgekit.optimize.keras_distill import train_distilled

    tf_keras.utils.set_random_seed(SEED)
    t_shape, s_shape = tuple(teacher.outputs[0].shape[1:]), tuple(student.outputs[0].shape[1:])
    if t_shape != s_shape:
        raise InvalidOptionError(
            f"the teacher's output shape {t_shape} differs from the student's {s_shape}",
            "distill into a student with the same outputs as the teacher (same classes, same order)",
        )
    trained = clone_with_weights(student)
    train_distilled(trained, clone_with_weights(teacher), step, data, progress)
    return trained


def _check_names(model: Any, names: tuple[str, ...]) -> None:
    layers = [layer.name for layer in model.layers]
    unknown = [name for name in names if name not in layers]
    if unknown:
        raise InvalidOptionError(
            f"exclude names layer(s) the model does not have: {', '.join(unknown)}",
            f"{did_you_mean(unknown[0], layers)}the model's layers are: {', '.join(layers)}",
        )


def loss_for(data: TrainingSet) -> Any:
    """Sparse categorical cross-entropy for classification (from logits or probabilities), MSE for regression."""
    import tf_keras

    if data.task == "classification":
        return tf_keras.losses.SparseCategoricalCrossentropy(from_logits=data.from_logits)
    return tf_keras.losses.MeanSquaredError()


def _train(model: Any, data: TrainingSet, epochs: int, learning_rate: float, batch_size: int,
           progress: StepProgress, what: str, callbacks: list | None = None) -> None:
    """Compile ``model`` with the task's loss and fit it in place, reporting each epoch."""
    import tf_keras

    if epochs < 1:
        return
    metrics = ["accuracy"] if data.task == "classification" else []
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=loss_for(data), metrics=metrics)
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
              validation_data=(data.x_val, data.y_val), callbacks=[*(callbacks or []), _epoch_reporter(epochs, progress, what)])


def _epoch_reporter(epochs: int, progress: StepProgress, what: str) -> Any:
    """A tf_keras callback reporting ``what`` after every epoch with its validation numbers."""
    import tf_keras

    class _Report(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if k.startswith("val_"))
            progress((epoch + 1) / epochs, f"{what}: epoch {epoch + 1}/{epochs}" + (f" ({shown})" if shown else ""))

    return _Report()


__all__ = ["derive_student", "distill", "fit", "load_teacher", "predict", "prepare", "prune", "qat",
           "stats"]
