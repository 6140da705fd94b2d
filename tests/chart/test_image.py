"""The container image the chart runs: the Dockerfile lints clean with
hadolint, and agrees with the chart on binaries, user and ports. (No Docker
engine here, so the image itself is not built.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
VALUES = yaml.safe_load((ROOT / "k8s" / "helm" / "sigil" / "values.yaml").read_text())
BINARIES = {"sigil-issuer", "sigil-validator", "sigil-edge-token", "sigil"}


def test_dockerfile_lints_clean():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_every_binary_locked_and_copies_them():
    text = DOCKERFILE.read_text()
    build = re.search(r"cargo build ([^&]+)", text).group(1)
    assert "--release" in build and "--locked" in build
    assert set(re.findall(r"--bin (\S+)", build)) == BINARIES
    copied = set(re.findall(r"target/release/(\S+)", text))
    assert copied == BINARIES


def test_image_user_and_ports_match_the_chart():
    text = DOCKERFILE.read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, flags=re.M)
    assert int(user[0]) == VALUES["podSecurityContext"]["runAsUser"]
    assert int(user[1]) == VALUES["podSecurityContext"]["runAsGroup"]
    exposed = {int(port) for line in re.findall(r"^EXPOSE (.+)$", text, flags=re.M) for port in line.split()}
    assert exposed == set(VALUES["ports"].values())


def test_dockerignore_keeps_build_output_and_tools_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"target/", ".venv/", ".git/", "node_modules/"} <= ignored
