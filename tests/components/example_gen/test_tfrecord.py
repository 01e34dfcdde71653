"""The TensorFlow-free TFRecord reader and writer ExampleGen uses."""

from __future__ import annotations

import gzip
import random

import pytest

from components.common.tfrecord import CorruptRecordError, TFRecordWriter, read_records


def sample_records(count: int = 400, seed: int = 5) -> list[bytes]:
    """Records of varied sizes, including an empty one and one larger than a gzip block."""
    rng = random.Random(seed)
    records = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))) for _ in range(count)]
    records[0] = b"the first record, 36 bytes long ...."
    records[3] = b""
    records[7] = bytes(rng.getrandbits(8) for _ in range(70_000))
    return records


def write(path, records: list[bytes]) -> str:
    with TFRecordWriter(str(path)) as writer:
        writer.write_many(records[: len(records) // 2])
        for record in records[len(records) // 2:]:
            writer.write(record)
        assert writer.count == len(records)
    return str(path)


@pytest.fixture(scope="module")
def records() -> list[bytes]:
    return sample_records()


@pytest.fixture
def gz_file(tmp_path, records) -> str:
    return write(tmp_path / "data.tfrecord.gz", records)


@pytest.fixture
def plain_bytes(gz_file) -> bytes:
    with gzip.open(gz_file, "rb") as handle:
        return handle.read()


def test_round_trip_gzip(gz_file, records):
    with open(gz_file, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"  # the writer compresses

    assert list(read_records(gz_file)) == records


def test_round_trip_uncompressed(tmp_path, plain_bytes, records):
    path = tmp_path / "data.tfrecord"
    path.write_bytes(plain_bytes)

    assert list(read_records(str(path))) == records


def test_empty_file_has_no_records(tmp_path):
    path = write(tmp_path / "empty.tfrecord.gz", [])

    assert list(read_records(path)) == []


def test_writer_output_is_byte_identical_for_identical_input(tmp_path, records):
    first = write(tmp_path / "a.tfrecord.gz", records)
    second = write(tmp_path / "b-other-name.tfrecord.gz", records)

    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


@pytest.mark.slow
def test_tensorflow_reads_the_gzip_file_identically(gz_file, records):
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(gz_file, compression_type="GZIP")

    assert [item.numpy() for item in dataset] == records


@pytest.mark.slow
def test_reads_a_file_tensorflow_wrote(tmp_path, records):
    import tensorflow as tf

    path = str(tmp_path / "tf.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options=tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for record in records:
            writer.write(record)

    assert list(read_records(path)) == records


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x5A
    return bytes(out)


def _plain_corruptions(plain: bytes) -> dict[str, bytes]:
    second_record = 8 + 4 + 36 + 4  # offset of record 2's header
    return {
        "truncated in the last record's data": plain[:-10],
        "truncated in a header": plain[:5],
        "a flipped byte in a record's data": _flip(plain, 16),
        "a flipped byte in a record's length": _flip(plain, second_record + 1),
        "not a TFRecord file": b"id,age,income\nA1,30,1000\n" * 10,
    }


@pytest.mark.parametrize("case", ["truncated in the last record's data", "truncated in a header",
                                  "a flipped byte in a record's data", "a flipped byte in a record's length",
                                  "not a TFRecord file"])
def test_corrupt_uncompressed_file_raises_corrupt_record_error(tmp_path, plain_bytes, case):
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(_plain_corruptions(plain_bytes)[case])

    with pytest.raises(CorruptRecordError) as info:
        list(read_records(str(path)))

    assert str(path) in str(info.value)
    assert "record" in str(info.value)


def test_corrupt_record_inside_valid_gzip_raises_corrupt_record_error(tmp_path, plain_bytes):
    path = tmp_path / "bad.tfrecord.gz"
    path.write_bytes(gzip.compress(_flip(plain_bytes, 16)))

    with pytest.raises(CorruptRecordError, match="record 1 has a bad data checksum"):
        list(read_records(str(path)))


def test_records_before_the_damage_are_yielded(tmp_path, plain_bytes, records):
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(plain_bytes[:-10])
    seen = []

    with pytest.raises(CorruptRecordError, match=f"record {len(records)} is truncated"):
        for record in read_records(str(path)):
            seen.append(record)

    assert seen == records[:-1]


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_gzip_file_raises_corrupt_record_error(gz_file, keep):
    # a copy or download cut short: the gzip stream itself ends early
    with open(gz_file, "rb") as handle:
        data = handle.read()
    with open(gz_file, "wb") as handle:
        handle.write(data[: int(len(data) * keep)])

    with pytest.raises(CorruptRecordError) as info:
        list(read_records(gz_file))

    assert gz_file in str(info.value)


def test_verify_false_skips_checksums(tmp_path, plain_bytes, records):
    path = tmp_path / "flipped.tfrecord"
    path.write_bytes(_flip(plain_bytes, 16))

    read = list(read_records(str(path), verify=False))

    assert len(read) == len(records)
    assert read[0] != records[0] and read[1:] == records[1:]

