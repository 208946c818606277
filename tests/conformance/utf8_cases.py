"""UTF-8 test data for section 6 of the conformance suite.

SEQUENCES lists the byte strings of Autobahn's cases 6.5 to 6.23, which
follow the sections of Markus Kuhn's "UTF-8 decoder capability and stress
test" (correct text, boundary code points, stray continuation bytes,
lonely and truncated lead bytes, impossible bytes, overlong forms, UTF-16
surrogates, noncharacters and specials), in Autobahn's order, so that case
6.N.K here tests what it tests there.  Byte ranges are taken whole: 6.12.8
is every byte 0x80-0xBF and 6.13.K every lead byte of its range, where
Autobahn's stop one byte short.

first_invalid() is the suite's own reference validator, written from the
table of well-formed byte sequences in the Unicode Standard (3.9, table
3-7): it tells at which byte a string stops being a prefix of any valid
UTF-8, which is where a fail-fast server must close.
"""

# Table 3-7: for each lead byte range, the allowed range of each following
# byte.  The second byte's range is what rules out overlongs (E0, F0),
# surrogates (ED) and code points over U+10FFFF (F4) at once.
_TAIL = (0x80, 0xBF)
_WELL_FORMED = [
    ((0x00, 0x7F), []),
    ((0xC2, 0xDF), [_TAIL]),
    ((0xE0, 0xE0), [(0xA0, 0xBF), _TAIL]),
    ((0xE1, 0xEC), [_TAIL, _TAIL]),
    ((0xED, 0xED), [(0x80, 0x9F), _TAIL]),
    ((0xEE, 0xEF), [_TAIL, _TAIL]),
    ((0xF0, 0xF0), [(0x90, 0xBF), _TAIL, _TAIL]),
    ((0xF1, 0xF3), [_TAIL, _TAIL, _TAIL]),
    ((0xF4, 0xF4), [(0x80, 0x8F), _TAIL, _TAIL]),
]


def _tails_of(lead):
    for (lo, hi), tails in _WELL_FORMED:
        if lo <= lead <= hi:
            return tails
    return None


def scan(data):
    """Returns (first_invalid, complete): the index of the first byte that
    no continuation can make valid (None if there is none), and whether
    data is valid UTF-8 that ends on a character boundary."""
    i = 0
    while i < len(data):
        tails = _tails_of(data[i])
        if tails is None:
            return i, False
        for k, (lo, hi) in enumerate(tails, 1):
            if i + k == len(data):
                return None, False      # cut short: more bytes may follow
            if not lo <= data[i + k] <= hi:
                return i + k, False
        i += 1 + len(tails)
    return None, True


def first_invalid(data):
    return scan(data)[0]


def is_valid(data):
    return scan(data)[1]


def _range_bytes(first, last):
    return bytes(range(first, last + 1))


def _lonely_leads(first, last):
    """Each lead byte followed by a space, which it cannot take."""
    return b"".join(bytes([b, 0x20]) for b in range(first, last + 1))


_KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode("utf-8")   # κόσμε

_TRUNCATED = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
              b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf",
              b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]

_HIGH_SURROGATES = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
                    b"\xed\xaf\xbf"]
_LOW_SURROGATES = [b"\xed\xb0\x80", b"\xed\xbf\xbf"]


def _noncharacters():
    """U+FFFE, U+FFFF and the last two code points of planes 1 to 16:
    noncharacters, but valid UTF-8."""
    out = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for lead in (0xF0, 0xF1, 0xF2, 0xF3, 0xF4):
        for second in (0x8F, 0x9F, 0xAF, 0xBF):
            if lead == 0xF4 and second != 0x8F:
                continue                # over U+10FFFF
            if lead == 0xF0 and second == 0x8F:
                continue                # overlong
            for last in (0xBE, 0xBF):
                out.append(bytes([lead, second, 0xBF, last]))
    return out


# (subsection title, [payload, ...]); numbered 6.5 upwards in this order.
SEQUENCES = [
    ("some valid UTF-8", [
        b"hello$world", b"hello\xc2\xa2world", b"hello\xe2\x82\xacworld",
        b"hello\xf0\xa4\xad\xa2world", _KOSME]),
    ("every prefix of a valid multi-byte string",
     [_KOSME[:n] for n in range(1, len(_KOSME) + 1)]),
    ("first code point of each length",
     [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
    ("first 5- and 6-byte forms (beyond Unicode)",
     [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
    ("last code point of each length",
     [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]),
    ("last 4-, 5- and 6-byte forms (beyond Unicode)",
     [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf",
      b"\xfd\xbf\xbf\xbf\xbf\xbf"]),
    ("other boundaries: U+D7FF, U+E000, U+FFFD, U+10FFFF, U+110000",
     [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd",
      b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80"]),
    ("unexpected continuation bytes",
     [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
      b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf",
      _range_bytes(0x80, 0xBF)]),
    ("lonely lead bytes, each followed by a space",
     [_lonely_leads(0xC0, 0xDF), _lonely_leads(0xE0, 0xEF),
      _lonely_leads(0xF0, 0xF7), _lonely_leads(0xF8, 0xFB),
      _lonely_leads(0xFC, 0xFD)]),
    ("sequences missing their last continuation byte", list(_TRUNCATED)),
    ("all the truncated sequences concatenated", [b"".join(_TRUNCATED)]),
    ("impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
    ("overlong forms of '/'",
     [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
      b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf"]),
    ("largest overlong form of each length",
     [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf",
      b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"]),
    ("overlong forms of NUL",
     [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",
      b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80"]),
    ("single UTF-16 surrogates",
     _HIGH_SURROGATES + [b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]),
    ("paired UTF-16 surrogates",
     [h + lo for h in _HIGH_SURROGATES for lo in _LOW_SURROGATES]),
    ("noncharacters (valid UTF-8)", _noncharacters()),
    ("specials U+FFF9 to U+FFFF (valid UTF-8)",
     [bytes([0xEF, 0xBF, b]) for b in range(0xB9, 0xC0)]),
]

FIRST_SUBSECTION = 5


def numbered():
    """Yields (case number "6.N.K", subsection title, payload, valid)."""
    for n, (title, payloads) in enumerate(SEQUENCES, FIRST_SUBSECTION):
        for k, payload in enumerate(payloads, 1):
            yield "6.%d.%d" % (n, k), title, payload, is_valid(payload)


def self_check():
    """The reference validator agrees with Python's strict UTF-8 codec on
    every payload, and the subsections have Autobahn's sizes; a broken
    oracle would make the suite test nothing."""
    sizes = [len(p) for _, p in SEQUENCES]
    want = [5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7]
    assert sizes == want, "subsection sizes %s, expected %s" % (sizes, want)
    for number, _, payload, valid in numbered():
        try:
            payload.decode("utf-8")
            codec_valid = True
        except UnicodeDecodeError:
            codec_valid = False
        assert valid == codec_valid, "%s: reference says %s, codec %s" % (
            number, valid, codec_valid)
        # A fail-fast verdict on a prefix must not depend on the rest.
        bad = first_invalid(payload)
        for cut in range(len(payload) + 1):
            want = bad if bad is not None and bad < cut else None
            assert first_invalid(payload[:cut]) == want, (
                "%s: prefix of %d bytes" % (number, cut))
