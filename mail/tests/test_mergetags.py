"""The merge-tag syntax (mail.mergetags): editor tags to tokens, tokens to slots, slots filled."""

import html as html_lib

from mail import mergetags
from mail.mergetags import canonicalise, compile_header, compile_template, fill, subscriber_values, without_tags
from mail.plaintext import html_to_text

VALUES = {"name": "Ada Lovelace", "first_name": "Ada", "email": "ada@example.org", "attributes.city": "Leeds"}


def personal(source: str, values=VALUES, *, html: bool = True) -> str:
    canonical = canonicalise(source, html=html)
    assert canonical.errors == ()
    return fill(compile_template(canonical.text, html=html), values)


def test_each_tag_takes_its_value():
    assert personal("<p>{{ first_name }} / {{name}} / {{ email }} / {{ attributes.city }}</p>") == (
        "<p>Ada / Ada Lovelace / ada@example.org / Leeds</p>"
    )


def test_fallback_when_the_value_is_empty_and_nothing_without_one():
    source = '<p>Dear {{ first_name|default:"reader" }}, from {{ attributes.city }}.</p>'

    assert personal(source, {"first_name": ""}) == "<p>Dear reader, from .</p>"
    assert personal(source) == "<p>Dear Ada, from Leeds.</p>"


def test_quotes_as_the_rich_text_editor_stores_them():
    # Draftail writes the quotes of the fallback as entities; single and curly quotes work too.
    for source in (
        "<p>{{ first_name|default:&quot;dear reader&quot; }}</p>",
        "<p>{{ first_name|default:&#x27;dear reader&#x27; }}</p>",
        "<p>{{ first_name | default : “dear reader” }}</p>",
    ):
        assert personal(source, {}) == "<p>dear reader</p>", source


def test_a_fallback_with_markup_characters_is_escaped_in_html_and_kept_in_text():
    source = '{{ name|default:"<Tom & Jerry>" }}'

    assert personal(source, {}, html=False) == "<Tom & Jerry>"
    assert personal("<p>" + html_lib.escape(source) + "</p>", {}) == "<p>&lt;Tom &amp; Jerry&gt;</p>"


def test_unknown_tags_and_filters_are_reported_and_never_left_raw():
    canonical = canonicalise("<p>Hi {{ nickname }} {{ name|upper }} {{ name|default }} {{ first_name }}</p>", html=True)

    assert "{{" not in canonical.text
    assert len(canonical.errors) == 3
    assert "nickname" in canonical.errors[0]
    assert "the only filter is default" in canonical.errors[1]


def test_a_tag_split_by_formatting_is_reported_and_its_markup_kept():
    canonical = canonicalise("<p>Hi {{ first_<b>name</b> }}!</p>", html=True)

    assert canonical.text == "<p>Hi <b></b>!</p>"
    assert "broken by formatting" in canonical.errors[0]
    assert "{{ first_name }}" in canonical.errors[0]


def test_hostile_values_are_text():
    values = {"name": "{{ email }} %%email%% <script>alert(1)</script>", "email": "secret@example.org"}

    html = personal("<p>{{ name }}</p>", values)
    text = personal("{{ name }}", values, html=False)

    assert html == "<p>{{ email }} %%email%% &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert text == "{{ email }} %%email%% <script>alert(1)</script>"


def test_legacy_percent_tokens_keep_working():
    assert fill(compile_template("<p>Hi %%name%%</p>", html=True), {"name": "Bo & Co"}) == "<p>Hi Bo &amp; Co</p>"


def test_values_in_links_are_url_quoted_and_escaped():
    source = '<a href="https://example.org/c/{{attributes.city}}?n={{ first_name|default:&quot;a b&quot; }}">x</a>'

    assert personal(source, {"attributes.city": "São Paulo/../x", "first_name": 'a&b"c'}) == (
        '<a href="https://example.org/c/S%C3%A3o%20Paulo%2F..%2Fx?n=a%26b%22c">x</a>'
    )
    assert personal(source, {}) == '<a href="https://example.org/c/?n=a%20b">x</a>'


def test_links_in_plain_text_are_quoted_too():
    assert (
        personal(
            "Go: https://example.org/?c={{ attributes.city }} now, {{ attributes.city }}",
            html=False,
            values={"attributes.city": "a b"},
        )
        == "Go: https://example.org/?c=a%20b now, a b"
    )


def test_a_tag_in_the_scheme_or_host_of_a_link_is_refused():
    for url in (
        "{{ attributes.site }}",
        "https://{{ attributes.host }}/",
        "https://example.org{{ attributes.host }}/",
        "//{{ attributes.host }}/x",
        "mailto:{{ email }}",
    ):
        canonical = canonicalise(f'<a href="{url}">x</a>', html=True)
        assert canonical.errors, url
        assert "%%" not in canonical.text, url


def test_system_links_are_not_quoted():
    compiled = compile_template('<a href="%%unsubscribe_url%%">u</a>', html=True)

    assert (
        fill(compiled, {"unsubscribe_url": "https://x.org/u/a?b=1&c=2"})
        == '<a href="https://x.org/u/a?b=1&amp;c=2">u</a>'
    )


def test_header_values_lose_line_breaks_and_control_characters():
    compiled = compile_header('News for {{ first_name|default:"you" }} in {{ attributes.city }}')

    subject = fill(compiled, {"first_name": "Eve\r\nBcc: all@example.org", "attributes.city": "Le\x00eds\u2028"})

    assert subject == "News for Eve Bcc: all@example.org in Le eds "
    assert fill(compiled, {}) == "News for you in "


def test_the_web_archive_shows_fallbacks_or_nothing():
    html = "<p>Dear {{ first_name|default:&quot;reader&quot; }}{{ name }}, {{ nope }}</p>"

    assert without_tags(html, html=True) == "<p>Dear reader, </p>"
    assert without_tags("Hi {{ first_name }}", html=False) == "Hi "


def test_first_name_from_the_attribute_else_the_name():
    wanted = {"first_name", "attributes.city"}

    assert subscriber_values("Ada Lovelace", "a@x.org", {}, wanted)["first_name"] == "Ada"
    assert subscriber_values("Ada Lovelace", "a@x.org", {"first_name": "Augusta"}, wanted)["first_name"] == "Augusta"
    assert subscriber_values("", "a@x.org", None, wanted) == {
        "name": "",
        "email": "a@x.org",
        "first_name": "",
        "attributes.city": "",
    }


def test_known_tags_are_listed_for_editors():
    tags = [tag for tag, _ in mergetags.known_tags()]

    assert "{{ first_name }}" in tags
    assert "{{ attributes.city }}" in tags


def test_plain_text_never_breaks_a_tag_and_reserves_room_for_its_value():
    html = canonicalise("<p>Dear {{ first_name|default:&quot;dear reader&quot; }}, " + "word " * 30 + "</p>", html=True)
    lines = html_to_text(html.text).splitlines()

    assert lines[0].startswith("Dear %%first_name|dear%20reader%%, word")
    # The token is measured as the value it stands for (15 columns for a first name) and fits.
    filled = [fill(compile_template(line, html=False), {"first_name": "F" * 15}) for line in lines]
    assert max(len(line) for line in filled) <= 78


def test_slot_writer_remembers_repeated_values_and_writes_as_the_slot_does():
    (html_slot,) = compile_template('<a href="https://x.org/?c=%%attributes.city|here%%">x</a>', html=True)[1::2]
    write = mergetags.SlotWriter(limit=1)

    assert write(html_slot, {"attributes.city": "A&B"}) == "A%26B"
    assert write(html_slot, {"attributes.city": "A&B"}) == "A%26B"
    assert write(html_slot, {"attributes.city": "C D"}) == "C%20D"  # past the limit: written, not kept
    assert write(html_slot, {}) == "here"
    assert len(write.memo) == 1
