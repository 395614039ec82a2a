/* Unit tests for store/store: the SQLite session map, its schema, its failure modes, and the
 * stored responses, through the asynchronous API (storetest.h waits for each answer). */
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

#include "storetest.h"

/* ---- helpers: one call, answered ------------------------------------------ */

/* The answer's rc; a failure's error in *e (from the call or from the callback). */
static int answered(struct fx *f, int rc, struct seen *w, struct gw_err *e)
{
    rc = answer(f, rc, w);
    if (rc < 0 && w->calls)
        *e = w->err;
    return rc;
}

static int sput(struct fx *f, struct store *s, const struct store_session *ss, struct gw_err *e)
{
    struct seen w = {0};

    return answered(f, store_sessions_put(s, ss, on_result, &w, NULL, e), &w, e);
}

static int sdelete(struct fx *f, struct store *s, const char *sid, struct gw_err *e)
{
    struct seen w = {0};

    return answered(f, store_sessions_delete(s, sid, on_result, &w, NULL, e), &w, e);
}

/* store_sessions_find(): its rc, the row in w->ss. */
static int sfind(struct fx *f, struct store *s, const char *head, const char *pin,
                 struct seen *w, struct gw_err *e)
{
    memset(w, 0, sizeof(*w));
    return answered(f, store_sessions_find(s, head, pin, on_result, w, NULL, e), w, e);
}

static int sexpire(struct fx *f, int64_t cutoff, struct gw_err *e)
{
    struct seen w = {0};

    return answered(f, store_sessions_expire(f->s, cutoff, on_result, &w, NULL, e), &w, e);
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

static void put(struct fx *f, struct store *s, const char *sid, const char *head, const char *pin,
                int64_t last_used)
{
    struct store_session ss = row(sid, head, pin, "gpt-4o", last_used);
    struct gw_err e;
    int rc = sput(f, s, &ss, &e);

    if (rc)
        print_error("store_sessions_put: %s\n", e.msg);
    assert_int_equal(rc, GW_OK);
}

/* The sid found for (head, pin), or "" when none; asserts no error. */
static const char *find_sid(struct fx *f, struct store *s, const char *head, const char *pin)
{
    static char sid[37];
    struct seen w;
    struct gw_err e;
    int rc = sfind(f, s, head, pin, &w, &e);

    if (rc < 0)
        print_error("store_sessions_find: %s\n", e.msg);
    assert_true(rc == 0 || rc == 1);
    snprintf(sid, sizeof(sid), "%s", rc == 1 ? w.ss.sid : "");
    return sid;
}

/* store_sessions_all(): each row to visit(ud, row); the rc. */
struct walk {
    void (*visit)(void *ud, const struct store_session *ss);
    void *ud;
    int calls, rc;
};

static void on_all(void *ud, const struct store_result *res)
{
    struct walk *k = ud;

    k->calls++;
    k->rc = res->rc;
    if (res->rc >= 0)
        assert_int_equal(res->n_sessions, (size_t)res->rc);
    for (size_t i = 0; k->visit && i < res->n_sessions; i++)
        k->visit(k->ud, &res->sessions[i]);
}

static int walk(struct fx *f, struct store *s, void (*visit)(void *, const struct store_session *),
                void *ud)
{
    struct walk k = {visit, ud, 0, 0};
    struct gw_err e;

    assert_int_equal(store_sessions_all(s, on_all, &k, NULL, &e), GW_OK);
    drain(f);
    assert_int_equal(k.calls, 1);
    return k.rc;
}

static int count_rows(struct fx *f, struct store *s)
{
    int n = walk(f, s, NULL, NULL);

    assert_true(n >= 0);
    return n;
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

    /* The umask store_sqlite_open() narrows while SQLite creates the file is put back. */
    old = umask(022);
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s2, &e), GW_OK);
    assert_int_equal(umask(old), 022);
    store_close(s2);
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    put(f, f->s, "s1", HEAD_A, NULL, 1);
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
    assert_int_equal(store_sqlite_open(f->base, dir, &s, &e), GW_EIO);
    assert_null(s);
    print_message("error: %s\n", e.msg);
    assert_null(strstr(e.msg, f->dir));

    /* Something that is not a file where the db belongs. */
    assert_int_equal(mkdir(f->db, 0700), 0);
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");
    assert_int_equal(rmdir(f->db), 0);
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct gw_err e;

    put(f, f->s, "s1", HEAD_A, "pin", 42);
    put(f, f->s, "s2", HEAD_B, NULL, 43);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_int_equal(count_rows(f, f->s), 2);
    assert_int_equal(sfind(f, f->s, HEAD_A, "pin", &w, &e), 1);
    assert_string_equal(w.ss.sid, "s1");
    assert_string_equal(w.ss.model, "gpt-4o");
    assert_int_equal(w.ss.last_used, 42);
    assert_string_equal(find_sid(f, f->s, HEAD_B, NULL), "s2");
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char text[32];
    struct gw_err e;
    sqlite3 *db;

    put(f, f->s, "s1", HEAD_A, NULL, 1);
    store_close(f->s);
    f->s = NULL;
    db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_sqlite_open(f->base, f->dir, &s, &e), GW_EIO);
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
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s, &e), GW_EIO);
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
        put(f, f->s, sid, HEAD_A, NULL, i);
    }
    /* The last connection to close checkpoints the WAL into the file. */
    store_close(f->s);
    f->s = NULL;
    memset(junk, 0x5a, sizeof(junk));
    write_file(f->db, junk, sizeof(junk), 4096); /* page 2: the root of the sessions table */

    assert_true(store_sqlite_open(f->base, f->dir, &s, &e) < 0);
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
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s, &e), GW_EIO);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");

    /* A writable file in a directory where the -wal and -shm files cannot be created. */
    assert_int_equal(chmod(f->db, 0600), 0);
    assert_int_equal(chmod(f->dir, 0500), 0);
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s, &e), GW_EIO);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_null(s);
    assert_clean_msg(f, &e, "gateway.db");
}

static void count_visit(void *ud, const struct store_session *ss)
{
    (*(int *)ud)++;
}

/* A row no version of this code writes (too long a sid) is reported, not truncated. */
static void test_malformed_row(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct gw_err e;
    sqlite3 *db = raw_open(f->db);
    int n = 0;

    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO sessions VALUES ('" HEAD_A "', '" HEAD_A "', NULL, 'm', 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sfind(f, f->s, HEAD_A, NULL, &w, &e), GW_EIO);
    assert_int_equal(w.n, 0);
    assert_clean_msg(f, &e, "malformed session row");
    assert_int_equal(walk(f, f->s, count_visit, &n), GW_EIO);
    assert_int_equal(n, 0); /* a failed read gives no row */
    assert_int_equal(sdelete(f, f->s, HEAD_A, &e), 1);
    assert_int_equal(count_rows(f, f->s), 0);
}

/* ---- put / find / delete ------------------------------------------------------ */

static void test_put_find_roundtrip(void **state)
{
    struct fx *f = *state;
    struct store_session in = row("4b825dc6-42cb-4c2a-8d1e-1f6d8a5c9e01", HEAD_A, "client-7",
                                  "claude-sonnet-4", 1767225600123LL);
    struct seen w;
    struct gw_err e;

    e.code = 12345;
    assert_int_equal(sput(f, f->s, &in, &e), GW_OK);
    assert_int_equal(sfind(f, f->s, HEAD_A, "client-7", &w, &e), 1);
    assert_int_equal(e.code, 12345); /* untouched on success */
    assert_string_equal(w.ss.sid, in.sid);
    assert_string_equal(w.ss.head, HEAD_A);
    assert_string_equal(w.ss.pin, "client-7");
    assert_string_equal(w.ss.model, "claude-sonnet-4");
    assert_true(w.ss.last_used == 1767225600123LL);

    assert_int_equal(sfind(f, f->s, HEAD_B, "client-7", &w, &e), 0);
    assert_int_equal(w.n, 0);
}

static void test_put_replaces(void **state)
{
    struct fx *f = *state;
    struct store_session in = row("s1", HEAD_B, NULL, "o3", 20);
    struct seen w;
    struct gw_err e;

    put(f, f->s, "s1", HEAD_A, "pin", 10);
    assert_int_equal(sput(f, f->s, &in, &e), GW_OK);
    assert_int_equal(count_rows(f, f->s), 1);
    assert_string_equal(find_sid(f, f->s, HEAD_A, "pin"), "");
    assert_int_equal(sfind(f, f->s, HEAD_B, NULL, &w, &e), 1);
    assert_string_equal(w.ss.model, "o3");
    assert_null(w.ss.pin);
    assert_int_equal(w.ss.last_used, 20);
}

static void test_find_pin(void **state)
{
    struct fx *f = *state;

    put(f, f->s, "pinned", HEAD_A, "p1", 1);
    assert_string_equal(find_sid(f, f->s, HEAD_A, "p1"), "pinned");
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "");
    assert_string_equal(find_sid(f, f->s, HEAD_A, "p2"), "");
    assert_string_equal(find_sid(f, f->s, HEAD_A, ""), "");

    put(f, f->s, "unpinned", HEAD_B, NULL, 1);
    assert_string_equal(find_sid(f, f->s, HEAD_B, NULL), "unpinned");
    assert_string_equal(find_sid(f, f->s, HEAD_B, "p1"), "");
    assert_string_equal(find_sid(f, f->s, HEAD_B, ""), "");

    /* An empty pin is a pin, not "no pin". */
    put(f, f->s, "empty", HEAD_B, "", 5);
    assert_string_equal(find_sid(f, f->s, HEAD_B, ""), "empty");
    assert_string_equal(find_sid(f, f->s, HEAD_B, NULL), "unpinned");

    /* With both kinds under one head, each query sees only its own. */
    put(f, f->s, "a-unpinned", HEAD_A, NULL, 9);
    assert_string_equal(find_sid(f, f->s, HEAD_A, "p1"), "pinned");
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "a-unpinned");
}

static void test_find_most_recent(void **state)
{
    struct fx *f = *state;

    put(f, f->s, "old", HEAD_A, NULL, 100);
    put(f, f->s, "newest", HEAD_A, NULL, 300);
    put(f, f->s, "middle", HEAD_A, NULL, 200);
    put(f, f->s, "other-head", HEAD_B, NULL, 999);
    put(f, f->s, "other-pin", HEAD_A, "x", 999);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "newest");

    /* Touching a row moves it to the front. */
    put(f, f->s, "old", HEAD_A, NULL, 400);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "old");

    /* Equal last_used: the row put last wins, whatever its sid sorts as. */
    put(f, f->s, "zzz", HEAD_B, "t", 50);
    put(f, f->s, "aaa", HEAD_B, "t", 50);
    assert_string_equal(find_sid(f, f->s, HEAD_B, "t"), "aaa");
    put(f, f->s, "zzz", HEAD_B, "t", 50);
    assert_string_equal(find_sid(f, f->s, HEAD_B, "t"), "zzz");
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

    put(f, f->s, "s1", HEAD_A, NULL, 1);
    put(f, f->s, "s2", HEAD_A, NULL, 2);
    assert_int_equal(sdelete(f, f->s, "s2", &e), 1);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "s1");
    assert_int_equal(sdelete(f, f->s, "s2", &e), 0);
    assert_int_equal(sdelete(f, f->s, "never-was", &e), 0);
    assert_int_equal(sdelete(f, f->s, "s1", &e), 1);
    assert_int_equal(count_rows(f, f->s), 0);
}

static void test_invalid_args(void **state)
{
    struct fx *f = *state;
    struct store_session ss = row("", HEAD_A, NULL, "m", 1);
    struct store *other = (struct store *)1;
    struct seen w;
    struct gw_err e;

    assert_int_equal(sput(f, f->s, &ss, &e), GW_EINVAL);
    ss = row("s1", HEAD_A, NULL, NULL, 1);
    assert_int_equal(sput(f, f->s, &ss, &e), GW_EINVAL);
    memset(ss.sid, 'x', sizeof(ss.sid)); /* not terminated */
    ss.model = "m";
    assert_int_equal(sput(f, f->s, &ss, &e), GW_EINVAL);
    assert_int_equal(sfind(f, f->s, NULL, NULL, &w, &e), GW_EINVAL);
    assert_int_equal(sdelete(f, f->s, NULL, &e), GW_EINVAL);
    assert_int_equal(count_rows(f, f->s), 0);

    assert_int_equal(store_sqlite_open(f->base, "", &other, &e), GW_EINVAL);
    assert_null(other);
}

static void test_strings_roundtrip(void **state)
{
    struct fx *f = *state;
    const char *pin = "x'); DROP TABLE sessions; -- \"dq\" \\ %s %n";
    const char *model = "mod\xc3\xa8le \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\x98\x80 'q' \"qq\"";
    const char *head = "h'\"; DELETE FROM sessions; --";
    struct store_session in = row("o'neil\"--", head, pin, model, -5);
    struct seen w;
    struct gw_err e;

    put(f, f->s, "bystander", HEAD_A, NULL, 1);
    assert_int_equal(sput(f, f->s, &in, &e), GW_OK);
    assert_int_equal(sfind(f, f->s, head, pin, &w, &e), 1);
    assert_string_equal(w.ss.sid, "o'neil\"--");
    assert_string_equal(w.ss.head, head);
    assert_string_equal(w.ss.pin, pin);
    assert_string_equal(w.ss.model, model);
    assert_int_equal(w.ss.last_used, -5);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "bystander");
    assert_int_equal(count_rows(f, f->s), 2);
    assert_int_equal(sdelete(f, f->s, "o'neil\"--", &e), 1);
    assert_int_equal(count_rows(f, f->s), 1);
}

/* ---- all / expire ------------------------------------------------------------- */

struct visit {
    int n;
    unsigned seen; /* bit i: sid "s<i>" */
};

static void visit_cb(void *ud, const struct store_session *ss)
{
    struct visit *v = ud;
    int i = ss->sid[1] - '0';

    assert_true(ss->sid[0] == 's' && i >= 0 && i < 8 && ss->sid[2] == '\0');
    assert_false(v->seen & (1u << i));
    assert_string_equal(ss->model, "gpt-4o");
    assert_int_equal(ss->last_used, i * 10);
    v->seen |= 1u << i;
    v->n++;
}

static void test_each(void **state)
{
    struct fx *f = *state;
    struct visit v = {0};

    assert_int_equal(walk(f, f->s, visit_cb, &v), 0);
    assert_int_equal(v.n, 0);
    for (int i = 0; i < 5; i++) {
        char sid[8];
        snprintf(sid, sizeof(sid), "s%d", i);
        put(f, f->s, sid, i % 2 ? HEAD_A : HEAD_B, i % 3 ? "p" : NULL, i * 10);
    }
    assert_int_equal(walk(f, f->s, visit_cb, &v), 5);
    assert_int_equal(v.n, 5);
    assert_int_equal(v.seen, 0x1f);
}

/* The rows are the callback's to read while it calls the store again. */
static void delete_cb(void *ud, const struct store_session *ss)
{
    struct fx *f = ud;
    struct store_session added = row("added-during-walk", HEAD_B, NULL, "gpt-4o", 1);
    struct gw_err e;

    assert_int_equal(store_sessions_delete(f->s, ss->sid, NULL, NULL, NULL, &e), GW_OK);
    assert_int_equal(store_sessions_put(f->s, &added, NULL, NULL, NULL, &e), GW_OK);
}

static void test_each_callback_may_write(void **state)
{
    struct fx *f = *state;

    put(f, f->s, "s1", HEAD_A, NULL, 1);
    put(f, f->s, "s2", HEAD_A, NULL, 2);
    put(f, f->s, "s3", HEAD_A, NULL, 3);
    assert_int_equal(walk(f, f->s, delete_cb, f), 3);
    drain(f);
    assert_int_equal(count_rows(f, f->s), 1);
    assert_string_equal(find_sid(f, f->s, HEAD_B, NULL), "added-during-walk");
}

static void test_expire(void **state)
{
    struct fx *f = *state;
    struct gw_err e;

    put(f, f->s, "s1", HEAD_A, NULL, 100);
    put(f, f->s, "s2", HEAD_A, "p", 200);
    put(f, f->s, "s3", HEAD_B, NULL, 300);
    assert_int_equal(sexpire(f, 100, &e), 0);
    assert_int_equal(sexpire(f, 201, &e), 2);
    assert_int_equal(sexpire(f, 201, &e), 0);
    assert_int_equal(count_rows(f, f->s), 1);
    assert_string_equal(find_sid(f, f->s, HEAD_B, NULL), "s3");
    assert_int_equal(sexpire(f, INT64_MAX, &e), 1);
    assert_int_equal(count_rows(f, f->s), 0);
}

/* ---- concurrency with other connections ------------------------------------ */

static void test_no_transaction_held(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct gw_err e;

    put(f, f->s, "s1", HEAD_A, NULL, 1);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "s1");
    assert_int_equal(store_sqlite_open(f->base, f->dir, &s2, &e), GW_OK);
    /* If the first store held a snapshot it would not see this row. */
    put(f, s2, "s2", HEAD_A, NULL, 2);
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "s2");
    put(f, f->s, "s3", HEAD_A, NULL, 3);
    assert_string_equal(find_sid(f, s2, HEAD_A, NULL), "s3");
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
    rc = sput(f, f->s, &ss, &e);
    ms = (now_us() - t0) / 1000;
    print_message("put against a held write lock: %.0f ms, %s\n", ms, e.msg);
    assert_int_equal(rc, GW_EIO);
    assert_non_null(strstr(e.msg, "locked"));
    assert_true(ms >= 900);
    /* Readers are not blocked by a writer in WAL mode. */
    assert_string_equal(find_sid(f, f->s, HEAD_A, NULL), "");
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sput(f, f->s, &ss, &e), GW_OK);
}

/* ---- durability ---------------------------------------------------------- */

static int count_responses(struct fx *f, const char *prefix, int n)
{
    int found = 0;

    for (int i = 0; i < n; i++) {
        char id[32];
        struct seen w;
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        w = rget(f, KEY_A, id);
        found += w.rc;
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
/* Puts responses <prefix>0..n-1 (alternating between two stores on base); 0 or the first
 * failure. */
static int put_many(struct event_base *base, struct store *a, struct store *b, const char *prefix,
                    int n)
{
    struct gw_err e;

    for (int i = 0; i < n; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", "{\"status\":\"completed\"}", KEY_A};
        struct seen w = {0};
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        if (store_responses_put(i % 2 ? a : b, &sr, 0, on_result, &w, NULL, &e))
            return -1;
        while (!w.calls)
            if (event_base_loop(base, EVLOOP_ONCE) < 0)
                return -1;
        if (w.rc)
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
        struct event_base *base = event_base_new(); /* the parent's is not the child's */
        char cmd[256];
        if (!base || store_sqlite_open(base, f->dir, &a, &e) ||
            store_sqlite_open(base, f->dir, &b, &e))
            _exit(2);
        if (put_many(base, a, b, "resp_before", 5))
            _exit(3);
        snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'pragma integrity_check' >/dev/null", f->db);
        if (system(cmd) != 0)
            _exit(4);
        if (put_many(base, a, b, "resp_after", 5))
            _exit(5);
        _exit(0); /* no store_close(): the WAL is all there is of the last puts */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_int_equal(count_responses(f, "resp_before", 5), 5);
    assert_int_equal(count_responses(f, "resp_after", 5), 5);
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
        struct store_response sr = {id, NULL, i, "[]", big, KEY_A};
        struct seen w = {0};
        snprintf(id, sizeof(id), "resp_big%d", i);
        memset(&e, 0, sizeof(e));
        rc = answered(f, store_responses_put(f->s, &sr, 0, on_result, &w, NULL, &e), &w, &e);
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
    assert_int_equal(count_responses(f, "resp_big", i - 1), i - 1);
    /* The probe left no row behind (anon also reads rows without an owner). */
    assert_int_equal(rdelete(f, "anon", "").rc, 0);
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
        assert_int_equal(store_sessions_put(f->s, &ss, NULL, NULL, NULL, &e), GW_OK);
    }
    drain(f);
    us = now_us() - t0;
    print_message("store_sessions_put: %.1f us/put over 1000 puts (WAL, synchronous=NORMAL)\n", us / 1000);
    assert_int_equal(count_rows(f, f->s), 1000);
}

/* ---- stored responses ------------------------------------------------------ */

/* Puts response id (owner KEY_A) into s and waits for it. */
static void rput_at(struct fx *f, struct store *s, const char *id, const char *prev,
                    int64_t created, int64_t keep_max)
{
    struct gw_err e;
    char resp[96];
    struct store_response sr = {(char *)id, (char *)prev, created, "[{\"type\":\"message\"}]", resp,
                                KEY_A};
    struct seen w = {0};

    snprintf(resp, sizeof(resp), "{\"id\":\"%s\"}", id);
    assert_int_equal(answer(f, store_responses_put(s, &sr, keep_max, on_result, &w, NULL, &e), &w),
                     GW_OK);
}

static void test_resp_roundtrip(void **state)
{
    struct fx *f = *state;
    struct seen w;

    rput_at(f, f->s, "resp_1", NULL, 1000, 0);
    rput_at(f, f->s, "resp_2", "resp_1", 2000, 0);
    w = rget(f, KEY_A, "resp_2");
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.sr.id, "resp_2");
    assert_string_equal(w.sr.prev, "resp_1");
    assert_int_equal(w.sr.created, 2000);
    assert_string_equal(w.sr.input, "[{\"type\":\"message\"}]");
    assert_string_equal(w.sr.response, "{\"id\":\"resp_2\"}");
    assert_string_equal(w.sr.owner, KEY_A);
    w = rget(f, KEY_A, "resp_1");
    assert_int_equal(w.rc, 1);
    assert_null(w.sr.prev);
    w = rget(f, KEY_A, "resp_none");
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.n, 0);

    /* Put again replaces (a background response finishing). */
    rput_at(f, f->s, "resp_1", NULL, 1000, 0);
    assert_int_equal(rdelete(f, KEY_A, "resp_1").rc, 1);
    assert_int_equal(rdelete(f, KEY_A, "resp_1").rc, 0);
    assert_int_equal(rget(f, KEY_A, "resp_1").rc, 0);
}

static void test_resp_expire_and_cap(void **state)
{
    struct fx *f = *state;
    struct seen w = {0};
    struct gw_err e;
    char id[32];

    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "resp_old%d", i);
        rput_at(f, f->s, id, NULL, 100 + i, 0);
    }
    assert_int_equal(answer(f, store_responses_expire(f->s, 105, on_result, &w, NULL, &e), &w), 5);
    assert_int_equal(rget(f, KEY_A, "resp_old4").rc, 0);
    assert_int_equal(rget(f, KEY_A, "resp_old5").rc, 1);
    /* The cap trims the oldest beyond keep_max, checked every 64 puts. */
    for (int i = 0; i < 128; i++) {
        snprintf(id, sizeof(id), "resp_new%d", i);
        rput_at(f, f->s, id, NULL, 1000 + i, 20);
    }
    assert_int_equal(rget(f, KEY_A, "resp_old9").rc, 0);
    assert_int_equal(rget(f, KEY_A, "resp_new127").rc, 1);
    assert_int_equal(rget(f, KEY_A, "resp_new108").rc, 1); /* the 20 newest */
    assert_int_equal(rget(f, KEY_A, "resp_new107").rc, 0);
    assert_int_equal(store_responses_put(f->s, &(struct store_response){0}, 0, on_result, &w,
                                         NULL, &e),
                     GW_EINVAL);
}

/* Rows left in_progress (a crash mid-turn) become failed; others are untouched. */
static void test_resp_fail_unfinished(void **state)
{
    struct fx *f = *state;
    struct seen w = {0};
    struct gw_err e;
    struct store_response rows[] = {
        {"resp_run", NULL, 1, "[]", "{\"id\":\"resp_run\",\"status\":\"in_progress\",\"error\":null}",
         KEY_A},
        {"resp_done", NULL, 2, "[]", "{\"id\":\"resp_done\",\"status\":\"completed\"}", KEY_A},
        {"resp_junk", NULL, 3, "[]", "not json", KEY_B},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(store_responses_put(f->s, &rows[i], 0, NULL, NULL, NULL, &e), GW_OK);
    assert_int_equal(answer(f, store_responses_fail_unfinished(f->s, "cut \"short\"", on_result,
                                                               &w, NULL, &e),
                            &w),
                     1);
    w = rget(f, KEY_A, "resp_run");
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.sr.response,
                        "{\"id\":\"resp_run\",\"status\":\"failed\",\"error\":"
                        "{\"code\":\"server_error\",\"message\":\"cut \\\"short\\\"\"}}");
    w = rget(f, KEY_A, "resp_done");
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.sr.response, rows[1].response);
    w = (struct seen){0};
    assert_int_equal(
        answer(f, store_responses_fail_unfinished(f->s, "again", on_result, &w, NULL, &e), &w), 0);
}

static void test_memory_store(void **state)
{
    struct fx *f = *state;
    struct store *s;
    struct gw_err e;

    assert_int_equal(store_sqlite_open(f->base, NULL, &s, &e), GW_OK);
    rput_at(f, s, "resp_m", NULL, 1, 0);
    store_close(f->s);
    f->s = s; /* rget asks f->s */
    assert_int_equal(rget(f, KEY_A, "resp_m").rc, 1);
    assert_int_equal(store_sqlite_open(f->base, "", &s, &e), GW_EINVAL);
}

/* A file written by schema 1 (sessions only) gains the responses table and keeps its rows. */
static void test_migrate_from_v1(void **state)
{
    struct fx *f = *state;
    struct seen w;
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
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_int_equal(sfind(f, f->s, HEAD_A, NULL, &w, &e), 1);
    assert_string_equal(w.ss.sid, "s1");
    rput_at(f, f->s, "resp_after", NULL, 1, 0);
}

/* ---- audit -------------------------------------------------------------------------- */

/* What a store_audit_list() answered: rc, more, and each row's seq, id, agent, outcome. */
struct alist {
    int calls, rc, more;
    size_t n;
    int64_t seq[16], ts[16], duration[16];
    char id[16][40], agent[16][32], decision[16][8], outcome[16][8], error[16][1100];
    char target[16][64], rule[16][32], request_id[16][32];
    int null_session[16];
};

static void on_alist(void *ud, const struct store_result *res)
{
    struct alist *a = ud;

    a->calls++;
    a->rc = res->rc;
    a->more = res->more;
    a->n = res->n_audit;
    if (res->rc >= 0)
        assert_int_equal(res->n_audit, (size_t)res->rc);
    for (size_t i = 0; i < res->n_audit && i < 16; i++) {
        const struct store_audit *r = &res->audit[i];
        a->seq[i] = r->seq;
        a->ts[i] = r->ts;
        a->duration[i] = r->duration_ms;
        seen_copy(a->id[i], sizeof(a->id[i]), r->id);
        seen_copy(a->agent[i], sizeof(a->agent[i]), r->agent);
        seen_copy(a->decision[i], sizeof(a->decision[i]), r->decision);
        seen_copy(a->outcome[i], sizeof(a->outcome[i]), r->outcome);
        seen_copy(a->error[i], sizeof(a->error[i]), r->error);
        seen_copy(a->target[i], sizeof(a->target[i]), r->target);
        seen_copy(a->rule[i], sizeof(a->rule[i]), r->rule);
        seen_copy(a->request_id[i], sizeof(a->request_id[i]), r->request_id);
        a->null_session[i] = r->session_id == NULL;
    }
}

static struct alist alist(struct fx *f, struct store_audit_filter flt)
{
    struct alist a;
    struct gw_err e;

    memset(&a, 0, sizeof(a));
    assert_int_equal(store_audit_list(f->s, &flt, on_alist, &a, NULL, &e), GW_OK);
    drain(f);
    assert_int_equal(a.calls, 1);
    assert_true(a.rc >= 0);
    return a;
}

/* Adds row n: id aud_<n>, ts n*1000, agent and decision as given; asserts it worked. */
static void aadd(struct fx *f, int n, const char *agent, const char *decision, int64_t ts)
{
    struct store_audit row;
    struct seen w = {0};
    struct gw_err e;

    memset(&row, 0, sizeof(row));
    snprintf(row.id, sizeof(row.id), "aud_%024d", n);
    row.ts = ts;
    row.request_id = "req-1";
    row.principal = n % 2 ? KEY_A : "anon";
    row.agent = (char *)agent;
    row.tool = "bash";
    row.kind = "shell";
    row.target = "rm -rf /tmp/x";
    row.decision = (char *)decision;
    row.rule = strcmp(decision, "deny") == 0 ? "shell(rm)" : NULL;
    row.outcome = strcmp(decision, "deny") == 0 ? "denied" : NULL;
    row.duration_ms = -1;
    assert_int_equal(answer(f, store_audit_add(f->s, &row, on_result, &w, NULL, &e), &w), GW_OK);
}

static const char *aud_id(int n)
{
    static char id[40];

    snprintf(id, sizeof(id), "aud_%024d", n);
    return id;
}

/* ---- keys ------------------------------------------------------------------------------ */

struct kseen {
    struct seen w; /* first: answer() waits on w.calls */
    char name[8][64], user[8][64], models[8][128], period[8][16], id[8][40];
    int64_t rpm[8], revoked[8], expires[8];
    double budget[8];
    unsigned char digest0[32];
    char sealed[8][64];
    int64_t sealed_ms[8];
};

static void on_keys(void *ud, const struct store_result *res)
{
    struct kseen *k = ud;

    k->w.calls++;
    k->w.rc = res->rc;
    if (res->rc < 0) {
        k->w.err = *res->err;
        return;
    }
    k->w.n = res->n_keys;
    for (size_t i = 0; i < res->n_keys && i < 8; i++) {
        const struct store_key *r = &res->keys[i];
        seen_copy(k->name[i], sizeof(k->name[i]), r->name);
        seen_copy(k->user[i], sizeof(k->user[i]), r->user);
        seen_copy(k->models[i], sizeof(k->models[i]), r->models);
        seen_copy(k->period[i], sizeof(k->period[i]), r->budget_period);
        seen_copy(k->id[i], sizeof(k->id[i]), r->id);
        k->rpm[i] = r->rpm;
        k->revoked[i] = r->revoked_ms;
        k->expires[i] = r->expires_ms;
        k->budget[i] = r->budget_credits;
        seen_copy(k->sealed[i], sizeof(k->sealed[i]), r->github_sealed);
        k->sealed_ms[i] = r->github_updated_ms;
        if (i == 0)
            memcpy(k->digest0, r->digest, 32);
    }
}

static int kcall(struct fx *f, int rc, struct kseen *k)
{
    return answer(f, rc, &k->w);
}

static struct store_key mkkey(const char *id, const char *name, unsigned char fill)
{
    struct store_key k;

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    k.name = (char *)name;
    memset(k.digest, fill, sizeof(k.digest));
    k.created_ms = 1000;
    return k;
}

static void test_keys(void **state)
{
    struct fx *f = *state;
    struct kseen k = {0};
    struct gw_err e;
    struct store_key a = mkkey("vk_a", "alice", 0xaa), b = mkkey("vk_b", "bob", 0xbb);

    a.user = "alice@corp";
    a.models = "[\"gpt-*\",\"agent/logs\"]";
    a.rpm = 60;
    a.budget_credits = 500;
    a.budget_period = "month";
    a.expires_ms = 1798675200000;
    assert_int_equal(kcall(f, store_keys_version(f->s, on_keys, &k, NULL, &e), &k), 0);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &a, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &b, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_version(f->s, on_keys, &k, NULL, &e), &k), 2);

    /* a second active "alice" is refused (rc 0), and changes nothing */
    struct store_key a2 = mkkey("vk_a2", "alice", 0xa2);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &a2, on_keys, &k, NULL, &e), &k), 0);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_version(f->s, on_keys, &k, NULL, &e), &k), 2);

    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_list(f->s, 0, on_keys, &k, NULL, &e), &k), 2);
    assert_string_equal(k.name[0], "alice");
    assert_string_equal(k.id[0], "vk_a");
    assert_string_equal(k.user[0], "alice@corp");
    assert_string_equal(k.models[0], "[\"gpt-*\",\"agent/logs\"]");
    assert_string_equal(k.period[0], "month");
    assert_int_equal(k.rpm[0], 60);
    assert_int_equal(k.expires[0], 1798675200000);
    assert_true(k.budget[0] == 500);
    assert_int_equal(k.digest0[0], 0xaa);
    assert_string_equal(k.name[1], "bob");
    assert_string_equal(k.user[1], "");

    /* update by id: limits and name change; a taken name is refused */
    a.rpm = 10;
    a.name = "alice2";
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_update(f->s, &a, on_keys, &k, NULL, &e), &k), 1);
    a.name = "bob";
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_update(f->s, &a, on_keys, &k, NULL, &e), &k), 0);

    /* revoke: gone from the active list, kept with revoked_ms; the name is free again */
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_revoke(f->s, "bob", 5000, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_revoke(f->s, "bob", 6000, on_keys, &k, NULL, &e), &k), 0);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_list(f->s, 0, on_keys, &k, NULL, &e), &k), 1);
    assert_string_equal(k.name[0], "alice2");
    assert_int_equal(k.rpm[0], 10);
    struct store_key b2 = mkkey("vk_b2", "bob", 0xb2);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &b2, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_list(f->s, 1, on_keys, &k, NULL, &e), &k), 3);
    assert_string_equal(k.name[1], "bob");
    assert_int_equal(k.revoked[1], 5000);
    assert_string_equal(k.name[2], "bob");
    assert_int_equal(k.revoked[2], 0);

    /* a digest is never reused */
    struct store_key c = mkkey("vk_c", "carol", 0xaa);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &c, on_keys, &k, NULL, &e), &k), 0);

    /* bad arguments are refused in the call */
    struct store_key bad = mkkey("", "x", 1);
    assert_int_equal(store_keys_add(f->s, &bad, on_keys, &k, NULL, &e), GW_EINVAL);
    bad = mkkey("vk_x", "x", 1);
    bad.budget_period = "year";
    assert_int_equal(store_keys_add(f->s, &bad, on_keys, &k, NULL, &e), GW_EINVAL);
    assert_int_equal(store_keys_revoke(f->s, "", 1, on_keys, &k, NULL, &e), GW_EINVAL);
}

/* Users' sealed GitHub tokens: by the key's user, or its name without one; a write bumps
 * the keys' version; removal. */
static void test_github_tokens(void **state)
{
    struct fx *f = *state;
    struct kseen k = {0};
    struct gw_err e;
    struct store_key a = mkkey("vk_a", "alice", 0xaa), a2 = mkkey("vk_a2", "alice-ci", 0xa2),
                     b = mkkey("vk_b", "bob", 0xbb);

    a.user = "alice@corp";
    a2.user = "alice@corp";
    assert_int_equal(kcall(f, store_keys_add(f->s, &a, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &a2, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_add(f->s, &b, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_version(f->s, on_keys, &k, NULL, &e), &k), 3);

    k = (struct kseen){0};
    assert_int_equal(
        kcall(f, store_tokens_set(f->s, "alice@corp", "v1.aaaa", 7000, on_keys, &k, NULL, &e), &k),
        1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_tokens_set(f->s, "bob", "v1.bbbb", 8000, on_keys, &k, NULL, &e),
                           &k),
                     1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_version(f->s, on_keys, &k, NULL, &e), &k), 5);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_list(f->s, 0, on_keys, &k, NULL, &e), &k), 3);
    /* both of alice's keys carry her token; bob's key (no user) its own */
    assert_string_equal(k.name[0], "alice");
    assert_string_equal(k.sealed[0], "v1.aaaa");
    assert_int_equal(k.sealed_ms[0], 7000);
    assert_string_equal(k.name[1], "alice-ci");
    assert_string_equal(k.sealed[1], "v1.aaaa");
    assert_string_equal(k.name[2], "bob");
    assert_string_equal(k.sealed[2], "v1.bbbb");

    /* replaced, then removed; removing nothing is rc 0 */
    k = (struct kseen){0};
    assert_int_equal(
        kcall(f, store_tokens_set(f->s, "alice@corp", "v1.cccc", 9000, on_keys, &k, NULL, &e), &k),
        1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_tokens_set(f->s, "bob", NULL, 0, on_keys, &k, NULL, &e), &k), 1);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_tokens_set(f->s, "bob", NULL, 0, on_keys, &k, NULL, &e), &k), 0);
    k = (struct kseen){0};
    assert_int_equal(kcall(f, store_keys_list(f->s, 0, on_keys, &k, NULL, &e), &k), 3);
    assert_string_equal(k.sealed[0], "v1.cccc");
    assert_int_equal(k.sealed_ms[0], 9000);
    assert_string_equal(k.sealed[2], "");
    assert_int_equal(store_tokens_set(f->s, "", "v1.x", 1, on_keys, &k, NULL, &e), GW_EINVAL);
}

/* ---- usage ----------------------------------------------------------------------------- */

struct gseen {
    struct seen w;
    char group[8][32];
    int64_t requests[8], errors[8], input[8], output[8];
    double credits[8];
};

static void on_groups(void *ud, const struct store_result *res)
{
    struct gseen *g = ud;

    g->w.calls++;
    g->w.rc = res->rc;
    if (res->rc < 0) {
        g->w.err = *res->err;
        return;
    }
    for (size_t i = 0; i < res->n_groups && i < 8; i++) {
        seen_copy(g->group[i], sizeof(g->group[i]), res->groups[i].group);
        g->requests[i] = res->groups[i].requests;
        g->errors[i] = res->groups[i].errors;
        g->input[i] = res->groups[i].input_tokens;
        g->output[i] = res->groups[i].output_tokens;
        g->credits[i] = res->groups[i].credits;
    }
}

static void uadd(struct fx *f, int64_t ts, const char *key, const char *model, int status,
                 int64_t in, int64_t out, double credits)
{
    struct seen w = {0};
    struct gw_err e;
    struct store_usage u = {.ts = ts, .principal = "vk:x", .key_name = (char *)key,
                            .model = (char *)model, .api = "chat", .status = status,
                            .input_tokens = in, .output_tokens = out, .credits = credits};

    assert_int_equal(answer(f, store_usage_add(f->s, &u, on_result, &w, NULL, &e), &w), GW_OK);
}

static void test_usage(void **state)
{
    struct fx *f = *state;
    struct gseen g = {0};
    struct gw_err e;
    const int64_t day1 = 1796342400000; /* 2026-12-04T00:00:00Z */

    uadd(f, day1 + 1000, "alice", "gpt-5", 200, 10, 5, 0.5);
    uadd(f, day1 + 2000, "alice", "gpt-5", 429, 0, 0, 0);
    uadd(f, day1 + 86400000, "bob", "claude", 200, 7, 3, 1.25);
    uadd(f, day1 + 86400000 + 5, NULL, "gpt-5", 200, 1, 1, 0);

    struct store_usage_query q = {.group_by = "key"};
    assert_int_equal(answer(f, store_usage_report(f->s, &q, on_groups, &g, NULL, &e), &g.w), 3);
    assert_string_equal(g.group[0], ""); /* no key: NULL first */
    assert_string_equal(g.group[1], "alice");
    assert_int_equal(g.requests[1], 2);
    assert_int_equal(g.errors[1], 1);
    assert_int_equal(g.input[1], 10);
    assert_true(g.credits[1] == 0.5);
    assert_string_equal(g.group[2], "bob");
    assert_true(g.credits[2] == 1.25);

    g = (struct gseen){0};
    q = (struct store_usage_query){.group_by = "day"};
    assert_int_equal(answer(f, store_usage_report(f->s, &q, on_groups, &g, NULL, &e), &g.w), 2);
    assert_string_equal(g.group[0], "2026-12-04");
    assert_int_equal(g.requests[0], 2);
    assert_string_equal(g.group[1], "2026-12-05");
    assert_int_equal(g.output[1], 4);

    g = (struct gseen){0};
    q = (struct store_usage_query){.group_by = "model", .since_ms = day1 + 1500,
                                   .until_ms = day1 + 86400000 + 5};
    assert_int_equal(answer(f, store_usage_report(f->s, &q, on_groups, &g, NULL, &e), &g.w), 2);
    assert_string_equal(g.group[0], "claude");
    assert_string_equal(g.group[1], "gpt-5");
    assert_int_equal(g.requests[1], 1); /* the 429 only: since excludes the first, until the last */

    g = (struct gseen){0};
    q = (struct store_usage_query){.group_by = "model", .key_name = "bob"};
    assert_int_equal(answer(f, store_usage_report(f->s, &q, on_groups, &g, NULL, &e), &g.w), 1);

    q = (struct store_usage_query){.group_by = "colour"};
    assert_int_equal(store_usage_report(f->s, &q, on_groups, &g, NULL, &e), GW_EINVAL);
    struct store_usage bad = {.principal = "x"};
    assert_int_equal(store_usage_add(f->s, &bad, NULL, NULL, NULL, &e), GW_EINVAL);
}

static void test_audit_add_outcome(void **state)
{
    struct fx *f = *state;
    char big[3000];
    struct seen w = {0};
    struct gw_err e;
    struct alist a;

    aadd(f, 1, "logs", "allow", 1000);
    aadd(f, 2, "logs", "deny", 2000);
    a = alist(f, (struct store_audit_filter){0});
    assert_int_equal(a.rc, 2);
    assert_string_equal(a.id[0], aud_id(2)); /* newest first */
    assert_string_equal(a.outcome[0], "denied");
    assert_string_equal(a.rule[0], "shell(rm)");
    assert_string_equal(a.id[1], aud_id(1));
    assert_string_equal(a.outcome[1], ""); /* not finished */
    assert_string_equal(a.rule[1], "");
    assert_string_equal(a.target[1], "rm -rf /tmp/x");
    assert_string_equal(a.request_id[1], "req-1");
    assert_true(a.null_session[1]);
    assert_int_equal(a.ts[1], 1000);
    assert_true(a.seq[0] > a.seq[1]);

    /* The outcome, with an error text cut to 1 KiB, never inside a UTF-8 character. */
    memset(big, 'x', sizeof(big));
    memcpy(big + 1023, "\xc3\xa9", 2); /* é across the cut */
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(answer(f, store_audit_outcome(f->s, aud_id(1), "error", 42, big, on_result,
                                                   &w, NULL, &e),
                            &w),
                     1);
    a = alist(f, (struct store_audit_filter){0});
    assert_string_equal(a.outcome[1], "error");
    assert_int_equal(a.duration[1], 42);
    assert_int_equal(strlen(a.error[1]), 1023);
    w = (struct seen){0};
    assert_int_equal(answer(f, store_audit_outcome(f->s, "aud_none", "ok", 1, NULL, on_result,
                                                   &w, NULL, &e),
                            &w),
                     0);

    /* Bad arguments: refused in the call, the callback never runs. */
    w = (struct seen){0};
    assert_int_equal(store_audit_outcome(f->s, aud_id(1), "maybe", 1, NULL, on_result, &w, NULL,
                                         &e),
                     GW_EINVAL);
    assert_int_equal(store_audit_add(f->s, &(struct store_audit){.id = "aud_x"}, on_result, &w,
                                     NULL, &e),
                     GW_EINVAL);
    assert_int_equal(store_audit_add(f->s,
                                     &(struct store_audit){.id = "aud_x", .principal = "anon",
                                                           .agent = "logs", .tool = "bash",
                                                           .kind = "shell", .target = "ls",
                                                           .decision = "perhaps"},
                                     on_result, &w, NULL, &e),
                     GW_EINVAL);
    assert_int_equal(store_audit_list(f->s, &(struct store_audit_filter){.decision = "x"},
                                      on_alist, &a, NULL, &e),
                     GW_EINVAL);
    assert_int_equal(store_audit_list(f->s, &(struct store_audit_filter){.limit = 1001},
                                      on_alist, &a, NULL, &e),
                     GW_EINVAL);
    drain(f);
    assert_int_equal(w.calls, 0);

    /* An id is unique: a second add with it fails in the callback. */
    w = (struct seen){0};
    assert_int_equal(answer(f, store_audit_add(f->s,
                                               &(struct store_audit){.id = "aud_000000000000000000000001",
                                                                     .principal = "anon",
                                                                     .agent = "logs",
                                                                     .tool = "bash",
                                                                     .kind = "shell",
                                                                     .target = "ls",
                                                                     .decision = "allow"},
                                               on_result, &w, NULL, &e),
                            &w),
                     GW_EIO);
}

static void test_audit_list_filters(void **state)
{
    struct fx *f = *state;
    struct alist a;

    for (int i = 1; i <= 10; i++)
        aadd(f, i, i % 3 ? "logs" : "deploy", i % 4 ? "allow" : "deny", i * 1000);
    a = alist(f, (struct store_audit_filter){.agent = "deploy"});
    assert_int_equal(a.rc, 3); /* 3, 6, 9 */
    assert_string_equal(a.id[0], aud_id(9));
    assert_string_equal(a.id[2], aud_id(3));
    a = alist(f, (struct store_audit_filter){.decision = "deny"});
    assert_int_equal(a.rc, 2); /* 4, 8 */
    assert_string_equal(a.id[0], aud_id(8));
    assert_string_equal(a.decision[1], "deny");
    a = alist(f, (struct store_audit_filter){.agent = "logs", .decision = "deny"});
    assert_int_equal(a.rc, 2);
    a = alist(f, (struct store_audit_filter){.principal = KEY_A});
    assert_int_equal(a.rc, 5); /* the odd ones */
    a = alist(f, (struct store_audit_filter){.since_ms = 7000});
    assert_int_equal(a.rc, 4); /* 7..10 */
    assert_string_equal(a.id[3], aud_id(7));

    /* limit, and whether more matched */
    a = alist(f, (struct store_audit_filter){.limit = 3});
    assert_int_equal(a.rc, 3);
    assert_true(a.more);
    assert_string_equal(a.id[0], aud_id(10));
    a = alist(f, (struct store_audit_filter){.limit = 10});
    assert_int_equal(a.rc, 10);
    assert_false(a.more);

    /* after_seq: oldest first past the seq, as a follower pages */
    a = alist(f, (struct store_audit_filter){.limit = 3});
    {
        int64_t mid = a.seq[2]; /* row 8 */
        a = alist(f, (struct store_audit_filter){.after_seq = mid});
        assert_int_equal(a.rc, 2);
        assert_string_equal(a.id[0], aud_id(9));
        assert_string_equal(a.id[1], aud_id(10));
        a = alist(f, (struct store_audit_filter){.after_seq = mid, .limit = 1});
        assert_int_equal(a.rc, 1);
        assert_true(a.more);
        assert_string_equal(a.id[0], aud_id(9));
        a = alist(f, (struct store_audit_filter){.after_seq = mid + 2});
        assert_int_equal(a.rc, 0);
        assert_false(a.more);
    }
}

/* The agent filter walks its index: no table scan, no sort. */
static void test_audit_uses_index(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = raw_open(f->db);
    sqlite3_stmt *st = NULL;
    char plan[512] = "";

    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT seq FROM audit WHERE agent = "
                                        "'logs' ORDER BY seq DESC LIMIT 10",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        snprintf(plan + strlen(plan), sizeof(plan) - strlen(plan), "%s;",
                 (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    print_message("plan: %s\n", plan);
    assert_non_null(strstr(plan, "audit_agent_seq"));
    assert_null(strstr(plan, "TEMP B-TREE"));
}

/* Rows past the TTL go every 256 adds; without a TTL they stay. */
static void test_audit_ttl(void **state)
{
    struct fx *f = *state;
    int64_t now = util_wall_ms();
    struct alist a;

    for (int i = 1; i <= 255; i++)
        aadd(f, i, "logs", "allow", i < 10 ? now - 10 * 86400000LL : now);
    store_audit_set_ttl(f->s, 86400000LL); /* a day */
    a = alist(f, (struct store_audit_filter){.since_ms = 1, .limit = 1000});
    assert_int_equal(a.rc, 255);
    aadd(f, 256, "logs", "allow", now); /* the 256th add trims */
    a = alist(f, (struct store_audit_filter){.limit = 1000});
    assert_int_equal(a.rc, 256 - 9);
    a = alist(f, (struct store_audit_filter){.after_seq = 0, .limit = 1000, .since_ms = 1});
    assert_int_equal(a.rc, 247);
    /* A TTL of 0 keeps everything. */
    store_audit_set_ttl(f->s, 0);
    for (int i = 257; i <= 512; i++)
        aadd(f, i, "logs", "allow", 5);
    a = alist(f, (struct store_audit_filter){.limit = 1000});
    assert_int_equal(a.rc, 247 + 256);
}

/* A schema 3 file gains the audit table, keeps its responses, and is at version 4. */
static void test_migrate_from_v3(void **state)
{
    struct fx *f = *state;
    struct gw_err e;
    char text[32];
    sqlite3 *db;
    struct alist a;

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL, pin "
                     "TEXT, model TEXT NOT NULL, last_used INTEGER NOT NULL);"
                     "CREATE INDEX sessions_head_pin ON sessions(head, pin, last_used);"
                     "CREATE TABLE responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT, created "
                     "INTEGER NOT NULL, input TEXT NOT NULL, response TEXT NOT NULL);"
                     "CREATE INDEX responses_created ON responses(created);"
                     "ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
                     "INSERT INTO responses VALUES('resp_v3',NULL,1,'[]','{}','" KEY_A "');"
                     "PRAGMA user_version = 3;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_int_equal(rget(f, KEY_A, "resp_v3").rc, 1);
    aadd(f, 1, "logs", "allow", 1);
    a = alist(f, (struct store_audit_filter){0});
    assert_int_equal(a.rc, 1);
    assert_int_equal(a.seq[0], 1);
    db = raw_open(f->db);
    raw_text(db, "PRAGMA user_version", text, sizeof(text));
    assert_int_equal(strtol(text, NULL, 10), STORE_SCHEMA_VERSION);
    raw_text(db, "SELECT count(*) FROM keys", text, sizeof(text)); /* v5's table is there */
    assert_string_equal(text, "0");
    sqlite3_close(db);
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
        cmocka_unit_test_setup_teardown(test_memory_store, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_github_tokens, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_audit_add_outcome, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_audit_list_filters, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_audit_uses_index, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_audit_ttl, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v3, setup_dir, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
