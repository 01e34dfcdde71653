"""`sluiceway build-image`: the engine it picks, the command it runs, the code hash it labels."""

from __future__ import annotations

import subprocess

import pytest

from pipeline import image
from tests.conftest import REPO


def test_without_docker_or_podman_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(image.ImageBuildFailed, match="docker is not installed; podman is not installed.*podman"):
        image.choose_engine()


def test_an_engine_that_does_not_answer_is_skipped_and_the_reason_kept(monkeypatch):
    monkeypatch.setattr(image.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(image, "_answers", lambda engine: engine == "podman")
    engine, notes = image.choose_engine()
    assert engine == "podman" and "docker is installed but `docker info` fails" in notes


def test_the_build_passes_the_ca_bundle_as_a_secret_and_labels_the_code(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    plan = image.plan_build("docker", "localhost/sluiceway:test", base_image="localhost/base:1", ca_bundle=str(ca),
                            engine_args=["--network=host"])
    command = plan.command
    assert command[:2] == ["docker", "build"] and command[-1] == REPO
    assert command[command.index("--tag") + 1] == "localhost/sluiceway:test"
    assert f"id=ca,src={ca}" in command and "BASE_IMAGE=localhost/base:1" in command
    assert "--network=host" in command and plan.env["DOCKER_BUILDKIT"] == "1"
    with pytest.raises(image.ImageBuildFailed, match="expected a PEM file"):
        image.plan_build("docker", "x", ca_bundle=str(tmp_path / "missing.pem"))


def test_the_code_hash_is_the_one_a_shell_computes_over_the_copied_sources():
    shell = subprocess.run("find setup.py pipeline components -name '*.py' -not -path '*/__pycache__/*' "
                           "| LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1", shell=True, cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert image.code_sha256(REPO) == shell
