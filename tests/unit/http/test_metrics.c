/* Unit tests for http/metrics: the usage series per virtual key stay bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_keys_bounded(void **state)
{
    struct http_metrics *m = calloc(1, sizeof(*m));
    struct buf out;
    char name[32];

    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "key-%03d", i);
        http_metrics_usage(m, name, i % 10 ? 200 : 429, 10, 5, 2, 0.25);
    }
    http_metrics_usage(m, "key-000", 200, 1, 1, 0, 0);
    http_metrics_usage(m, NULL, 200, 1, 1, 0, 0); /* not a virtual key: not counted */
    buf_init(&out, 1 << 20);
    assert_int_equal(http_metrics_render(m, &out), 0);
    assert_int_equal(buf_add(&out, "", 1), 0); /* a C string from here */
    /* 100 named series and one "other" per counter */
    assert_int_equal(count(out.ptr, "copilot_gateway_key_requests_total{"), 101);
    assert_non_null(strstr(out.ptr, "copilot_gateway_key_requests_total{key=\"key-000\"} 2\n"));
    assert_non_null(strstr(out.ptr, "copilot_gateway_key_requests_total{key=\"other\"} 50\n"));
    assert_non_null(strstr(out.ptr, "copilot_gateway_key_errors_total{key=\"other\"} 5\n"));
    assert_non_null(strstr(out.ptr, "copilot_gateway_key_input_tokens_total{key=\"key-099\"} 10\n"));
    assert_non_null(strstr(out.ptr, "copilot_gateway_key_credits_total{key=\"other\"} 12.500000\n"));
    assert_null(strstr(out.ptr, "key-100\""));
    buf_release(&out);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
