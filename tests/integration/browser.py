"""Headless Debian Chromium for the dashboard tests: the driver, screenshots and small helpers."""

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.mesh import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


def chromium():
    """A headless Chromium driver (yields it, quits it after)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def screenshooter(tmp_path):
    """``shoot(driver, name)``: a screenshot kept with the test (and for the docs)."""
    docs = os.environ.get("MIRROR_DOCS_SCREENSHOTS")

    def shoot(driver, name):
        path = tmp_path / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"no screenshot {path}"
        if docs:
            Path(docs).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(docs) / path.name)
        return path

    return shoot


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def click_twice(driver, css):
    """Arm a confirming button, then confirm."""
    button = driver.find_element("css selector", css)
    button.click()
    wait_for(lambda: "armed" in button.get_attribute("class"), 5, what=f"{css} armed")
    button.click()
