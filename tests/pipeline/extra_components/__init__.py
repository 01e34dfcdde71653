"""A component that exists only in the tests: proof that adding one needs a package and a spec,
not changes to the runners, the compiler or the CLI.

``RowCounter`` (``row_counter/core.py``) counts ExampleGen's training rows and judges whether there are enough (a verdict,
``enough``); ``Announcer`` (``announcer/core.py``) runs only when there are. Both are ordinary components: a package with a
``core.execute`` and a ``ComponentSpec`` below.
"""

from pipeline.specs import EXAMPLE_GEN, ArtifactType, Components, ComponentSpec, Condition, InputRef, Verdict

ROW_COUNT = ArtifactType("RowCount", "Markdown", "rows.md")

ROW_COUNTER = ComponentSpec(
    name="RowCounter",
    module="tests.pipeline.extra_components.row_counter",
    doc="Counts the training rows and says whether there are enough.",
    sections=("data",),
    inputs={"examples": InputRef("ExampleGen", "examples")},
    outputs={"report": ROW_COUNT},
    parameters={"enough": bool, "why_not": str},
    verdict=Verdict("enough", reason="why_not", exit_code=7),
    declared_in=__name__,
)
ANNOUNCER = ComponentSpec(
    name="Announcer",
    module="tests.pipeline.extra_components.announcer",
    doc="Writes a line saying the data was big enough.",
    sections=(),
    inputs={"report": InputRef("RowCounter", "report")},
    outputs={"announcement": ArtifactType("Announcement", "Markdown", "announcement.md")},
    run_if=(Condition("RowCounter", "enough"),),
    declared_in=__name__,
)

# listed out of order on purpose: the order comes from the inputs
PIPELINE = Components([ANNOUNCER, ROW_COUNTER, EXAMPLE_GEN])
