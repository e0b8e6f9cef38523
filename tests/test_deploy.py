"""deploy/ checked here, since no container engine or cluster is available: the Kubernetes manifests against the
Kubernetes JSON schemas (kubernetes-validate, offline, strict), and the image's file set exercised the way
deploy/Dockerfile builds it: the build stage's COPY lines into a source folder, `pip install --prefix` from those
files only, the final stage's COPY lines into an app folder; then the CLI's --help and the image's CMD run from
there and answer /healthz."""
from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from tests.live_server import REPO, serving

DEPLOY = REPO / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))

kubernetes_validate = pytest.importorskip("kubernetes_validate.utils", reason="kubernetes-validate is not installed "
                                          "(pip install -e '.[test]')")


# ------------------------------------------------------------------------------------------ Kubernetes
def _resources() -> list[tuple[str, dict]]:
    return [(path.name, resource) for path in MANIFESTS
            for resource in kubernetes_validate.resources_from_file(str(path))]


def test_every_manifest_validates_against_the_kubernetes_schemas():
    version = kubernetes_validate.latest_version()
    resources = _resources()
    assert {r["kind"] for _, r in resources} >= {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
                                                 "HorizontalPodAutoscaler"}
    for name, resource in resources:
        # strict: an unknown field (a typo such as `readinesProbe`) fails, as does a resource with no schema
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_validation_catches_a_broken_manifest():
    version = kubernetes_validate.latest_version()
    deployment = copy.deepcopy(next(r for _, r in _resources() if r["kind"] == "Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)
    deployment = copy.deepcopy(next(r for _, r in _resources() if r["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)


def test_manifests_agree_with_the_image_and_the_app():
    deployment = next(r for _, r in _resources() if r["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"EXPOSE {container['ports'][0]['containerPort']}" in dockerfile
    assert f"--uid {pod['securityContext']['runAsUser']}" in dockerfile
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # a read-only root filesystem needs a writable /tmp (metric files, the gallery's throw-away database)
    if container["securityContext"].get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts


# ------------------------------------------------------------------------------------------ the image's file set
def _copy_lines(stage: int) -> list[tuple[list[str], str]]:
    """The COPY sources and destination of one stage of the Dockerfile (0: build, 1: final), --from lines left out."""
    stages = re.split(r"^FROM ", (DEPLOY / "Dockerfile").read_text(), flags=re.M)[1:]
    copies = []
    for line in stages[stage].splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, destination = shlex.split(line)[1:]
            copies.append((sources, destination))
    return copies


def _lay_out(stage: int, root: Path) -> None:
    for sources, destination in _copy_lines(stage):
        for source in sources:
            target = root / destination if not destination.endswith("/") else root / destination / Path(source).name
            if destination in ("./", "."):
                target = root / Path(source).name
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, target)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """(prefix, app folder, environment) of the image built from only the Dockerfile's files."""
    root = tmp_path_factory.mktemp("image")
    source, prefix, app = root / "src", root / "install", root / "app"
    source.mkdir()
    app.mkdir()
    _lay_out(0, source)
    assert not (source / "bench").exists() and not (source / "tests").exists()
    # the dependencies are this environment's; only the project itself is built, from the copied files
    # --ignore-installed: never uninstall this environment's own (editable) install of the project
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                            "--ignore-installed", "--prefix", str(prefix), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    still = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; m.distribution('hemoptysis-cds')"],
                           capture_output=True, timeout=60)
    assert still.returncode == 0, "building the image's package uninstalled the project from this environment"
    _lay_out(1, app)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    # -S: none of this environment's .pth files, so the repository's editable install cannot stand in for the
    # built package; the dependencies come from this environment's site-packages, after the image's prefix
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMOPTYSIS_CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), sysconfig.get_path("purelib")])
    env.update({"HEMOPTYSIS_CDS_AUTH_MODE": "required", "PYTHONDONTWRITEBYTECODE": "1"})
    yield prefix, app, env


def test_image_cli_help_works_without_bench(image):
    prefix, app, env = image
    script = prefix / "bin" / "hemoptysis-cds"
    helped = subprocess.run([sys.executable, "-S", str(script), "--help"], cwd=app, env=env, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "serve" in helped.stdout and "replay" in helped.stdout
    where = subprocess.run([sys.executable, "-S", "-c", "import server, sys; print(server.__file__); "
                            "import importlib.util as u; print(u.find_spec('bench'))"],
                           cwd=prefix, env=env, capture_output=True, text=True, timeout=60)
    assert str(prefix) in where.stdout and "None" in where.stdout  # the built package, and no bench/ at all
    bench = subprocess.run([sys.executable, "-S", str(script), "bench"], cwd=app, env=env, capture_output=True,
                           text=True, timeout=60)
    assert bench.returncode == 2 and "not installed" in bench.stderr


def test_image_serves_with_its_own_command(image, tmp_path):
    prefix, app, env = image
    env = {**env, "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{tmp_path}/image.sqlite3",
           "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": str(tmp_path / "audit.key")}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    command = re.search(r'^CMD (\[.*\])', dockerfile, flags=re.M).group(1)
    argv = [part.strip().strip('"') for part in command.strip("[]").split(",")]
    assert argv[0] == "gunicorn"
    # the image's CMD (gunicorn -c deploy/gunicorn.conf.py server.run.wsgi:app), its host and port set as serve's
    # flags would set them
    cmd = [sys.executable, "-S", "-m", "gunicorn", *argv[1:]]
    with serving(tmp_path, command=None, cwd=app, env=env, workers=1, argv_override=cmd) as base:
        assert requests.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"
        page = requests.get(f"{base}/docs/engine", timeout=10)
        assert page.status_code == 200 and "<h1>The massive-hemoptysis engine" in page.text
        assert requests.get(f"{base}/gallery", timeout=60).text.count('<section class="scenario"') > 60
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401  # required mode, no token


def test_image_serves_through_the_cli(image, tmp_path):
    prefix, app, env = image
    env = {**env, "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
           "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": str(tmp_path / "audit.key")}
    with serving(tmp_path, command=[sys.executable, "-S", str(prefix / "bin" / "hemoptysis-cds")], cwd=app,
                 env=env, workers=1) as base:
        assert requests.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"
        assert requests.get(f"{base}/cds-services", timeout=10).json()["services"]
