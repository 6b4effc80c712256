"""Screenshot of a deployment's Run form refusing source_version 3.17.10 (headless Chromium, Playwright).

Not part of the suite (Playwright is not a dependency): with a Prefect server running its UI and the
site deployments made by deployments/deploy_sites.py, run
    python run_form_screenshot.py API_URL DEPLOYMENT_ID OUT.png
with a Python that has `playwright` (Debian's /usr/bin/chromium is used; no browser download).
"""

import sys
import time

from playwright.sync_api import sync_playwright

api, dep_id, out = sys.argv[1], sys.argv[2], sys.argv[3]
base = api.removesuffix("/api")
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{base}/deployments/deployment/{dep_id}/run", wait_until="networkidle")
    time.sleep(2)
    areas = page.locator("textarea")
    print("textareas", areas.count())
    areas.nth(0).fill("3.17.10")
    areas.nth(1).fill("3.17.5")
    page.get_by_role("button", name="Submit").click()
    time.sleep(3)
    page.mouse.wheel(0, -10000)
    time.sleep(1)
    page.screenshot(path=out, full_page=False)
    body = page.inner_text("body")
    print([line for line in body.splitlines() if "does not match" in line][:1])
    print(page.url)
    b.close()
