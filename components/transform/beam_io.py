"""Beam transforms of the Transform step (a module of their own: importing Beam costs seconds)."""

from __future__ import annotations

import apache_beam as beam


class EncodeRecordBatches(beam.DoFn):
    """(RecordBatch, passthrough features) from TFT -> serialized tf.Example, one per row."""

    def setup(self):
        from tfx_bsl.coders import example_coder

        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, element):
        batch = element[0] if isinstance(element, tuple) else element
        yield from self._encoder.encode(batch)
