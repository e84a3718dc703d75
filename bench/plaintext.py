"""Plaintext benchmark: converting an issue's HTML to wrapped text (once per campaign) and
personalising it (once per recipient), for English and Chinese issues of typical length.

    .venv/bin/python bench/plaintext.py

The reference, measured in the same run, is BeautifulSoup parsing the same HTML (the floor of any
converter built on it); the figures are printed as ratios to it. Per-recipient personalisation is
compared with a bare ``str.replace`` of the same placeholders.
"""

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.test")

import django

django.setup()

from bs4 import BeautifulSoup  # noqa: E402

from mail.plaintext import html_to_text  # noqa: E402
from mail.rendering import RenderedEmail  # noqa: E402
from subscribers.links import RecipientLinks  # noqa: E402

ENGLISH = (
    "Broadsheet is a newsletter for publishers. Every week we visit a print shop, talk to the people "
    "who keep it running and bring back what we learnt, with links to read more. "
)
CHINESE = (
    "印刷术是中国古代四大发明之一，对世界文明的发展产生了深远的影响。毕昇在北宋庆历年间发明了活字印刷术，"
    "比欧洲早了大约四百年。本期通讯将带您走进印刷博物馆，了解从雕版到活字的演变过程。"
)
FOOTER = (
    '<p>You are receiving The Broadsheet at %%email%%.</p><p><a href="%%unsubscribe_url%%">Unsubscribe</a> '
    '<span data-plaintext="skip">·</span> <a href="%%preferences_url%%">Manage preferences</a></p>'
)


def issue_html(paragraph: str, stories: int = 12) -> str:
    parts = []
    for n in range(stories):
        parts.append(f"<h2>Story {n}</h2><p>{paragraph * 3}</p>")
        parts.append(f'<p><a href="https://example.org/story/{n}">Read story {n}</a></p>')
    return "<html><body>" + "".join(parts) + FOOTER + "</body></html>"


def best_of(fn, repeat: int = 5, number: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def main() -> None:
    print(f"python {sys.version.split()[0]}, {os.uname().machine}, {time.strftime('%Y-%m-%d')}")
    for name, paragraph in (("english", ENGLISH), ("chinese", CHINESE)):
        html = issue_html(paragraph)
        parse = best_of(lambda html=html: BeautifulSoup(html, "html.parser"))
        convert = best_of(lambda html=html: html_to_text(html))
        print(
            f"{name:8} {len(html.encode()):7,} bytes: html_to_text {convert * 1000:7.1f} ms "
            f"= {convert / parse:4.1f}x BeautifulSoup parse ({parse * 1000:.1f} ms)"
        )
        text = html_to_text(html)
        email = RenderedEmail(subject="s", preheader="p", html=html, text=text)
        links = RecipientLinks([1], campaign_id=1)
        values = {"name": "Ada", "email": "ada@example.org", **links.urls(uuid.uuid4())}
        n = 2000
        personalise = best_of(lambda email=email, values=values: email.personalise(values), number=n)

        def bare(text=text, html=html, values=values):
            for source in (html, text):
                for key in ("email", "unsubscribe_url", "preferences_url"):
                    source = source.replace(f"%%{key}%%", values[key])

        replace = best_of(bare, number=n)
        print(
            f"{'':8} personalise {personalise * 1e6:6.1f} us/recipient "
            f"= {personalise / replace:4.2f}x bare str.replace ({replace * 1e6:.1f} us)"
        )


if __name__ == "__main__":
    main()
