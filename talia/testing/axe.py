"""axe-core in browser tests: the vendored assets/axe.min.js, injected into the page under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "assets" / "axe.min.js"


def serious_violations(page: Any, selector: str | None = None) -> list[str]:
    """axe-core's serious and critical violations in the page (or under `selector`), one line each: the
    rule, its help text and the elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not as a <script> tag: the console's
        # Content-Security-Policy (talia/csp.py) refuses inline scripts, as it should.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return list(
        page.evaluate(
            r"""async (selector) => {
                const context = selector ? document.querySelector(selector) : document;
                const result = await axe.run(context, { resultTypes: ['violations'] });
                return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => `${v.id} (${v.help}): ${v.nodes.map(n => JSON.stringify(n.target)).join(', ')}`
                        + ` - ${v.nodes[0].failureSummary.replace(/\s+/g, ' ')}`);
            }""",
            selector,
        )
    )
