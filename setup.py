"""sluiceway: a declarative ML pipeline with TFX-style components.

Ranges here say what sluiceway works with; requirements.lock pins the exact, tested set.
"""

from setuptools import find_packages, setup

setup(
    name="sluiceway",
    version="0.1.0",
    description="Declarative ML pipelines with TFX-style components, run locally or compiled to Kubeflow Pipelines.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*"]),
    install_requires=[
        "tensorflow>=2.16.2,<2.17",
        "tensorflow-data-validation>=1.16.1,<1.17",
        "tensorflow-transform>=1.16.0,<1.17",
        "tensorflow-model-analysis>=0.47.1,<0.48",
        "tfx-bsl>=1.16.1,<1.17",
        "tensorflow-metadata>=1.16.1,<1.17",
        "apache-beam[gcp]>=2.61.0,<2.62",
        "protobuf>=4.25,<5",
        "pyarrow>=10.0.1,<11",
        "tf-keras>=2.16.0,<2.17",
        "keras-tuner>=1.4.7,<1.5",
        "kfp>=2.13.0,<2.14",
        "ml-metadata>=1.16.0,<1.17",
        "fairness-indicators>=0.47.0,<0.48",
        "pydantic>=2.5,<3",
        "PyYAML>=6",
    ],
    extras_require={"test": ["pytest>=7", "jsonschema>=4"]},
    entry_points={"console_scripts": ["sluiceway=pipeline.cli:main"]},
)
