"""Render the status page's home-screen icons (PNG) from sortcore/web/static/app-icon.svg.

Run after changing the SVG: .venv/bin/python scripts/web-icons.py
Uses Debian's chromium through Playwright, like tests/test_web_browser.py.
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parents[1] / "sortcore" / "web" / "static"
SIZES = {"icon-512.png": 512, "icon-192.png": 192, "icon-180.png": 180}  # manifest; iOS home screen


def main():
    svg = (STATIC / "app-icon.svg").read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        for name, size in SIZES.items():
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content("<style>html,body{margin:0}svg{display:block;width:%dpx;height:%dpx}</style>%s"
                             % (size, size, svg))
            page.screenshot(path=str(STATIC / name))
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
