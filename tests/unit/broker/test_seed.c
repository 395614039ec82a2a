/* Unit tests for broker/seed: a canonical history written as a runtime session journal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/conv.h"
#include "broker/seed.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define SID "5b0f6c1e-2a4d-4c8e-9f00-1234567890ab"
#define CWD "/srv/work"

/* ---- helpers ------------------------------------------------------------------------------ */

static int is_uuid_v4(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[14] == '4';
}

/* YYYY-MM-DDTHH:MM:SS[.fff]Z */
static int is_iso8601_z(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    size_t n;

    if (!s)
        return 0;
    n = strlen(s);
    if (n < sizeof(pat) || s[n - 1] != 'Z')
        return 0;
    for (size_t i = 0; i < sizeof(pat) - 1; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return 0;
    }
    for (size_t i = sizeof(pat) - 1; i < n - 1; i++) {
        if (i == sizeof(pat) - 1 ? s[i] != '.' : !isdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* Parses a journal into an array of line objects; checks the per-line envelope. */
static json_t *parse_journal(const char *text)
{
    json_t *lines = json_array();
    const char *p = text;
    const char *prev_id = NULL;

    assert_true(*text != '\0');
    assert_int_equal(text[strlen(text) - 1], '\n'); /* every line ends with a newline */
    while (*p) {
        const char *nl = strchr(p, '\n');
        json_error_t je;
        json_t *line;

        assert_non_null(nl);
        line = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!line)
            fail_msg("line %zu is not JSON: %s", json_array_size(lines) + 1, je.text);
        assert_true(json_is_object(line));
        json_array_append_new(lines, line);
        p = nl + 1;
    }
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        const char *id = json_string_value(json_object_get(l, "id"));
        json_t *parent = json_object_get(l, "parentId");

        assert_non_null(json_string_value(json_object_get(l, "type")));
        assert_true(json_is_object(json_object_get(l, "data")));
        if (!is_uuid_v4(id))
            fail_msg("line %zu id is not a v4 UUID: %s", i + 1, id ? id : "(null)");
        if (!is_iso8601_z(json_string_value(json_object_get(l, "timestamp"))))
            fail_msg("line %zu timestamp is not ISO 8601 Z", i + 1);
        assert_non_null(parent);
        if (i == 0) {
            assert_true(json_is_null(parent));
        } else {
            assert_true(json_is_string(parent));
            assert_string_equal(json_string_value(parent), prev_id);
            assert_string_not_equal(id, prev_id);
        }
        prev_id = id;
    }
    return lines;
}

static json_t *journal_of(const struct conv *c, size_t nmsgs)
{
    struct buf b;
    json_t *lines;

    buf_init(&b, BUF_MAX_RPC_FRAME);
    assert_int_equal(seed_journal(&b, SID, c, nmsgs, CWD), GW_OK);
    lines = parse_journal(buf_str(&b));
    buf_release(&b);
    return lines;
}

static json_t *data_of(json_t *lines, size_t i, const char *type)
{
    json_t *l = json_array_get(lines, i);
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "type")), type);
    return json_object_get(l, "data");
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("'%s' is not a string", key);
    return json_string_value(v);
}

static struct conv *new_conv(void)
{
    struct conv *c = conv_new();
    c->model = strdup("gpt-4.1");
    return c;
}

static void add_text(struct conv_msg *m, const char *s)
{
    conv_msg_add_text(m, s, strlen(s));
}

static struct conv_msg *add_tool_result(struct conv *c, const char *call_id, const char *text,
                                        int is_error)
{
    struct conv_msg *m = conv_add_msg(c, CONV_TOOL);
    m->tool_call_id = strdup(call_id);
    m->is_error = is_error;
    add_text(m, text);
    return m;
}

static char *make_home(void)
{
    char *t = strdup("/tmp/test_seed.XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void drop_home(char *home)
{
    assert_int_equal(util_rmtree(home), GW_OK);
    free(home);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    buf_init(&b, BUF_MAX_RPC_FRAME);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_add(&b, chunk, n), GW_OK);
    fclose(f);
    return buf_take(&b, NULL);
}

static int setup(void **state)
{
    log_level_current = LOG_OFF; /* seed_write logs the path on failure; keep output clean */
    return 0;
}

/* ---- journal ------------------------------------------------------------------------------ */

static void test_session_start(void **state)
{
    struct conv *c = new_conv();
    json_t *lines = journal_of(c, 0);
    json_t *d;

    assert_int_equal(json_array_size(lines), 1);
    d = data_of(lines, 0, "session.start");
    assert_string_equal(str_at(d, "sessionId"), SID);
    assert_int_equal(json_integer_value(json_object_get(d, "version")), 1);
    assert_true(json_is_integer(json_object_get(d, "version")));
    assert_true(strlen(str_at(d, "producer")) > 0);
    assert_true(is_iso8601_z(str_at(d, "startTime")));
    assert_string_equal(str_at(d, "selectedModel"), "gpt-4.1");
    assert_string_equal(str_at(json_object_get(d, "context"), "cwd"), CWD);
    json_decref(lines);
    conv_free(c);
}

static void test_chain_of_ids(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m;
    json_t *lines;

    add_text(conv_add_msg(c, CONV_USER), "what is the weather?");
    m = conv_add_msg(c, CONV_ASSISTANT);
    conv_msg_add_call(m, "call_1", "weather", "{\"city\":\"Oslo\"}");
    add_tool_result(c, "call_1", "sunny", 0);
    add_text(conv_add_msg(c, CONV_ASSISTANT), "It is sunny.");
    add_text(conv_add_msg(c, CONV_USER), "thanks");

    lines = journal_of(c, c->nmsgs); /* parse_journal checks the id/parentId chain */
    assert_int_equal(json_array_size(lines), 6);
    data_of(lines, 0, "session.start");
    data_of(lines, 1, "user.message");
    data_of(lines, 2, "assistant.message");
    data_of(lines, 3, "tool.execution_complete");
    data_of(lines, 4, "assistant.message");
    data_of(lines, 5, "user.message");
    /* all ids distinct */
    for (size_t i = 0; i < json_array_size(lines); i++)
        for (size_t j = i + 1; j < json_array_size(lines); j++)
            assert_string_not_equal(str_at(json_array_get(lines, i), "id"),
                                    str_at(json_array_get(lines, j), "id"));
    json_decref(lines);
    conv_free(c);
}

static void test_user_text_joined(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m = conv_add_msg(c, CONV_USER);
    json_t *lines, *d;

    add_text(m, "first");
    add_text(m, "second");
    add_text(m, "third");
    lines = journal_of(c, 1);
    d = data_of(lines, 1, "user.message");
    assert_string_equal(str_at(d, "content"), "first\nsecond\nthird");
    assert_null(json_object_get(d, "attachments"));
    json_decref(lines);
    conv_free(c);
}

static void test_user_special_characters(void **state)
{
    static const char text[] = "line1\nline2 \"quoted\" \\ tab\t \xc3\xa9\xe2\x82\xac {\"x\":1}";
    struct conv *c = new_conv();
    json_t *lines;

    add_text(conv_add_msg(c, CONV_USER), text);
    lines = journal_of(c, 1); /* an embedded newline must not split the line */
    assert_int_equal(json_array_size(lines), 2);
    assert_string_equal(str_at(data_of(lines, 1, "user.message"), "content"), text);
    json_decref(lines);
    conv_free(c);
}

static void test_user_attachments(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m = conv_add_msg(c, CONV_USER);
    json_t *lines, *d, *att, *a0, *a1;

    add_text(m, "look at these");
    conv_msg_add_image(m, "image/png", "iVBORw0KGgo=", NULL);
    conv_msg_add_image(m, NULL, NULL, "https://example.com/only-by-url.png");
    conv_msg_add_image(m, "image/jpeg", "/9j/4AAQ", NULL);
    add_text(m, "please");

    lines = journal_of(c, 1);
    d = data_of(lines, 1, "user.message");
    assert_string_equal(str_at(d, "content"), "look at these\nplease");
    att = json_object_get(d, "attachments");
    assert_true(json_is_array(att));
    assert_int_equal(json_array_size(att), 2); /* the URL-only image is not an attachment */
    a0 = json_array_get(att, 0);
    a1 = json_array_get(att, 1);
    assert_string_equal(str_at(a0, "type"), "blob");
    assert_string_equal(str_at(a0, "data"), "iVBORw0KGgo=");
    assert_string_equal(str_at(a0, "mimeType"), "image/png");
    assert_true(strlen(str_at(a0, "displayName")) > 0);
    assert_string_equal(str_at(a1, "type"), "blob");
    assert_string_equal(str_at(a1, "data"), "/9j/4AAQ");
    assert_string_equal(str_at(a1, "mimeType"), "image/jpeg");
    assert_string_not_equal(str_at(a0, "displayName"), str_at(a1, "displayName"));
    json_decref(lines);
    conv_free(c);
}

static void test_user_url_only_image_has_no_attachments(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m = conv_add_msg(c, CONV_USER);
    json_t *lines, *d;

    add_text(m, "hi");
    conv_msg_add_image(m, "image/png", NULL, "https://example.com/a.png");
    lines = journal_of(c, 1);
    d = data_of(lines, 1, "user.message");
    assert_null(json_object_get(d, "attachments"));
    assert_string_equal(str_at(d, "content"), "hi");
    json_decref(lines);
    conv_free(c);
}

static void test_seed_attachments_direct(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m = conv_add_msg(c, CONV_USER);
    json_t *att;

    assert_null(seed_attachments(m)); /* no parts */
    add_text(m, "text only");
    assert_null(seed_attachments(m));
    conv_msg_add_image(m, "image/gif", NULL, "http://example.com/x.gif");
    assert_null(seed_attachments(m));
    conv_msg_add_image(m, "image/gif", "R0lGOD", NULL);
    att = seed_attachments(m);
    assert_non_null(att);
    assert_true(json_is_array(att));
    assert_int_equal(json_array_size(att), 1);
    assert_string_equal(str_at(json_array_get(att, 0), "type"), "blob");
    assert_string_equal(str_at(json_array_get(att, 0), "data"), "R0lGOD");
    assert_string_equal(str_at(json_array_get(att, 0), "mimeType"), "image/gif");
    assert_non_null(json_object_get(json_array_get(att, 0), "displayName"));
    json_decref(att);
    conv_free(c);
}

static void test_assistant_message(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m;
    json_t *lines, *d, *reqs, *r, *expect;

    add_text(conv_add_msg(c, CONV_USER), "go");
    m = conv_add_msg(c, CONV_ASSISTANT);
    add_text(m, "calling tools");
    add_text(m, "now");
    conv_msg_add_call(m, "call_a", "search", "{\"q\":\"cats\",\"n\":3,\"opts\":{\"safe\":true}}");
    conv_msg_add_call(m, "call_b", "broken", "{not json");
    conv_msg_add_call(m, "call_c", "array", "[1,2]");
    conv_msg_add_call(m, "call_d", "none", NULL);

    lines = journal_of(c, 2);
    d = data_of(lines, 2, "assistant.message");
    assert_true(is_uuid_v4(str_at(d, "messageId")));
    assert_string_not_equal(str_at(d, "messageId"), str_at(json_array_get(lines, 2), "id"));
    assert_string_equal(str_at(d, "content"), "calling tools\nnow");
    assert_null(json_object_get(d, "reasoningText"));
    reqs = json_object_get(d, "toolRequests");
    assert_true(json_is_array(reqs));
    assert_int_equal(json_array_size(reqs), 4);

    r = json_array_get(reqs, 0);
    assert_string_equal(str_at(r, "toolCallId"), "call_a");
    assert_string_equal(str_at(r, "name"), "search");
    assert_string_equal(str_at(r, "type"), "function");
    expect = json_loads("{\"q\":\"cats\",\"n\":3,\"opts\":{\"safe\":true}}", 0, NULL);
    assert_true(json_is_object(json_object_get(r, "arguments"))); /* an object, not text */
    assert_true(json_equal(json_object_get(r, "arguments"), expect));
    json_decref(expect);

    for (size_t i = 1; i < 4; i++) {
        json_t *args;
        r = json_array_get(reqs, i);
        args = json_object_get(r, "arguments");
        assert_true(json_is_object(args));
        assert_int_equal(json_object_size(args), 0); /* invalid / non-object / absent -> {} */
        assert_string_equal(str_at(r, "type"), "function");
    }
    assert_string_equal(str_at(json_array_get(reqs, 1), "toolCallId"), "call_b");
    assert_string_equal(str_at(json_array_get(reqs, 1), "name"), "broken");
    json_decref(lines);
    conv_free(c);
}

static void test_assistant_reasoning_and_no_calls(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m;
    json_t *lines, *d;

    m = conv_add_msg(c, CONV_ASSISTANT);
    add_text(m, "answer");
    m->reasoning = strdup("thought about it");
    m = conv_add_msg(c, CONV_ASSISTANT); /* no content at all */

    lines = journal_of(c, 2);
    d = data_of(lines, 1, "assistant.message");
    assert_string_equal(str_at(d, "content"), "answer");
    assert_string_equal(str_at(d, "reasoningText"), "thought about it");
    assert_true(json_is_array(json_object_get(d, "toolRequests")));
    assert_int_equal(json_array_size(json_object_get(d, "toolRequests")), 0);

    d = data_of(lines, 2, "assistant.message");
    assert_string_equal(str_at(d, "content"), "");
    assert_null(json_object_get(d, "reasoningText"));
    assert_string_not_equal(str_at(d, "messageId"),
                            str_at(data_of(lines, 1, "assistant.message"), "messageId"));
    json_decref(lines);
    conv_free(c);
}

static void test_tool_results(void **state)
{
    struct conv *c = new_conv();
    struct conv_msg *m;
    json_t *lines, *d, *res, *e;

    m = conv_add_msg(c, CONV_ASSISTANT);
    conv_msg_add_call(m, "call_ok", "f", "{}");
    conv_msg_add_call(m, "call_bad", "g", "{}");
    m = add_tool_result(c, "call_ok", "part one", 0);
    add_text(m, "part two");
    add_tool_result(c, "call_bad", "file not found", 1);

    lines = journal_of(c, 3);
    assert_int_equal(json_array_size(lines), 4);

    d = data_of(lines, 2, "tool.execution_complete");
    assert_string_equal(str_at(d, "toolCallId"), "call_ok");
    assert_true(json_is_true(json_object_get(d, "success")));
    res = json_object_get(d, "result");
    assert_true(json_is_object(res));
    assert_string_equal(str_at(res, "content"), "part one\npart two");
    assert_null(json_object_get(d, "error"));

    d = data_of(lines, 3, "tool.execution_complete");
    assert_string_equal(str_at(d, "toolCallId"), "call_bad");
    assert_true(json_is_false(json_object_get(d, "success")));
    e = json_object_get(d, "error");
    assert_true(json_is_object(e));
    assert_string_equal(str_at(e, "message"), "file not found");
    assert_string_equal(str_at(e, "code"), "failure");
    assert_null(json_object_get(d, "result"));
    json_decref(lines);
    conv_free(c);
}

static void test_nmsgs_limits(void **state)
{
    struct conv *c = new_conv();
    json_t *lines;

    add_text(conv_add_msg(c, CONV_USER), "one");
    add_text(conv_add_msg(c, CONV_ASSISTANT), "two");
    add_text(conv_add_msg(c, CONV_USER), "three");
    add_text(conv_add_msg(c, CONV_ASSISTANT), "four");

    for (size_t n = 0; n <= c->nmsgs; n++) {
        lines = journal_of(c, n);
        assert_int_equal(json_array_size(lines), n + 1);
        json_decref(lines);
    }
    lines = journal_of(c, 2);
    assert_string_equal(str_at(data_of(lines, 2, "assistant.message"), "content"), "two");
    json_decref(lines);
    conv_free(c);
}

static void test_system_prompt_not_written(void **state)
{
    struct conv *c = new_conv();
    struct buf b;

    c->system = strdup("SECRET-SYSTEM-PROMPT");
    add_text(conv_add_msg(c, CONV_USER), "hello");
    buf_init(&b, BUF_MAX_RPC_FRAME);
    assert_int_equal(seed_journal(&b, SID, c, c->nmsgs, CWD), GW_OK);
    assert_null(strstr(buf_str(&b), "SECRET-SYSTEM-PROMPT"));
    assert_null(strstr(buf_str(&b), "system"));
    buf_release(&b);
    conv_free(c);
}

static void test_journal_appends(void **state)
{
    struct conv *c = new_conv();
    struct buf b;
    json_t *lines;

    buf_init(&b, BUF_MAX_RPC_FRAME);
    assert_int_equal(buf_adds(&b, "PREFIX"), GW_OK);
    assert_int_equal(seed_journal(&b, SID, c, 0, CWD), GW_OK);
    assert_memory_equal(buf_str(&b), "PREFIX", 6);
    lines = parse_journal(buf_str(&b) + 6);
    assert_int_equal(json_array_size(lines), 1);
    json_decref(lines);
    buf_release(&b);
    conv_free(c);
}

static void test_journal_cap(void **state)
{
    struct conv *c = new_conv();
    struct buf b;

    add_text(conv_add_msg(c, CONV_USER), "a fairly long message that will not fit in 64 bytes");
    buf_init(&b, 64);
    assert_int_not_equal(seed_journal(&b, SID, c, 1, CWD), GW_OK);
    assert_null(b.ptr); /* the cap released the half-built journal */
    buf_release(&b);
    conv_free(c);
}

/* ---- files -------------------------------------------------------------------------------- */

static void test_write_creates_journal(void **state)
{
    char *home = make_home();
    struct conv *c = new_conv();
    struct gw_err err = {0};
    char path[512], dir[512];
    struct stat st;
    DIR *d;
    struct dirent *de;
    int nfiles = 0;
    char *text;
    json_t *lines;

    add_text(conv_add_msg(c, CONV_USER), "hello");
    add_text(conv_add_msg(c, CONV_ASSISTANT), "hi there");
    add_text(conv_add_msg(c, CONV_USER), "not written");
    assert_int_equal(seed_write(home, SID, c, 2, CWD, &err), GW_OK);

    snprintf(dir, sizeof(dir), "%s/session-state/%s", home, SID);
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        assert_string_equal(de->d_name, "events.jsonl"); /* no .tmp left behind */
        nfiles++;
    }
    closedir(d);
    assert_int_equal(nfiles, 1);

    text = read_file(path);
    lines = parse_journal(text);
    assert_int_equal(json_array_size(lines), 3);
    assert_string_equal(str_at(data_of(lines, 0, "session.start"), "sessionId"), SID);
    assert_string_equal(str_at(data_of(lines, 1, "user.message"), "content"), "hello");
    assert_string_equal(str_at(data_of(lines, 2, "assistant.message"), "content"), "hi there");
    assert_null(strstr(text, "not written"));
    json_decref(lines);
    free(text);

    /* Writing again replaces the journal. */
    assert_int_equal(seed_write(home, SID, c, 3, CWD, &err), GW_OK);
    text = read_file(path);
    lines = parse_journal(text);
    assert_int_equal(json_array_size(lines), 4);
    json_decref(lines);
    free(text);

    conv_free(c);
    drop_home(home);
}

static void test_remove(void **state)
{
    char *home = make_home();
    struct conv *c = new_conv();
    struct gw_err err = {0};
    char dir[512], other[512], base[512];
    struct stat st;

    add_text(conv_add_msg(c, CONV_USER), "hello");
    assert_int_equal(seed_write(home, SID, c, 1, CWD, &err), GW_OK);
    assert_int_equal(seed_write(home, "other-session", c, 1, CWD, &err), GW_OK);
    snprintf(dir, sizeof(dir), "%s/session-state/%s", home, SID);
    snprintf(other, sizeof(other), "%s/session-state/other-session/events.jsonl", home);
    snprintf(base, sizeof(base), "%s/session-state", home);
    assert_int_equal(stat(dir, &st), 0);

    seed_remove(home, SID);
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(other, &st), 0); /* other sessions untouched */
    assert_int_equal(stat(base, &st), 0);

    seed_remove(home, SID);           /* already gone: harmless */
    seed_remove(home, "never-there"); /* never existed: harmless */

    conv_free(c);
    drop_home(home);
}

static void check_write_fails(const char *home)
{
    struct conv *c = new_conv();
    struct gw_err err;

    memset(&err, 0, sizeof(err));
    add_text(conv_add_msg(c, CONV_USER), "hello");
    assert_int_not_equal(seed_write(home, SID, c, 1, CWD, &err), GW_OK);
    assert_int_equal(err.code, GW_EIO);
    assert_true(err.msg[0] != '\0');
    assert_null(strstr(err.msg, home));
    assert_null(strstr(err.msg, "/tmp"));
    assert_null(strstr(err.msg, SID));
    assert_null(strstr(err.msg, "session-state"));
    assert_null(strstr(err.msg, "events.jsonl"));
    conv_free(c);
}

static void test_write_unwritable_home(void **state)
{
    char *home = make_home();
    char file[512], ro[512];

    /* A home that is a regular file fails even for root. */
    snprintf(file, sizeof(file), "%s/not-a-dir", home);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    check_write_fails(file);

    /* A read-only directory fails for anyone but root. */
    if (geteuid() != 0) {
        snprintf(ro, sizeof(ro), "%s/readonly", home);
        assert_int_equal(mkdir(ro, 0500), 0);
        check_write_fails(ro);
        assert_int_equal(chmod(ro, 0700), 0);
    }
    drop_home(home);
}

static void test_write_session_dir_is_file(void **state)
{
    char *home = make_home();
    char dir[512];
    struct conv *c = new_conv();
    struct gw_err err;
    FILE *f;

    /* session-state/<id> exists as a file: mkdirs "succeeds" (EEXIST), open must fail. */
    snprintf(dir, sizeof(dir), "%s/session-state", home);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/session-state/%s", home, SID);
    f = fopen(dir, "w");
    assert_non_null(f);
    fclose(f);
    add_text(conv_add_msg(c, CONV_USER), "hello");
    memset(&err, 0, sizeof(err));
    assert_int_not_equal(seed_write(home, SID, c, 1, CWD, &err), GW_OK);
    assert_int_equal(err.code, GW_EIO);
    assert_null(strstr(err.msg, home));
    conv_free(c);
    drop_home(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_start),
        cmocka_unit_test(test_chain_of_ids),
        cmocka_unit_test(test_user_text_joined),
        cmocka_unit_test(test_user_special_characters),
        cmocka_unit_test(test_user_attachments),
        cmocka_unit_test(test_user_url_only_image_has_no_attachments),
        cmocka_unit_test(test_seed_attachments_direct),
        cmocka_unit_test(test_assistant_message),
        cmocka_unit_test(test_assistant_reasoning_and_no_calls),
        cmocka_unit_test(test_tool_results),
        cmocka_unit_test(test_nmsgs_limits),
        cmocka_unit_test(test_system_prompt_not_written),
        cmocka_unit_test(test_journal_appends),
        cmocka_unit_test(test_journal_cap),
        cmocka_unit_test(test_write_creates_journal),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_write_unwritable_home),
        cmocka_unit_test(test_write_session_dir_is_file),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
