"""The serving process of the InfraValidator: loads a SavedModel the way a model server does and answers
the requests it is given, in a process of its own.

It is run as a script (``python -I server.py REQUEST RESULT``), never imported by the pipeline: it imports
TensorFlow and nothing of sluiceway, so an op, a Python function or a file the pipeline's process had
registered or open cannot make a model look servable when it is not. (Only TensorFlow Decision Forests'
ops are imported, when the request says the model needs them, as a model server built with them has.)

The request (JSON) names the model, the queries (lists of base64-encoded serialized tf.Examples) and
how many timed calls to make per batch size; the result (JSON, written atomically) has the load time,
the ``serving_default`` signature's inputs and outputs, each query's outputs or error, and the latency
of every timed call. Lines on stdout say how far it got (``loading``, ``loaded <seconds>``), so the caller
can hold it to a load time limit.
"""

import base64
import json
import os
import re
import sys
import time

SIGNATURE = "serving_default"


def _say(line):
    print(line, flush=True)


_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "Traceback (most recent", "Node:")


def _error_text(exc):
    """The error as a client would read it: TensorFlow's own words, without its Python stack and framing
    (which node raised is kept)."""
    message = (getattr(exc, "message", None) or str(exc)).strip()
    node = re.search(r"Detected at node '?([^' \n]+?)'? defined", message)
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line[:1].isspace() and not line.startswith(_NOISE)]
    text = lines[0] if lines else message.splitlines()[0] if message else ""
    return (f"{type(exc).__name__}" + (f" at node {node.group(1)}" if node else "") + f": {text}")[:600]


def _tensor_record(tensor):
    return {"dtype": tensor.dtype.name, "shape": [None if d is None else int(d) for d in tensor.shape]}


def _as_list(array):
    if array.dtype.kind in ("S", "O"):
        return [[v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row]
                for row in array.reshape(array.shape[0], -1)]
    return array.tolist()


def main(request_path, result_path):
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    result = {"python": sys.version.split()[0], "loaded": False, "queries": {}, "latency": {}}
    _say("importing")
    import numpy as np
    import tensorflow as tf

    result["tensorflow"] = tf.__version__
    if request.get("tree_ops"):
        import tensorflow_decision_forests  # noqa: F401 - the ops of a TF-DF model, as TF Serving's build has

    _say("loading")
    started = time.perf_counter()
    try:
        model = tf.saved_model.load(request["model"])
        signature = model.signatures[SIGNATURE] if SIGNATURE in model.signatures else None
    except Exception as exc:  # noqa: BLE001 - whatever stops this load stops a model server's
        result["load_error"] = _error_text(exc)
        _write(result_path, result)
        return
    result["load_seconds"] = round(time.perf_counter() - started, 3)
    result["signatures"] = sorted(model.signatures)
    _say(f"loaded {result['load_seconds']}")
    if signature is None:
        result["load_error"] = f"the model has no {SIGNATURE} signature"
        _write(result_path, result)
        return
    result["loaded"] = True
    _, inputs = signature.structured_input_signature
    result["inputs"] = {name: _tensor_record(spec) for name, spec in inputs.items()}
    result["outputs"] = {name: _tensor_record(spec) for name, spec in signature.structured_outputs.items()}
    input_name = request["input"]

    def call(examples):
        return signature(**{input_name: tf.constant(examples)})

    for name, encoded in request["queries"].items():
        examples = [base64.b64decode(text) for text in encoded]
        try:
            outputs = call(examples)
            result["queries"][name] = {name_: {"dtype": value.dtype.name, "shape": list(value.shape),
                                               "values": _as_list(value.numpy())}
                                       for name_, value in outputs.items()}
        except Exception as exc:  # noqa: BLE001 - an answer a client would get as an error
            result["queries"][name] = {"error": _error_text(exc)}
    sample = [base64.b64decode(text) for text in request["latency_examples"]]
    for batch, calls in request["latency_calls"].items():
        batch = int(batch)
        if not sample:
            break
        batches = [[sample[(start + i) % len(sample)] for i in range(batch)] for start in range(calls)]
        try:
            begin = time.perf_counter()
            call(batches[0])  # the first call of a batch size may trace and warm up: recorded on its own
            first_ms = (time.perf_counter() - begin) * 1000
            timings = []
            for examples in batches:
                tensor = tf.constant(examples)
                begin = time.perf_counter()
                signature(**{input_name: tensor})
                timings.append((time.perf_counter() - begin) * 1000)
            result["latency"][str(batch)] = {"calls": len(timings), "p50_ms": float(np.percentile(timings, 50)),
                                             "p99_ms": float(np.percentile(timings, 99)),
                                             "max_ms": float(max(timings)), "first_call_ms": first_ms}
        except Exception as exc:  # noqa: BLE001
            result["latency"][str(batch)] = {"error": _error_text(exc)}
    _write(result_path, result)
    _say("done")


def _write(path, result):
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(temporary, path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
