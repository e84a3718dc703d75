"""Plain text of Chinese, Japanese and mixed text: wrapped by display width, at the places the
Unicode line-breaking rules (UAX #14) allow, never splitting Latin words or URLs."""

import itertools
import re

import pytest
from uniseg.linebreak import line_break_boundaries

from mail.plaintext import _cjk_units, _is_wide, display_width, html_to_text, wrap_line

# The paragraphs that came out as one 126- and 138-character line (about 252 and 276 columns).
CHINESE = (
    "印刷术是中国古代四大发明之一，对世界文明的发展产生了深远的影响。毕昇在北宋庆历年间发明了活字印刷术，"
    "比欧洲早了大约四百年。本期通讯将带您走进印刷博物馆，了解从雕版到活字、从铅字到激光照排的演变过程，"
    "并采访几位仍在坚守传统工艺的老师傅。"
)
JAPANESE = (
    "活版印刷は、金属や木でできた活字を組み合わせて版を作り、インクをつけて紙に刷る技術です。"
    "今号では、東京の小さな印刷所を訪ね、「文字を拾う」職人の一日を追いました。"
    "ちょっと珍しい道具や、昔ながらの作業の様子もご紹介します（写真は次のページ）。"
    "デジタル時代だからこそ、手仕事の温かみが見直されています。"
)
MIXED = (
    "Broadsheet 是一份面向出版人的newsletter，每周发送给订阅者。请访问"
    "https://news.example.com/archive/2026/spring-issue-on-printing-presses/ 阅读往期内容，"
    "或者发送邮件到editor@example.com与我们联系。Wagtail 8.0 与 Django 6.1 让编辑「所见即所得」，"
    "日本語の読者にも対応しています（テスト）。"
)
KOREAN = "브로드시트는 출판인을 위한 뉴스레터입니다. 매주 새로운 소식을 전해 드립니다. " * 3
CORPUS = {"chinese": CHINESE, "japanese": JAPANESE, "mixed": MIXED, "korean": KOREAN}

# UAX #14 classes CL, CP, EX, IS, NS (closing punctuation, small kana...) never begin a line;
# OP (opening brackets) never ends one.
NEVER_FIRST = set("。，、．）」』】》〉！？：；・ーゃゅょっぁぃぅぇぉ”’")
NEVER_LAST = set("（「『【《〈“‘")
URL = re.compile(r"https?://[!-~]+|[A-Za-z0-9.+-]+@[A-Za-z0-9.-]+[A-Za-z0-9]")
LATIN_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]*[A-Za-z0-9]")


def paragraph_text(text: str, width: int = 78) -> list[str]:
    return html_to_text(f"<p>{text}</p>", width=width).splitlines()


@pytest.mark.parametrize("name", CORPUS)
@pytest.mark.parametrize("width", [78, 40, 21])
def test_no_line_is_wider_than_the_width_except_a_lone_url(name, width):
    for line in paragraph_text(CORPUS[name], width):
        assert display_width(line) <= width or URL.fullmatch(line), (name, line)


@pytest.mark.parametrize("name", ["chinese", "japanese"])
def test_cjk_paragraphs_fill_their_lines(name):
    lines = paragraph_text(CORPUS[name])

    assert len(lines) >= 3
    # Every line but the last is filled to within two wide characters of the width.
    assert all(display_width(line) >= 74 for line in lines[:-1]), lines


@pytest.mark.parametrize("name", CORPUS)
@pytest.mark.parametrize("width", [78, 40, 21])
def test_no_line_starts_with_closing_or_ends_with_opening_punctuation(name, width):
    lines = paragraph_text(CORPUS[name], width)

    for before, after in itertools.pairwise(lines):
        assert after[0] not in NEVER_FIRST, (before, after)
        assert before[-1] not in NEVER_LAST, (before, after)


@pytest.mark.parametrize("name", CORPUS)
@pytest.mark.parametrize("width", [78, 40, 21])
def test_wrapping_loses_and_splits_nothing(name, width):
    text = CORPUS[name].strip()
    lines = paragraph_text(text, width)

    # Lines broken between CJK characters join back without a space, at spaces with one.
    assert re.sub(r"\s+", "", "".join(lines)) == re.sub(r"\s+", "", text)
    for token in URL.findall(text) + LATIN_WORD.findall(text):
        assert any(token in line for line in lines), f"{token!r} was split"


def test_a_break_falls_between_cjk_characters_not_only_at_spaces():
    assert wrap_line("印刷术是中国古代四大发明之一", 10) == ["印刷术是中", "国古代四大", "发明之一"]


def test_closing_punctuation_stays_with_the_character_before_it():
    # At 10 columns the ideographic comma would start the second line: the character before it
    # goes down with it.
    assert wrap_line("一二三四五，六七", 10) == ["一二三四", "五，六七"]


def test_opening_bracket_stays_with_the_character_after_it():
    assert wrap_line("一二三四「五六」", 10) == ["一二三四", "「五六」"]


def test_japanese_small_kana_and_prolonged_sound_mark_do_not_begin_a_line():
    # At 7 columns "えおち" would fit and "ょ" begin the next line: the rules forbid it.
    assert wrap_line("あいうえおちょっとまって", 7) == ["あいう", "えお", "ちょっ", "とまっ", "て"]
    assert wrap_line("ラーメンが大好きです", 3) == ["ラー", "メ", "ン", "が", "大", "好", "き", "で", "す"]


def test_latin_word_inside_chinese_is_not_split():
    lines = wrap_line("这是Broadsheet的通讯", 12)

    assert lines == ["这是", "Broadsheet的", "通讯"]


def test_url_inside_chinese_stands_whole_on_its_line():
    url = "https://example.org/a-very-long-path/segment"

    lines = wrap_line(f"请访问{url}了解详情。", 30)

    assert url in lines[1]
    assert lines[0] == "请访问"


def test_heading_underline_matches_the_display_width_of_a_cjk_title():
    text = html_to_text("<h2>本期要闻</h2>")

    assert text == "本期要闻\n========\n"


def test_hanging_indent_of_list_items_with_chinese_text():
    text = html_to_text("<ul><li>" + CHINESE + "</li></ul>")

    lines = text.splitlines()
    assert lines[0].startswith("- 印刷术")
    assert all(line.startswith("  ") for line in lines[1:])
    assert all(display_width(line) <= 78 for line in lines)


def test_display_width_counts_wide_characters_twice_and_combining_marks_zero():
    assert display_width("abc") == 3
    assert display_width("中文") == 4
    assert display_width("ｶﾀｶﾅ") == 4  # half-width katakana
    assert display_width("e\u0301") == 1


@pytest.mark.parametrize("name", CORPUS)
def test_remembered_pair_answers_agree_with_uniseg_on_whole_text(name):
    for piece in CORPUS[name].split():
        expected = [
            b
            for b in line_break_boundaries(piece)
            if 0 < b < len(piece) and (_is_wide(piece[b - 1]) or _is_wide(piece[b]))
        ]
        units = _cjk_units(piece)
        got = [sum(len(u) for u in units[:i]) for i in range(1, len(units))]
        assert got == expected, piece


def test_a_line_break_in_the_source_between_chinese_sentences_adds_no_space():
    """CSS Text 3, segment break transformation: a newline between two wide characters (not
    Hangul) is removed, not turned into a space, as browsers render it; between Latin words, and
    in Korean, which separates words with spaces, it stays a space."""
    html = (
        "<p>此链接在 7 天内有效。\n  如果这不是您本人的请求，请忽略此邮件。</p>"
        "<p>One line\nand the next.</p><p>매주\n소식</p>"
    )

    text = html_to_text(html)

    assert "有效。如果这不是" in text
    assert "One line and the next." in text
    assert "매주 소식" in text


def test_a_chinese_button_label_takes_a_full_width_colon():
    html = '<p><a class="button" href="https://news.example.com/newsletter/confirm/abc/">确认我的订阅</a></p>'
    english = '<p><a class="button" href="https://news.example.com/newsletter/confirm/abc/">Confirm</a></p>'

    assert html_to_text(html) == "确认我的订阅：\nhttps://news.example.com/newsletter/confirm/abc/\n"
    assert html_to_text(english) == "Confirm: https://news.example.com/newsletter/confirm/abc/\n"
