"""A real browser on the server's OHIF viewer: headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven
by Selenium) opens ``/ohif/`` of a MONAI Label server whose studies are an Orthanc PACS (DICOMweb), lists the study,
renders its series, and connects the viewer's MONAI Label panel to this server (the app's name, its point-prompt model
and its strategies are offered). Running an infer from the panel (clicks on the canvas) is not driven here.

Orthanc (loopback, free port, own storage) receives the dev series PGBM-003 (22 MR slices); MONAI Label 0.8.5's OHIF
v3 build reads it through the server's ``/proxy/dicom/`` DICOMweb proxy. Screenshots are kept (written atomically)
in the test's temporary folder, whose path the tests print, and checked to be non-blank where the image is drawn.
Missing Chromium, its driver or Selenium fail the tests with what to install (``.ci/run`` installs them).
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.monailabel.lib.orthanc import OrthancProcess, find_dicomweb_plugin, find_orthanc
from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.workdir import copy_app

pytestmark = pytest.mark.slow

MODEL_3D = "baldsam_brain_mri"
PGBM = "PGBM-003"
BROWSER_HINT = ("install headless Chromium and its driver (apt-get install chromium chromium-driver) and Selenium "
                "(pip install selenium, in the test extra); .ci/run installs them")
WAIT_S = 120.0


def _browser_paths() -> tuple[str, str]:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver") or next((p for p in ("/usr/bin/chromedriver",
                                                                "/usr/lib/chromium/chromedriver") if Path(p).is_file()),
                                                  None)
    if not browser or not driver:
        pytest.fail(f"chromium ({browser}) or chromedriver ({driver}) not found: {BROWSER_HINT}")
    return browser, driver


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ohif_screenshots")
    print(f"OHIF screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def driver():
    """Headless Chromium (software WebGL) through Debian's chromedriver; quit at the end."""
    browser, chromedriver = _browser_paths()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {BROWSER_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, dev_dir) -> dict:
    """A running Orthanc holding PGBM-003; stopped by its PID at the end."""
    try:
        find_orthanc()
        find_dicomweb_plugin()
    except FileNotFoundError as err:
        pytest.fail(f"{err} (CI's .ci/run installs both)")
    files = sorted((dev_dir("pgbm_dicom") / "images" / PGBM).glob("*.dcm"))
    head = pydicom.dcmread(str(files[0]), stop_before_pixels=True)
    orthanc = OrthancProcess(tmp_path_factory.mktemp("orthanc"))
    try:
        orthanc.start()
        assert len(orthanc.upload(files)) == len(files)
        yield {"orthanc": orthanc, "study": str(head.StudyInstanceUID), "patient": str(head.PatientName),
               "modality": str(head.Modality), "series": str(head.get("SeriesDescription", "")),
               "instances": len(files)}
    finally:
        orthanc.stop()


@pytest.fixture(scope="module")
def server(pacs: dict, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("monailabel_ohif")
    proc = ServerProcess(copy_app(root / "app").path, pacs["orthanc"].dicomweb_url, root / "server.log",
                         conf={"models": MODEL_3D, "device": "cpu"},
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "MONAI_LABEL_DICOMWEB_SEARCH_FILTER": '{"Modality": "MR"}',
                              "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(root / "cache"),
                              "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def _wait_text(driver, phrases: list[str], timeout: float = WAIT_S) -> str:
    """The page's visible text once it holds every phrase; fails with what it holds instead."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.find_element(By.TAG_NAME, "body").text
        if all(p in text for p in phrases):
            return text
        time.sleep(0.5)
    pytest.fail(f"the page did not show {phrases} within {timeout:.0f} s; it shows:\n{text[:2000]}")


def _screenshot(driver, artifacts: Path, name: str) -> np.ndarray:
    """Save a screenshot (atomically) and return it as a grey array."""
    png = driver.get_screenshot_as_png()
    atomic_write_bytes(artifacts / f"{name}.png", png, overwrite=True)
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def _largest_canvas_rect(driver) -> dict:
    from selenium.webdriver.common.by import By

    rects = [c.rect for c in driver.find_elements(By.TAG_NAME, "canvas")]
    rects = [r for r in rects if r["width"] > 0 and r["height"] > 0]
    if not rects:
        return {}
    return max(rects, key=lambda r: r["width"] * r["height"])


def _rendered_viewport(driver, artifacts: Path, name: str, timeout: float = WAIT_S) -> tuple[np.ndarray, dict]:
    """Wait until the largest canvas (the viewport) shows an image: grey std > 20 and > 5 % of it not dark."""
    deadline = time.monotonic() + timeout
    crop, rect = np.zeros((1, 1)), {}
    while time.monotonic() < deadline:
        rect = _largest_canvas_rect(driver)
        if rect:
            shot = _screenshot(driver, artifacts, name)
            scale = shot.shape[1] / driver.execute_script("return window.innerWidth")
            x0, y0 = int(rect["x"] * scale), int(rect["y"] * scale)
            crop = shot[y0:y0 + int(rect["height"] * scale), x0:x0 + int(rect["width"] * scale)]
            if crop.size and crop.std() > 20 and (crop > 40).mean() > 0.05:
                return crop, rect
        time.sleep(1.0)
    pytest.fail(f"the viewport stayed blank for {timeout:.0f} s (canvas {rect}, grey std {crop.std():.1f}); "
                f"screenshot: {artifacts / name}.png")


def test_study_list_shows_the_pacs_study(driver, server: ServerProcess, pacs: dict, artifacts: Path) -> None:
    driver.get(f"{server.url}/ohif/")
    text = _wait_text(driver, ["Study List", pacs["patient"]])
    shot = _screenshot(driver, artifacts, "study_list")
    row = next(line for line in text.splitlines() if pacs["patient"] in line) if "\n" in text else text
    print(f"OHIF study list: {' | '.join(text.splitlines()[:40])}")
    assert pacs["modality"] in text and str(pacs["instances"]) in text, f"the study row lacks modality or count: {row}"
    assert "1 Studies" in " ".join(text.split()), "the study list does not count exactly one study"
    assert shot.std() > 5, "the study list screenshot is blank"


def test_viewer_renders_the_series(driver, server: ServerProcess, pacs: dict, artifacts: Path) -> None:
    driver.get(f"{server.url}/ohif/viewer?StudyInstanceUIDs={pacs['study']}")
    _wait_text(driver, [pacs["series"], f"/{pacs['instances']}"])  # the overlay's "I:1 (1/22)"
    crop, rect = _rendered_viewport(driver, artifacts, "viewer")
    print(f"viewport {rect['width']:.0f} x {rect['height']:.0f} px: grey std {crop.std():.1f}, "
          f"{100 * (crop > 40).mean():.0f} % not dark")


def _server_field(driver):
    """The MONAI Label panel's server URL field (found anew each time: React replaces it as it is typed in)."""
    from selenium.webdriver.common.by import By

    fields = [e for e in driver.find_elements(By.TAG_NAME, "input")
              if (e.get_attribute("value") or "").startswith("http")]
    assert fields, "the MONAI Label panel has no server field"
    return fields[0]


def test_monai_label_panel_connects_to_this_server(driver, server: ServerProcess, pacs: dict,
                                                   artifacts: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{server.url}/ohif/monai-label?StudyInstanceUIDs={pacs['study']}")
    _wait_text(driver, ["MONAI Label", "Server:"])
    _rendered_viewport(driver, artifacts, "monai_label_mode")
    _server_field(driver).send_keys(Keys.CONTROL, "a")
    _server_field(driver).send_keys(f"{server.url}/")  # the panel's default is http://127.0.0.1:8000/
    assert _server_field(driver).get_attribute("value") == f"{server.url}/"
    _server_field(driver).find_element(By.XPATH, "following::button[1]").click()
    _wait_text(driver, ["monai_baldsam", "Options / Configurations", "Point Prompts"])  # the app's /info/ name
    driver.find_element(By.XPATH, "//*[normalize-space(text())='Point Prompts']").click()
    deadline, options = time.monotonic() + 30, []
    while MODEL_3D not in options and time.monotonic() < deadline:
        time.sleep(0.5)
        options = [(o.get_attribute("textContent") or "").strip() for o in driver.find_elements(By.TAG_NAME, "option")]
    _screenshot(driver, artifacts, "monai_label_panel")
    print(f"MONAI Label panel model choices: {options}")
    assert MODEL_3D in options, f"the panel does not offer {MODEL_3D} (its choices: {options})"
    assert "bald" in options, f"the panel's active learning does not offer the bald strategy ({options})"
