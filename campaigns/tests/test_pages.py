from wagtail.test.utils import WagtailPageTestCase

from campaigns.models import HomePage, NewsletterIndexPage, NewsletterIssuePage


class PageTreeTests(WagtailPageTestCase):
    def test_archive_only_under_home_and_issues_only_under_archive(self):
        self.assertCanCreateAt(HomePage, NewsletterIndexPage)
        self.assertCanCreateAt(NewsletterIndexPage, NewsletterIssuePage)
        self.assertCanNotCreateAt(HomePage, NewsletterIssuePage)
        self.assertCanNotCreateAt(NewsletterIssuePage, NewsletterIssuePage)
