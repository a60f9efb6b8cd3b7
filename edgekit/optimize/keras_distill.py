"""Knowledge distillation for tf_keras students: a GradientTape loop on soft targets and labels."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgekit.metrics import top1_accuracy
from edgekit.optimize.backend import StepProgress, TrainingSet
from edgekit.optimize.steps import DistillStep

_TINY = 1e-30


def train_distilled(student: Any, teacher: Any, step: DistillStep, data: TrainingSet, progress: StepProgress) -> None:
    """Train ``student`` in place on ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(labels, s)``.

    ``t`` and ``s`` are logits: a model ending in softmax is trained and read before it (the softmax of its
    own copy switched off meanwhile); other probability outputs are used through their log. Regression uses
    squared errors to the teacher's outputs and to the targets instead. ``teacher`` must be a copy of its own.
    """
    import tensorflow as tf
    import tf_keras

    from edgekit.optimize.backend import SEED

    temperature, alpha = float(step.temperature), float(step.alpha)
    classification = data.task == "classification"
    optimizer = tf_keras.optimizers.Adam(step.learning_rate)
    with _logits(teacher, data) as (teacher_logits, _):
        soft = np.asarray(teacher_logits.predict(data.x_train, batch_size=256, verbose=0), np.float32)

    def losses(teacher_out: Any, labels: Any, out: Any) -> Any:
        if not classification:
            return alpha * tf.reduce_mean(tf.square(out - teacher_out)) + (1 - alpha) * tf.reduce_mean(tf.square(out - labels))
        soft_teacher = tf.nn.softmax(teacher_out / temperature)
        log_student = tf.nn.log_softmax(out / temperature)
        kl = tf.reduce_sum(soft_teacher * (tf.math.log(soft_teacher + _TINY) - log_student), axis=-1)
        hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=out)
        return alpha * temperature**2 * tf.reduce_mean(kl) + (1 - alpha) * tf.reduce_mean(hard)

    with _logits(student, data) as (student_logits, variables):
        @tf.function
        def train_step(x: Any, y: Any, teacher_out: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = losses(teacher_out, y, student_logits(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        dataset = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train, soft))
        batches = dataset.shuffle(int(dataset.cardinality()), seed=SEED).batch(step.batch_size)
        for epoch in range(step.epochs):
            mean_loss = float(np.mean([float(train_step(x, y, t)) for x, y, t in batches]))
            message = f"distilling: epoch {epoch + 1}/{step.epochs} (loss {mean_loss:.4f}"
            if classification:
                predicted = np.asarray(student_logits.predict(data.x_val, batch_size=256, verbose=0))
                message += f", val_accuracy {top1_accuracy(predicted, data.y_val):.4f}"
            progress((epoch + 1) / step.epochs, message + ")")


@contextlib.contextmanager
def _logits(model: Any, data: TrainingSet) -> Iterator[tuple[Any, list]]:
    """``(a model giving model's logits, the variables to train)``; a final softmax is switched off meanwhile."""
    import tensorflow as tf
    import tf_keras

    layer = model.outputs[0]._keras_history.layer
    activation = getattr(layer, "activation", None)
    if data.task != "classification" or data.from_logits:
        yield model, model.trainable_variables
    elif type(layer).__name__ == "Softmax" or type(layer).__name__ == "Activation" and activation.__name__ == "softmax":
        before = tf_keras.Model(model.inputs, layer.input)
        yield before, model.trainable_variables
    elif getattr(activation, "__name__", "") == "softmax":
        layer.activation = tf_keras.activations.linear
        try:
            yield model, model.trainable_variables
        finally:
            layer.activation = activation
            model.predict_function = None  # traced while the softmax was off
    else:
        logs = tf_keras.Model(model.inputs, tf_keras.layers.Lambda(lambda p: tf.math.log(tf.maximum(p, _TINY)))(model.outputs[0]))
        yield logs, model.trainable_variables
