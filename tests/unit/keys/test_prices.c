/* Unit tests for keys/prices: --model-prices entries, the first match, and credits per entry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "keys/prices.h"

static void test_find_first_match(void **state)
{
    struct prices p;
    struct gw_err e;
    const struct model_price *mp;

    assert_int_equal(prices_parse("gpt-5-mini=1/2, gpt-5*=10/40/1,claude-*=3/15", &p, &e), GW_OK);
    assert_int_equal(p.n, 3);
    mp = prices_find(&p, "gpt-5-mini");
    assert_non_null(mp);
    assert_string_equal(mp->glob, "gpt-5-mini"); /* the first that matches, not the widest */
    mp = prices_find(&p, "gpt-5.1");
    assert_non_null(mp);
    assert_true(mp->input == 10 && mp->output == 40 && mp->cached == 1);
    assert_true(prices_find(&p, "claude-sonnet-4.5")->cached == 3); /* cached defaults to IN */
    /* No entry: the caller can tell it from a price of 0 and try the catalogue. */
    assert_null(prices_find(&p, "o3"));
    assert_null(prices_find(&p, NULL));
    assert_null(prices_find(NULL, "gpt-5"));
    prices_free(&p);

    assert_int_equal(prices_parse(NULL, &p, &e), GW_OK);
    assert_null(prices_find(&p, "gpt-5"));
    prices_free(&p);
}

static void test_credits(void **state)
{
    struct model_price mp = {.glob = NULL, .input = 2, .output = 8, .cached = 0.5};
    struct prices p;
    struct gw_err e;

    /* 1e6 input of which 4e5 cached, 1e5 output: 0.6 * 2 + 0.4 * 0.5 + 0.1 * 8 */
    assert_true(model_price_credits(&mp, 1000000, 100000, 400000) == 2.2);
    /* cached is clamped to 0..input */
    assert_true(model_price_credits(&mp, 1000000, 0, 2000000) == 0.5);
    assert_true(model_price_credits(&mp, 1000000, 0, -5) == 2);
    assert_true(model_price_credits(NULL, 1000000, 1000000, 0) == 0);

    assert_int_equal(prices_parse("m*=2/8/0.5", &p, &e), GW_OK);
    assert_true(prices_credits(&p, "model", 1000000, 100000, 400000) == 2.2);
    assert_true(prices_credits(&p, "other", 1000000, 100000, 400000) == 0);
    prices_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_first_match),
        cmocka_unit_test(test_credits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
