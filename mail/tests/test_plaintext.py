from mail.plaintext import html_to_text


def test_headings_are_underlined_double_for_top_levels_and_single_below():
    text = html_to_text("<h1>News</h1><h2>Big story</h2><h3>Detail</h3>")

    # The title (h1) is also overlined, so it reads differently from an h2 (issue 9).
    assert text == "====\nNews\n====\n\nBig story\n=========\n\nDetail\n------\n"


def test_title_and_section_headings_look_different():
    text = html_to_text("<h1>Spring issue</h1><h2>Spring issue</h2>")

    title, section = text.split("\n\n")
    assert title != section
    assert title == "============\nSpring issue\n============"


def test_paragraphs_are_separated_by_one_blank_line():
    text = html_to_text("<p>First   paragraph\n spread over\nlines.</p>\n\n\n<p>Second.</p>")

    assert text == "First paragraph spread over lines.\n\nSecond.\n"


def test_br_is_a_line_break_inside_a_paragraph():
    assert html_to_text("<p>1 Fleet Street<br>London<br/>UK</p>") == "1 Fleet Street\nLondon\nUK\n"


def test_nested_lists_are_indented_under_their_item():
    html = "<ul><li>One</li><li>Two<ol><li>Alpha</li><li>Beta<ul><li>deep</li></ul></li></ol></li><li>Three</li></ul>"

    assert html_to_text(html) == "- One\n- Two\n  1. Alpha\n  2. Beta\n     - deep\n- Three\n"


def test_ordered_list_respects_start_attribute():
    assert html_to_text('<ol start="4"><li>four</li><li>five</li></ol>') == "4. four\n5. five\n"


def test_long_list_items_wrap_with_a_hanging_indent():
    text = html_to_text("<ul><li>" + "word " * 30 + "</li></ul>", width=40)

    lines = text.splitlines()
    assert lines[0].startswith("- word")
    assert all(line.startswith("  word") for line in lines[1:])
    assert all(len(line) <= 40 for line in lines)


def test_links_show_their_url_after_the_text():
    assert html_to_text('<p>Read <a href="https://example.org/a">the story</a>.</p>') == (
        "Read the story (https://example.org/a).\n"
    )


def test_link_whose_text_is_its_url_is_printed_once():
    html = '<p><a href="https://example.org/">https://example.org/</a> and <a href="https://example.org/x">example.org/x</a></p>'

    assert html_to_text(html) == "https://example.org/ and https://example.org/x\n"


def test_mailto_link_showing_its_address_prints_the_address_once():
    assert html_to_text('<p><a href="mailto:ed@example.com">ed@example.com</a></p>') == "ed@example.com\n"


def test_empty_and_anchor_only_links_degrade_gracefully():
    html = '<p><a href="https://example.org/e"></a> <a href="">no href</a> <a href="#top">top</a> <a>bare</a></p>'

    assert html_to_text(html) == "https://example.org/e no href top bare\n"


def test_images_become_their_alt_text_and_empty_alt_disappears():
    html = '<p><img src="a.png" alt="A printing press"></p><p><img src="spacer.gif" alt=""></p><p>after</p>'

    assert html_to_text(html) == "A printing press\n\nafter\n"


def test_tracking_pixels_are_dropped():
    html = (
        '<p>Hi</p><img src="https://t.example/o.gif" width="1" height="1" alt="open tracker">'
        '<img src="https://t.example/p.gif" style="width:1px;height:1px" alt="pixel">'
    )

    assert html_to_text(html) == "Hi\n"


def test_hidden_preheader_is_dropped():
    html = (
        '<div class="preheader" style="display:none">Preview text</div>'
        '<div data-plaintext="skip">also hidden</div><p style="display: none">gone</p><p>Body</p>'
    )

    assert html_to_text(html) == "Body\n"


def test_buttons_render_as_label_colon_url():
    html = (
        '<table><tr><td><a data-button="true" href="https://example.org/go">Read more</a></td></tr></table>'
        '<p><a class="button" href="https://example.org/b">Subscribe</a></p>'
    )

    assert html_to_text(html) == "Read more: https://example.org/go\n\nSubscribe: https://example.org/b\n"


def test_layout_tables_flatten_to_their_blocks():
    html = (
        "<table><tr><td><p>Left column</p></td><td><p>Right column</p></td></tr>"
        "<tr><td><table><tr><td><h2>Nested</h2></td></tr></table></td></tr></table>"
    )

    assert html_to_text(html) == "Left column\n\nRight column\n\nNested\n======\n"


def test_data_table_rows_become_lines_with_cells_separated():
    html = (
        "<table><thead><tr><th>Item</th><th>Price</th></tr></thead>"
        "<tbody><tr><td>Tea</td><td>£2</td></tr></tbody></table>"
    )

    assert html_to_text(html) == "Item | Price\nTea | £2\n"


def test_entities_are_decoded():
    assert html_to_text("<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#8364;5&nbsp;each &mdash; yes</p>") == (
        "Fish & chips <3 été €5 each — yes\n"
    )


def test_non_latin_text_is_kept():
    html = "<h2>Новости</h2><p>日本語の記事です。</p><p>مرحبا بالعالم</p><p>Ελληνικά</p>"

    assert html_to_text(html) == "Новости\n=======\n\n日本語の記事です。\n\nمرحبا بالعالم\n\nΕλληνικά\n"


def test_lines_wrap_at_78_columns_by_default():
    text = html_to_text("<p>" + "newsletter " * 40 + "</p>")

    lines = text.splitlines()
    assert len(lines) > 1
    assert max(len(line) for line in lines) <= 78
    assert max(len(line) for line in lines) > 70


def test_long_urls_are_never_broken():
    url = "https://example.org/" + "a-very-long-path-segment/" * 6 + "?utm_source=newsletter&id=123"
    text = html_to_text(f'<p>Some words before the link <a href="{url}">read this</a> and after.</p>', width=40)

    assert f"({url})" in text.splitlines()


def test_placeholders_survive_intact_even_at_a_narrow_width():
    html = '<p>Bye: <a href="%%unsubscribe_url%%">Unsubscribe</a> or <a href="%%preferences_url%%">prefs</a></p>'

    text = html_to_text(html, width=20)

    assert "(%%unsubscribe_url%%)" in text
    assert "(%%preferences_url%%)" in text


def test_blockquote_lines_are_prefixed():
    assert html_to_text("<blockquote><p>Print lives.</p><p>— An editor</p></blockquote>") == (
        "> Print lives.\n>\n> — An editor\n"
    )


def test_head_styles_scripts_and_comments_are_ignored():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<!--[if mso]><p>outlook</p><![endif]--><script>x()</script><p>Visible</p></body></html>"
    )

    assert html_to_text(html) == "Visible\n"


def test_empty_html_gives_empty_text():
    assert html_to_text("<div>  </div>") == ""


def test_linked_picture_beside_a_text_link_to_the_same_place_prints_the_address_once():
    html = (
        '<a href="https://example.org/a"><img src="x.jpg" alt="Printing press"></a>'
        '<h3><a href="https://example.org/a">Ink and iron</a></h3>'
        '<a href="https://example.org/b"><img src="y.jpg" alt="Only picture"></a>'
    )

    text = html_to_text(html)

    assert text.count("https://example.org/a") == 1
    # The picture's alt text would be a stray line above the card's title (issue 9).
    assert "Printing press" not in text and "Ink and iron (https://example.org/a)" in text
    assert "Only picture (https://example.org/b)" in text, "a picture that is the only link keeps its address"


def test_images_marked_skip_leave_no_alt_line():
    html = '<p><img src="hero.jpg" data-plaintext="skip" alt="The newsroom at dawn"></p><h1>Spring</h1>'

    assert html_to_text(html) == "======\nSpring\n======\n"


def test_a_word_holding_a_placeholder_gets_a_line_of_its_own():
    html = (
        "<p>You are receiving The Broadsheet at %%email%%. "
        '<a href="%%unsubscribe_url%%">Unsubscribe</a> <span data-plaintext="skip">·</span> '
        '<a href="%%preferences_url%%">Manage preferences</a></p>'
    )

    assert html_to_text(html).splitlines() == [
        "You are receiving The Broadsheet at",
        "%%email%%.",
        "Unsubscribe",
        "(%%unsubscribe_url%%)",
        "Manage preferences",
        "(%%preferences_url%%)",
    ]


def test_a_name_placeholder_flows_with_the_text_measured_as_a_long_name():
    html = "<p>Hello %%name%%, " + "word " * 20 + "</p>"

    lines = html_to_text(html).splitlines()

    assert lines[0].startswith("Hello %%name%%, word")
    # Room is kept for a 30-column name: filled with one, the first line still fits.
    assert len(lines[0].replace("%%name%%", "N" * 30)) <= 78
