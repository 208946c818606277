/*
 * Unit tests of the incremental UTF-8 validator
 * (plugins/websocket/ws_utf8.c), checked against a reference written the
 * other way round: it decodes code points and asks whether any completion
 * of a partial sequence could still land in the valid range.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "ws_utf8.h"

/* An input that must fail, and the index of the byte that proves it. */
struct utf8_test_bad {
    const char *bytes;
    size_t len;
    size_t first_bad;
};

#define BAD(s, at) { s, sizeof(s) - 1, at }

/*
 * utf8_test_range_ok tells whether some code point in [lo, hi] is a valid
 * scalar value that needs the encoding length whose minimum is min_cp.
 */
static bool
utf8_test_range_ok(uint32_t lo, uint32_t hi, uint32_t min_cp)
{
    if (lo < min_cp) {
        lo = min_cp;
    }
    if (hi > 0x10FFFF) {
        hi = 0x10FFFF;
    }
    if (lo > hi) {
        return false;
    }
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/*
 * utf8_test_ref returns the index of the first byte after which p can no
 * longer be the start of valid UTF-8, or n if there is none; *complete says
 * whether p is valid and ends on a character boundary.
 */
static size_t
utf8_test_ref(const uint8_t *p, size_t n, bool *complete)
{
    size_t i = 0;

    *complete = false;
    while (i < n) {
        uint8_t b = p[i];
        size_t seq;
        uint32_t cp;
        uint32_t min_cp;

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) {
            seq = 2;
            cp = b & 0x1Fu;
            min_cp = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            seq = 3;
            cp = b & 0x0Fu;
            min_cp = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            seq = 4;
            cp = b & 0x07u;
            min_cp = 0x10000;
        } else {
            return i;
        }
        for (size_t j = 0; j < seq; j++) {
            unsigned rest = (unsigned)(seq - 1 - j);
            uint32_t lo;
            uint32_t hi;

            if (j > 0) {
                if (i + j >= n) {
                    return n;
                }
                if ((p[i + j] & 0xC0) != 0x80) {
                    return i + j;
                }
                cp = (cp << 6) | (p[i + j] & 0x3Fu);
            }
            lo = cp << (6 * rest);
            hi = lo | ((UINT32_C(1) << (6 * rest)) - 1);
            if (!utf8_test_range_ok(lo, hi, min_cp)) {
                return i + j;
            }
        }
        i += seq;
    }
    *complete = true;
    return n;
}

/*
 * utf8_test_encode writes cp as UTF-8 without any check and returns the
 * length, so surrogates can be encoded too.
 */
static size_t
utf8_test_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* utf8_test_whole feeds s in one call and says whether it is complete. */
static bool
utf8_test_whole(const void *s, size_t n)
{
    struct ws_utf8 v;

    ws_utf8_init(&v);
    return ws_utf8_feed(&v, s, n) && ws_utf8_complete(&v);
}

/*
 * utf8_test_first_fail feeds p one byte at a time and returns the index of
 * the call that failed, or n if none did.
 */
static size_t
utf8_test_first_fail(const uint8_t *p, size_t n, struct ws_utf8 *v)
{
    ws_utf8_init(v);
    for (size_t i = 0; i < n; i++) {
        if (!ws_utf8_feed(v, p + i, 1)) {
            return i;
        }
    }
    return n;
}

/* utf8_test_next is a xorshift32 generator for reproducible inputs. */
static uint32_t
utf8_test_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* ASCII of every length, around the 8-byte fast path, is complete. */
START_TEST(test_utf8_ascii)
{
    uint8_t buf[41];

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 3);
    }
    for (size_t n = 0; n <= sizeof(buf); n++) {
        ck_assert_msg(utf8_test_whole(buf, n), "length %zu", n);
    }
}
END_TEST

/* The first and last code point of every encoding length are accepted. */
START_TEST(test_utf8_boundaries_valid)
{
    const uint32_t cps[] = { 0x0,    0x7F,    0x80,    0x7FF,
                             0x800,  0xD7FF,  0xE000,  0xFFFD,
                             0xFFFE, 0xFFFF,  0x10000, 0x10FFFF };

    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        uint8_t enc[4];
        size_t n = utf8_test_encode(cps[i], enc);

        ck_assert_msg(utf8_test_whole(enc, n), "U+%04X", (unsigned)cps[i]);
    }
}
END_TEST

/* Every Unicode scalar value is accepted, every surrogate refused. */
START_TEST(test_utf8_every_code_point)
{
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint8_t enc[4];
        size_t n = utf8_test_encode(cp, enc);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;

        if (utf8_test_whole(enc, n) == surrogate) {
            ck_abort_msg("U+%04X judged wrong", (unsigned)cp);
        }
    }
}
END_TEST

/* The Greek word of RFC 6455 / Autobahn case 6.2 is valid. */
START_TEST(test_utf8_kosme)
{
    const char kosme[] = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";

    ck_assert(utf8_test_whole(kosme, sizeof(kosme) - 1));
}
END_TEST

/* Feeding byte by byte or split at any point equals feeding at once. */
START_TEST(test_utf8_split_every_boundary)
{
    const char text[] = "a\xCE\xBA\xE1\xBD\xB9z\xF0\x9F\x98\x80"
                        "0123456789\xF4\x8F\xBF\xBF\xC2\x80";
    const size_t n = sizeof(text) - 1;
    const uint8_t *p = (const uint8_t *)text;
    struct ws_utf8 v;

    ck_assert(utf8_test_whole(p, n));
    ck_assert_uint_eq(utf8_test_first_fail(p, n, &v), n);
    ck_assert(ws_utf8_complete(&v));
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            ws_utf8_init(&v);
            ck_assert(ws_utf8_feed(&v, p, a));
            ck_assert(ws_utf8_feed(&v, p + a, b - a));
            ck_assert(ws_utf8_feed(&v, p + b, n - b));
            ck_assert_msg(ws_utf8_complete(&v), "cuts %zu %zu", a, b);
        }
    }
}
END_TEST

/* A sequence cut short is not complete until its last byte arrives. */
START_TEST(test_utf8_incomplete_sequence)
{
    const uint8_t euro[] = { 0xE2, 0x82, 0xAC };
    struct ws_utf8 v;

    ws_utf8_init(&v);
    ck_assert(ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, euro, 1));
    ck_assert(!ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, euro + 1, 1));
    ck_assert(!ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, NULL, 0));
    ck_assert(!ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, euro + 2, 1));
    ck_assert(ws_utf8_complete(&v));
}
END_TEST

/* A zeroed struct is the start state and ws_utf8_init returns to it. */
START_TEST(test_utf8_init_resets)
{
    const uint8_t bad[] = { 0xFF };
    const uint8_t half[] = { 0xC3 };
    struct ws_utf8 v = { 0 };

    ck_assert(ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, (const uint8_t *)"ok", 2));
    ck_assert(!ws_utf8_feed(&v, bad, 1));
    ws_utf8_init(&v);
    ck_assert(ws_utf8_complete(&v));
    ck_assert(ws_utf8_feed(&v, half, 1));
    ws_utf8_init(&v);
    ck_assert(ws_utf8_complete(&v));
    ck_assert_uint_eq(v.state, 0);
}
END_TEST

/* Random byte strings are judged like the reference, to the same byte. */
START_TEST(test_utf8_matches_reference)
{
    static const uint8_t pool[] = {
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
        0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
        0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFC, 0xFE, 0xFF
    };
    uint32_t seed = 0x2545F491;

    for (int round = 0; round < 300000; round++) {
        uint8_t buf[12];
        size_t n = utf8_test_next(&seed) % (sizeof(buf) + 1);
        size_t cut;
        size_t want;
        bool want_complete;
        struct ws_utf8 v;
        bool ok;

        for (size_t i = 0; i < n; i++) {
            uint32_t r = utf8_test_next(&seed);

            buf[i] = (r & 0x100) != 0 ? (uint8_t)r
                                      : pool[(r >> 9) % sizeof(pool)];
        }
        /* ck_assert is costly per call in fork mode: test, then abort. */
        want = utf8_test_ref(buf, n, &want_complete);
        if (utf8_test_first_fail(buf, n, &v) != want
            || (want == n && ws_utf8_complete(&v) != want_complete)) {
            ck_abort_msg("round %d: byte-wise differs from reference", round);
        }
        cut = n == 0 ? 0 : utf8_test_next(&seed) % n;
        ws_utf8_init(&v);
        ok = ws_utf8_feed(&v, buf, cut) && ws_utf8_feed(&v, buf + cut, n - cut);
        if (ok != (want == n)
            || ws_utf8_complete(&v) != (want == n && want_complete)) {
            ck_abort_msg("round %d: split at %zu differs", round, cut);
        }
    }
}
END_TEST

/* Characters and bad bytes after ASCII runs of any length are judged right. */
START_TEST(test_utf8_after_ascii_run)
{
    uint8_t buf[48];

    for (size_t at = 0; at < 40; at++) {
        struct ws_utf8 v;

        memset(buf, 'a', sizeof(buf));
        buf[at] = 0xC3;
        buf[at + 1] = 0xA9;
        ck_assert_msg(utf8_test_whole(buf, sizeof(buf)), "valid at %zu", at);
        buf[at] = 0xFF;
        ws_utf8_init(&v);
        ck_assert_msg(!ws_utf8_feed(&v, buf, sizeof(buf)), "bad at %zu", at);
        ws_utf8_init(&v);
        ck_assert_msg(ws_utf8_feed(&v, buf, at), "prefix of %zu", at);
    }
}
END_TEST

/* A complete text cut before its last character is not complete. */
START_TEST(test_utf8_truncated_at_end)
{
    const char *cases[] = { "\xC2", "\xE0\xA0", "\xF0\x90\x80", "a\xF4",
                            "\xEF\xBF" };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ws_utf8 v;

        ws_utf8_init(&v);
        ck_assert(ws_utf8_feed(&v, (const uint8_t *)cases[i],
                               strlen(cases[i])));
        ck_assert_msg(!ws_utf8_complete(&v), "case %zu", i);
    }
}
END_TEST

/* Each invalid class (Autobahn 6.x style) fails at its first bad byte. */
START_TEST(test_utf8_rejects_at_first_bad_byte)
{
    static const struct utf8_test_bad cases[] = {
        BAD("\x80", 0),                 /* lone continuation */
        BAD("\xBF", 0),
        BAD("a\x80\x80", 1),
        BAD("\xC0\xAF", 0),             /* C0 and C1 only make overlongs */
        BAD("\xC1\xBF", 0),
        BAD("\xE0\x80\xAF", 1),         /* overlong 3-byte */
        BAD("\xE0\x9F\xBF", 1),
        BAD("\xF0\x80\x80\xAF", 1),     /* overlong 4-byte */
        BAD("\xF0\x8F\xBF\xBF", 1),
        BAD("\xED\xA0\x80", 1),         /* surrogates */
        BAD("\xED\xAD\xBF", 1),
        BAD("\xED\xBF\xBF", 1),
        BAD("\xED\xA0\x80\xED\xB0\x80", 1),
        BAD("\xF4\x90\x80\x80", 1),     /* above U+10FFFF */
        BAD("\xF4\xBF\xBF\xBF", 1),
        BAD("\xF5\x80\x80\x80", 0),
        BAD("\xF7\xBF\xBF\xBF", 0),
        BAD("\xF8\x88\x80\x80\x80", 0), /* 5- and 6-byte forms */
        BAD("\xFC\x84\x80\x80\x80\x80", 0),
        BAD("\xFE", 0),
        BAD("\xFF", 0),
        BAD("\xC2\x41", 1),             /* sequence cut by a new char */
        BAD("\xE2\x82\x41", 2),
        BAD("\xF0\x9F\x98 ", 3),
        BAD("\xE2\x82\xE2\x82\xAC", 2),
        BAD("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"
            "\xED\xA0\x80" "edited", 12),  /* Autobahn 6.3/6.4 */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *p = (const uint8_t *)cases[i].bytes;
        size_t at = cases[i].first_bad;
        bool ref_complete;
        struct ws_utf8 v;

        ck_assert_uint_eq(utf8_test_ref(p, cases[i].len, &ref_complete), at);
        ck_assert_msg(utf8_test_first_fail(p, cases[i].len, &v) == at,
                      "case %zu", i);
        ck_assert(!ws_utf8_complete(&v));
        ws_utf8_init(&v);
        ck_assert_msg(ws_utf8_feed(&v, p, at), "prefix of case %zu", i);
        ck_assert_msg(!ws_utf8_feed(&v, p + at, 1), "byte of case %zu", i);
        ck_assert(!utf8_test_whole(p, cases[i].len));
    }
}
END_TEST

/* Once failed, the validator stays failed whatever follows. */
START_TEST(test_utf8_failure_is_sticky)
{
    const uint8_t bad[] = { 0xC0 };
    const uint8_t good[] = "plain ascii text";
    struct ws_utf8 v;

    ws_utf8_init(&v);
    ck_assert(!ws_utf8_feed(&v, bad, 1));
    ck_assert(!ws_utf8_feed(&v, good, sizeof(good) - 1));
    ck_assert(!ws_utf8_feed(&v, NULL, 0));
    ck_assert(!ws_utf8_complete(&v));
}
END_TEST

static Suite *
ws_utf8_suite(void)
{
    Suite *s = suite_create("ws_utf8");
    TCase *core = tcase_create("core");
    TCase *limits = tcase_create("limits");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_utf8_ascii);
    tcase_add_test(core, test_utf8_boundaries_valid);
    tcase_add_test(core, test_utf8_kosme);
    tcase_add_test(core, test_utf8_split_every_boundary);
    tcase_add_test(core, test_utf8_incomplete_sequence);
    tcase_add_test(core, test_utf8_init_resets);
    suite_add_tcase(s, core);

    /* The exhaustive and random tests take a while under valgrind. */
    tcase_set_timeout(limits, 60);
    tcase_add_test(limits, test_utf8_every_code_point);
    tcase_add_test(limits, test_utf8_matches_reference);
    tcase_add_test(limits, test_utf8_after_ascii_run);
    tcase_add_test(limits, test_utf8_truncated_at_end);
    suite_add_tcase(s, limits);

    tcase_add_test(errors, test_utf8_rejects_at_first_bad_byte);
    tcase_add_test(errors, test_utf8_failure_is_sticky);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_utf8_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
