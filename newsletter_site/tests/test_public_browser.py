"""The public site in a real browser (Chromium via Playwright) at phone width."""

from newsletter_site.tests.browser import PHONE

ISSUE = "/archive/issue-1-the-return-of-print/"
PUBLIC_PATHS = ["/", "/archive/", ISSUE, "/subscribe/"]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the document is wider than the viewport (0: no horizontal scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_public_pages_fit_a_375px_phone_without_horizontal_scroll(page, public_site):
    assert page.viewport_size == PHONE
    for path in PUBLIC_PATHS:
        response = page.goto(path)
        assert response.status == 200, path
        assert horizontal_overflow(page) == 0, path
        # The stylesheet really applied: the body is set in the serif of the email.
        assert "Georgia" in page.evaluate("getComputedStyle(document.body).fontFamily"), path


def test_public_pages_have_no_horizontal_scroll_from_320px_up(page, public_site):
    for width in (320, 414, 768, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        for path in PUBLIC_PATHS:
            page.goto(path)
            assert horizontal_overflow(page) == 0, f"{path} at {width} px"


def test_issue_page_fits_a_320px_screen_with_responsive_images(page, public_site):
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(ISSUE)

    assert horizontal_overflow(page) == 0
    hero = page.locator(".issue__hero img")
    assert "480w" in hero.get_attribute("srcset") and hero.get_attribute("sizes")
    # The phone fetched a small rendition, not the 1200 px one.
    assert hero.evaluate("img => img.naturalWidth") <= 800
