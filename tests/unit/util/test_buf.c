/* Unit tests for util/buf (capped byte buffer) and util/util (ids, numbers, directories). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/util.h"

/* ---- buf ---------------------------------------------------------------------------------- */

static void test_buf_init(void **state)
{
    struct buf b;

    buf_init(&b, 100);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    assert_string_equal(buf_str(&b), "");
    buf_release(&b); /* releasing an empty buffer is fine */
    buf_release(&b);
}

static void test_buf_add(void **state)
{
    struct buf b;

    buf_init(&b, BUF_MAX_SMALL);
    assert_int_equal(buf_add(&b, "", 0), GW_OK);
    assert_non_null(b.ptr); /* NUL-terminated once anything was added */
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_add(&b, "hello", 5), GW_OK);
    assert_int_equal(buf_add(&b, ", world!!", 7), GW_OK); /* only n bytes */
    assert_int_equal(b.len, 12);
    assert_string_equal(b.ptr, "hello, world");
    assert_int_equal(b.ptr[b.len], '\0');
    assert_true(b.cap > b.len);

    /* binary data with embedded NULs */
    assert_int_equal(buf_add(&b, "a\0b", 3), GW_OK);
    assert_int_equal(b.len, 15);
    assert_memory_equal(b.ptr + 12, "a\0b", 3);
    assert_int_equal(b.ptr[15], '\0');
    buf_release(&b);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
}

static void test_buf_growth(void **state)
{
    struct buf b;

    buf_init(&b, 1 << 20);
    for (int i = 0; i < 100000; i++) {
        char ch = (char)('a' + i % 26);
        assert_int_equal(buf_add(&b, &ch, 1), GW_OK);
    }
    assert_int_equal(b.len, 100000);
    assert_true(b.cap >= 100001);
    for (int i = 0; i < 100000; i++)
        if (b.ptr[i] != (char)('a' + i % 26))
            fail_msg("byte %d corrupted", i);
    assert_int_equal(b.ptr[100000], '\0');
    buf_release(&b);
}

static void test_buf_adds_addf(void **state)
{
    struct buf b;
    char big[5000];

    buf_init(&b, BUF_MAX_SMALL);
    assert_int_equal(buf_adds(&b, "x="), GW_OK);
    assert_int_equal(buf_addf(&b, "%d,%s,%.2f,%c,%zu", -42, "str", 1.5, 'q', (size_t)7), GW_OK);
    assert_string_equal(buf_str(&b), "x=-42,str,1.50,q,7");
    assert_int_equal(b.len, strlen("x=-42,str,1.50,q,7"));
    assert_int_equal(buf_addf(&b, "%s", ""), GW_OK);
    assert_int_equal(b.len, strlen("x=-42,str,1.50,q,7"));
    assert_int_equal(buf_adds(&b, ""), GW_OK);
    assert_int_equal(b.len, strlen("x=-42,str,1.50,q,7"));

    /* a formatted piece far larger than the first allocation */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_reset(&b);
    assert_int_equal(buf_addf(&b, "<%s>", big), GW_OK);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.ptr[0], '<');
    assert_int_equal(b.ptr[b.len - 1], '>');
    assert_int_equal(b.ptr[b.len], '\0');
    assert_int_equal(strlen(b.ptr), b.len);
    buf_release(&b);

    /* addf into a fresh buffer */
    buf_init(&b, 64);
    assert_int_equal(buf_addf(&b, "%05d", 42), GW_OK);
    assert_string_equal(buf_str(&b), "00042");
    buf_release(&b);
}

static void test_buf_consume(void **state)
{
    struct buf b;

    buf_init(&b, BUF_MAX_SMALL);
    buf_consume(&b, 0); /* empty, nothing allocated */
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_adds(&b, "0123456789"), GW_OK);
    buf_consume(&b, 0);
    assert_string_equal(buf_str(&b), "0123456789");
    buf_consume(&b, 3);
    assert_int_equal(b.len, 7);
    assert_string_equal(buf_str(&b), "3456789");
    assert_int_equal(buf_adds(&b, "ab"), GW_OK);
    assert_string_equal(buf_str(&b), "3456789ab");
    buf_consume(&b, b.len - 1);
    assert_string_equal(buf_str(&b), "b");
    buf_consume(&b, 1); /* n == len */
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_adds(&b, "again"), GW_OK);
    assert_string_equal(buf_str(&b), "again");
    buf_release(&b);
}

static void test_buf_reset(void **state)
{
    struct buf b;
    char *p;
    size_t cap;

    buf_init(&b, BUF_MAX_SMALL);
    buf_reset(&b); /* nothing allocated yet */
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_adds(&b, "some text"), GW_OK);
    p = b.ptr;
    cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.ptr, p); /* keeps memory */
    assert_int_equal(b.cap, cap);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_adds(&b, "new"), GW_OK);
    assert_string_equal(buf_str(&b), "new");
    buf_release(&b);
}

static void test_buf_take(void **state)
{
    struct buf b;
    char *s;
    size_t n = 99;

    buf_init(&b, 128);
    s = buf_take(&b, &n); /* empty: "" that the caller frees */
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(n, 0);
    free(s);

    assert_int_equal(buf_adds(&b, "payload"), GW_OK);
    s = buf_take(&b, &n);
    assert_string_equal(s, "payload");
    assert_int_equal(n, 7);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 128); /* the cap survives: b is reusable */
    assert_string_equal(buf_str(&b), "");

    assert_int_equal(buf_adds(&b, "second"), GW_OK);
    free(s);
    s = buf_take(&b, NULL); /* len may be NULL */
    assert_string_equal(s, "second");
    free(s);
    buf_release(&b);
}

static void test_buf_cap(void **state)
{
    struct buf b;
    char sixteen[] = "0123456789abcdef";

    /* Exactly max bytes fit. */
    buf_init(&b, 16);
    assert_int_equal(buf_add(&b, sixteen, 16), GW_OK);
    assert_int_equal(b.len, 16);
    assert_string_equal(b.ptr, sixteen);
    assert_int_equal(buf_add(&b, "", 0), GW_OK); /* adding nothing at the cap is fine */
    /* One more byte fails and releases the buffer. */
    assert_int_equal(buf_add(&b, "x", 1), GW_ETOOBIG);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_string_equal(buf_str(&b), "");
    /* The buffer is usable again afterwards, under the same cap. */
    assert_int_equal(b.max, 16);
    assert_int_equal(buf_adds(&b, "ok"), GW_OK);
    assert_string_equal(buf_str(&b), "ok");
    buf_release(&b);

    /* Growing in steps up to the cap. */
    buf_init(&b, 16);
    assert_int_equal(buf_adds(&b, "01234567"), GW_OK);
    assert_int_equal(buf_adds(&b, "89abcdef"), GW_OK);
    assert_int_equal(buf_adds(&b, "g"), GW_ETOOBIG);
    assert_null(b.ptr);
    buf_release(&b);

    /* addf past the cap */
    buf_init(&b, 16);
    assert_int_equal(buf_adds(&b, "0123456789"), GW_OK);
    assert_int_equal(buf_addf(&b, "%s-%d", "abcdef", 1), GW_ETOOBIG);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    buf_release(&b);

    /* A single oversized piece into an empty buffer, and a huge n. */
    buf_init(&b, 16);
    assert_int_equal(buf_add(&b, "0123456789abcdefg", 17), GW_ETOOBIG);
    assert_null(b.ptr);
    assert_int_equal(buf_adds(&b, "abc"), GW_OK);
    assert_int_equal(buf_add(&b, sixteen, SIZE_MAX), GW_ETOOBIG); /* no overflow, no copy */
    assert_null(b.ptr);
    assert_int_equal(buf_add(&b, sixteen, SIZE_MAX - 1), GW_ETOOBIG);
    buf_release(&b);

    /* A cap of 0 accepts only nothing. */
    buf_init(&b, 0);
    assert_int_equal(buf_add(&b, "", 0), GW_OK);
    assert_int_equal(buf_add(&b, "x", 1), GW_ETOOBIG);
    buf_release(&b);

    /* A very large cap: len + n overflow must not pass the check. */
    buf_init(&b, SIZE_MAX);
    assert_int_equal(buf_adds(&b, "abc"), GW_OK);
    assert_int_equal(buf_add(&b, sixteen, SIZE_MAX - 1), GW_ETOOBIG);
    assert_null(b.ptr);
    buf_release(&b);
}

/* ---- util: ids and time ------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_uuid_format(void **state)
{
    char u[37];

    for (int k = 0; k < 1000; k++) {
        memset(u, 'X', sizeof(u));
        util_uuid(u);
        assert_int_equal(strlen(u), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                assert_int_equal(u[i], '-');
            } else if (!isxdigit((unsigned char)u[i]) || isupper((unsigned char)u[i])) {
                fail_msg("bad uuid char '%c' at %d in %s", u[i], i, u);
            }
        }
        assert_int_equal(u[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
    }
}

static void test_uuid_unique(void **state)
{
    enum { N = 1000 };
    char(*ids)[37] = malloc(N * sizeof(*ids));

    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        util_uuid(ids[i]);
    qsort(ids, N, sizeof(*ids), cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate uuid %s", ids[i]);
    free(ids);
}

static void test_rand_id(void **state)
{
    static const size_t lens[] = {0, 1, 8, 24, 29, 32, 63, 64, 65, 128, 200};
    char out[256];
    int seen_digit = 0, seen_lower = 0;

    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t n = lens[k];
        memset(out, '#', sizeof(out));
        util_rand_id(out, n);
        assert_int_equal(strlen(out), n);
        assert_int_equal(out[n + 1], '#'); /* nothing written past the NUL */
        for (size_t i = 0; i < n; i++) {
            if (!isalnum((unsigned char)out[i]))
                fail_msg("non-alphanumeric '%c' in id of length %zu", out[i], n);
            seen_digit |= isdigit((unsigned char)out[i]) != 0;
            seen_lower |= islower((unsigned char)out[i]) != 0;
        }
    }
    assert_true(seen_digit);
    assert_true(seen_lower);
}

static void test_rand_id_unique(void **state)
{
    enum { N = 1000, L = 24 };
    char(*ids)[L + 1] = malloc(N * sizeof(*ids));

    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        util_rand_id(ids[i], L);
    qsort(ids, N, sizeof(*ids), cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

static void test_iso8601_and_clock(void **state)
{
    char ts[32];
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    uint64_t a, b;

    util_iso8601_now(ts);
    assert_int_equal(strlen(ts), strlen(pat));
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)ts[i]) : ts[i] != pat[i])
            fail_msg("timestamp %s does not match %s", ts, pat);
    assert_true(strncmp(ts, "2020", 4) >= 0);

    a = util_now_ms();
    usleep(20000);
    b = util_now_ms();
    assert_true(b >= a + 15);
    assert_true(b < a + 5000);
}

/* ---- util: numbers ------------------------------------------------------------------------ */

struct i64_case {
    const char *s;
    int64_t min, max;
    int ok;
    int64_t want;
};

static const struct i64_case i64_cases[] = {
    {"0", 0, 10, 1, 0},
    {"10", 0, 10, 1, 10},
    {"11", 0, 10, 0, 0},
    {"-1", 0, 10, 0, 0},
    {"-5", -10, 10, 1, -5},
    {"-10", -10, 10, 1, -10},
    {"-11", -10, 10, 0, 0},
    {"+7", 0, 10, 0, 0},
    {" 42", 0, 100, 0, 0},
    {"\t\n7", 0, 10, 0, 0},
    {"007", 0, 10, 1, 7},
    {"1024", 1024, 1073741824, 1, 1024},
    {"1023", 1024, 1073741824, 0, 0},
    {"1073741825", 1024, 1073741824, 0, 0},
    {"9223372036854775807", INT64_MIN, INT64_MAX, 1, INT64_MAX},
    {"-9223372036854775808", INT64_MIN, INT64_MAX, 1, INT64_MIN},
    {"9223372036854775808", INT64_MIN, INT64_MAX, 0, 0},
    {"-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0},
    {"99999999999999999999999", INT64_MIN, INT64_MAX, 0, 0},
    {"", INT64_MIN, INT64_MAX, 0, 0},
    {"abc", INT64_MIN, INT64_MAX, 0, 0},
    {"12abc", INT64_MIN, INT64_MAX, 0, 0},
    {"1.5", INT64_MIN, INT64_MAX, 0, 0},
    {"1e3", INT64_MIN, INT64_MAX, 0, 0},
    {"0x10", INT64_MIN, INT64_MAX, 0, 0},
    {"1 ", INT64_MIN, INT64_MAX, 0, 0},
    {"1\n", INT64_MIN, INT64_MAX, 0, 0},
    {" ", INT64_MIN, INT64_MAX, 0, 0},
    {"-", INT64_MIN, INT64_MAX, 0, 0},
    {"+", INT64_MIN, INT64_MAX, 0, 0},
    {"--1", INT64_MIN, INT64_MAX, 0, 0},
    {"1,000", INT64_MIN, INT64_MAX, 0, 0},
};

static void test_parse_i64(void **state)
{
    for (size_t i = 0; i < sizeof(i64_cases) / sizeof(i64_cases[0]); i++) {
        const struct i64_case *tc = &i64_cases[i];
        int64_t v = 12345;
        int rc = util_parse_i64(tc->s, tc->min, tc->max, &v);
        if (tc->ok) {
            if (rc != GW_OK || v != tc->want)
                fail_msg("'%s' in [%lld,%lld]: rc=%d v=%lld, want %lld", tc->s, (long long)tc->min,
                         (long long)tc->max, rc, (long long)v, (long long)tc->want);
        } else {
            if (rc != GW_EINVAL || v != 12345) /* *out untouched on failure */
                fail_msg("'%s' in [%lld,%lld]: rc=%d v=%lld, want GW_EINVAL", tc->s,
                         (long long)tc->min, (long long)tc->max, rc, (long long)v);
        }
    }
    {
        int64_t v = 1;
        assert_int_equal(util_parse_i64(NULL, 0, 10, &v), GW_EINVAL);
        assert_int_equal(v, 1);
    }
}

/* ---- util: directories -------------------------------------------------------------------- */

static char *make_tmp(void)
{
    char *t = strdup("/tmp/test_buf.XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("data\n", f);
    assert_int_equal(fclose(f), 0);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_mkdirs(void **state)
{
    char *base = make_tmp();
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), "%s/a/b/c/d", base);
    assert_int_equal(util_mkdirs(p), GW_OK);
    assert_true(is_dir(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof(p), "%s/a/b", base);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* existing: fine */
    snprintf(p, sizeof(p), "%s/a/b/c/d", base);
    assert_int_equal(util_mkdirs(p), GW_OK);
    assert_int_equal(util_mkdirs(base), GW_OK);

    /* trailing slash and doubled slashes */
    snprintf(p, sizeof(p), "%s/x//y/", base);
    assert_int_equal(util_mkdirs(p), GW_OK);
    snprintf(p, sizeof(p), "%s/x/y", base);
    assert_true(is_dir(p));

    /* a file in the way */
    snprintf(p, sizeof(p), "%s/file", base);
    touch(p);
    snprintf(p, sizeof(p), "%s/file/sub", base);
    assert_int_equal(util_mkdirs(p), GW_EIO);
    snprintf(p, sizeof(p), "%s/file/sub/deeper", base);
    assert_int_equal(util_mkdirs(p), GW_EIO);

    /* bad paths */
    assert_int_equal(util_mkdirs(""), GW_EINVAL);
    {
        char *longp = malloc(PATH_MAX + 10);
        assert_non_null(longp);
        memset(longp, 'a', PATH_MAX + 9);
        longp[0] = '/';
        longp[PATH_MAX + 9] = '\0';
        assert_int_equal(util_mkdirs(longp), GW_EINVAL);
        free(longp);
    }

    assert_int_equal(util_rmtree(base), GW_OK);
    free(base);
}

static void test_mkdirs_relative(void **state)
{
    char *base = make_tmp();
    char cwd[PATH_MAX];

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(base), 0);
    assert_int_equal(util_mkdirs("rel/one/two"), GW_OK);
    assert_true(is_dir("rel/one/two"));
    assert_int_equal(util_rmtree("rel"), GW_OK);
    assert_false(is_dir("rel"));
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(util_rmtree(base), GW_OK);
    free(base);
}

static void test_rmtree(void **state)
{
    char *base = make_tmp();
    char *outside = make_tmp();
    char p[512], target[512];
    struct stat st;

    /* tree: base/t/{f1, .hidden, d1/{f2, d2/{f3, empty/}}, link -> outside, flink -> outside/keep}
     */
    snprintf(p, sizeof(p), "%s/t/d1/d2/empty", base);
    assert_int_equal(util_mkdirs(p), GW_OK);
    snprintf(p, sizeof(p), "%s/t/f1", base);
    touch(p);
    snprintf(p, sizeof(p), "%s/t/.hidden", base);
    touch(p);
    snprintf(p, sizeof(p), "%s/t/d1/f2", base);
    touch(p);
    snprintf(p, sizeof(p), "%s/t/d1/d2/f3", base);
    touch(p);
    snprintf(target, sizeof(target), "%s/keep", outside);
    touch(target);
    snprintf(p, sizeof(p), "%s/t/link", base);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/t/flink", base);
    assert_int_equal(symlink(target, p), 0);

    snprintf(p, sizeof(p), "%s/t", base);
    assert_int_equal(util_rmtree(p), GW_OK);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_true(is_dir(base));              /* the parent stays */
    assert_int_equal(stat(target, &st), 0); /* symlinks were not followed */
    assert_true(is_dir(outside));

    /* missing is not an error */
    assert_int_equal(util_rmtree(p), GW_OK);
    snprintf(p, sizeof(p), "%s/never/was/here", base);
    assert_int_equal(util_rmtree(p), GW_OK);

    /* a single file */
    snprintf(p, sizeof(p), "%s/lonely", base);
    touch(p);
    assert_int_equal(util_rmtree(p), GW_OK);
    assert_int_equal(lstat(p, &st), -1);

    assert_int_equal(util_rmtree(base), GW_OK);
    assert_false(is_dir(base));
    assert_int_equal(util_rmtree(outside), GW_OK);
    free(base);
    free(outside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_init),
        cmocka_unit_test(test_buf_add),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_adds_addf),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_reset),
        cmocka_unit_test(test_buf_take),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_uuid_format),
        cmocka_unit_test(test_uuid_unique),
        cmocka_unit_test(test_rand_id),
        cmocka_unit_test(test_rand_id_unique),
        cmocka_unit_test(test_iso8601_and_clock),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_mkdirs_relative),
        cmocka_unit_test(test_rmtree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
