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
    package_data={"components.pusher": ["templates/*.j2"]},  # the model card's template
    install_requires=[
        "absl-py>=1.0,<3",
        "apache-beam[gcp]>=2.61.0,<2.62",
        "docker>=7,<8",  # kfp's DockerRunner (sluiceway run --runner docker)
        "fairness-indicators>=0.47.0,<0.48",
        "google-crc32c>=1.5,<2",
        "jinja2>=3.1,<4",  # the model card's HTML
        "jsonschema>=4.18,<5",  # the model card validated against its published schema  # TFRecord checksums without importing TensorFlow
        "keras-tuner>=1.4.7,<1.5",
        "kfp>=2.13.0,<2.14",
        "kfp-kubernetes>=1.5.0,<1.6",  # the release that accepts kfp 2.13 and protobuf < 5
        "ml-metadata>=1.16.0,<1.17",
        "numpy>=1.23,<2",
        "protobuf>=4.25,<5",
        "pyarrow>=10.0.1,<11",
        "pydantic>=2.5,<3",
        "pydantic-core>=2.14,<3",  # imported for its error types; pydantic pins the exact release
        "PyYAML>=6,<7",
        "scikit-learn>=1.3,<2",  # not imported here: KerasTuner's Bayesian search needs it
        "scipy>=1.11,<2",  # the drift check's two-sample tests (KS, chi-square p-values)
        "tensorflow>=2.16.2,<2.17",
        "tensorflow-data-validation>=1.16.1,<1.17",
        "tensorflow-decision-forests>=1.9.2,<1.10",  # the tree models; the release built for tensorflow 2.16.2
        "tensorflow-metadata>=1.16.1,<1.17",
        "tensorflow-model-analysis>=0.47.1,<0.48",
        "tensorflow-transform>=1.16.0,<1.17",
        "tf-keras>=2.16.0,<2.17",
        "tfx-bsl>=1.16.1,<1.17",
        "wurlitzer>=3.1,<4",  # TF-DF's dependency; sluiceway captures TF-DF's native output with it
        "ydf==0.9.0",  # TF-DF's dependency, unpinned there; ydf 0.10+ needs protobuf >= 5.29
    ],
    extras_require={"test": ["pytest>=7", "jsonschema>=4"]},
    entry_points={"console_scripts": ["sluiceway=pipeline.cli:main"]},
)
