"""The text-format parser of the textfile collector (agent/textformat.py):
what it accepts and how it shapes families, what it refuses and the line
it names.  The same grammar is checked against node_exporter 1.5.0 on
whole files in tests/test_textfile.py; these are the rules one at a time,
including those where the agent is deliberately stricter."""

from __future__ import annotations

import math

import pytest

from agent.textformat import TextFamily, TextFormatError, format_float, parse_float, parse_text


def parse(text: str) -> list[TextFamily]:
    return parse_text(text.encode("utf-8"))


def samples(text: str) -> dict:
    """{(sample name, labels): value} of every family."""
    return {key: value for family in parse(text) for key, value in family.samples}


# --- accepted -----------------------------------------------------------------

def test_empty_file_and_comments_have_no_families():
    assert parse("") == []
    assert parse("# a comment\n\n   \n\t\n#\n# HELP only_help has no samples\n") == []


def test_help_type_and_samples():
    (family,) = parse('# HELP x_total Runs, \\\\ and \\n.\n# TYPE x_total counter\nx_total{a="1"} 3\n')
    assert family == TextFamily("x_total", "counter", "Runs, \\ and \n.", [(("x_total", (("a", "1"),)), 3.0)])


def test_help_and_type_in_any_order_and_help_after_samples():
    (a,) = parse("# TYPE a gauge\n# HELP a later\na 1\n")
    (b,) = parse("b 1\n# HELP b after\n")
    assert (a.type, a.help, b.type, b.help) == ("gauge", "later", "untyped", "after")


def test_no_type_is_untyped_no_help_is_none_and_type_is_case_insensitive():
    x, y = parse("x 1\n# TYPE y GAUGE\ny 2\n")
    assert (x.type, x.help, y.type) == ("untyped", None, "gauge")


def test_hash_help_without_a_blank_is_a_help_line():
    (family,) = parse("#HELP h text\nh 1\n")
    assert family.help == "text"


@pytest.mark.parametrize("line", [
    'n{a="1"} 1', '  n{a="1"} 1', 'n{a="1",} 1', 'n { a = "1" , } 1', 'n{a="1"}1', 'n{a="1"}\t1',
])
def test_blanks_where_the_format_allows_them(line):
    assert samples(line + "\n") == {("n", (("a", "1"),)): 1.0}


def test_label_value_escapes_and_utf8():
    assert samples('n{v="q\\"b\\\\n\\nx",w="é ☃"} 1\n') == {("n", (("v", 'q"b\\n\nx'), ("w", "é ☃"))): 1.0}


@pytest.mark.parametrize("token, value", [
    ("1", 1.0), ("-1.5e-07", -1.5e-07), (".5", 0.5), ("5.", 5.0), ("+5", 5.0), ("1E3", 1000.0),
    ("+Inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("1e-400", 0.0),
])
def test_values_as_go_parses_them(token, value):
    assert parse_float(token) == value


def test_nan():
    assert math.isnan(parse_float("NaN")) and math.isnan(parse_float("nan"))


def test_missing_labels_are_filled_with_empty_values_and_sorted():
    got = samples('p{b="1"} 1\np{a="2"} 2\np 3\n')
    assert got == {("p", (("a", ""), ("b", "1"))): 1.0, ("p", (("a", "2"), ("b", ""))): 2.0,
                   ("p", (("a", ""), ("b", ""))): 3.0}


def test_interleaved_families_are_merged():
    (b, c) = parse('b{x="1"} 1\nc 1\nb{x="2"} 2\n')
    assert [key for key, _ in b.samples] == [("b", (("x", "1"),)), ("b", (("x", "2"),))]


def test_histogram_is_completed_as_node_exporter_prints_it():
    (h,) = parse('# TYPE h histogram\nh_bucket{le="10",x="a"} 2\nh_bucket{x="a",le="1.0"} 1\n'
                 'h_count{x="a"} 2\nh_sum{x="b"} 4\n')
    assert h.samples == [
        (("h_bucket", (("x", "a"), ("le", "1"))), 1.0),
        (("h_bucket", (("x", "a"), ("le", "10"))), 2.0),
        (("h_bucket", (("x", "a"), ("le", "+Inf"))), 2.0),  # = _count
        (("h_sum", (("x", "a"),)), 0.0),
        (("h_count", (("x", "a"),)), 2.0),
        (("h_bucket", (("x", "b"), ("le", "+Inf"))), 0.0),
        (("h_sum", (("x", "b"),)), 4.0),
        (("h_count", (("x", "b"),)), 0.0),
    ]


def test_summary_without_quantiles_and_its_count_defaults():
    (s,) = parse('# TYPE s summary\ns{quantile="0.99"} 7\ns_sum 1\n')
    assert s.samples == [(("s", (("quantile", "0.99"),)), 7.0), (("s_sum", ()), 1.0), (("s_count", ()), 0.0)]


def test_suffixes_belong_to_a_histogram_only_when_it_is_declared_first():
    # A summary has no _bucket; an untyped `h` has no _count: each is a
    # family of its own, as in client_golang's parser.
    names = [(f.name, f.type) for f in parse('# TYPE s summary\ns_bucket{le="1"} 1\nh 1\nh_count 2\n')]
    assert names == [("s_bucket", "untyped"), ("h", "untyped"), ("h_count", "untyped")]


def test_a_family_without_samples_is_left_out():
    assert [f.name for f in parse("# TYPE l gauge\nl_total 1\n")] == ["l_total"]


@pytest.mark.parametrize("value, text", [
    (1.0, "1"), (10.0, "10"), (0.05, "0.05"), (1e5, "100000"), (1e6, "1e+06"), (1234567.5, "1.2345675e+06"),
    (123456.7, "123456.7"), (1e-4, "0.0001"), (1e-5, "1e-05"), (1e-300, "1e-300"), (-2.5, "-2.5"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (0.0, "0"),
])
def test_le_and_quantile_written_as_go_writes_floats(value, text):
    assert format_float(value) == text


# --- refused ------------------------------------------------------------------

@pytest.mark.parametrize("text, line, reason", [
    ("a 1", 1, "no newline at the end"),
    ("a 1\n# comment", 2, "no newline at the end"),
    ("f 1\r\n", 1, "expected a number"),
    ("# HELP a x\n# HELP a y\na 1\n", 2, "second HELP"),
    ("# TYPE t gauge\n# TYPE t counter\n", 2, "second TYPE"),
    ("d 1\n# TYPE d gauge\n", 2, "after its samples"),
    ("# TYPE w info\n", 1, "unknown metric type 'info'"),
    ("# TYPE w\n", 1, "unknown metric type ''"),  # 1.5.0: untyped
    ("# TYPE w gauge extra\n", 1, "unknown metric type"),
    ("# TYPE 1w gauge\n", 1, "invalid metric name"),
    ('h{x="1",x="2"} 1\n', 1, "given twice"),
    ('n{__x="1"} 1\n', 1, "reserved"),  # 1.5.0 crashes
    ('n{x=1} 1\n', 1, "expected '\"'"),
    ('n{x="1" 1\n', 1, "expected ',' or '}'"),
    ('n{x="1\n', 1, "unterminated"),
    ('n{x="a\\tb"} 1\n', 1, "invalid escape"),
    ("# HELP n a\\tb\n", 1, "invalid escape"),
    ("r 0x1F\n", 1, "expected a number"),
    ("r 0x1Fp0\n", 1, "expected a number"),
    ("r 1_000\n", 1, "expected a number"),
    ("r +NaN\n", 1, "expected a number"),
    ("r 1e400\n", 1, "out of range"),
    ("r\n", 1, "expected a value"),
    ("o 1 \n", 1, "a blank after the value"),
    ("ok 1\nstamped 2 1733371255000\n", 2, "timestamp"),
    ("{a=\"1\"} 1\n", 1, "expected a metric name"),
])
def test_refused_with_the_line(text, line, reason):
    with pytest.raises(TextFormatError) as caught:
        parse(text)
    assert caught.value.line == line and reason in caught.value.reason, str(caught.value)


def test_invalid_utf8_is_refused_with_its_line():
    with pytest.raises(TextFormatError, match="line 2: not UTF-8"):
        parse_text(b"a 1\n# HELP a caf\xff\n")


@pytest.mark.parametrize("text, reason", [
    ("j 1\nj 2\n", "the series j is given twice"),  # 1.5.0 keeps the first
    ('p{a=""} 1\np 2\n', "given twice"),  # the same series once filled
    ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1.0"} 2\n', "given twice"),
    ("# TYPE h histogram\nh_sum 1\nh_sum 2\n", "given twice"),
    ("# TYPE h histogram\nh 5\n", "not a sample of the histogram"),  # 1.5.0 drops it
    ("# TYPE h histogram\nh_bucket 5\n", "no 'le' label"),
    ('# TYPE h histogram\nh_bucket{le="x"} 5\n', "not a number"),
    ('# TYPE h histogram\nh_bucket{le="NaN"} 5\n', "le is NaN"),
    ('# TYPE h histogram\nh_sum{le="1"} 5\n', "'le' on a _sum sample"),
    ("# TYPE s summary\ns 5\n", "no 'quantile' label"),
    ('# TYPE s summary\ns{quantile="x"} 5\n', "not a number"),
    # What OpenMetrics forbids (1.5.0 accepts each).
    ("# TYPE k counter\nk -5\n", "the counter k is -5.0"),
    ("# TYPE k counter\nk NaN\n", "the counter k is nan"),
    ('# TYPE h histogram\nh_bucket{le="1"} 1.5\nh_count 1.5\n', "not a count"),
    ('# TYPE h histogram\nh_bucket{le="1"} -1\nh_count 0\n', "not a count"),
    ('# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="2"} 3\nh_count 5\n', "not cumulative"),
    ('# TYPE h histogram\nh_bucket{le="1"} 1\n', "not cumulative"),  # +Inf = count = 0
    ('# TYPE h histogram\nh_bucket{le="+Inf"} 5\nh_count 7\n', "is not the count"),
    ("# TYPE h histogram\nh_sum NaN\n", "the sum of h is nan"),
    ("# TYPE h histogram\nh_sum -1\n", "the sum of h is -1.0"),
    ('# TYPE h histogram\nh_bucket{le="-1"} 0\n', "a bucket below 0"),
    ("# TYPE s summary\ns_sum -1\n", "the sum of s is -1.0"),
    ('# TYPE s summary\ns{quantile="0.5"} -1\n', "value below 0"),
    ('# TYPE s summary\ns{quantile="1.5"} 1\n', "outside 0 to 1"),
    ("# TYPE s summary\ns_count -1\n", "not a count"),
])
def test_series_refused(text, reason):
    with pytest.raises(TextFormatError, match=reason):
        parse(text)
