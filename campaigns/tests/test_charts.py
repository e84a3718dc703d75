import xml.etree.ElementTree as ET

from campaigns.charts import Series, bar_chart, line_chart, nice_max

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup):
    return ET.fromstring(str(markup))  # noqa: S314 - our own output


def test_nice_max_rounds_up_to_one_two_or_five():
    assert [nice_max(v) for v in (0, 1, 3, 7, 12, 180, 501)] == [1, 1, 5, 10, 20, 200, 1000]


def test_bar_chart_is_valid_svg_with_one_bar_per_value():
    svg = parse(bar_chart(["0h", "1h", "2h"], [Series("Opens", [4, 0, 2]), Series("Clicks", [1, 1, 0])], title="T"))

    assert svg.tag == f"{SVG}svg"
    bars = svg.findall(f"{SVG}rect[@class='bar']")
    assert [bar.get("data-value") for bar in bars] == ["4", "1", "0", "1", "2", "0"]


def test_bar_heights_are_proportional_to_values():
    svg = parse(bar_chart(["a", "b"], [Series("Opens", [10, 5])], title="T"))

    tall, short = (float(bar.get("height")) for bar in svg.findall(f"{SVG}rect[@class='bar']"))
    assert tall == 2 * short > 0


def test_bar_tooltips_name_series_label_and_value():
    svg = parse(bar_chart(["3h"], [Series("Clicks", [7])], title="T"))

    assert svg.find(f"{SVG}rect[@class='bar']/{SVG}title").text == "Clicks, 3h: 7"


def test_chart_labels_are_escaped():
    markup = str(bar_chart(["<b>&"], [Series("A < B", [1])], title="x & y"))

    assert "<b>" not in markup
    assert parse(markup).find(f"{SVG}title").text == "x & y"


def test_line_chart_has_one_point_per_value():
    svg = parse(line_chart(["d1", "d2", "d3", "d4"], [10, 12, 11, 15], title="Growth"))

    points = svg.find(f"{SVG}polyline[@class='line']").get("points").split()
    assert len(points) == 4
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[3] < ys[1] < ys[2] < ys[0]  # higher values are drawn higher (smaller y)


def test_line_chart_without_data_says_so():
    svg = parse(line_chart([], [], title="Growth"))

    assert "No data" in ET.tostring(svg, encoding="unicode")
