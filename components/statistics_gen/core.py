"""StatisticsGen: TFDV statistics of every split, and TFDV's HTML view of them.

All splits are computed in one Beam pipeline, so the pipeline start-up is paid once. The Beam
options come from the ``beam`` section, so the same step runs on Dataflow, Flink or Spark.
"""

from __future__ import annotations

import html
import os
from typing import Callable, Mapping

from components.common.artifacts import load_split_stats, split_file, stats_path
from pipeline.config import SPLITS, BeamConfig, Section


def execute(inputs: Mapping[str, str], outputs: Mapping[str, str], config: Mapping[str, Section],
            progress: Callable[[str], None] = lambda _: None) -> dict:
    """Runs StatisticsGen as a pipeline step; see ``run_statistics_gen``. Returns its figures."""
    counts = run_statistics_gen(inputs["examples"], outputs["statistics"], outputs["statistics_view"],
                                config["beam"], progress)
    return {f"examples_{split}": count for split, count in counts.items()}


def run_statistics_gen(examples_dir: str, statistics_dir: str, view_path: str, beam_config: BeamConfig,
                       progress: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Computes TFDV statistics for each split.

    Args:
        examples_dir: An Examples artifact (``Split-<name>/`` gzip TFRecords of tf.Example).
        statistics_dir: Output ExampleStatistics artifact: ``Split-<name>/FeatureStats.pb`` per split.
        view_path: Output HTML file: TFDV's Facets view comparing train with eval and test.
        beam_config: Beam pipeline options.
        progress: Receives a line before the Beam pipeline starts.

    Returns:
        Number of examples TFDV counted per split.
    """
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    progress(f"computing statistics of {', '.join(SPLITS)} with Beam")
    options = tfdv.StatsOptions()
    with beam.Pipeline(options=PipelineOptions(list(beam_config.pipeline_options))) as pipeline:
        for split in SPLITS:
            os.makedirs(os.path.dirname(stats_path(statistics_dir, split)), exist_ok=True)
            source = tfxio.TFExampleRecord(file_pattern=split_file(examples_dir, split),
                                           telemetry_descriptors=["sluiceway", "StatisticsGen"])
            _ = (pipeline
                 | f"Read[{split}]" >> source.BeamSource()
                 | f"Statistics[{split}]" >> tfdv.GenerateStatistics(options)
                 | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(stats_path(statistics_dir, split)))
    stats = {split: load_split_stats(statistics_dir, split) for split in SPLITS}
    _write_view(stats, view_path)
    return {split: int(s.datasets[0].num_examples) if s.datasets else 0 for split, s in stats.items()}


def _write_view(stats: dict, view_path: str) -> None:
    from tensorflow_data_validation.utils.display_util import get_statistics_html

    sections = []
    for other in SPLITS[1:]:
        snippet = get_statistics_html(stats[SPLITS[0]], stats[other], lhs_name=SPLITS[0], rhs_name=other)
        sections.append(f"<h2>{SPLITS[0]} vs {other}</h2>\n{snippet}")
    page = ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Example statistics</title>\n"
            "<style>body{font-family:sans-serif} table{border-collapse:collapse} "
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} td:first-child{text-align:left}</style>"
            "</head><body>\n<h1>Example statistics</h1>\n"
            "<h2>Summary</h2>\n" + _summary_table(stats) + "\n"
            "<p>Below: TensorFlow Data Validation's Facets Overview (its viewer loads scripts from the web; "
            "the summary above does not).</p>\n"
            + "\n".join(sections) + "\n</body></html>\n")
    os.makedirs(os.path.dirname(view_path) or ".", exist_ok=True)
    with open(view_path, "w", encoding="utf-8") as handle:
        handle.write(page)


def _summary_table(stats: dict) -> str:
    """Per feature and split: missing share, and mean (numeric) or distinct values and top value."""
    rows: dict[str, dict[str, str]] = {}
    for split, stat_list in stats.items():
        if not stat_list.datasets:
            continue
        for feature in stat_list.datasets[0].features:
            kind = feature.WhichOneof("stats")
            if kind not in ("num_stats", "string_stats"):
                continue
            values = getattr(feature, kind)
            common = values.common_stats
            total = common.num_missing + common.num_non_missing
            missing = f"{100 * common.num_missing / total:.1f}%" if total else "-"
            if kind == "num_stats":
                shown = f"mean {values.mean:,.4g}, sd {values.std_dev:,.4g}"
            else:
                top = html.escape(values.top_values[0].value) if values.top_values else "-"
                shown = f"{values.unique:,} distinct, top {top}"
            rows.setdefault(".".join(feature.path.step), {})[split] = f"{missing} missing; {shown}"
    header = "<tr><th>feature</th>" + "".join(f"<th>{split}</th>" for split in SPLITS) + "</tr>"
    body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{cells.get(split, '-')}</td>" for split in SPLITS)
                   + "</tr>" for name, cells in sorted(rows.items()))
    return f"<table>{header}{body}</table>"
