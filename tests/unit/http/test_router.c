/* Unit tests for the route matcher (http/router.c) and the gateway's route table (http/routes.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "http/handlers.h"
#include "http/router.h"

static void h_a(struct http_req *r) {}
static void h_b(struct http_req *r) {}

static const struct http_route table[] = {
    {EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/", HTTP_API_OPENAI, ROUTE_NO_AUTH, "root", h_a, NULL},
    {EVHTTP_REQ_POST, "/things", HTTP_API_ANTHROPIC, 0, "things", h_a, NULL},
    {EVHTTP_REQ_GET, "/things/{id}", HTTP_API_OPENAI, 0, "thing", h_a, NULL},
    {EVHTTP_REQ_DELETE, "/things/{id}", HTTP_API_OPENAI, 0, "thing", h_b, NULL},
    {EVHTTP_REQ_POST, "/things/{id}/cancel", HTTP_API_OPENAI, 0, "thing", h_b, NULL},
    {EVHTTP_REQ_GET, "/files/{*}", HTTP_API_OPENAI, 0, "files", h_a, NULL},
};
#define N (sizeof(table) / sizeof(table[0]))

static void test_literal_and_captures(void **state)
{
    char p[16];

    assert_true(route_path_match("/", "/", p, sizeof(p)));
    assert_string_equal(p, "");
    assert_false(route_path_match("/", "/x", p, sizeof(p)));
    assert_true(route_path_match("/things", "/things", p, sizeof(p)));
    assert_false(route_path_match("/things", "/thing", p, sizeof(p)));
    assert_false(route_path_match("/things", "/things/", p, sizeof(p)));
    assert_true(route_path_match("/things/{id}", "/things/abc", p, sizeof(p)));
    assert_string_equal(p, "abc");
    assert_false(route_path_match("/things/{id}", "/things/", p, sizeof(p))); /* empty */
    assert_false(route_path_match("/things/{id}", "/things/a/b", p, sizeof(p)));
    assert_true(route_path_match("/things/{id}/cancel", "/things/x1/cancel", p, sizeof(p)));
    assert_string_equal(p, "x1");
    assert_false(route_path_match("/things/{id}/cancel", "/things/x1/cancelx", p, sizeof(p)));
    assert_true(route_path_match("/files/{*}", "/files/a/b/c", p, sizeof(p)));
    assert_string_equal(p, "a/b/c");
    assert_false(route_path_match("/files/{*}", "/files/", p, sizeof(p)));
    /* A capture longer than the buffer does not match. */
    assert_false(route_path_match("/things/{id}", "/things/0123456789abcdef", p, sizeof(p)));
    assert_true(route_path_match("/things/{id}", "/things/0123456789abcde", p, sizeof(p)));
}

static void test_find_by_method(void **state)
{
    char p[32];
    const struct http_route *r;

    r = route_find(table, N, "/things/7", EVHTTP_REQ_DELETE, p, sizeof(p));
    assert_non_null(r);
    assert_ptr_equal(r->handle, h_b);
    assert_string_equal(p, "7");
    r = route_find(table, N, "/things/7", EVHTTP_REQ_GET, p, sizeof(p));
    assert_ptr_equal(r->handle, h_a);
    assert_null(route_find(table, N, "/things/7", EVHTTP_REQ_POST, p, sizeof(p)));
    assert_null(route_find(table, N, "/nope", 0, p, sizeof(p)));
    r = route_find(table, N, "/things", 0, p, sizeof(p)); /* any method: the path's row */
    assert_int_equal(r->api, HTTP_API_ANTHROPIC);
}

static void test_allow(void **state)
{
    char a[96];

    route_allow(route_methods(table, N, "/things/7"), a, sizeof(a));
    assert_string_equal(a, "GET, DELETE, OPTIONS");
    route_allow(route_methods(table, N, "/"), a, sizeof(a));
    assert_string_equal(a, "GET, HEAD, OPTIONS");
    route_allow(route_methods(table, N, "/things"), a, sizeof(a));
    assert_string_equal(a, "POST, OPTIONS");
    assert_int_equal(route_methods(table, N, "/nope"), 0);
    route_allow(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE, a, 12); /* cut short */
    assert_true(strlen(a) < 12);
}

/* The gateway's table: rows of one path agree on dialect, flags and label, and each row
 * either runs a dialect (the flow) or has no ops. */
static void test_gateway_table(void **state)
{
    size_t n;
    const struct http_route *t = http_routes(&n);
    char a[96];

    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].handle);
        assert_non_null(t[i].name);
        assert_true(t[i].methods != 0);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t[i].pattern, t[j].pattern))
                continue;
            assert_int_equal(t[i].api, t[j].api);
            assert_int_equal(t[i].flags, t[j].flags);
            assert_string_equal(t[i].name, t[j].name);
            assert_int_equal(t[i].methods & t[j].methods, 0); /* one row per method */
        }
    }
    route_allow(route_methods(t, n, "/messages"), a, sizeof(a));
    assert_string_equal(a, "POST, OPTIONS");
    assert_int_equal(route_find(t, n, "/messages/count_tokens", 0, a, sizeof(a))->api,
                     HTTP_API_ANTHROPIC);
    route_allow(route_methods(t, n, "/responses/resp_1"), a, sizeof(a));
    assert_string_equal(a, "GET, HEAD, DELETE, OPTIONS");
    assert_non_null(route_find(t, n, "/models/org/model", EVHTTP_REQ_GET, a, sizeof(a)));
    assert_string_equal(a, "org/model");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_captures),
        cmocka_unit_test(test_find_by_method),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_gateway_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
