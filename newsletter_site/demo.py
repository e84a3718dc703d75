"""Demo content for `make run`: a home page, an archive with three issues, two lists with a few
hundred subscribers in mixed states, newsletter settings and an admin user; the home, archive and
subscribe pages and the first issue also in Simplified Chinese (Wagtail translations), so a
browser that prefers Chinese sees the site in Chinese.

Every step looks for what it would create first, so running it again changes nothing.
"""

import datetime
import io
import random
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.images import ImageFile
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape
from PIL import Image as PILImage
from PIL import ImageDraw
from wagtail.images import get_image_model
from wagtail.models import Locale, Page, Site

from automations.models import Automation, AutomationEmailIndexPage, AutomationEmailPage, Step
from campaigns import autosend
from campaigns.models import AutoSendRule, NewsletterIndexPage, NewsletterIssuePage
from mail.models import NewsletterSettings
from pages.models import HomePage, SubscribePage
from subscribers.audience import Audience
from subscribers.models import MailingList, Subscriber, SubscriberEvent, Subscription

ADMIN_USERNAME = "admin"
CONSENT_TEXT = (
    "I agree to receive the newsletters I selected by email. I can unsubscribe at any time with the link in "
    "every email."
)
FIRST_NAMES = "Ada Ben Chloe Dev Elif Farah Gus Hana Ivan Jun Kofi Lena Mateo Nia Omar Priya Quinn Rosa Sami".split()
LAST_NAMES = "Okafor Lindqvist Moreau Tanaka Silva Novak Haddad Byrne Kowalski Mensah Rossi Ahmed Park Weber".split()

ISSUES = [
    {
        "slug": "issue-1-the-return-of-print",
        "title": "Issue 1: The return of print",
        "subject": "The return of print, and why your inbox is the new front page",
        "preheader": "Three stories on slow media, a reader's letter and what we are reading.",
        "date": datetime.date(2026, 9, 4),
        "colour": (179, 38, 30),
        "heading": "Slow news is good news",
        "paragraphs": [
            "<p>Welcome to the first <b>Broadsheet</b>. Every other Friday we send one carefully edited issue: "
            "no breaking news, no outrage, just the stories that will still matter next month.</p>",
            "<p>This week we visit a family printing works in Leeds that has doubled its staff since 2020, and "
            'ask why independent magazines are <a href="https://en.wikipedia.org/wiki/Zine">growing again</a>.</p>',
        ],
        "quote": ("People don't want more news. They want to finish something.", "A reader in Bristol"),
        "teasers": [
            ("Ink and iron", "Inside the last letterpress shop on the high street."),
            ("The zine revival", "Why twenty-somethings are stapling paper again."),
        ],
    },
    {
        "slug": "issue-2-rivers-and-cities",
        "title": "Issue 2: Rivers and cities",
        "subject": "Rivers and cities: how three towns got their waterfronts back",
        "preheader": "From culverts to kayaks: urban rivers, restored.",
        "date": datetime.date(2026, 9, 18),
        "colour": (30, 92, 150),
        "heading": "The rivers under our streets",
        "paragraphs": [
            "<p>Most cities buried their small rivers a century ago. A handful are now digging them up, and the "
            "results are <i>cooler streets, fewer floods and a lot more herons</i>.</p>",
            "<ul><li>Seoul's Cheonggyecheon, twenty years on</li><li>Sheffield's Porter Brook</li>"
            "<li>Zürich's open streams programme</li></ul>",
        ],
        "quote": ("A river is the cheapest air conditioner a city will ever own.", "An urban ecologist"),
        "teasers": [
            ("Daylighting, explained", "What it costs to bring a buried river back."),
            ("Walk the Porter Brook", "A two-hour route with a map."),
        ],
    },
    {
        "slug": "issue-3-the-repair-economy",
        "title": "Issue 3: The repair economy",
        "subject": "Fix it: the repair economy is bigger than you think",
        "preheader": "Repair cafés, right-to-repair laws and a very old toaster.",
        "date": datetime.date(2026, 10, 2),
        "colour": (46, 125, 50),
        "heading": "Everything can be fixed (almost)",
        "paragraphs": [
            "<p>New right-to-repair rules mean spare parts and manuals for phones, washing machines and "
            "bicycles. We spent a Saturday at a repair café to see what people bring in.</p>",
            "<ol><li>Lamps (the easiest fix)</li><li>Toasters</li><li>Laptop hinges (the hardest)</li></ol>",
        ],
        "quote": ("We don't fix things for people. We fix them with people.", "A repair café volunteer"),
        "teasers": [
            ("Your rights, in plain English", "What the new rules cover and what they don't."),
            ("A toaster from 1961", "Still working. Here's why."),
        ],
    },
]


# The words the demo puts around an issue's own texts (alt texts, the button), per language.
WORDS = {
    "en": {
        "illustration_for": "Illustration for {}",
        "illustration": "Illustration: {}",
        "read_more": "Read the full stories",
    },
    "zh-hans": {"illustration_for": "{}的插图", "illustration": "插图：{}", "read_more": "阅读完整报道"},
}

# The Simplified Chinese demo: translations of the home, archive and subscribe pages and of the
# first issue (Wagtail's localisation: copies linked by translation_key, in the zh-hans locale).
CHINESE = "zh-hans"
CHINESE_HOME = {
    "intro": "<p>一份独立的电子通讯，关注慢新闻、城市和我们亲手制作的东西。每隔一周的周五，精心编辑一期。</p>",
    "form_heading": "订阅下一期",
}
CHINESE_ARCHIVE = {"title": "往期通讯", "intro": "<p>我们发出的每一期通讯，按时间由新到旧排列。</p>"}
CHINESE_SUBSCRIBE = {
    "title": "订阅",
    "intro": "<p>把 Broadsheet 送到您的收件箱。我们绝不会分享您的邮箱地址，每封邮件都附有一键退订链接。</p>",
    "consent_text": "我同意通过电子邮件接收我所选择的通讯。我可以随时通过每封邮件中的链接退订。",
    "thank_you_text": "<p>还差一步：请查收我们发给您的邮件，并点击其中的<b>确认我的订阅</b>按钮。</p>",
}
CHINESE_ISSUES = {
    "issue-1-the-return-of-print": {
        "title": "第 1 期：印刷的回归",
        "subject": "印刷的回归，以及为什么您的收件箱成了新的头版",
        "preheader": "三篇关于慢媒体的报道、一封读者来信，以及我们最近在读什么。",
        "heading": "慢新闻是好新闻",
        "paragraphs": [
            "<p>欢迎阅读第一期 <b>Broadsheet</b>。每隔一周的周五，我们寄出精心编辑的一期：没有突发新闻，"
            "没有愤怒，只有到下个月依然重要的故事。</p>",
            "<p>本期我们走访了利兹的一家家族印刷厂，自 2020 年以来它的员工人数翻了一番；我们还想知道，"
            '独立杂志为什么<a href="https://zh.wikipedia.org/wiki/Zine">再度兴起</a>。</p>',
        ],
        "quote": ("人们要的不是更多的新闻，而是能读完一样东西。", "布里斯托尔的一位读者"),
        "teasers": [
            ("油墨与钢铁", "走进商业街上最后一家活版印刷店。"),
            ("小志复兴", "为什么二十多岁的年轻人又拿起订书机装订纸张。"),
        ],
    },
}


def _picture(title: str, colour: tuple[int, int, int], size=(1200, 600)) -> ImageFile:
    """A simple generated illustration (stripes and a circle), so the demo needs no downloads."""
    image = PILImage.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    width, height = size
    for i in range(0, width, 60):
        shade = tuple(min(255, c + 25) for c in colour)
        draw.rectangle([i, 0, i + 25, height], fill=shade)
    draw.ellipse([width * 0.6, height * 0.15, width * 0.6 + height * 0.7, height * 0.85], fill=(255, 253, 248))
    draw.text((40, height - 80), title, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return ImageFile(buffer, name=f"{title.lower().replace(' ', '-')[:40]}.jpg")


def _image(title: str, colour) -> "get_image_model()":
    model = get_image_model()
    existing = model.objects.filter(title=title).first()
    return existing or model.objects.create(title=title, file=_picture(title, colour))


def admin_password() -> str:
    """The demo admin's password: generated once, kept in var/ (not in git), printed each run."""
    path = Path(settings.VAR_DIR) / "demo-admin-password.txt"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def ensure_admin() -> tuple[str, str]:
    user_model = get_user_model()
    password = admin_password()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
    return ADMIN_USERNAME, password


def _in_default_locale(model):
    """The demo's own (default-language) pages of ``model``, not their translations."""
    return model.objects.filter(locale__language_code=settings.LANGUAGE_CODE)


def ensure_site() -> HomePage:
    home = _in_default_locale(HomePage).first()
    if home is None:
        root = Page.get_first_root_node()
        home = root.add_child(
            instance=HomePage(
                title="Broadsheet",
                slug="broadsheet",
                intro="<p>An independent newsletter about slow news, cities and the things we make. "
                "One carefully edited issue every other Friday.</p>",
            )
        )
        home.save_revision().publish()
    # The site's own address is what Wagtail's page.full_url uses: keep it in step with BASE_URL.
    base = urlsplit(settings.BASE_URL)
    port = base.port or (443 if base.scheme == "https" else 80)
    site = Site.objects.filter(is_default_site=True).first()
    if site is None:
        site = Site.objects.create(hostname=base.hostname, port=port, root_page=home, is_default_site=True)
    elif (site.hostname, site.port) != (base.hostname, port):
        site.hostname, site.port = base.hostname, port
        site.save()
    if site.root_page_id != home.pk:
        old_root = site.root_page
        site.root_page = home
        site.save()
        # Wagtail's placeholder "Welcome to your new Wagtail site!" page is no longer reachable.
        if old_root.specific_class is Page and not old_root.get_children().exists():
            old_root.delete()
    return home


def ensure_lists() -> list[MailingList]:
    weekly, _ = MailingList.objects.get_or_create(
        slug="broadsheet",
        defaults={"name": "The Broadsheet", "description": "Our main issue, every other Friday.", "preselected": True},
    )
    culture, _ = MailingList.objects.get_or_create(
        slug="culture-desk",
        defaults={"name": "Culture desk", "description": "Books, exhibitions and film, once a month."},
    )
    return [weekly, culture]


def ensure_settings(home: HomePage, lists: list[MailingList]) -> None:
    site = Site.objects.get(root_page=home)
    newsletter = NewsletterSettings.for_site(site)
    if not newsletter.postal_address:
        newsletter.sender_name = "The Broadsheet"
        newsletter.sender_email = "newsletter@example.com"
        newsletter.reply_to = "editors@example.com"
        newsletter.postal_address = "Broadsheet Media Ltd\n12 Printing House Square\nLondon EC4V 3AA\nUnited Kingdom"
        newsletter.save()
        newsletter.default_lists.set(lists[:1])


def ensure_subscribe_page(home: HomePage) -> None:
    page = _in_default_locale(SubscribePage).first() or _create_subscribe_page(home)
    if not home.body:
        # The same form on the home page, through the block any page can host.
        home.body = [("subscribe_form", {"heading": "Get the next issue", "page": page})]
        home.save_revision().publish()


def _create_subscribe_page(home: HomePage) -> SubscribePage:
    page = home.add_child(
        instance=SubscribePage(
            title="Subscribe",
            slug="subscribe",
            intro="<p>Get the Broadsheet in your inbox. We never share your address, and every email has a "
            "one-click unsubscribe link.</p>",
            consent_text=CONSENT_TEXT,
            thank_you_text="<p>Almost done: check your inbox for our email and press its "
            "<b>Confirm my subscription</b> button.</p>",
        )
    )
    page.save_revision().publish()
    return page


def ensure_issues(home: HomePage) -> NewsletterIndexPage:
    archive = _in_default_locale(NewsletterIndexPage).first()
    if archive is None:
        archive = home.add_child(
            instance=NewsletterIndexPage(
                title="Archive", slug="archive", intro="<p>Every issue we have sent, newest first.</p>"
            )
        )
        archive.save_revision().publish()
    for spec in ISSUES:
        if _in_default_locale(NewsletterIssuePage).filter(slug=spec["slug"]).exists():
            continue
        page = archive.add_child(
            instance=NewsletterIssuePage(
                slug=spec["slug"], issue_date=spec["date"], **_issue_fields(spec, spec, WORDS["en"], archive)
            )
        )
        page.save_revision().publish()
    return archive


def _issue_fields(spec: dict, texts: dict, words: dict, archive: NewsletterIndexPage) -> dict:
    """The fields of an issue written in ``texts`` (``spec`` itself or its translation), with
    ``spec``'s pictures and ``words`` (WORDS of the language) for alt texts and the button."""
    hero = _image(spec["title"], spec["colour"])
    story_image = _image(f"{spec['title']} (story)", tuple(max(0, c - 40) for c in spec["colour"]))
    teaser_images = [_image(f"{title} (teaser)", spec["colour"]) for title, _ in spec["teasers"]]
    teasers = [
        {
            "image": image,
            "alt_text": words["illustration_for"].format(title),
            "title": title,
            "summary": summary,
            "page": None,
            "link_url": f"https://example.org/{spec['slug']}/{i}",
        }
        for i, ((title, summary), image) in enumerate(zip(texts["teasers"], teaser_images, strict=True))
    ]
    body = [
        ("heading", {"text": texts["heading"], "level": "h2"}),
        *[("paragraph", html) for html in texts["paragraphs"]],
        (
            "image",
            {
                "image": story_image,
                "alt_text": words["illustration"].format(texts["heading"]),
                "caption": texts["title"],
            },
        ),
        ("quote", {"text": texts["quote"][0], "attribution": texts["quote"][1]}),
        ("divider", None),
        ("article_teaser", {"left": teasers[0], "right": teasers[1]}),
        ("button", {"label": words["read_more"], "page": archive, "link_url": ""}),
    ]
    return {
        "title": texts["title"],
        "subject": texts["subject"],
        "preheader": texts["preheader"],
        "hero_image": hero,
        "hero_alt_text": words["illustration_for"].format(texts["title"]),
        "body": body,
    }


def _translation(page: Page, locale: Locale, **fields) -> Page:
    """``page``'s translation into ``locale``, created and published with ``fields`` when missing
    (an existing one is left as the editors made it)."""
    existing = page.get_translation_or_none(locale)
    if existing is not None:
        return existing.specific
    translated = page.specific.copy_for_translation(locale).specific
    for name, value in fields.items():
        setattr(translated, name, value)
    translated.save_revision().publish()
    translated.refresh_from_db()
    return translated


def ensure_chinese(home: HomePage) -> int:
    """The Chinese versions of the home, archive and subscribe pages and of the translated issues;
    returns how many issues are live in Chinese."""
    locale, _created = Locale.objects.get_or_create(language_code=CHINESE)
    # A new translation is a copy of the English page, the subscribe form's English heading included.
    home_is_new = home.get_translation_or_none(locale) is None
    home_zh = _translation(home, locale, intro=CHINESE_HOME["intro"])
    archive = _in_default_locale(NewsletterIndexPage).get()
    archive_zh = _translation(archive, locale, **CHINESE_ARCHIVE)
    subscribe_zh = _translation(_in_default_locale(SubscribePage).get(), locale, **CHINESE_SUBSCRIBE)
    if home_is_new or not home_zh.body:
        home_zh.refresh_from_db()  # its children were added meanwhile (treebeard's numchild)
        home_zh.body = [("subscribe_form", {"heading": CHINESE_HOME["form_heading"], "page": subscribe_zh})]
        home_zh.save_revision().publish()
    for spec in ISSUES:
        texts = CHINESE_ISSUES.get(spec["slug"])
        issue = _in_default_locale(NewsletterIssuePage).filter(slug=spec["slug"]).first()
        if texts and issue:
            _translation(issue, locale, **_issue_fields(spec, texts, WORDS[CHINESE], archive_zh))
    return NewsletterIssuePage.objects.issues().live().filter(locale=locale).count()


def ensure_subscribers(lists: list[MailingList], count: int = 300) -> int:
    """A few hundred subscribers in mixed states, deterministic so re-runs find them."""
    if Subscriber.objects.filter(email__endswith="@demo.example.com").exists():
        return 0
    rng = random.Random(2026)
    now = timezone.now()
    weekly, culture = lists
    subscribers = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        subscriber = Subscriber(
            email=f"{first}.{last}.{i}@demo.example.com".lower(),
            name=f"{first} {last}",
            created_at=now - datetime.timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 1440)),
        )
        subscriber.email_normalised = subscriber.email
        if i % 50 == 7:
            subscriber.state, subscriber.state_reason = Subscriber.State.BOUNCED, "demo: hard bounce"
        elif i % 97 == 11:
            subscriber.state, subscriber.state_reason = Subscriber.State.COMPLAINED, "demo: spam complaint"
        subscribers.append(subscriber)
    Subscriber.objects.bulk_create(subscribers)
    subscribers = list(Subscriber.objects.filter(email__endswith="@demo.example.com"))

    subscriptions, events = [], []
    for i, subscriber in enumerate(subscribers):
        joined = subscriber.created_at
        for mailing_list, chance in ((weekly, 1.0), (culture, 0.45)):
            if rng.random() > chance:
                continue
            roll = rng.random()
            status = "subscribed" if roll < 0.8 else "pending" if roll < 0.9 else "unsubscribed"
            subscriptions.append(
                Subscription(
                    subscriber=subscriber,
                    list=mailing_list,
                    status=status,
                    created_at=joined,
                    consent_at=joined,
                    consent_source=Subscription.Source.FORM,
                    consent_detail="/subscribe/ (demo data)",
                    consent_text=CONSENT_TEXT,
                    consent_ip=f"192.0.2.{i % 250 + 1}",
                    consent_user_agent="Mozilla/5.0 (demo)",
                    confirmation_sent_at=joined,
                    confirmation_count=1,
                    confirmed_at=None if status == "pending" else joined + datetime.timedelta(minutes=7),
                    unsubscribed_at=joined + datetime.timedelta(days=3) if status == "unsubscribed" else None,
                    unsubscribe_method="link" if status == "unsubscribed" else "",
                )
            )
            events.append(
                SubscriberEvent(
                    subscriber=subscriber,
                    list=mailing_list,
                    kind=SubscriberEvent.Kind.SUBSCRIBED,
                    detail={"via": "form"},
                    at=joined,
                )
            )
    Subscription.objects.bulk_create(subscriptions)
    SubscriberEvent.objects.bulk_create(events)
    return len(subscribers)


def ensure_welcome_emails() -> int:
    """A published welcome email and its automation for every public list that has none, so a
    reader who confirms through the site finds it in the outbox within seconds. Created after
    the demo subscribers: they are not welcomed (only sign-ups from now on are)."""
    folder = _in_default_locale(AutomationEmailIndexPage).first()
    if folder is None:
        folder = Page.get_first_root_node().add_child(
            instance=AutomationEmailIndexPage(title="Automation emails", slug="automation-emails")
        )
        folder.save_revision().publish()
    created = 0
    for mlist in MailingList.objects.filter(is_public=True, automations__isnull=True):
        page = folder.add_child(
            instance=AutomationEmailPage(
                title=f"Welcome to {mlist.name}",
                slug=f"welcome-{mlist.slug}",
                subject=f"Welcome to {mlist.name}",
                preheader="What to expect, and how to reach us.",
                body=[
                    ("heading", {"text": "Thank you for subscribing", "level": "h2"}),
                    ("paragraph", f"<p>You are now on <b>{escape(mlist.name)}</b>: {escape(mlist.description)}</p>"),
                    (
                        "paragraph",
                        "<p>Reply to any of our emails to reach the editors. Every email has a link to "
                        "change your lists or leave in one click.</p>",
                    ),
                ],
            )
        )
        page.save_revision().publish()
        welcome = Automation.objects.create(name=f"Welcome: {mlist.name}", kind=Automation.Kind.WELCOME, list=mlist)
        Step.objects.create(automation=welcome, page=page, sort_order=0)
        created += 1
    return created


def ensure_digest_rule(lists: list[MailingList]) -> None:
    """The Culture desk gets a weekly digest (Fridays 09:00, site time) of the issues published
    from now on (docs/automatic-sends.md); its first digest is empty until an editor publishes."""
    culture = lists[1]
    rule, created = AutoSendRule.objects.get_or_create(
        mailing_list=culture,
        defaults={"mode": AutoSendRule.Mode.DIGEST, "digest_weekday": 4, "digest_time": datetime.time(9, 0)},
    )
    if created:
        autosend.rule_saved(rule)


@transaction.atomic
def load_demo_content() -> dict:
    """Create whatever demo content is missing; returns what the command prints."""
    username, password = ensure_admin()
    home = ensure_site()
    lists = ensure_lists()
    ensure_settings(home, lists)
    ensure_subscribe_page(home)
    ensure_issues(home)
    translated = ensure_chinese(home)
    created = ensure_subscribers(lists)
    ensure_welcome_emails()
    ensure_digest_rule(lists)
    receiving = Audience.counts_per_list()  # labelled "can receive", as in the admin
    return {
        "username": username,
        "password": password,
        "subscribers_created": created,
        "issues": _in_default_locale(NewsletterIssuePage).issues().live().count(),
        "translated_issues": translated,
        "lists": {ml.name: receiving.get(ml.pk, 0) for ml in lists},
    }
