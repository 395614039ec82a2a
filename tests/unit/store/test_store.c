/* Unit tests for store/store: the SQLite session map, its schema, and its failure modes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "util/util.h"

#define HEAD_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEAD_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fx {
    char dir[64];
    char db[128];
    struct store *s;
};

/* ---- fixtures and helpers ------------------------------------------------- */

static int setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/gateway.db", f->dir);
    *state = f;
    return 0;
}

static int setup_open(void **state)
{
    struct gw_err e;
    struct fx *f;

    setup_dir(state);
    f = *state;
    assert_int_equal(store_open(f->dir, &f->s, &e), GW_OK);
    assert_non_null(f->s);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    assert_int_equal(util_rmtree(f->dir), GW_OK);
    free(f);
    return 0;
}

static struct store_session row(const char *sid, const char *head, const char *pin,
                                const char *model, int64_t last_used)
{
    struct store_session ss;

    memset(&ss, 0, sizeof(ss));
    snprintf(ss.sid, sizeof(ss.sid), "%s", sid);
    snprintf(ss.head, sizeof(ss.head), "%s", head);
    ss.pin = (char *)pin;
    ss.model = (char *)model;
    ss.last_used = last_used;
    return ss;
}

static void put(struct store *s, const char *sid, const char *head, const char *pin,
                int64_t last_used)
{
    struct store_session ss = row(sid, head, pin, "gpt-4o", last_used);
    struct gw_err e;
    int rc = store_put(s, &ss, &e);

    if (rc)
        print_error("store_put: %s\n", e.msg);
    assert_int_equal(rc, GW_OK);
}

/* The sid found for (head, pin), or "" when none; asserts no error. */
static const char *find_sid(struct store *s, const char *head, const char *pin)
{
    static char sid[37];
    struct store_session out;
    struct gw_err e;
    int rc = store_find(s, head, pin, &out, &e);

    if (rc < 0)
        print_error("store_find: %s\n", e.msg);
    assert_true(rc == 0 || rc == 1);
    snprintf(sid, sizeof(sid), "%s", rc == 1 ? out.sid : "");
    store_session_release(&out);
    return sid;
}

static int count_cb(void *ud, const struct store_session *ss)
{
    (*(int *)ud)++;
    return 0;
}

static int count_rows(struct store *s)
{
    int n = 0;
    struct gw_err e;

    assert_int_equal(store_each(s, count_cb, &n, &e), 0);
    return n;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 1000);
    return db;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static void write_file(const char *path, const void *p, size_t n, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, at), (ssize_t)n);
    close(fd);
}

static void assert_clean_msg(const struct fx *f, const struct gw_err *e, const char *want)
{
    print_message("error: %s\n", e->msg);
    assert_int_equal(e->code, GW_EIO);
    assert_non_null(strstr(e->msg, "'gateway.db'"));
    assert_non_null(strstr(e->msg, want));
    assert_null(strstr(e->msg, f->dir));
    assert_null(strstr(e->msg, "SELECT"));
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- open ------------------------------------------------------------------- */

static void test_open_creates_wal_0600(void **state)
{
    struct fx *f = *state;
    char wal[160], text[32];
    struct stat st;
    struct store *s2 = NULL;
    struct gw_err e;
    mode_t old;
    sqlite3 *db;

    /* The umask store_open() narrows while SQLite creates the file is put back. */
    old = umask(022);
    assert_int_equal(store_open(f->dir, &s2, &e), GW_OK);
    assert_int_equal(umask(old), 022);
    store_close(s2);
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    put(f->s, "s1", HEAD_A, NULL, 1);
    snprintf(wal, sizeof(wal), "%s-wal", f->db);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    db = raw_open(f->db);
    raw_text(db, "PRAGMA journal_mode", text, sizeof(text));
    assert_string_equal(text, "wal");
    raw_text(db, "PRAGMA user_version", text, sizeof(text));
    assert_int_equal(strtol(text, NULL, 10), STORE_SCHEMA_VERSION);
    sqlite3_close(db);
}

static void test_open_missing_dir(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char dir[128];
    struct gw_err e;

    snprintf(dir, sizeof(dir), "%s/nope", f->dir);
    assert_int_equal(store_open(dir, &s, &e), GW_EIO);
    assert_null(s);
    print_message("error: %s\n", e.msg);
    assert_null(strstr(e.msg, f->dir));

    /* Something that is not a file where the db belongs. */
    assert_int_equal(mkdir(f->db, 0700), 0);
    assert_int_equal(store_open(f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");
    assert_int_equal(rmdir(f->db), 0);
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct store_session out;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, "pin", 42);
    put(f->s, "s2", HEAD_B, NULL, 43);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(f->dir, &f->s, &e), GW_OK);
    assert_int_equal(count_rows(f->s), 2);
    assert_int_equal(store_find(f->s, HEAD_A, "pin", &out, &e), 1);
    assert_string_equal(out.sid, "s1");
    assert_string_equal(out.model, "gpt-4o");
    assert_int_equal(out.last_used, 42);
    store_session_release(&out);
    assert_string_equal(find_sid(f->s, HEAD_B, NULL), "s2");
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char text[32];
    struct gw_err e;
    sqlite3 *db;

    put(f->s, "s1", HEAD_A, NULL, 1);
    store_close(f->s);
    f->s = NULL;
    db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_open(f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "database was created by a newer copilot-gateway");

    /* The file is left as it was. */
    db = raw_open(f->db);
    raw_text(db, "PRAGMA user_version", text, sizeof(text));
    assert_string_equal(text, "99");
    raw_text(db, "SELECT count(*) FROM sessions", text, sizeof(text));
    assert_string_equal(text, "1");
    sqlite3_close(db);
}

static void test_garbage_file(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char junk[4096], back[4096];
    struct gw_err e;
    int fd;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)("not a database\n"[i % 15]);
    write_file(f->db, junk, sizeof(junk), 0);
    assert_int_equal(store_open(f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "not a database");

    fd = open(f->db, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
    close(fd);
    assert_memory_equal(junk, back, sizeof(junk));
}

static void test_corrupt_file(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char junk[4096];
    struct gw_err e;

    for (int i = 0; i < 200; i++) {
        char sid[37];
        snprintf(sid, sizeof(sid), "sid-%d", i);
        put(f->s, sid, HEAD_A, NULL, i);
    }
    /* The last connection to close checkpoints the WAL into the file. */
    store_close(f->s);
    f->s = NULL;
    memset(junk, 0x5a, sizeof(junk));
    write_file(f->db, junk, sizeof(junk), 4096); /* page 2: the root of the sessions table */

    assert_true(store_open(f->dir, &s, &e) < 0);
    assert_null(s);
    assert_clean_msg(f, &e, "malformed");
}

static void test_unwritable(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    struct gw_err e;

    store_close(f->s);
    f->s = NULL;
    if (geteuid() == 0) {
        /* root writes through any mode bits. */
        skip();
    }
    assert_int_equal(chmod(f->db, 0400), 0);
    assert_int_equal(store_open(f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");

    /* A writable file in a directory where the -wal and -shm files cannot be created. */
    assert_int_equal(chmod(f->db, 0600), 0);
    assert_int_equal(chmod(f->dir, 0500), 0);
    assert_int_equal(store_open(f->dir, &s, &e), GW_EIO);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");
}

/* A row no version of this code writes (too long a sid) is reported, not truncated. */
static void test_malformed_row(void **state)
{
    struct fx *f = *state;
    struct store_session out;
    struct gw_err e;
    sqlite3 *db = raw_open(f->db);
    int n = 0;

    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO sessions VALUES ('" HEAD_A "', '" HEAD_A "', NULL, 'm', 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_find(f->s, HEAD_A, NULL, &out, &e), GW_EIO);
    assert_null(out.model);
    assert_clean_msg(f, &e, "malformed session row");
    assert_int_equal(store_each(f->s, count_cb, &n, &e), GW_EIO);
    assert_int_equal(n, 0); /* a failed walk never calls back */
    assert_int_equal(store_delete(f->s, HEAD_A, &e), GW_OK);
    assert_int_equal(count_rows(f->s), 0);
}

/* ---- put / find / delete ------------------------------------------------------ */

static void test_put_find_roundtrip(void **state)
{
    struct fx *f = *state;
    struct store_session in = row("4b825dc6-42cb-4c2a-8d1e-1f6d8a5c9e01", HEAD_A, "client-7",
                                  "claude-sonnet-4", 1767225600123LL);
    struct store_session out;
    struct gw_err e;

    e.code = 12345;
    assert_int_equal(store_put(f->s, &in, &e), GW_OK);
    assert_int_equal(store_find(f->s, HEAD_A, "client-7", &out, &e), 1);
    assert_int_equal(e.code, 12345); /* untouched on success */
    assert_string_equal(out.sid, in.sid);
    assert_string_equal(out.head, HEAD_A);
    assert_string_equal(out.pin, "client-7");
    assert_string_equal(out.model, "claude-sonnet-4");
    assert_true(out.last_used == 1767225600123LL);
    store_session_release(&out);
    assert_null(out.pin);
    assert_null(out.model);

    assert_int_equal(store_find(f->s, HEAD_B, "client-7", &out, &e), 0);
    assert_null(out.pin);
    assert_null(out.model);
    store_session_release(&out);
    store_session_release(NULL);
}

static void test_put_replaces(void **state)
{
    struct fx *f = *state;
    struct store_session in = row("s1", HEAD_B, NULL, "o3", 20);
    struct store_session out;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, "pin", 10);
    assert_int_equal(store_put(f->s, &in, &e), GW_OK);
    assert_int_equal(count_rows(f->s), 1);
    assert_string_equal(find_sid(f->s, HEAD_A, "pin"), "");
    assert_int_equal(store_find(f->s, HEAD_B, NULL, &out, &e), 1);
    assert_string_equal(out.model, "o3");
    assert_null(out.pin);
    assert_int_equal(out.last_used, 20);
    store_session_release(&out);
}

static void test_find_pin(void **state)
{
    struct fx *f = *state;

    put(f->s, "pinned", HEAD_A, "p1", 1);
    assert_string_equal(find_sid(f->s, HEAD_A, "p1"), "pinned");
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "");
    assert_string_equal(find_sid(f->s, HEAD_A, "p2"), "");
    assert_string_equal(find_sid(f->s, HEAD_A, ""), "");

    put(f->s, "unpinned", HEAD_B, NULL, 1);
    assert_string_equal(find_sid(f->s, HEAD_B, NULL), "unpinned");
    assert_string_equal(find_sid(f->s, HEAD_B, "p1"), "");
    assert_string_equal(find_sid(f->s, HEAD_B, ""), "");

    /* An empty pin is a pin, not "no pin". */
    put(f->s, "empty", HEAD_B, "", 5);
    assert_string_equal(find_sid(f->s, HEAD_B, ""), "empty");
    assert_string_equal(find_sid(f->s, HEAD_B, NULL), "unpinned");

    /* With both kinds under one head, each query sees only its own. */
    put(f->s, "a-unpinned", HEAD_A, NULL, 9);
    assert_string_equal(find_sid(f->s, HEAD_A, "p1"), "pinned");
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "a-unpinned");
}

static void test_find_most_recent(void **state)
{
    struct fx *f = *state;

    put(f->s, "old", HEAD_A, NULL, 100);
    put(f->s, "newest", HEAD_A, NULL, 300);
    put(f->s, "middle", HEAD_A, NULL, 200);
    put(f->s, "other-head", HEAD_B, NULL, 999);
    put(f->s, "other-pin", HEAD_A, "x", 999);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "newest");

    /* Touching a row moves it to the front. */
    put(f->s, "old", HEAD_A, NULL, 400);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "old");

    /* Equal last_used: the row put last wins, whatever its sid sorts as. */
    put(f->s, "zzz", HEAD_B, "t", 50);
    put(f->s, "aaa", HEAD_B, "t", 50);
    assert_string_equal(find_sid(f->s, HEAD_B, "t"), "aaa");
    put(f->s, "zzz", HEAD_B, "t", 50);
    assert_string_equal(find_sid(f->s, HEAD_B, "t"), "zzz");
}

static void test_find_uses_index(void **state)
{
    struct fx *f = *state;
    const char *sql = "EXPLAIN QUERY PLAN SELECT sid, head, pin, model, last_used FROM sessions"
                      " WHERE head = ?1 AND pin IS ?2 ORDER BY last_used DESC, rowid DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    char plan[512] = "";
    sqlite3 *db = raw_open(f->db);

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        strncat(plan, (const char *)sqlite3_column_text(st, 3), sizeof(plan) - strlen(plan) - 2);
        strcat(plan, ";");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    print_message("plan: %s\n", plan);
    assert_non_null(strstr(plan, "USING INDEX sessions_head_pin (head=? AND pin=?)"));
    assert_null(strstr(plan, "TEMP B-TREE"));
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, NULL, 1);
    put(f->s, "s2", HEAD_A, NULL, 2);
    assert_int_equal(store_delete(f->s, "s2", &e), GW_OK);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "s1");
    assert_int_equal(store_delete(f->s, "s2", &e), GW_OK);
    assert_int_equal(store_delete(f->s, "never-was", &e), GW_OK);
    assert_int_equal(store_delete(f->s, "s1", &e), GW_OK);
    assert_int_equal(count_rows(f->s), 0);
}

static void test_invalid_args(void **state)
{
    struct fx *f = *state;
    struct store_session ss = row("", HEAD_A, NULL, "m", 1);
    struct store *other = (struct store *)1;
    struct store_session out;
    struct gw_err e;

    assert_int_equal(store_put(f->s, &ss, &e), GW_EINVAL);
    ss = row("s1", HEAD_A, NULL, NULL, 1);
    assert_int_equal(store_put(f->s, &ss, &e), GW_EINVAL);
    memset(ss.sid, 'x', sizeof(ss.sid)); /* not terminated */
    ss.model = "m";
    assert_int_equal(store_put(f->s, &ss, &e), GW_EINVAL);
    assert_int_equal(store_find(f->s, NULL, NULL, &out, &e), GW_EINVAL);
    assert_int_equal(store_delete(f->s, NULL, &e), GW_EINVAL);
    assert_int_equal(count_rows(f->s), 0);

    assert_int_equal(store_open("", &other, &e), GW_EINVAL);
    assert_null(other);
}

static void test_strings_roundtrip(void **state)
{
    struct fx *f = *state;
    const char *pin = "x'); DROP TABLE sessions; -- \"dq\" \\ %s %n";
    const char *model = "mod\xc3\xa8le \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\x98\x80 'q' \"qq\"";
    const char *head = "h'\"; DELETE FROM sessions; --";
    struct store_session in = row("o'neil\"--", head, pin, model, -5);
    struct store_session out;
    struct gw_err e;

    put(f->s, "bystander", HEAD_A, NULL, 1);
    assert_int_equal(store_put(f->s, &in, &e), GW_OK);
    assert_int_equal(store_find(f->s, head, pin, &out, &e), 1);
    assert_string_equal(out.sid, "o'neil\"--");
    assert_string_equal(out.head, head);
    assert_string_equal(out.pin, pin);
    assert_string_equal(out.model, model);
    assert_int_equal(out.last_used, -5);
    store_session_release(&out);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "bystander");
    assert_int_equal(count_rows(f->s), 2);
    assert_int_equal(store_delete(f->s, "o'neil\"--", &e), GW_OK);
    assert_int_equal(count_rows(f->s), 1);
}

/* ---- each / expire ------------------------------------------------------------- */

struct visit {
    int n;
    int stop_after;
    unsigned seen; /* bit i: sid "s<i>" */
};

static int visit_cb(void *ud, const struct store_session *ss)
{
    struct visit *v = ud;
    int i = ss->sid[1] - '0';

    assert_true(ss->sid[0] == 's' && i >= 0 && i < 8 && ss->sid[2] == '\0');
    assert_false(v->seen & (1u << i));
    assert_string_equal(ss->model, "gpt-4o");
    assert_int_equal(ss->last_used, i * 10);
    v->seen |= 1u << i;
    v->n++;
    return v->n == v->stop_after ? 7 : 0;
}

static void test_each(void **state)
{
    struct fx *f = *state;
    struct visit v = {0};
    struct gw_err e;

    assert_int_equal(store_each(f->s, visit_cb, &v, &e), 0);
    assert_int_equal(v.n, 0);
    for (int i = 0; i < 5; i++) {
        char sid[8];
        snprintf(sid, sizeof(sid), "s%d", i);
        put(f->s, sid, i % 2 ? HEAD_A : HEAD_B, i % 3 ? "p" : NULL, i * 10);
    }
    assert_int_equal(store_each(f->s, visit_cb, &v, &e), 0);
    assert_int_equal(v.n, 5);
    assert_int_equal(v.seen, 0x1f);

    memset(&v, 0, sizeof(v));
    v.stop_after = 2;
    assert_int_equal(store_each(f->s, visit_cb, &v, &e), 7);
    assert_int_equal(v.n, 2);
}

static int delete_cb(void *ud, const struct store_session *ss)
{
    struct store *s = ud;
    struct gw_err e;

    assert_int_equal(store_delete(s, ss->sid, &e), GW_OK);
    put(s, "added-during-walk", HEAD_B, NULL, 1);
    return 0;
}

static void test_each_callback_may_write(void **state)
{
    struct fx *f = *state;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, NULL, 1);
    put(f->s, "s2", HEAD_A, NULL, 2);
    put(f->s, "s3", HEAD_A, NULL, 3);
    assert_int_equal(store_each(f->s, delete_cb, f->s, &e), 0);
    assert_int_equal(count_rows(f->s), 1);
    assert_string_equal(find_sid(f->s, HEAD_B, NULL), "added-during-walk");
}

static void test_expire(void **state)
{
    struct fx *f = *state;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, NULL, 100);
    put(f->s, "s2", HEAD_A, "p", 200);
    put(f->s, "s3", HEAD_B, NULL, 300);
    assert_int_equal(store_expire(f->s, 100, &e), 0);
    assert_int_equal(store_expire(f->s, 201, &e), 2);
    assert_int_equal(store_expire(f->s, 201, &e), 0);
    assert_int_equal(count_rows(f->s), 1);
    assert_string_equal(find_sid(f->s, HEAD_B, NULL), "s3");
    assert_int_equal(store_expire(f->s, INT64_MAX, &e), 1);
    assert_int_equal(count_rows(f->s), 0);
}

/* ---- concurrency with other connections ------------------------------------ */

static void test_no_transaction_held(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct gw_err e;

    put(f->s, "s1", HEAD_A, NULL, 1);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "s1");
    assert_int_equal(store_open(f->dir, &s2, &e), GW_OK);
    /* If the first store held a snapshot it would not see this row. */
    put(s2, "s2", HEAD_A, NULL, 2);
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "s2");
    put(f->s, "s3", HEAD_A, NULL, 3);
    assert_string_equal(find_sid(s2, HEAD_A, NULL), "s3");
    store_close(s2);
}

static void test_busy(void **state)
{
    struct fx *f = *state;
    struct store_session ss = row("s1", HEAD_A, NULL, "m", 1);
    sqlite3 *db = raw_open(f->db);
    struct gw_err e;
    double t0, ms;
    int rc;

    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    t0 = now_us();
    rc = store_put(f->s, &ss, &e);
    ms = (now_us() - t0) / 1000;
    print_message("put against a held write lock: %.0f ms, %s\n", ms, e.msg);
    assert_int_equal(rc, GW_EIO);
    assert_non_null(strstr(e.msg, "locked"));
    assert_true(ms >= 900);
    /* Readers are not blocked by a writer in WAL mode. */
    assert_string_equal(find_sid(f->s, HEAD_A, NULL), "");
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_put(f->s, &ss, &e), GW_OK);
}

/* ---- durability ---------------------------------------------------------- */

static int count_responses(struct store *s, const char *prefix, int n)
{
    struct store_response sr;
    struct gw_err e;
    int found = 0;

    for (int i = 0; i < n; i++) {
        char id[32];
        int rc;
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        rc = store_resp_get(s, id, &sr, &e);
        assert_true(rc >= 0);
        found += rc;
        store_response_release(&sr);
    }
    return found;
}

static int have_sqlite3_cli(void)
{
    return system("sqlite3 -version >/dev/null 2>&1") == 0;
}

/*
 * The lost-WAL bug: another process (the sqlite3 shell) opening and closing
 * gateway.db while the gateway runs must not take the live WAL for unused.
 * Two stores on one file, as the broker and the stored responses once had:
 * the second open used to open() and close() the file beside SQLite, which
 * dropped the process's POSIX locks; the shell then checkpointed and deleted
 * the WAL, and every later commit went to the deleted file.  A child process
 * does the writes and ends without closing (a kill -9 of the gateway).
 */
/* Puts responses <prefix>0..n-1 (alternating between two stores); 0 or the first failure. */
static int put_many(struct store *a, struct store *b, const char *prefix, int n)
{
    struct gw_err e;

    for (int i = 0; i < n; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", "{\"status\":\"completed\"}", NULL};
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        if (store_resp_put(i % 2 ? a : b, &sr, 0, &e))
            return -1;
    }
    return 0;
}

/*
 * The lost-WAL bug: another process (the sqlite3 shell) opening and closing
 * gateway.db while the gateway runs must not take the live WAL for unused.
 * Two stores on one file, as the broker and the stored responses once had:
 * the second open used to open() and close() the file beside SQLite, which
 * dropped the process's POSIX locks; the shell then checkpointed and deleted
 * the WAL, and every later commit went to the deleted file.  A child process
 * does the writes and ends without closing (a kill -9 of the gateway).
 */
static void test_other_process_keeps_wal(void **state)
{
    struct fx *f = *state;
    struct gw_err e;
    pid_t pid;
    int status = -1;

    if (!have_sqlite3_cli()) {
        print_message("the sqlite3 shell is not installed (scripts/deps.sh test)\n");
        skip();
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *a = NULL, *b = NULL;
        char cmd[256];
        if (store_open(f->dir, &a, &e) || store_open(f->dir, &b, &e))
            _exit(2);
        if (put_many(a, b, "resp_before", 5))
            _exit(3);
        snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'pragma integrity_check' >/dev/null", f->db);
        if (system(cmd) != 0)
            _exit(4);
        if (put_many(a, b, "resp_after", 5))
            _exit(5);
        _exit(0); /* no store_close(): the WAL is all there is of the last puts */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(store_open(f->dir, &f->s, &e), GW_OK);
    assert_int_equal(count_responses(f->s, "resp_before", 5), 5);
    assert_int_equal(count_responses(f->s, "resp_after", 5), 5);
}

/*
 * A write that finds no room (here: past RLIMIT_FSIZE, which fails like a
 * full disk) is a 507 "insufficient_storage"; store_writable() reports it
 * until a write works again.
 */
static void test_write_failure_is_507(void **state)
{
    struct fx *f = *state;
    struct rlimit old, lim;
    struct gw_err e, e2;
    static char big[64 * 1024 + 32];
    int rc = GW_OK, i, writable;

    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"t\":\"", 6);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    assert_int_equal(store_writable(f->s, &e), 1);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (i = 0; i < 100 && rc == GW_OK; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", big, NULL};
        snprintf(id, sizeof(id), "resp_big%d", i);
        memset(&e, 0, sizeof(e));
        rc = store_resp_put(f->s, &sr, 0, &e);
    }
    print_message("put %d failed: %s\n", i, e.msg);
    /* A small write may still fit where the failed one began: no room at all for the probe. */
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    memset(&e2, 0, sizeof(e2));
    writable = store_writable(f->s, &e2);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, GW_EIO);
    assert_int_equal(e.http_status, STORE_HTTP_NO_STORAGE);
    assert_string_equal(e.api_code, "insufficient_storage");
    assert_clean_msg(f, &e, "cannot store response in");
    assert_int_equal(writable, 0); /* its probe write failed too */
    assert_int_equal(e2.http_status, STORE_HTTP_NO_STORAGE);

    /* Room again: within the second the last answer stands, then a probe succeeds. */
    assert_int_equal(store_writable(f->s, &e), 0);
    usleep(1100 * 1000);
    assert_int_equal(store_writable(f->s, &e), 1);
    assert_int_equal(count_responses(f->s, "resp_big", i - 1), i - 1);
    /* The probe left no row behind. */
    assert_int_equal(store_resp_delete(f->s, "", &e), 0);
}

/* ---- timing (printed, not asserted) ----------------------------------------- */

static void test_put_timing(void **state)
{
    struct fx *f = *state;
    struct gw_err e;
    double t0, us;

    t0 = now_us();
    for (int i = 0; i < 1000; i++) {
        char sid[37];
        struct store_session ss;
        util_uuid(sid);
        ss = row(sid, i % 2 ? HEAD_A : HEAD_B, i % 3 ? "pin" : NULL, "gpt-4o", 1000 + i);
        assert_int_equal(store_put(f->s, &ss, &e), GW_OK);
    }
    us = now_us() - t0;
    print_message("store_put: %.1f us/put over 1000 puts (WAL, synchronous=NORMAL)\n", us / 1000);
    assert_int_equal(count_rows(f->s), 1000);
}

/* ---- stored responses ------------------------------------------------------ */

static void rput(struct store *s, const char *id, const char *prev, int64_t created,
                 int64_t keep_max)
{
    struct gw_err e;
    char resp[96];
    struct store_response sr = {(char *)id, (char *)prev, created, "[{\"type\":\"message\"}]", resp,
                              NULL};

    snprintf(resp, sizeof(resp), "{\"id\":\"%s\"}", id);
    assert_int_equal(store_resp_put(s, &sr, keep_max, &e), GW_OK);
}

static void test_resp_roundtrip(void **state)
{
    struct fx *f = *state;
    struct store_response sr;
    struct gw_err e;

    rput(f->s, "resp_1", NULL, 1000, 0);
    rput(f->s, "resp_2", "resp_1", 2000, 0);
    assert_int_equal(store_resp_get(f->s, "resp_2", &sr, &e), 1);
    assert_string_equal(sr.id, "resp_2");
    assert_string_equal(sr.prev, "resp_1");
    assert_int_equal(sr.created, 2000);
    assert_string_equal(sr.input, "[{\"type\":\"message\"}]");
    assert_string_equal(sr.response, "{\"id\":\"resp_2\"}");
    store_response_release(&sr);
    assert_int_equal(store_resp_get(f->s, "resp_1", &sr, &e), 1);
    assert_null(sr.prev);
    store_response_release(&sr);
    assert_int_equal(store_resp_get(f->s, "resp_none", &sr, &e), 0);
    assert_null(sr.id);
    store_response_release(&sr);

    /* Put again replaces (a background response finishing). */
    rput(f->s, "resp_1", NULL, 1000, 0);
    assert_int_equal(store_resp_delete(f->s, "resp_1", &e), 1);
    assert_int_equal(store_resp_delete(f->s, "resp_1", &e), 0);
    assert_int_equal(store_resp_get(f->s, "resp_1", &sr, &e), 0);
    store_response_release(&sr);
}

static void test_resp_expire_and_cap(void **state)
{
    struct fx *f = *state;
    struct store_response sr;
    struct gw_err e;
    char id[32];

    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "resp_old%d", i);
        rput(f->s, id, NULL, 100 + i, 0);
    }
    assert_int_equal(store_resp_expire(f->s, 105, &e), 5);
    assert_int_equal(store_resp_get(f->s, "resp_old4", &sr, &e), 0);
    assert_int_equal(store_resp_get(f->s, "resp_old5", &sr, &e), 1);
    store_response_release(&sr);
    /* The cap trims the oldest beyond keep_max, checked every 64 puts. */
    for (int i = 0; i < 128; i++) {
        snprintf(id, sizeof(id), "resp_new%d", i);
        rput(f->s, id, NULL, 1000 + i, 20);
    }
    assert_int_equal(store_resp_get(f->s, "resp_old9", &sr, &e), 0);
    assert_int_equal(store_resp_get(f->s, "resp_new127", &sr, &e), 1);
    store_response_release(&sr);
    assert_int_equal(store_resp_get(f->s, "resp_new108", &sr, &e), 1); /* the 20 newest */
    store_response_release(&sr);
    assert_int_equal(store_resp_get(f->s, "resp_new107", &sr, &e), 0);
    assert_int_equal(store_resp_put(f->s, &(struct store_response){0}, 0, &e), GW_EINVAL);
}

/* Rows left in_progress (a crash mid-turn) become failed; others are untouched. */
static void test_resp_fail_unfinished(void **state)
{
    struct fx *f = *state;
    struct store_response sr;
    struct gw_err e;
    struct store_response rows[] = {
        {"resp_run", NULL, 1, "[]", "{\"id\":\"resp_run\",\"status\":\"in_progress\",\"error\":null}",
         NULL},
        {"resp_done", NULL, 2, "[]", "{\"id\":\"resp_done\",\"status\":\"completed\"}", NULL},
        {"resp_junk", NULL, 3, "[]", "not json", NULL},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(store_resp_put(f->s, &rows[i], 0, &e), GW_OK);
    assert_int_equal(store_resp_fail_unfinished(f->s, "cut \"short\"", &e), 1);
    assert_int_equal(store_resp_get(f->s, "resp_run", &sr, &e), 1);
    assert_string_equal(sr.response, "{\"id\":\"resp_run\",\"status\":\"failed\",\"error\":"
                                     "{\"code\":\"server_error\",\"message\":\"cut \\\"short\\\"\"}}");
    store_response_release(&sr);
    assert_int_equal(store_resp_get(f->s, "resp_done", &sr, &e), 1);
    assert_string_equal(sr.response, rows[1].response);
    store_response_release(&sr);
    assert_int_equal(store_resp_fail_unfinished(f->s, "again", &e), 0);
}

static void test_memory_store(void **state)
{
    struct store *s;
    struct store_response sr;
    struct gw_err e;

    (void)state;
    assert_int_equal(store_open(NULL, &s, &e), GW_OK);
    rput(s, "resp_m", NULL, 1, 0);
    assert_int_equal(store_resp_get(s, "resp_m", &sr, &e), 1);
    store_response_release(&sr);
    store_close(s);
    assert_int_equal(store_open("", &s, &e), GW_EINVAL);
}

/* A file written by schema 1 (sessions only) gains the responses table and keeps its rows. */
static void test_migrate_from_v1(void **state)
{
    struct fx *f = *state;
    struct store_session ss;
    struct gw_err e;
    sqlite3 *db;

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT "
                                  "NOT NULL, pin TEXT, model TEXT NOT NULL, last_used INTEGER NOT "
                                  "NULL);CREATE INDEX sessions_head_pin ON sessions(head, pin, "
                                  "last_used);INSERT INTO sessions VALUES('s1','" HEAD_A
                                  "',NULL,'m',5);PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->dir, &f->s, &e), GW_OK);
    assert_int_equal(store_find(f->s, HEAD_A, NULL, &ss, &e), 1);
    assert_string_equal(ss.sid, "s1");
    store_session_release(&ss);
    rput(f->s, "resp_after", NULL, 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_wal_0600, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_dir, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_row, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_put_find_roundtrip, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_put_replaces, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_find_pin, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_find_most_recent, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_find_uses_index, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_strings_roundtrip, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_each_callback_may_write, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_expire, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_no_transaction_held, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_other_process_keeps_wal, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_is_507, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_put_timing, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_resp_roundtrip, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_resp_expire_and_cap, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_resp_fail_unfinished, setup_open, teardown),
        cmocka_unit_test(test_memory_store),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup_dir, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
