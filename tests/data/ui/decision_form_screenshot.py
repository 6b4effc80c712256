"""Screenshot of the decision form of a suspended run on its flow-run page (headless Chromium, Playwright).

Not part of the suite (Playwright is not a dependency): with a Prefect server running its UI
(``PREFECT_UI_ENABLED=true``) and a flow run suspended at a statement's breakpoint (a deployment run of
startup_pre_process whose SQL fails, as in tests/deployments/test_decide_in_ui.py), run
    python decision_form_screenshot.py API_URL FLOW_RUN_ID OUT.png
with a Python that has `playwright` (Debian's /usr/bin/chromium is used; no browser download). It opens
the flow run, presses Resume and shows the form: the failure (markdown), the decision, who and why.
"""

import sys
import time

from playwright.sync_api import sync_playwright

api, run_id, out = sys.argv[1], sys.argv[2], sys.argv[3]
base = api.removesuffix("/api")
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page(viewport={"width": 1300, "height": 1100})
    page.goto(f"{base}/runs/flow-run/{run_id}", wait_until="networkidle")
    time.sleep(2)
    page.get_by_role("button", name="Resume").first.click()
    time.sleep(3)
    dialog = page.get_by_role("dialog")
    dialog.locator("textarea").first.fill("ops (on call)")  # who decides
    try:  # pick the first choice with the keyboard, as a person would (the screenshot is taken either way)
        dialog.locator(".p-select, [role=combobox]").first.click()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
    except Exception as exc:  # noqa: BLE001
        print("could not choose:", exc)
    dialog.locator("textarea").nth(1).fill("created the missing table prerequisite")  # why
    time.sleep(1)
    page.screenshot(path=out, full_page=False)
    print([line for line in page.inner_text("body").splitlines() if "s.sql" in line or "retry" in line][:6])
    b.close()
