"""A content fingerprint of a SavedModel that two exports of the same model share.

``saved_model.pb`` differs on every export, even of identical weights: TensorFlow names the traced
functions with a process-wide counter (``__inference_serve_35627``). A hash of the model's files
therefore says "another model" when a re-executed Trainer produced the very same one. This
fingerprint hashes what the model computes with instead of how its graph is named:

- the variables: every checkpoint key (``variables/variables``, read with TensorFlow's checkpoint reader)
  in sorted order, its dtype, shape and value bytes (optimizer slots and the object graph included);
- the assets: every file under ``assets/`` (TF Transform's vocabularies), by relative path and content;
- the signatures: each signature's name, method, and its inputs' and outputs' names, dtypes and shapes;
- the graph, ignoring names: the multiset of its constant tensors' values (TF Transform's analyzer
  results, such as a feature's mean, are constants there) and of its op types.

Not covered: ``keras_metadata.pb`` and ``fingerprint.pb`` (TensorFlow's own, which hashes the
graph bytes), the graph's wiring beyond op counts, and the names of functions and nodes. So two
graphs that differ only in how the same ops with the same constants are connected would share a
fingerprint; two exports of one model always do, in any process.

A model whose files cannot be read (a truncated or corrupt variables file, which TensorFlow's
checksums catch, a missing or unparsable ``saved_model.pb``) raises ``ModelUnreadable`` with a message
saying which file and why, never a TensorFlow traceback. Paths may be local or URLs (``gs://``),
as everything is read through ``tf.io.gfile``. Nothing is loaded or run, so a TensorFlow Decision
Forests model (whose graph uses ops only TF-DF registers) needs no TF-DF import. It reads about
1 MB for the quickstart model and takes tens of milliseconds once TensorFlow is imported.
"""

from __future__ import annotations

import collections
import hashlib

from pipeline.errors import SluicewayError

FINGERPRINT_FORMAT = b"sluiceway model fingerprint 1"
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_PREFIX = "variables/variables"
ASSETS_FOLDER = "assets"


class ModelUnreadable(SluicewayError):
    """A SavedModel's files cannot be read: the message names the model folder, the file and why."""

    def __init__(self, model_dir: str, problem: str):
        self.model_dir, self.problem = model_dir, problem
        super().__init__(f"cannot read the model in {model_dir}: {problem}")


def model_fingerprint(model_dir: str) -> str:
    """The SHA-256 fingerprint of the SavedModel in ``model_dir`` (see the module's docstring).

    Raises:
        ModelUnreadable: A file the fingerprint covers is missing, truncated or corrupt.
    """
    import tensorflow as tf

    digest = hashlib.sha256(FINGERPRINT_FORMAT)
    root = model_dir.rstrip("/")
    try:
        _hash_variables(digest, root, tf)
        _hash_assets(digest, root, tf)
        _hash_graph(digest, root, tf)
    except tf.errors.OpError as exc:
        raise ModelUnreadable(model_dir, _first_line(exc.message)) from None
    return digest.hexdigest()


def _feed(digest, *parts: bytes | str) -> None:
    """Adds each part with its length first, so no two sequences of parts hash alike."""
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)


def _hash_variables(digest, root: str, tf) -> None:
    index = f"{root}/{VARIABLES_PREFIX}.index"
    if not tf.io.gfile.exists(index):
        raise ModelUnreadable(root, f"{VARIABLES_PREFIX}.index is missing (not a complete SavedModel)")
    try:
        # load_checkpoint's reader on the prefix itself; load_checkpoint would take a prefix that a file
        # system reports as a folder (ram://, where any path prefix is one) for a checkpoint folder
        reader = tf.compat.v1.train.NewCheckpointReader(f"{root}/{VARIABLES_PREFIX}")
        dtypes = reader.get_variable_to_dtype_map()
        for name, shape in sorted(reader.get_variable_to_shape_map().items()):
            _feed(digest, name, dtypes[name].name, repr(list(shape)), _tensor_bytes(reader.get_tensor(name)))
    except Exception as exc:  # noqa: BLE001 - the reader maps TF's errors to DataLossError, IndexError, ValueError...
        message = _first_line(getattr(exc, "message", None) or str(exc))
        raise ModelUnreadable(root, f"its variables ({VARIABLES_PREFIX}.*) cannot be read: {message}") from None


def _tensor_bytes(value) -> bytes:
    import numpy as np

    if isinstance(value, bytes):  # a string scalar
        return value
    array = np.asarray(value)
    if array.dtype == object:  # string tensors come back as arrays of bytes
        return b"".join(len(item).to_bytes(8, "little") + item for item in array.ravel().tolist())
    return np.ascontiguousarray(array).tobytes()


def _hash_assets(digest, root: str, tf) -> None:
    assets = f"{root}/{ASSETS_FOLDER}"
    if not tf.io.gfile.isdir(assets):
        return
    found = []
    for folder, _, names in tf.io.gfile.walk(assets):
        found += [f"{folder.rstrip('/')}/{name}" for name in names]
    for path in sorted(found):
        with tf.io.gfile.GFile(path, "rb") as handle:
            _feed(digest, path[len(root) + 1:], handle.read())


def _hash_graph(digest, root: str, tf) -> None:
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = f"{root}/{SAVED_MODEL_FILE}"
    if not tf.io.gfile.exists(path):
        raise ModelUnreadable(root, f"{SAVED_MODEL_FILE} is missing (not a SavedModel)")
    saved_model = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            saved_model.ParseFromString(handle.read())
    except DecodeError as exc:
        raise ModelUnreadable(root, f"{SAVED_MODEL_FILE} is not a valid SavedModel file ({exc})") from None
    if not saved_model.meta_graphs:
        raise ModelUnreadable(root, f"{SAVED_MODEL_FILE} holds no graph")
    meta_graph = saved_model.meta_graphs[0]
    for key in sorted(meta_graph.signature_def):
        signature = meta_graph.signature_def[key]
        _feed(digest, "signature", key, signature.method_name)
        for kind, tensors in (("in", signature.inputs), ("out", signature.outputs)):
            for name in sorted(tensors):
                info = tensors[name]
                shape = "?" if info.tensor_shape.unknown_rank else repr([d.size for d in info.tensor_shape.dim])
                _feed(digest, kind, name, tf.dtypes.as_dtype(info.dtype).name if info.dtype else "-", shape)
    graph = meta_graph.graph_def
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    constants = collections.Counter(
        hashlib.sha256(node.attr["value"].tensor.SerializeToString(deterministic=True)).hexdigest()
        for node in nodes if node.op == "Const")
    for value, count in sorted(constants.items()):
        _feed(digest, "const", value, str(count))
    for op, count in sorted(collections.Counter(node.op for node in nodes).items()):
        _feed(digest, "op", op, str(count))


def _first_line(message: str) -> str:
    return (message or "").strip().splitlines()[0] if (message or "").strip() else "unknown error"
