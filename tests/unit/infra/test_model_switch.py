"""The deploy's parameter overrides (infra/model_switch.py overrides) and `make deploy` using them, so that
sam build (the bundles are Docker build arguments) and sam deploy always name the same two bundles."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import model_switch

ROOT = Path(__file__).resolve().parents[3]
DEMO_VERSION = json.loads((ROOT / "models/demo/manifest.json").read_text(encoding="utf-8"))["model_version"]


def as_dict(overrides: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(overrides))


def second_bundle(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the demo bundle under another model_version prefix (``overrides`` reads the manifest)."""
    bundle = tmp_path / "v2"
    shutil.copytree(ROOT / "models/demo", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_version"] = "v2-" + manifest["model_version"].rsplit("-", 1)[1]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return bundle, manifest["model_version"]


def test_overrides_start_from_the_environments_own_and_name_both_bundles(tmp_path: Path) -> None:
    v2, _ = second_bundle(tmp_path)
    line = model_switch.deploy_overrides(ROOT / "samconfig.toml", "dev", ROOT / "models/demo", v2)
    values = as_dict(line)
    # samconfig.toml's [dev] list is kept (the CLI flag would replace it), quoting included.
    assert values["LogLevel"] == "DEBUG" and values["Stage"] == "dev"
    assert values["AllowedOrigins"] == "http://localhost:3000,http://127.0.0.1:3000"
    assert 'AllowedOrigins="http://localhost:3000,http://127.0.0.1:3000"' in line
    assert (values["ModelDir"], values["IngestModelDir"]) == (str(ROOT / "models/demo"), str(v2))
    assert values["CurrentModelVersion"] == DEMO_VERSION  # the served bundle's, not the ingest one's
    assert "PreviousModelVersion" not in values


def test_overrides_replace_a_bundle_the_environment_already_names(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[x.deploy.parameters]\nparameter_overrides = "Stage=prod ModelDir=models/old"\n',
        encoding="utf-8",
    )
    line = model_switch.deploy_overrides(config, "x", ROOT / "models/demo", ROOT / "models/demo", "demo-1")
    assert shlex.split(line).count(f"ModelDir={ROOT / 'models/demo'}") == 1
    assert as_dict(line)["PreviousModelVersion"] == "demo-1"


def test_overrides_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = model_switch.main
    assert main(["overrides", "--bundle", str(tmp_path / "nope")]) == 1
    assert "no such bundle directory" in capsys.readouterr().err
    assert main(["overrides", "--bundle", "models/demo", "--config-env", "staging"]) == 1
    assert "no environment [staging] (known: default, dev, prod)" in capsys.readouterr().err
    assert main(["overrides", "--bundle", "models/demo", "--ingest-bundle", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def make_dry_run(*variables: str) -> subprocess.CompletedProcess[str]:
    """`make -n deploy ...`: the commands it would run, without running them (nor setup/tools)."""
    return subprocess.run(
        ["make", "-n", "-o", "setup", "-o", "tools", "deploy", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_passes_the_same_bundles_to_build_and_deploy() -> None:
    done = make_dry_run("STAGE=dev", "BUNDLE=models/v1", "INGEST_BUNDLE=models/v2")
    assert done.returncode == 0, done.stderr
    script = done.stdout.replace("\\\n", " ")
    assert (
        "infra.model_switch overrides --config-env dev --bundle models/v1 --ingest-bundle models/v2" in script
    )
    build = next(line for line in script.splitlines() if "sam build" in line)
    for command in ("sam build", "sam deploy"):
        assert f'{command} --config-env dev --parameter-overrides "$overrides"' in build


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_without_a_bundle_stops_before_anything() -> None:
    done = make_dry_run("STAGE=dev")
    assert done.returncode == 2
    assert "BUNDLE=models/<dir> is required" in done.stderr
    assert "sam" not in done.stdout
