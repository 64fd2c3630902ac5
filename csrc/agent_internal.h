/* Private helpers shared by the parsers: line and field scanning, counter
 * and decimal parsing, as docs/PARSERS.md defines them.
 *
 * Included after <stdint.h>, <stddef.h> and "agent_api.h".  The scanners are
 * static inline so that each parser's hot loop is compiled as one function;
 * every one of them works on a half-open range [p, e) and never reads at or
 * past e, because /proc input is not NUL-terminated and may contain NULs.
 */
#ifndef AGENT_INTERNAL_H
#define AGENT_INTERNAL_H

#include <string.h>

/* 1e0 .. 1e15, each exactly representable; defined in common.c so that a
 * translation unit that does not use it gets no unused-variable warning. */
extern const double agent_pow10[16];

/* A decimal keeps at most this many digits, so m < 10^15 < 2^53 is exact. */
enum { AGENT_DECIMAL_DIGITS_MAX = 15 };

/* Python's bytes.split() white space: space, \t, \n, \v, \f, \r.  '\n' never
 * occurs inside a line, so accepting it here changes nothing and keeps the
 * test to one compare and one range check. */
static inline int agent_is_space(unsigned char c)
{
    return c == ' ' || (unsigned char)(c - '\t') <= (unsigned char)('\r' - '\t');
}

static inline const char *agent_skip_space(const char *p, const char *e)
{
    while (p < e && agent_is_space((unsigned char)*p))
        p++;
    return p;
}

static inline const char *agent_field_end(const char *p, const char *e)
{
    while (p < e && !agent_is_space((unsigned char)*p))
        p++;
    return p;
}

/* Line iterator: lines end at '\n'; a last line without one is still a line,
 * the empty rest after a final '\n' is not.  memchr is called only on a
 * non-empty range, so a (NULL, 0) input never reaches it. */
struct agent_lines {
    const char *p;
    const char *end;
    size_t no;
};

static inline void agent_lines_init(struct agent_lines *it, const char *buf, size_t len)
{
    it->p = buf;
    it->end = len ? buf + len : buf;
    it->no = 0;
}

static inline int agent_lines_next(struct agent_lines *it, const char **ls, const char **le)
{
    const char *nl;

    if (it->p >= it->end)
        return 0;
    *ls = it->p;
    nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    if (nl) {
        *le = nl;
        it->p = nl + 1;
    } else {
        *le = it->end;
        it->p = it->end;
    }
    it->no++;
    return 1;
}

/* Counter: the field starting at p (up to the next white space or e).
 * Precedence inside one field, agreed with the Python backend: any byte that
 * is not a digit (or no byte at all) is AGENT_EFORMAT, wherever it is;
 * otherwise a value above 2^64-1 is AGENT_ERANGE, however many leading zeros.
 * *fe gets the field's end; *out is written only on success.
 *
 * One pass converts the leading digits while it finds where they end; a
 * field of at most 19 digits is always below 2^64, so the serial
 * multiply-add chain runs with no overflow check, and anything else (a
 * non-digit, 20 digits or more: unsigned wrap-around is harmless, the value
 * is recomputed) goes to the slow path. */
static inline int agent_scan_counter_slow(const char *s, const char *p, const char *e,
                                          const char **fe, uint64_t *out);

static inline int agent_scan_counter(const char *p, const char *e,
                                     const char **fe, uint64_t *out)
{
    const char *s = p;
    uint64_t v = 0;
    unsigned d;

    while (p < e && (d = (unsigned)((unsigned char)*p - '0')) <= 9) {
        v = v * 10 + d;
        p++;
    }
    if (p == s || (p < e && !agent_is_space((unsigned char)*p)) || p - s > 19)
        return agent_scan_counter_slow(s, p, e, fe, out);
    *fe = p;
    *out = v;
    return AGENT_OK;
}

/* The rare fields: empty (an "R/T" side), a non-digit somewhere (EFORMAT,
 * found by scanning on to the field's end from p, where the digits stopped),
 * or 20 digits and more, converted with an overflow check at every digit
 * (leading zeros leave v at 0, so they never cause ERANGE). */
static inline int agent_scan_counter_slow(const char *s, const char *p, const char *e,
                                          const char **fe, uint64_t *out)
{
    /* UINT64_MAX = 1844674407370955161 * 10 + 5 */
    const uint64_t cut = UINT64_MAX / 10;
    const unsigned cutd = (unsigned)(UINT64_MAX % 10);
    uint64_t v = 0;
    int bad = p == s;

    for (; p < e && !agent_is_space((unsigned char)*p); p++)
        if ((unsigned)((unsigned char)*p - '0') > 9)
            bad = 1;
    *fe = p;
    if (bad)
        return AGENT_EFORMAT;
    for (; s < p; s++) {
        unsigned d = (unsigned)((unsigned char)*s - '0');

        if (v > cut || (v == cut && d > cutd))
            return AGENT_ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return AGENT_OK;
}

/* Decimal: `D+` or `D+.D+`.  The shape is checked over the whole field first
 * (AGENT_EFORMAT), then the digit count, leading zeros included
 * (AGENT_ERANGE above 15); the value is (double)m / 10^k, one correctly
 * rounded IEEE division of two exact doubles, as in the Python backend. */
static inline int agent_scan_decimal(const char *p, const char *e,
                                     const char **fe, double *out)
{
    uint64_t m = 0;
    size_t int_digits = 0, frac_digits = 0;
    int dot = 0, bad = 0;

    for (; p < e; p++) {
        unsigned c = (unsigned char)*p;
        unsigned d = c - '0';

        if (d <= 9) {
            if (int_digits + frac_digits < AGENT_DECIMAL_DIGITS_MAX)
                m = m * 10 + d;
            if (dot)
                frac_digits++;
            else
                int_digits++;
            continue;
        }
        if (agent_is_space((unsigned char)c))
            break;
        if (c == '.' && !dot && int_digits)
            dot = 1;
        else
            bad = 1;
    }
    *fe = p;
    if (bad || int_digits == 0 || (dot && frac_digits == 0))
        return AGENT_EFORMAT;
    if (int_digits + frac_digits > AGENT_DECIMAL_DIGITS_MAX)
        return AGENT_ERANGE;
    *out = (double)m / agent_pow10[frac_digits];
    return AGENT_OK;
}

/* Store v in the uint64_t member at byte offset off of a struct: field
 * positions come from const offsetof tables, which keeps the enum order in
 * one place without pointer arithmetic across struct members. */
static inline void agent_store_u64(void *obj, size_t off, uint64_t v)
{
    memcpy((char *)obj + off, &v, sizeof v);
}

#endif /* AGENT_INTERNAL_H */
