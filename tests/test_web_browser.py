"""The whole workflow in a real browser: Debian's chromium driven by Playwright.

The real application (``facelead.api.app.create_app``: REST API and web pages)
runs under uvicorn on 127.0.0.1 over a temporary home with a few MEDS
booking photos enrolled. Five people use it, each in their own browser
context: an administrator creates and certifies the verifier's account; the
requester opens a case and submits a probe showing two people (so the face
picker appears); an examiner takes it from the queue, compares faces side by
side (synchronised zoom, landmarks, FISWG checklist, blind dispositions); a
second examiner verifies blind; the requester issues the lead report and
records corroboration; an auditor reads the dashboard.

Screenshots go to a temporary folder, or to ``docs/img/`` (the README's) with
``FACELEAD_SCREENSHOTS=1``. Without MEDS data or ``/usr/bin/chromium`` the test
is skipped, except that under ``CI=true`` a missing chromium fails it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest
from PIL import Image

from facelead.domain.access import SYSTEM, Actor, Role
from facelead.domain.review import Decision, Disposition
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.services.cases import open_case
from facelead.services.gallery import enroll_files
from facelead.services.identity import list_users
from facelead.services.review import assign_reviewer, dispose, record_features
from facelead.services.search import submit_search
from tests.conftest import WebSite, meds_split, served, web_install

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FloatRect, Page, Response, ViewportSize

pytestmark = pytest.mark.models

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
DISCLAIMER = "Investigative lead only — not a positive identification — not probable cause"
CASE = "LA-2025-0142"
GALLERY_SUBJECTS = 6
VIEWPORT: ViewportSize = {"width": 1440, "height": 1000}

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def _require_chromium() -> None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} not found (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class World:
    site: WebSite
    base: str
    probe: Path
    mate: str  # the gallery subject the probe shows
    shots: Path


def _two_people(first: Path, second: Path, out: Path) -> Path:
    """A still showing the probe subject and, smaller, somebody else: the picker must appear."""
    with Image.open(first) as first_file, Image.open(second) as second_file:
        a, b = first_file.convert("RGB"), second_file.convert("RGB")
        b = b.resize((int(b.width * 0.7), int(b.height * 0.7)))
        canvas = Image.new("RGB", (a.width + b.width + 40, a.height), (200, 200, 200))
        canvas.paste(a, (0, 0))
        canvas.paste(b, (a.width + 40, (a.height - b.height) // 2))
        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=92)
    out.write_bytes(buffer.getvalue())
    return out


def _enrol_gallery(site: WebSite, meds: Path) -> tuple[list[tuple[Path, str]], Path]:
    """A few subjects' earlier bookings; their held-out probes, and a face of someone else."""
    refs, probes = meds_split(meds)
    chosen = [subject for _, subject in probes][:GALLERY_SUBJECTS]
    paths = sorted(p for p, ref in refs.items() if ref.subject_id in chosen)
    results = list(enroll_files(site.services, SYSTEM, paths, refs))
    assert sum(r.status.value == "enrolled" for r in results) >= GALLERY_SUBJECTS
    other = next(p for p, ref in refs.items() if ref.subject_id != probes[0][1])
    return probes[:GALLERY_SUBJECTS], other


def _person(site: WebSite, username: str, role: Role) -> Actor:
    """The actor a login would give (the services trust the interface for who is asking)."""
    user = next(u for u in list_users(site.services, SYSTEM) if u.username == username)
    return Actor(user.user_id, username, frozenset({role}), user.agency, user.certified_until)


def _earlier_work(site: WebSite, probes: list[tuple[Path, str]]) -> None:
    """Other searches of the agency, so the queue holds more than the one under test:
    one waiting for an examiner, one with a possible lead waiting for blind verification."""
    ivan = _person(site, "ivan", Role.INVESTIGATOR)
    erin = _person(site, "erin", Role.EXAMINER)
    services = site.services
    open_case(services, ivan, "LA-2025-0139", "burglary")
    request = SearchRequest(
        "criminal-investigation",
        "Burglary of a jewellery store; suspect filmed at the back entrance.",
        ProbeProvenance("cctv-still", "exported from the store's DVR", "Store camera 4"),
    )
    ids = [
        submit_search(services, ivan, "LA-2025-0139", path.read_bytes(), request).search_id
        for path, _ in probes[1:3]
    ]
    assign_reviewer(services, erin, ids[1], "erin")
    record_features(services, erin, ids[1], ["eyes", "nose", "ears", "mouth", "eyebrows"])
    lead = Decision(Disposition.POSSIBLE_LEAD, "ears, nose and eyebrows agree")
    dispose(services, erin, ids[1], {probes[2][1]: lead}, Disposition.EXCLUDE)


@pytest.fixture(scope="module")
def world(meds_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _require_chromium()
    root = tmp_path_factory.mktemp("web-browser")
    site = web_install(
        root / "home", {"ivan": ("investigator",), "erin": ("examiner",), "audrey": ("auditor",)}
    )
    probes, other = _enrol_gallery(site, meds_dir)
    _earlier_work(site, probes)
    probe, subject = probes[0]
    shots = DOCS_IMG if os.environ.get("FACELEAD_SCREENSHOTS") == "1" else root / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    composite = _two_people(probe, other, root / "two-people.jpg")
    with served(site.app()) as base:
        yield World(site, base, composite, subject, shots)
    site.services.db.dispose()


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Person:
    """One user in their own browser context (own cookies), logged in with password + TOTP."""

    def __init__(self, browser: Browser, world: World, username: str, secret: str) -> None:
        self.world, self.username, self.secret = world, username, secret
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()

    def url(self, path: str) -> str:
        return self.world.base + path

    def shot(self, name: str, full_page: bool = False, height: int | None = None) -> Path:
        """A screenshot of the viewport (or the page, or the top ``height`` pixels)."""
        path = self.world.shots / f"web-{name}.png"
        if height is not None:
            clip: FloatRect = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
            self.page.screenshot(path=str(path), clip=clip)
        else:
            self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def log_in(self, screenshot: str | None = None) -> None:
        page = self.page
        page.goto(self.url("/login"))
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Password").fill(self.world.site.password(self.username))
        if screenshot:
            self.shot(screenshot)
        page.get_by_label("Authenticator code").fill(pyotp.TOTP(self.secret).now())
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(self.url("/"))
        expect(page.get_by_role("heading", name=f"Welcome, {self.username}")).to_be_visible()

    def flash(self) -> str:
        return str(self.page.locator(".flash").first.inner_text())


def test_whole_workflow_in_the_browser(world: World, browser: Browser) -> None:
    secrets = world.site.secrets
    vera_secret = _admin_creates_verifier(Person(browser, world, "admin", secrets["admin"]))
    ivan = Person(browser, world, "ivan", secrets["ivan"])
    search_id = _requester_submits(ivan)
    _examiner_reviews(Person(browser, world, "erin", secrets["erin"]), search_id, world.mate)
    _verifier_agrees(Person(browser, world, "vera", vera_secret), search_id, world.mate)
    _requester_gets_report_and_corroborates(ivan, search_id, world.mate)
    _auditor_reads_dashboard(Person(browser, world, "audrey", secrets["audrey"]))


def _admin_creates_verifier(admin: Person) -> str:
    """The verifier's account comes from the admin page; its TOTP secret is shown once."""
    admin.log_in(screenshot="login")
    page = admin.page
    page.goto(admin.url("/admin/users"))
    page.locator("summary", has_text="Add a user").click()
    page.get_by_label("Username").fill("vera")
    page.get_by_label("Initial password").fill(admin.world.site.password("vera"))
    page.get_by_label("examiner").check()
    page.get_by_role("button", name="Create account").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    page.goto(admin.url("/admin/training"))
    row = page.locator("#training-vera")
    expect(row).to_contain_text("missing")
    row.get_by_role("button", name="Certify vera").click()
    expect(page.locator("#training-vera")).to_contain_text("current")
    admin.shot("admin-training")
    admin.context.close()
    return secret


def _requester_submits(ivan: Person) -> int:
    """Open a case, submit a probe with two people, choose the face: a receipt, no candidates."""
    ivan.log_in()
    page = ivan.page
    page.get_by_role("link", name="Cases", exact=True).click()
    page.get_by_label("Case number").first.fill(CASE)
    page.get_by_label("Offence category").select_option("robbery")
    page.get_by_role("button", name="Open case").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(CASE)
    expect(page.locator(".disclaimer")).to_have_text(re.compile(re.escape(DISCLAIMER)))
    page.get_by_role("link", name="New search in this case").click()
    expect(page.get_by_label("Case number")).to_have_value(CASE)
    page.get_by_label("Permitted purpose").select_option("criminal-investigation")
    page.get_by_label("Justification").fill(
        "Armed robbery of a pharmacy on 12 May; suspect photographed by the store camera."
    )
    page.get_by_label("Probe photo").set_input_files(str(ivan.world.probe))
    page.get_by_label("Source of the image").select_option("cctv-still")
    page.get_by_label("How it was obtained").fill("Still exported from the store CCTV by Det. Ruiz")
    page.get_by_label("Captured by").fill("Pharmacy CCTV camera 2")
    page.get_by_label("Crop").check()
    page.get_by_role("button", name="Submit search").click()
    picker = page.locator("#face-picker")
    expect(picker).to_be_visible()
    expect(page.locator(".face-choice")).to_have_count(2)
    expect(page.locator("#pending-note")).to_be_visible()
    ivan.shot("search", full_page=True)
    page.locator(".face-choice").first.click()
    page.get_by_role("button", name="Search with the chosen face").click()
    page.wait_for_url(re.compile(r"/searches/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("waits for examiner review")
    expect(page.locator("h1")).to_contain_text("candidates ready")
    return int(page.url.rsplit("/", 1)[1])


def _examiner_reviews(erin: Person, search_id: int, mate: str) -> None:
    """Queue, blind comparison (synchronised zoom, landmarks), checklist, dispositions."""
    erin.log_in()
    page = erin.page
    page.get_by_role("link", name="Review queue", exact=True).click()
    row = page.locator(f"#queue-{search_id}")
    expect(row).to_contain_text(CASE)
    expect(row).to_contain_text("examiner review")
    erin.shot("queue", height=470)
    images: list[Response] = []
    page.on("response", lambda r: images.append(r) if "/image" in r.url else None)
    row.get_by_role("button", name="Take for review").click()
    page.wait_for_url(re.compile(rf"/searches/{search_id}/review"))
    expect(page.locator(".disclaimer")).to_have_text(re.compile(re.escape(DISCLAIMER)))
    expect(page.locator(".badge-blind")).to_be_visible()
    expect(page.locator(".cand-info:not([hidden])")).to_contain_text("rank and score hidden")
    _check_synchronised_zoom(page)
    page.get_by_label("Show landmarks").check()
    expect(page.locator("#vp-probe svg.marks circle")).to_have_count(5)
    expect(page.locator("#vp-candidate svg.marks circle")).to_have_count(5)
    page.locator(f"#row-{mate} .cand-link").click()
    expect(page.locator(".cand-info:not([hidden])")).to_contain_text(mate)
    page.get_by_role("button", name="Zoom in both images").click()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)  # the newly selected candidate image finishes loading
    erin.shot("compare")
    assert images and all(r.headers["cache-control"] == "no-store" for r in images)
    _record_checklist(page)
    page.locator(f"#row-{mate} input[value=possible_lead]").check()
    page.locator(f"#row-{mate} input[type=text]").fill(
        "Same ear shape, nose bridge and eyebrow pattern; no unexplained differences"
    )
    page.get_by_label("Exclude every candidate I have not marked").check()
    page.get_by_role("button", name="Record dispositions").click()
    expect(page.locator(".flash-success")).to_contain_text("possible_lead")
    expect(page.locator(".decisions thead")).to_contain_text("Score")  # scores now visible
    erin.context.close()


def _check_synchronised_zoom(page: Page) -> None:
    """Zooming or panning either image moves the other identically."""
    probe, candidate = page.locator("#vp-probe"), page.locator("#vp-candidate")
    page.get_by_role("button", name="Zoom in both images").click()
    page.get_by_role("button", name="Zoom in both images").click()
    expect(probe).to_have_attribute("data-zoom", "1.563")
    expect(candidate).to_have_attribute("data-zoom", "1.563")
    candidate.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("-")
    expect(probe).to_have_attribute("data-zoom", "1.250")
    assert probe.get_attribute("data-pan") == candidate.get_attribute("data-pan") != "0,0"
    box = candidate.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 100, box["y"] + 120)
    page.mouse.wheel(0, -300)
    zoom = candidate.get_attribute("data-zoom")
    assert zoom is not None and float(zoom) > 1.25
    expect(probe).to_have_attribute("data-zoom", zoom)
    page.get_by_role("button", name="Reset view").click()
    expect(probe).to_have_attribute("data-zoom", "1.000")


def _record_checklist(page: Page) -> None:
    for feature in ("face-shape", "eyebrows", "eyes", "nose", "ears", "mouth"):
        page.locator(f"input[name=feature-{feature}][value=compared]").check()
    page.locator("input[name=feature-tattoos-piercings][value=not_visible]").check()
    page.get_by_role("button", name=re.compile("Record checklist")).click()
    expect(page.locator(".flash-success")).to_contain_text("6 compared")


def _verifier_agrees(vera: Person, search_id: int, mate: str) -> None:
    """Blind peer verification: only the possible lead, without the first conclusion."""
    vera.log_in()
    page = vera.page
    page.goto(vera.url("/queue"))
    row = page.locator(f"#queue-{search_id}")
    expect(row).to_contain_text("blind verification")
    row.get_by_role("button", name="Take for blind verification").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Blind peer verification")
    expect(page.locator(".decisions tbody tr")).to_have_count(1)
    expect(page.locator(".decisions")).not_to_contain_text("Same ear shape")
    _record_checklist(page)
    page.locator(f"#row-{mate} input[value=possible_lead]").check()
    page.locator(f"#row-{mate} input[type=text]").fill(
        "Independent comparison: ears and nose agree"
    )
    page.get_by_role("button", name="Record verification").click()
    expect(page.locator(".flash-success")).to_contain_text("verified")
    vera.context.close()


def _requester_gets_report_and_corroborates(ivan: Person, search_id: int, mate: str) -> None:
    page = ivan.page
    forbidden = page.request.get(ivan.url(f"/searches/{search_id}/image?photo={'0' * 64}"))
    assert forbidden.status == 403 and forbidden.headers["cache-control"] == "no-store"
    page.goto(ivan.url(f"/case?number={CASE}"))
    page.get_by_role("link", name="Lead report").click()
    page.get_by_role("button", name="Issue the lead report").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Possible lead")
    expect(page.locator(".report-disclaimer").first).to_contain_text("not probable cause")
    expect(page.locator(f"text=Possible lead: {mate}")).to_be_visible()
    ivan.shot("report", full_page=True)
    pdf = page.request.get(ivan.url(f"/searches/{search_id}/report.pdf"))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert pdf.headers["cache-control"] == "no-store"
    page.goto(ivan.url(f"/case?number={CASE}"))
    page.get_by_label("Kind of evidence").select_option("vehicle-information")
    page.get_by_label("What was found, where and by whom").fill(
        "Licence plate of the getaway car, read from the car park camera, is registered to him"
    )
    page.get_by_role("button", name="Record corroboration").click()
    expect(page.locator(".flash-success")).to_contain_text("corroborated")
    ivan.shot("case", full_page=True)
    ivan.context.close()


def _auditor_reads_dashboard(audrey: Person) -> None:
    audrey.log_in()
    page = audrey.page
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.locator("#integrity")).to_contain_text("Verified")
    expect(page.locator("#chart-rules svg")).to_be_visible()
    audrey.shot("audit")
    audrey.context.close()
