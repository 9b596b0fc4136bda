"""Which responses carry TalIA's Content-Security-Policy (talia/csp.py); the browser test checks the pages
work under it."""

from __future__ import annotations

import pytest

from talia.csp import ADMIN_POLICY, HEADER, STAFF_POLICY


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/console/", STAFF_POLICY),
        ("/console/monitor/", STAFF_POLICY),
        ("/console/dashboard/", STAFF_POLICY),
        ("/admin/", ADMIN_POLICY),
        ("/accounts/login/", STAFF_POLICY),
    ],
)
def test_staff_pages_carry_the_policy(admin_client, path, policy):
    response = admin_client.get(path)

    assert response.status_code == 200
    assert response[HEADER] == policy


def test_the_staff_policy_allows_no_inline_script_or_style():
    for policy in (STAFF_POLICY, ADMIN_POLICY):
        script = next(d for d in policy.split("; ") if d.startswith("script-src"))
        assert script == "script-src 'self'"
    assert "unsafe" not in STAFF_POLICY
    assert "frame-ancestors 'none'" in STAFF_POLICY and "object-src 'none'" in STAFF_POLICY


@pytest.mark.parametrize("path", ["/", "/chat/", "/widget.js", "/health/live"])
def test_visitor_pages_are_left_alone(client, db, path):
    """The widget runs inside customers' sites: their policy, not TalIA's, governs it."""
    assert HEADER not in client.get(path)
