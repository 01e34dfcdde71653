"""Content hashes and atomic writes (pipeline/files.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from components.pusher.versions import model_sha256
from pipeline import files
from pipeline.files import (atomic_open, atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text,
                            file_sha256, files_sha256, tree_sha256)

# A SavedModel-shaped tree. Its files at the top sort after the folder "assets", so a hash that
# sorted all paths at once instead of going folder by folder would differ.
MODEL = {
    "saved_model.pb": b"graph",
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": b"\x00\x01weights",
    "assets/vocab_sex.txt": b"female\nmale\n",
    "zz/a.txt": b"",
    "fingerprint.pb": b"fp",
}
# model_sha256 of MODEL as computed by the Pusher before tree_sha256 existed: the value manifests of
# models pushed then record, which a rerun compares against to avoid pushing the same model again.
MODEL_SHA256_BEFORE = "1ec5dcb16bbd7caa7c21a908268bd659582e8723710d6ad31f1a8225de28636e"


def _tree(folder, contents: dict[str, bytes]) -> str:
    for relative, data in contents.items():
        path = folder.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(folder)


def test_file_sha256_is_what_sha256sum_prints(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 << 20))  # several read blocks
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    shell = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert file_sha256(str(path)) == shell


def test_a_folder_hashes_as_the_manifests_of_pushed_models_record(tmp_path):
    model = _tree(tmp_path / "model", MODEL)
    assert tree_sha256(model) == MODEL_SHA256_BEFORE
    assert model_sha256(model) == MODEL_SHA256_BEFORE


def test_the_same_tree_elsewhere_has_the_same_hash(tmp_path):
    first = _tree(tmp_path / "a", MODEL)
    second = _tree(tmp_path / "b" / "nested", dict(reversed(MODEL.items())))  # created in another order
    assert tree_sha256(first) == tree_sha256(second)
    (tmp_path / "a" / "empty").mkdir()
    assert tree_sha256(first) == tree_sha256(second)  # an empty folder holds no file


def test_changing_a_file_changes_the_hash(tmp_path):
    model = _tree(tmp_path / "model", MODEL)
    before = tree_sha256(model)
    (tmp_path / "model" / "variables" / "variables.index").write_bytes(b"indey")
    assert tree_sha256(model) != before
    (tmp_path / "model" / "variables" / "variables.index").write_bytes(b"index")
    assert tree_sha256(model) == before
    (tmp_path / "model" / "assets" / "extra.txt").write_bytes(b"")
    assert tree_sha256(model) != before  # even an empty file counts: its path is hashed


def test_renaming_or_moving_a_file_changes_the_hash(tmp_path):
    model = _tree(tmp_path / "model", MODEL)
    before = tree_sha256(model)
    os.rename(tmp_path / "model" / "fingerprint.pb", tmp_path / "model" / "fingerprint2.pb")
    renamed = tree_sha256(model)
    assert renamed != before
    os.rename(tmp_path / "model" / "fingerprint2.pb", tmp_path / "model" / "assets" / "fingerprint2.pb")
    assert tree_sha256(model) not in (before, renamed)


def test_a_single_file_hashes_as_its_content_and_a_missing_path_is_an_error(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("hello")
    assert tree_sha256(path) == file_sha256(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        tree_sha256(tmp_path / "nope")


def test_files_sha256_is_the_sha256sum_listing_of_the_files(tmp_path):
    _tree(tmp_path, {"pkg/a.py": b"import pkg.b\n", "pkg/b.py": b"X = 1\n", "setup.py": b"", "other.py": b"no"})
    chosen = ["setup.py", "pkg/b.py", "pkg/a.py"]
    shell = subprocess.run("printf '%s\\n' setup.py pkg/b.py pkg/a.py | LC_ALL=C sort | xargs sha256sum | sha256sum",
                           shell=True, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()[0]
    assert files_sha256(tmp_path, chosen) == shell
    assert files_sha256(tmp_path, reversed(chosen)) == shell  # the order given does not matter
    assert files_sha256(tmp_path, chosen + ["other.py"]) != shell
    (tmp_path / "pkg" / "b.py").write_bytes(b"X = 2\n")
    assert files_sha256(tmp_path, chosen) != shell


def _leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name != "target.json")


def test_atomic_writes_replace_the_file_and_leave_nothing_else(tmp_path):
    target = tmp_path / "target.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert target.read_text().startswith('{\n  "a"')  # the json keyword arguments were used
    atomic_write_text(target, "text ü")
    assert target.read_text(encoding="utf-8") == "text ü"
    atomic_write_bytes(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)  # readable as a file made by open() is
    assert _leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "target.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_open(target) as handle:
            handle.write('{"new": ')
            handle.flush()
            raise RuntimeError("disk on fire")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"not json": object()})
    assert target.read_text() == '{"old": true}'
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "target.json"
    target.write_text("old")

    def refuse(source, destination):
        raise PermissionError(f"cannot rename {source} to {destination}")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_hands_a_writer_a_name_with_the_suffix_it_needs(tmp_path):
    target = tmp_path / "target.json"
    with atomic_path(target, suffix=".yaml") as temp:
        assert os.path.dirname(temp) == str(tmp_path) and temp.endswith(".yaml") and os.path.exists(temp)
        assert not target.exists()  # nothing shows under the real name until the block completes
        os.remove(temp)  # a writer that replaces the file rather than writing into it
        with open(temp, "w") as handle:
            handle.write("written by name")
    assert target.read_text() == "written by name"
    assert _leftovers(tmp_path) == []


def test_atomic_open_accepts_only_writing_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "target.json", "a"):
            pass
    assert os.listdir(tmp_path) == []


def test_a_url_hashes_as_the_same_bytes_on_disk(tmp_path):
    # ExampleGen reads gs:// sources and the runner's cache key hashes them: TF's in-process ram:// file system
    import tensorflow as tf

    from pipeline.files import file_sha256

    data = b"id,x\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000))
    local = tmp_path / "data.csv"
    local.write_bytes(data)
    url = f"ram://bucket/{tmp_path.name}/data.csv"
    with tf.io.gfile.GFile(url, "wb") as handle:
        handle.write(data)
    assert file_sha256(url) == file_sha256(local) == hashlib.sha256(data).hexdigest()
