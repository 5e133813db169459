"""Headless Chromium for tests, driven by Selenium (shared by the tests of every page v2s serves or writes).

`headless_chromium()` returns a ready `selenium.webdriver.Chrome` (the caller quits it, or uses
`chromium_session()` as a context manager); it skips the calling test, saying why, when Selenium, a Chromium
binary or chromedriver is missing. Debian: `apt-get install chromium chromium-driver` (scripts/setup.sh does
it when run as root). `V2S_CHROMIUM` / `V2S_CHROMEDRIVER` name other binaries.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMEDRIVER_NAMES = ("chromedriver",)
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # tests may run as root (CI containers), where the sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",  # play() from a script, without a click
    "--no-first-run",
    "--disable-extensions",
)


def _which(env: str, names: tuple[str, ...]) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).is_file() else None
    return next((path for path in map(shutil.which, names) if path), None)


def find_chromium() -> tuple[str, str] | str:
    """(browser binary, chromedriver binary), or the reason they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in requirements.lock: scripts/setup.sh)"
    browser = _which("V2S_CHROMIUM", CHROMIUM_NAMES)
    driver = _which("V2S_CHROMEDRIVER", CHROMEDRIVER_NAMES)
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None]
    if missing:
        return f"{' and '.join(missing)} not found (Debian: apt-get install chromium chromium-driver)"
    return browser, driver  # type: ignore[return-value]


def headless_chromium(
    download_dir: str | Path | None = None,
    *,
    width: int = 1280,
    height: int = 900,
    extra_args: tuple[str, ...] = (),
) -> Any:
    """A started headless Chromium (`selenium.webdriver.Chrome`) at `width` x `height`, downloads going to
    `download_dir` without a prompt; skips the test when no browser is installed. The caller must `quit()` it."""
    found = find_chromium()
    if isinstance(found, str):
        pytest.skip(f"headless Chromium unavailable: {found}")
    browser, driver = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (*CHROMIUM_ARGS, f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    if download_dir is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(Path(download_dir).resolve()),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        )
    web = webdriver.Chrome(options=options, service=Service(driver))
    if download_dir is not None:  # headless Chromium may ignore the profile's download preferences
        web.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(Path(download_dir).resolve())},
        )
    web.set_script_timeout(30)
    return web


@contextmanager
def chromium_session(download_dir: str | Path | None = None, **kwargs: Any) -> Iterator[Any]:
    """`headless_chromium` as a context manager: the browser is quit on exit, even on a failed assert."""
    web = headless_chromium(download_dir, **kwargs)
    try:
        yield web
    finally:
        web.quit()


def wait_for_file(folder: str | Path, pattern: str, timeout_s: float = 10.0) -> Path:
    """The first complete file matching `pattern` in `folder` (a download in progress ends in .crdownload)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in Path(folder).glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(
        f"no file {pattern} in {folder} after {timeout_s} s: {sorted(Path(folder).iterdir())}"
    )
