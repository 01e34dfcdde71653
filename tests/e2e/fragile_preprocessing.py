"""Test-only preprocessing for the quickstart: the preprocessing sluiceway generates, plus a check that
raises when ``purpose`` holds a value train never had. Every split of the generated data holds only
known purposes, so Transform, training and evaluation all go through; the first serving request with a
new purpose fails, which only the serving check sends."""

import tensorflow as tf

from components.transform.preprocessing import build_plan
from components.transform.preprocessing import preprocessing_fn as generated
from pipeline.config import FeaturesConfig, TransformConfig

FEATURES = FeaturesConfig(
    label="approved", positive="yes",
    numeric=["age", "income", "credit_score", "loan_amount", "loan_term_months", "debt_to_income", "years_employed"],
    categorical=["employment_type", "education", "housing", "purpose", "region", "sex", "race"],
    sensitive=["sex", "race"])
PLAN = build_plan(TransformConfig(), FEATURES)


KNOWN_PURPOSES = ["debt_consolidation", "car", "home", "business", "medical", "education"]  # what datagen writes


def preprocessing_fn(inputs):
    outputs = generated(PLAN, inputs)
    purpose = tf.reshape(tf.sparse.to_dense(inputs["purpose"], default_value=""), [-1])
    known = tf.reduce_any(tf.equal(purpose[:, None], tf.constant(KNOWN_PURPOSES)[None, :]), axis=1)
    check = tf.debugging.Assert(tf.reduce_all(known), ["purpose holds a value train never had"])
    with tf.control_dependencies([check]):   # on a float output: an id output would lose its known range
        outputs["age"] = tf.identity(outputs["age"])
    return outputs
