from wagtail.images.models import Image
from wagtail.images.tests.utils import get_test_image_file
from wagtail.models import Page, Site
from wagtail.test.utils import WagtailPageTestCase
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from campaigns.models import NewsletterIndexPage, NewsletterIssuePage
from pages.models import HomePage


class PageTreeTests(WagtailPageTestCase):
    def test_archive_only_under_home_and_issues_only_under_archive(self):
        self.assertCanCreateAt(HomePage, NewsletterIndexPage)
        self.assertCanCreateAt(NewsletterIndexPage, NewsletterIssuePage)
        self.assertCanNotCreateAt(HomePage, NewsletterIssuePage)
        self.assertCanNotCreateAt(NewsletterIssuePage, NewsletterIssuePage)


class PageCreationTests(WagtailPageTestCase):
    """Editors can create every page type through the admin, with real (nested) form data."""

    @classmethod
    def setUpTestData(cls):
        root = Page.get_first_root_node()
        cls.home = root.add_child(instance=HomePage(title="Broadsheet", slug="broadsheet-home"))
        Site.objects.update_or_create(
            is_default_site=True, defaults={"hostname": "news.example.com", "port": 443, "root_page": cls.home}
        )
        cls.archive = cls.home.add_child(instance=NewsletterIndexPage(title="Archive", slug="archive"))
        cls.image = Image.objects.create(title="Press", file=get_test_image_file(filename="press.png"))

    def setUp(self):
        super().setUp()
        self.login()

    def test_editor_can_create_an_archive(self):
        self.assertCanCreate(
            self.home, NewsletterIndexPage, nested_form_data({"title": "Past issues", "intro": rich_text("<p>All</p>")})
        )

    def test_editor_can_create_an_issue_with_every_block_type(self):
        teaser = {
            "image": "",
            "alt_text": "",
            "title": "T",
            "summary": "S",
            "page": "",
            "link_url": "https://a.example",
        }
        data = nested_form_data(
            {
                "title": "Issue 7",
                "subject": "Seven stories",
                "preheader": "And a quote",
                "issue_date": "2026-05-01",
                "hero_image": self.image.pk,
                "hero_alt_text": "The press",
                "body": streamfield(
                    [
                        ("heading", {"text": "Hello", "level": "h2"}),
                        ("paragraph", rich_text("<p>Some <b>news</b>.</p>")),
                        ("image", {"image": self.image.pk, "alt_text": "Press", "caption": ""}),
                        ("button", {"label": "Archive", "page": self.archive.pk, "link_url": ""}),
                        ("quote", {"text": "Quote", "attribution": ""}),
                        ("divider", ""),
                        ("article_teaser", {"left": teaser, "right": {**teaser, "title": "U"}}),
                    ]
                ),
                "comments": inline_formset([]),
            }
        )

        self.assertCanCreate(self.archive, NewsletterIssuePage, data)

        issue = NewsletterIssuePage.objects.get(slug="issue-7")
        assert issue.live
        assert [block.block_type for block in issue.body] == [
            "heading",
            "paragraph",
            "image",
            "button",
            "quote",
            "divider",
            "article_teaser",
        ]
