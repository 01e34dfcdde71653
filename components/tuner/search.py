"""The hyperparameter search: a KerasTuner oracle proposes, sluiceway trains tf_keras models.

keras-tuner 1.4 imports Keras 3 and rejects tf_keras models in ``Tuner.search``; its oracles
(random, Bayesian, Hyperband, grid) only deal in hyperparameter values, so they drive the search
here and each trial trains with the same model and data code as the Trainer. With ``cv_folds`` a
trial trains k times on train minus one fold, validating on that fold, and scores the mean.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from typing import Any, Callable

from components.common import keras_model
from pipeline.config import MAXIMIZED_OBJECTIVES, TASK_OBJECTIVES, TREE_MODELS, SearchRange, TrainerConfig, TunerConfig

_INTEGER = {"embedding_dim", "batch_size", "num_trees", "max_depth", "min_examples"}
_MAXIMIZE = set(MAXIMIZED_OBJECTIVES)


def task_objective(tuner: TunerConfig, task: str) -> str:
    """The objective a search scores by: the configured one, else the task's default."""
    return tuner.objective or TASK_OBJECTIVES[task][0]


def hyperparameter_space(tuner: TunerConfig):
    """KerasTuner's ``HyperParameters`` for the declared search space."""
    import keras_tuner as kt

    space = kt.HyperParameters()
    for name, declared in sorted(tuner.search_space.items()):
        _declare(space, name, declared)
    return space


def _declare(space, name: str, declared: SearchRange) -> None:
    if declared.choices is not None:
        # KerasTuner choices are scalars: a list of layer sizes travels as JSON text
        values = [json.dumps(v) if isinstance(v, list) else v for v in declared.choices]
        space.Choice(name, values, ordered=False)
    elif name in _INTEGER:
        space.Int(name, int(declared.min), int(declared.max), sampling=declared.sampling)
    else:
        space.Float(name, float(declared.min), float(declared.max), sampling=declared.sampling)


def _values(trial_hp, tuner: TunerConfig) -> dict[str, Any]:
    values = {}
    for name in tuner.search_space:
        value = trial_hp.get(name)
        values[name] = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
    return values


def make_oracle(tuner: TunerConfig, directory: str, objective_name: str | None = None):
    import keras_tuner as kt

    objective_name = objective_name or tuner.objective or "val_auc"
    objective = kt.Objective(objective_name, "max" if objective_name in _MAXIMIZE else "min")
    space = hyperparameter_space(tuner)
    common = {"objective": objective, "seed": tuner.seed, "hyperparameters": space,
              "tune_new_entries": False, "allow_new_entries": False}
    if tuner.algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(max_trials=tuner.max_trials, **common)
    elif tuner.algorithm == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(max_trials=tuner.max_trials, **common)
    elif tuner.algorithm == "grid":
        oracle = kt.oracles.GridSearchOracle(max_trials=tuner.max_trials, **common)
    else:
        oracle = kt.oracles.HyperbandOracle(max_epochs=tuner.epochs, factor=3, **common)
    oracle._set_project_dir(directory, "sluiceway")  # the oracle keeps its trial state in a folder
    oracle.verbose = 0  # sluiceway reports each trial itself, in its own progress lines
    return oracle


def search(transformed_dir: str, graph_dir: str, tuner: TunerConfig, trainer: TrainerConfig,
           progress: Callable[[str], None] = lambda _: None) -> tuple[list[dict], dict]:
    """Runs the search, for the task Transform recorded and the model family of ``trainer.model``.

    Returns:
        Every trial (number, hyperparameters, score, spread over folds, status) and the best one;
        the objective is ``task_objective``'s.
    """
    tf = keras_model.require_tf_keras()
    import keras_tuner as kt
    import tensorflow_transform as tft

    from components.trainer.core import EVAL_BATCH, check_label

    info = keras_model.load_label_info(graph_dir)
    label, task, classes = info["label"], info["task"], info["classes"]
    _, kinds = keras_model.load_feature_kinds(graph_dir)
    objective = task_objective(tuner, task)
    spec = tft.TFTransformOutput(graph_dir).transformed_feature_spec()
    train_files = keras_model.split_files(transformed_dir, "train")
    eval_files = keras_model.split_files(transformed_dir, "eval")
    label_stats = check_label(train_files, spec, label, task, classes)
    num_classes = len(classes) if classes else None
    fixed = trainer.hyperparameters()
    trees = trainer.model in TREE_MODELS
    directory = tempfile.mkdtemp(prefix="sluiceway-tuner-")
    trials: list[dict] = []
    try:
        oracle = make_oracle(tuner, directory, objective)
        while True:
            trial = oracle.create_trial("sluiceway")
            if trial.status == kt.engine.trial.TrialStatus.STOPPED:
                break
            number = len(trials) + 1
            values = _values(trial.hyperparameters, tuner)
            epochs = int(trial.hyperparameters.values.get("tuner/epochs", tuner.epochs))
            hp = {**fixed, **values}
            batch_size = int(hp.get("batch_size", trainer.batch_size))
            scores = []
            folds = range(tuner.cv_folds) if tuner.cv_folds else [None]
            for fold in folds:
                tf.keras.backend.clear_session()
                tf.keras.utils.set_random_seed(tuner.seed)
                if trees:
                    from components.common import tree_model

                    k = tuner.cv_folds
                    in_fold = None if fold is None else (lambda i, f=fold: tf.equal(i % k, f))
                    out_of_fold = None if fold is None else (lambda i, f=fold: tf.not_equal(i % k, f))
                    train = tree_model.dataset(train_files, spec, label, kinds, keep=out_of_fold)
                    validation = tree_model.dataset(eval_files if fold is None else train_files, spec, label, kinds,
                                                    keep=in_fold)
                    model = tree_model.build_tree_model(kinds, hp, trainer.model, task, num_classes=num_classes,
                                                        seed=tuner.seed)
                    history = tree_model.fit_tree(model, train, validation, task)
                    scores.append(keras_model.best_of(history[objective], objective))
                    continue
                if fold is None:
                    train = keras_model.dataset(train_files, spec, label, kinds, batch_size, shuffle_seed=tuner.seed)
                    validation = keras_model.dataset(eval_files, spec, label, kinds, EVAL_BATCH)
                else:
                    k = tuner.cv_folds
                    train = keras_model.dataset(train_files, spec, label, kinds, batch_size,
                                                shuffle_seed=tuner.seed,
                                                keep=lambda i, f=fold: tf.not_equal(i % k, f))
                    validation = keras_model.dataset(train_files, spec, label, kinds, EVAL_BATCH,
                                                     keep=lambda i, f=fold: tf.equal(i % k, f))
                model = keras_model.build_model(kinds, hp, trainer.model, task, num_classes=num_classes,
                                                label_stats=label_stats)
                history = keras_model.fit(model, train, validation, epochs, trainer.early_stopping_patience,
                                          monitor=objective)
                scores.append(keras_model.best_of(history[objective], objective))
            score = statistics.fmean(scores)
            spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
            oracle.update_trial(trial.trial_id, {objective: score})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
            oracle.end_trial(trial)
            trials.append({"trial": number, "hyperparameters": values, "score": score, "spread": spread,
                           "folds": scores, "status": "completed", "objective": objective})
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            fold_text = f" (mean of {len(scores)} folds, sd {spread:.4f})" if tuner.cv_folds else ""
            progress(f"trial {number}: {objective}={score:.4f}{fold_text}  {shown}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if not trials:
        raise RuntimeError("the tuner ran no trial")
    best_score = (max if objective in _MAXIMIZE else min)(t["score"] for t in trials)
    best = next(t for t in trials if t["score"] == best_score)
    return trials, best
