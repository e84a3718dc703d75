"""A visitor's journeys in a real browser: subscribe from the home page, confirm from the email,
change preferences, leave from a campaign email. Every step fails on any console error or failed
request (the ``page`` fixture); the whole site is checked with axe-core and for tap-target sizes."""

import re

from playwright.sync_api import expect

from campaigns import services as campaign_services
from campaigns.models import NewsletterIssuePage
from newsletter_site.tests.browser import axe_violations, save_screenshot
from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.tests.factories import SubscriptionFactory

ISSUE = "/archive/issue-1-the-return-of-print/"


def link_in(message, pattern: str) -> str:
    """The first link in an email's HTML part whose URL matches ``pattern``."""
    html = message.alternatives[0][0]
    return re.search(rf'href="([^"]*{pattern}[^"]*)"', html).group(1)


def statuses(email: str) -> dict[str, str]:
    return dict(Subscription.objects.filter(subscriber__email_normalised=email).values_list("list__slug", "status"))


def subscribe_from_the_home_page(page, email: str) -> None:
    page.goto("/")
    form = page.locator(".home-subscribe_form form")
    form.get_by_label("Email address").fill(email)
    # The main list starts ticked; the visitor only types an address.
    assert form.get_by_label("The Broadsheet").is_checked()
    assert not form.get_by_label("Culture desk").is_checked()
    form.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/subscribe/?sent=1")


def test_visitor_reads_an_issue_then_subscribes_from_the_home_page_and_confirms(page, public_site, mailoutbox):
    page.goto(ISSUE)
    cta = page.get_by_role("complementary", name="Enjoyed this issue?")
    expect(cta.get_by_role("link", name="Subscribe")).to_be_visible()  # at the end of every issue
    save_screenshot(page, "public-issue-375.png")
    page.goto("/")
    save_screenshot(page, "public-home-375.png")
    subscribe_from_the_home_page(page, "ada@example.org")

    assert "press its Confirm my subscription button" in page.locator("main").inner_text()
    assert statuses("ada@example.org") == {"broadsheet": "pending"}
    # Reloading the thank-you page sends nothing again (Post/Redirect/Get).
    page.reload()
    assert len(mailoutbox) == 1

    page.goto(link_in(mailoutbox[0], "/newsletter/confirm/"))
    page.get_by_role("button", name="Confirm").click()

    page.get_by_role("heading", name="You are subscribed").wait_for()
    assert statuses("ada@example.org") == {"broadsheet": "subscribed"}


def test_subscriber_changes_preferences_then_leaves_everything_after_confirming(page, public_site, mailoutbox):
    subscribe_from_the_home_page(page, "ben@example.org")
    page.goto(link_in(mailoutbox[0], "/newsletter/confirm/"))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="preferences").click()

    page.get_by_label("Culture desk").check()
    page.get_by_label("The Broadsheet").uncheck()
    page.get_by_role("button", name="Save preferences").click()

    page.get_by_text("Your preferences have been saved.").wait_for()
    assert statuses("ben@example.org") == {"broadsheet": "unsubscribed", "culture-desk": "subscribed"}
    # Reloading after saving posts nothing (Post/Redirect/Get) and shows the saved choices.
    page.reload()
    assert page.get_by_label("Culture desk").is_checked()

    page.get_by_role("button", name="Unsubscribe from everything").click()
    page.get_by_role("heading", name="Unsubscribe from everything?").wait_for()
    assert statuses("ben@example.org")["culture-desk"] == "subscribed"  # asked, not yet done
    page.get_by_role("button", name="Yes, unsubscribe me from everything").click()

    page.get_by_text("You have been unsubscribed from everything.").wait_for()
    assert set(statuses("ben@example.org").values()) == {"unsubscribed"}


def test_a_mistyped_address_is_explained_next_to_the_field_and_nothing_is_sent(page, public_site, mailoutbox):
    page.goto("/subscribe/")
    page.get_by_label("Email address").fill("ada@@example")
    page.get_by_label("The Broadsheet").uncheck()
    page.get_by_role("button", name="Subscribe").click()

    email = page.get_by_label("Email address")
    assert email.get_attribute("aria-invalid") == "true"
    described = page.locator(f"#{email.get_attribute('aria-describedby')}")
    assert "Enter a valid email address" in described.inner_text()
    assert page.get_by_role("group", name="Choose your newsletters").get_attribute("aria-describedby")
    assert page.get_by_text("Choose at least one newsletter.").is_visible()
    assert email.input_value() == "ada@@example"  # what they typed is kept, to correct
    assert mailoutbox == []


def test_reader_unsubscribes_from_a_campaign_email(page, public_site, mailoutbox):
    broadsheet = MailingList.objects.get(slug="broadsheet")
    SubscriptionFactory(list=broadsheet, subscriber__email="cleo@example.org")
    issue = NewsletterIssuePage.objects.get(slug="issue-1-the-return-of-print")
    campaign = campaign_services.create_campaign(issue, [broadsheet])
    campaign_services.start_campaign(campaign.pk)  # the immediate task backend sends it now
    (email,) = [m for m in mailoutbox if "cleo@example.org" in m.to[0]]

    page.goto(link_in(email, "/newsletter/unsubscribe/"))
    page.get_by_role("button", name="Unsubscribe").click()

    page.get_by_role("heading", name="You have been unsubscribed").wait_for()
    assert statuses("cleo@example.org") == {"broadsheet": "unsubscribed"}


# --- The whole public site: accessibility and touch ------------------------------------------------


def public_pages(page, mailoutbox) -> list[str]:
    """Every kind of public page, reached as a visitor would (the token pages through real links)."""
    subscribe_from_the_home_page(page, "dev@example.org")
    confirm = link_in(mailoutbox[0], "/newsletter/confirm/")
    subscriber = Subscriber.objects.get(email_normalised="dev@example.org")
    from subscribers import links

    urls = links.recipient_urls(subscriber.uid, [])
    return [
        "/",
        "/archive/",
        ISSUE,
        "/subscribe/",
        "/subscribe/?sent=1",
        confirm,
        urls["preferences_url"],
        urls["unsubscribe_url"],
        "/newsletter/confirm/not-a-real-token/",
        "/no-such-page/",
    ]


def test_public_pages_have_no_serious_accessibility_violations(page, public_site, mailoutbox, browser_problems):
    browser_problems.allow("404")  # the not-found page is one of the pages checked
    browser_problems.allow("400")  # and so is the page for a forged link
    found = {}
    for url in public_pages(page, mailoutbox):
        page.goto(url)
        if violations := axe_violations(page):
            found[url] = violations

    assert found == {}


# Checkboxes are tapped through their whole label (.choice); inline links in sentences are exempt
# (WCAG 2.2 SC 2.5.8).
TAP_TARGETS = ", ".join(
    [
        "button",
        ".button",
        "input:not([type=hidden]):not([type=checkbox])",
        ".choice",
        ".site-nav a",
        ".site-footer a",
        ".pagination a",
        ".more-link",
        ".brand",
    ]
)


def test_public_pages_in_dark_mode_keep_their_contrast(page, public_site, mailoutbox, browser_problems):
    browser_problems.allow("404")
    browser_problems.allow("400")
    page.emulate_media(color_scheme="dark")
    found = {}
    for url in public_pages(page, mailoutbox):
        page.goto(url)
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 20, 23)", url
        if violations := axe_violations(page):
            found[url] = violations

    assert found == {}


def test_tap_targets_on_public_pages_are_at_least_44px_high(page, public_site, mailoutbox, browser_problems):
    browser_problems.allow("404")
    browser_problems.allow("400")
    small, measured = [], 0
    for url in public_pages(page, mailoutbox):
        page.goto(url)
        for target in page.locator(TAP_TARGETS).all():
            if not target.is_visible():
                continue
            measured += 1
            if (box := target.bounding_box())["height"] < 44:
                small.append(f"{url}: {target.evaluate('e => e.outerHTML.slice(0, 80)')} is {box['height']} px")

    assert small == []
    assert measured > 50


def test_the_accessibility_check_finds_a_real_violation(page, live_server):
    """The axe check is not vacuous: faint text on white is a serious (contrast) violation."""
    page.set_content(
        '<html lang="en"><head><title>Faint</title></head><body><main>'
        '<p style="color:#d0d0d0;background:#fff">Barely there</p></main></body></html>'
    )

    assert any("color-contrast" in v for v in axe_violations(page))


def test_keyboard_users_get_a_skip_link_and_a_visible_focus(page, public_site):
    page.goto(ISSUE)

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.bounding_box()["y"] >= 0  # moved on screen when focused
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def test_the_spam_trap_is_hidden_from_people_and_assistive_technology(page, public_site):
    page.goto("/subscribe/")

    trap = page.locator('input[name="website"]')
    assert trap.count() == 1
    assert not trap.is_visible()
    assert trap.evaluate("e => e.closest('[aria-hidden=true]') !== null && e.tabIndex === -1")
    assert (
        page.get_by_label("Leave this field empty").count() == 0
        or not page.get_by_label("Leave this field empty").is_visible()
    )
