"""``sluiceway build-image``: builds the image every compiled component runs in.

The ``Dockerfile`` at the root of a sluiceway checkout installs the pinned lock and sluiceway
itself; this module only works out the build command: which engine (docker or podman, whichever
answers), the tag (``kubeflow.image``), the OCI label values, and the optional CA bundle, passed as
a build secret so it never lands in a layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata

from pipeline.errors import SluicewayError
from pipeline.files import files_sha256

ENGINES = ("docker", "podman")
DEFAULT_IMAGE = "localhost/sluiceway:0.1.0"


class ImageBuildFailed(SluicewayError):
    """No container engine is usable, or the build failed."""


def source_root() -> str:
    """The checkout the image is built from: the folder holding the Dockerfile and ``pipeline/``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, "Dockerfile")):
        raise ImageBuildFailed(f"build-image needs a sluiceway source checkout: no Dockerfile in {root} "
                               "(sluiceway is installed from a package here)")
    return root


def code_sha256(root: str) -> str:
    """A hash of the code the Dockerfile copies in (setup.py, pipeline/, components/), the same as
    ``find setup.py pipeline components -name '*.py' | LC_ALL=C sort | xargs sha256sum | sha256sum``."""
    paths = ["setup.py"] if os.path.exists(os.path.join(root, "setup.py")) else []
    for top in ("pipeline", "components"):
        for folder, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            paths += [os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/")
                      for f in files if f.endswith(".py")]
    return files_sha256(root, paths)


def _answers(engine: str) -> bool:
    try:
        return subprocess.run([engine, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_engine(wanted: str | None = None) -> tuple[str, str]:
    """The engine to build with, and why it was chosen (for the user).

    Raises:
        ImageBuildFailed: Neither docker nor podman is installed and answering.
    """
    candidates = [wanted] if wanted else list(ENGINES)
    notes = []
    for engine in candidates:
        if shutil.which(engine) is None:
            notes.append(f"{engine} is not installed")
        elif not _answers(engine):
            notes.append(f"{engine} is installed but `{engine} info` fails (no engine answering)")
        else:
            return engine, "; ".join(notes)
    raise ImageBuildFailed("build-image: no container engine to build with: " + "; ".join(notes)
                           + ". Install Docker or podman (Debian: apt-get install podman).")


def _git(root: str, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


@dataclass
class BuildPlan:
    engine: str
    command: list[str]
    env: dict[str, str]
    image: str


def plan_build(engine: str, image: str, *, base_image: str | None = None, ca_bundle: str | None = None,
               engine_args: list[str] | None = None) -> BuildPlan:
    """The build command line for ``engine``."""
    root = source_root()
    try:
        version = metadata.version("sluiceway")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    command = [engine, "build", "--file", os.path.join(root, "Dockerfile"), "--tag", image,
               "--build-arg", f"VERSION={version}", "--build-arg", f"SOURCE={_git(root, 'remote', 'get-url', 'origin')}",
               "--build-arg", f"REVISION={_git(root, 'rev-parse', 'HEAD')}",
               "--build-arg", f"CODE_SHA256={code_sha256(root)}"]
    if base_image:
        command += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if ca_bundle:
        if not os.path.isfile(ca_bundle) or not os.path.getsize(ca_bundle):
            raise ImageBuildFailed(f"build-image: --ca-bundle {ca_bundle}: expected a PEM file of CA certificates")
        command += ["--secret", f"id=ca,src={os.path.abspath(ca_bundle)}"]
    command += list(engine_args or []) + [root]
    env = dict(os.environ)
    if engine == "docker":
        env["DOCKER_BUILDKIT"] = "1"  # the Dockerfile's RUN --mount=type=secret needs BuildKit
    return BuildPlan(engine, command, env, image)


def build(plan: BuildPlan) -> None:
    """Runs the build, its output going straight to the terminal.

    Raises:
        ImageBuildFailed: The engine reported a failure.
    """
    completed = subprocess.run(plan.command, env=plan.env)
    if completed.returncode != 0:
        raise ImageBuildFailed(f"build-image: `{plan.engine} build` failed with exit code {completed.returncode} "
                               "(its output is above)")
