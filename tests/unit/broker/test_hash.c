/* Unit tests for broker/hash: the conversation hash chain and what is part of its identity. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/conv.h"
#include "broker/hash.h"

/* Knobs for build(): each changes one thing in an otherwise fixed conversation. */
struct variant {
    const char *model;
    const char *system;
    const char *schema; /* JSON text of the tool's parameters, NULL for none */
    const char *user_text;
    enum conv_role user_role;
    const char *image_b64;
    const char *args; /* the assistant's tool-call arguments */
    const char *reasoning;
    const char *tool_call_id; /* on the tool result */
    int is_error;
    const char *effort;
};

static const struct variant base = {
    .model = "gpt-4.1",
    .system = "be brief",
    .schema = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}",
    .user_text = "weather in Paris?",
    .user_role = CONV_USER,
    .image_b64 = "iVBORw0KGgo=",
    .args = "{\"a\":1,\"b\":[1,2]}",
    .reasoning = "the user wants weather",
    .tool_call_id = "call_1",
    .is_error = 0,
    .effort = NULL,
};

/* The fixed conversation shaped by v, cut after its first nmsgs messages. */
static struct conv *build_n(const struct variant *v, size_t nmsgs)
{
    struct conv *c = conv_new();
    struct conv_msg *m;
    json_t *schema = NULL;

    c->model = strdup(v->model);
    c->system = v->system ? strdup(v->system) : NULL;
    c->reasoning_effort = v->effort ? strdup(v->effort) : NULL;
    if (v->schema) {
        schema = json_loads(v->schema, 0, NULL);
        assert_non_null(schema);
    }
    conv_add_tool(c, "get_weather", "current weather", schema);

    if (c->nmsgs == nmsgs)
        return c;
    m = conv_add_msg(c, v->user_role);
    conv_msg_add_text(m, v->user_text, strlen(v->user_text));
    conv_msg_add_image(m, "image/png", v->image_b64, NULL);

    if (c->nmsgs == nmsgs)
        return c;
    m = conv_add_msg(c, CONV_ASSISTANT);
    m->reasoning = v->reasoning ? strdup(v->reasoning) : NULL;
    conv_msg_add_call(m, "call_1", "get_weather", v->args);

    if (c->nmsgs == nmsgs)
        return c;
    m = conv_add_msg(c, CONV_TOOL);
    m->tool_call_id = strdup(v->tool_call_id);
    m->is_error = v->is_error;
    conv_msg_add_text(m, "sunny", 5);

    if (c->nmsgs == nmsgs)
        return c;
    m = conv_add_msg(c, CONV_ASSISTANT);
    conv_msg_add_text(m, "It is sunny.", 12);
    return c;
}

static struct conv *build(const struct variant *v)
{
    return build_n(v, SIZE_MAX);
}

/* The last link of v's chain. */
static struct hash tip(const struct variant *v)
{
    struct conv *c = build(v);
    struct hash *chain = hash_chain(c, "anon", "model");
    struct hash h = chain[c->nmsgs];

    free(chain);
    conv_free(c);
    return h;
}

/* 1 if the conversations shaped by v and w end on the same hash. */
static int same(const struct variant *v, const struct variant *w)
{
    struct hash a = tip(v), b = tip(w);

    return hash_eq(&a, &b);
}

static int differs(const struct variant *v)
{
    return !same(v, &base);
}

static void test_chain_links(void **state)
{
    struct conv *c = build(&base);
    struct hash *chain = hash_chain(c, "anon", "model");
    struct hash h;

    assert_int_equal(c->nmsgs, 4);
    hash_root(c, "anon", "model", &h);
    assert_true(hash_eq(&chain[0], &h));
    for (size_t i = 0; i < c->nmsgs; i++) {
        hash_msg(&chain[i], &c->msgs[i], &h);
        assert_true(hash_eq(&chain[i + 1], &h));
        assert_false(hash_eq(&chain[i], &chain[i + 1]));
    }
    free(chain);
    conv_free(c);
}

static void test_empty_conversation(void **state)
{
    struct conv *c = conv_new();
    struct hash *chain = hash_chain(c, "anon", "model");
    struct hash h;

    hash_root(c, "anon", "model", &h); /* NULL model and system are "" */
    assert_true(hash_eq(&chain[0], &h));
    free(chain);
    conv_free(c);
}

static void test_deterministic(void **state)
{
    struct conv *a = build(&base), *b = build(&base);
    struct hash *ca = hash_chain(a, "anon", "model"), *cb = hash_chain(b, "anon", "model");

    for (size_t i = 0; i <= a->nmsgs; i++)
        assert_true(hash_eq(&ca[i], &cb[i]));
    free(ca);
    free(cb);
    conv_free(a);
    conv_free(b);
}

/* The property the broker relies on: a history that extends another has its chain as a prefix. */
static void test_prefix(void **state)
{
    struct conv *full = build(&base);
    struct hash *cf = hash_chain(full, "anon", "model");

    for (size_t n = 0; n < full->nmsgs; n++) {
        struct conv *part = build_n(&base, n);
        struct hash *cp = hash_chain(part, "anon", "model");

        assert_int_equal(part->nmsgs, n);
        for (size_t i = 0; i <= n; i++)
            assert_true(hash_eq(&cf[i], &cp[i]));
        assert_false(hash_eq(&cf[full->nmsgs], &cp[n]));
        free(cp);
        conv_free(part);
    }
    free(cf);
    conv_free(full);
}

static void test_arguments_canonical(void **state)
{
    struct variant v = base;

    v.args = "{ \"b\" : [1, 2], \"a\":1 }";
    assert_true(same(&v, &base));
    v.args = "{\"a\":1,\"b\":[1,3]}";
    assert_true(differs(&v));
    v.args = "{\"a\":1,\"b\":[2,1]}"; /* array order is significant */
    assert_true(differs(&v));
    v.args = "{\"b\":[1,2],\"a\":\"1\"}"; /* so is the type */
    assert_true(differs(&v));
}

/* Arguments that are not JSON hash as their raw text, byte for byte. */
static void test_arguments_not_json(void **state)
{
    struct variant v = base, w = base;

    v.args = "{\"a\":1,";
    w.args = "{\"a\":1, ";
    assert_false(same(&v, &w));
    w.args = "{\"a\":1,";
    assert_true(same(&v, &w));

    /* Duplicate keys are not collapsed: {"a":1,"a":2} is not {"a":2}. */
    v.args = "{\"a\":1,\"a\":2}";
    w.args = "{\"a\":2}";
    assert_false(same(&v, &w));
}

static void test_no_arguments_is_empty_object(void **state)
{
    struct variant v = base, w = base;

    v.args = NULL; /* conv stores "{}" */
    w.args = "{ }";
    assert_true(same(&v, &w));
}

/* A conversation of n empty messages of one role, all added before any pointer is taken. */
static struct conv *add_msgs(size_t n, enum conv_role role)
{
    struct conv *c = conv_new();

    for (size_t i = 0; i < n; i++)
        conv_add_msg(c, role);
    return c;
}

/* An assistant tool-call message whose content was null (no part), "" or a NULL text part. */
static void test_null_content(void **state)
{
    struct hash root = {{0}}, a, b, c;
    struct conv *cv = add_msgs(3, CONV_ASSISTANT);
    struct conv_msg *m1 = &cv->msgs[0], *m2 = &cv->msgs[1], *m3 = &cv->msgs[2];

    conv_msg_add_call(m1, "call_1", "f", "{}");
    conv_msg_add_text(m2, "", 0);
    conv_msg_add_call(m2, "call_1", "f", "{}");
    conv_msg_add_text(m3, NULL, 0);
    conv_msg_add_call(m3, "call_1", "f", "{}");
    hash_msg(&root, m1, &a);
    hash_msg(&root, m2, &b);
    hash_msg(&root, m3, &c);
    assert_true(hash_eq(&a, &b));
    assert_true(hash_eq(&a, &c));
    conv_free(cv);
}

/*
 * Text parts hash as conv_msg_text() joins them ("\n" between parts), which
 * is the text the runtime is seeded with: ["a\nb"] and ["a", "b"] are the
 * same message, ["ab", "c"] and ["a", "bc"] are not.
 */
static void test_text_parts(void **state)
{
    struct hash root = {{0}}, h[5];
    struct conv *cv = add_msgs(5, CONV_USER);
    struct conv_msg *m = cv->msgs;

    conv_msg_add_text(&m[0], "ab", 2);
    conv_msg_add_text(&m[0], "c", 1);
    conv_msg_add_text(&m[1], "a", 1);
    conv_msg_add_text(&m[1], "bc", 2);
    conv_msg_add_text(&m[2], "a\nb", 3);
    conv_msg_add_text(&m[3], "a", 1);
    conv_msg_add_text(&m[3], "b", 1);
    conv_msg_add_text(&m[4], "abc", 3);
    for (int i = 0; i < 5; i++)
        hash_msg(&root, &m[i], &h[i]);
    assert_false(hash_eq(&h[0], &h[1]));
    assert_true(hash_eq(&h[2], &h[3]));
    assert_false(hash_eq(&h[0], &h[4]));
    assert_false(hash_eq(&h[1], &h[4]));
    conv_free(cv);
}

/* A data image counts with its type and data, a URL image with its URL; an image is not nothing. */
static void test_images(void **state)
{
    struct hash root = {{0}}, h[6];
    struct conv *cv = add_msgs(6, CONV_USER);
    struct conv_msg *m = cv->msgs;

    for (int i = 0; i < 6; i++)
        conv_msg_add_text(&m[i], "look", 4);
    conv_msg_add_image(&m[0], "image/png", "AAAA", NULL);
    conv_msg_add_image(&m[1], "image/png", "AAAB", NULL);
    conv_msg_add_image(&m[2], "image/jpeg", "AAAA", NULL);
    conv_msg_add_image(&m[3], NULL, NULL, "https://x.test/a.png");
    conv_msg_add_image(&m[4], NULL, NULL, "https://x.test/b.png");
    /* m[5]: no image at all */
    for (int i = 0; i < 6; i++)
        hash_msg(&root, &m[i], &h[i]);
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            assert_false(hash_eq(&h[i], &h[j]));
    conv_free(cv);
}

static void test_changes_differ(void **state)
{
    struct variant v;

    v = base;
    v.user_text = "weather in Lyon?";
    assert_true(differs(&v));
    v = base;
    v.user_role = CONV_ASSISTANT;
    assert_true(differs(&v));
    v = base;
    v.tool_call_id = "call_2";
    assert_true(differs(&v));
    v = base;
    v.is_error = 1;
    assert_true(differs(&v));
    v = base;
    v.image_b64 = "iVBORw0KGgp=";
    assert_true(differs(&v));
    v = base;
    v.schema = "{\"type\":\"object\"}";
    assert_true(differs(&v));
    v = base;
    v.model = "gpt-4o";
    assert_true(differs(&v));
    v = base;
    v.system = "be verbose";
    assert_true(differs(&v));
}

static void test_root_fields(void **state)
{
    struct variant v = base, w = base;

    /* No system prompt is the empty one. */
    v.system = NULL;
    w.system = "";
    assert_true(same(&v, &w));

    /* No parameters is the empty schema; key order and spacing do not matter. */
    v = base;
    w = base;
    v.schema = NULL;
    w.schema = "{ }";
    assert_true(same(&v, &w));
    v.schema = "{\"properties\":{\"city\":{\"type\":\"string\"}}, \"type\":\"object\"}";
    assert_true(same(&v, &base));

    /* Model and system are separate fields: ("ab", "c") is not ("a", "bc"). */
    v = base;
    w = base;
    v.model = "ab";
    v.system = "c";
    w.model = "a";
    w.system = "bc";
    assert_false(same(&v, &w));

    /* reasoning_effort is a per-turn setting. */
    v = base;
    v.effort = "high";
    assert_true(same(&v, &base));
}

static void test_tools_order_and_presence(void **state)
{
    struct conv *a = conv_new(), *b = conv_new(), *c = conv_new();
    struct hash ha, hb, hc;

    conv_add_tool(a, "f", NULL, NULL);
    conv_add_tool(a, "g", NULL, NULL);
    conv_add_tool(b, "g", NULL, NULL);
    conv_add_tool(b, "f", NULL, NULL);
    conv_add_tool(c, "f", "", json_object());
    hash_root(a, "anon", "model", &ha);
    hash_root(b, "anon", "model", &hb);
    hash_root(c, "anon", "model", &hc);
    assert_false(hash_eq(&ha, &hb));
    assert_false(hash_eq(&ha, &hc));
    conv_add_tool(c, "g", NULL, NULL); /* NULL description is "" */
    hash_root(c, "anon", "model", &hc);
    assert_true(hash_eq(&ha, &hc));
    conv_free(a);
    conv_free(b);
    conv_free(c);
}

/* Who asks and under which profile are part of the root: no two principals (or profiles)
 * ever hold the same history hash, however the conversation is written. */
static void test_root_principal_profile(void **state)
{
    struct conv *c = build(&base);
    struct hash *a = hash_chain(c, "key:0123456789abcdef", "model");
    struct hash *b = hash_chain(c, "key:fedcba9876543210", "model");
    struct hash *p = hash_chain(c, "key:0123456789abcdef", "agent/logs");
    struct hash *again = hash_chain(c, "key:0123456789abcdef", "model");
    struct hash x, y;

    for (size_t i = 0; i <= c->nmsgs; i++) {
        assert_false(hash_eq(&a[i], &b[i]));
        assert_false(hash_eq(&a[i], &p[i]));
        assert_true(hash_eq(&a[i], &again[i]));
    }
    /* Principal and profile are separate fields: ("ab", "c") is not ("a", "bc"). */
    hash_root(c, "ab", "c", &x);
    hash_root(c, "a", "bc", &y);
    assert_false(hash_eq(&x, &y));
    /* No principal is the empty one. */
    hash_root(c, "", "model", &x);
    hash_root(c, NULL, "model", &y);
    assert_true(hash_eq(&x, &y));
    free(a);
    free(b);
    free(p);
    free(again);
    conv_free(c);
}

static void test_reasoning_ignored(void **state)
{
    struct variant v = base;
    struct hash a = tip(&base), b;

    v.reasoning = "something else entirely";
    b = tip(&v);
    assert_true(hash_eq(&a, &b));
    v.reasoning = NULL;
    b = tip(&v);
    assert_true(hash_eq(&a, &b));
}

static void test_prev_matters(void **state)
{
    struct hash p1 = {{0}}, p2 = {{0}}, a, b;
    struct conv *cv = conv_new();
    struct conv_msg *m = conv_add_msg(cv, CONV_USER);

    conv_msg_add_text(m, "hi", 2);
    p2.b[HASH_LEN - 1] = 1;
    hash_msg(&p1, m, &a);
    hash_msg(&p2, m, &b);
    assert_false(hash_eq(&a, &b));
    conv_free(cv);
}

static void test_hex(void **state)
{
    struct hash h;
    char hex[2 * HASH_LEN + 1];

    for (int i = 0; i < HASH_LEN; i++)
        h.b[i] = (unsigned char)(i * 9 + 0x0a);
    memset(hex, 'x', sizeof(hex));
    hash_hex(&h, hex);
    assert_string_equal(hex, "0a131c252e374049525b646d767f88919aa3acb5bec7d0d9e2ebf4fd060f1821");
}

/*
 * Pinned values, computed outside C from the encoding documented in hash.c:
 * a change to the encoding changes every session key, so it must be seen.
 */
static void test_pinned_encoding(void **state)
{
    struct conv *c = conv_new();
    struct conv_msg *m;
    struct hash h, zero = {{0}};
    char hex[2 * HASH_LEN + 1];

    c->model = strdup("m");
    hash_root(c, "anon", "model", &h);
    hash_hex(&h, hex);
    assert_string_equal(hex, "dd8ada515dcce74bbc9afc8fc7bc087696f66eb7a96115b9d00efb578644ae4d");

    m = conv_add_msg(c, CONV_USER);
    conv_msg_add_text(m, "hi", 2);
    hash_msg(&zero, m, &h);
    hash_hex(&h, hex);
    assert_string_equal(hex, "793cbd443cc61ddab4a776185a2d2e4963772b726705d7b1dc3407a2dd1c9727");
    conv_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_links),
        cmocka_unit_test(test_empty_conversation),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_arguments_canonical),
        cmocka_unit_test(test_arguments_not_json),
        cmocka_unit_test(test_no_arguments_is_empty_object),
        cmocka_unit_test(test_null_content),
        cmocka_unit_test(test_text_parts),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_changes_differ),
        cmocka_unit_test(test_root_fields),
        cmocka_unit_test(test_tools_order_and_presence),
        cmocka_unit_test(test_root_principal_profile),
        cmocka_unit_test(test_reasoning_ignored),
        cmocka_unit_test(test_prev_matters),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_pinned_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
