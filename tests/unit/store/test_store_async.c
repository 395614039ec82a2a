/* Unit tests for the store's asynchronous interface (store/store.h) on SQLite: completions on
 * a later loop turn, cancelling, owners of responses, schema 3, the checkpointer, and the
 * group commit of writes without a callback. */
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>


#include "storetest.h"

/* ---- completions -------------------------------------------------------------------------- */

/* Every operation answers after its call returned, once, and in the order of the calls. */
static void test_callbacks_run_later_in_order(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("s1", HEAD_A, 10);
    struct store_response sr = {"resp_1", NULL, 5, "[]", "{\"status\":\"in_progress\"}", KEY_A};
    struct seen w[12];
    struct gw_err e;
    int i = 0;

    memset(w, 0, sizeof(w));
    sequence = 0;
    assert_int_equal(store_sessions_put(f->s, &ss, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_sessions_find(f->s, HEAD_A, NULL, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_sessions_all(f->s, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_sessions_expire(f->s, 5, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_sessions_delete(f->s, "s1", on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_responses_put(f->s, &sr, 0, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_responses_get(f->s, KEY_A, "resp_1", on_result, &w[i++], NULL, &e),
                     GW_OK);
    assert_int_equal(
        store_responses_chain(f->s, KEY_A, "resp_1", 10, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_responses_fail_unfinished(f->s, "cut", on_result, &w[i++], NULL, &e),
                     GW_OK);
    assert_int_equal(store_responses_expire(f->s, 6, on_result, &w[i++], NULL, &e), GW_OK);
    assert_int_equal(store_responses_delete(f->s, KEY_A, "resp_1", on_result, &w[i++], NULL, &e),
                     GW_OK);
    for (int k = 0; k < i; k++)
        assert_int_equal(w[k].calls, 0); /* nothing ran inside a call */
    drain(f);
    for (int k = 0; k < i; k++) {
        assert_int_equal(w[k].calls, 1);
        assert_int_equal(w[k].order, k + 1);
    }
    assert_int_equal(w[0].rc, 0);
    assert_int_equal(w[1].rc, 1);
    assert_string_equal(w[1].first_id, "s1");
    assert_int_equal(w[2].rc, 1);
    assert_int_equal(w[3].rc, 0);  /* last_used 10 is not before 5 */
    assert_int_equal(w[4].rc, 1);  /* deleted */
    assert_int_equal(w[6].rc, 1);
    assert_int_equal(w[7].rc, 1);
    assert_int_equal(w[8].rc, 1);  /* the in_progress one */
    assert_int_equal(w[9].rc, 1);  /* created 5 < 6 */
    assert_int_equal(w[10].rc, 0); /* already expired */
}

/* A callback that starts another operation gets that answer on a later turn, not inside. */
struct chained {
    struct fx *f;
    struct seen inner;
    int inner_calls_at_return;
};

static void start_inner(void *ud, const struct store_result *res)
{
    struct chained *c = ud;
    struct gw_err e;

    assert_int_equal(store_sessions_all(c->f->s, on_result, &c->inner, NULL, &e), GW_OK);
    c->inner_calls_at_return = c->inner.calls;
}

static void test_callback_may_call_store(void **state)
{
    struct fx *f = *state;
    struct chained c = {f, {0}, -1};
    struct gw_err e;

    assert_int_equal(store_sessions_all(f->s, start_inner, &c, NULL, &e), GW_OK);
    drain(f);
    assert_int_equal(c.inner_calls_at_return, 0);
    assert_int_equal(c.inner.calls, 1);
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("s1", HEAD_A, 1);
    struct seen put = {0}, find = {0}, kept = {0};
    struct store_stats st;
    uint64_t id_put = 0, id_find = 0, id_kept = 0;
    struct gw_err e;

    assert_int_equal(store_sessions_put(f->s, &ss, on_result, &put, &id_put, &e), GW_OK);
    assert_int_equal(store_sessions_find(f->s, HEAD_A, NULL, on_result, &find, &id_find, &e),
                     GW_OK);
    assert_int_equal(store_sessions_all(f->s, on_result, &kept, &id_kept, &e), GW_OK);
    assert_true(id_put && id_find && id_kept);
    assert_true(id_put != id_find && id_find != id_kept);
    store_stats(f->s, &st);
    assert_int_equal(st.pending, 3);
    store_cancel(f->s, id_put);
    store_cancel(f->s, id_find);
    store_cancel(f->s, 999999); /* unknown: nothing */
    drain(f);
    assert_int_equal(put.calls, 0);
    assert_int_equal(find.calls, 0);
    assert_int_equal(kept.calls, 1);
    store_cancel(f->s, id_kept); /* delivered already: nothing */
    store_stats(f->s, &st);
    assert_int_equal(st.pending, 0);
    /* Cancelling dropped the answer, not the write. */
    assert_int_equal(kept.rc, 1);
}

/* Closing with answers still queued drops them; ASan would see a leak or a late call. */
static void test_close_drops_pending(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("s1", HEAD_A, 1);
    struct seen w = {0};
    struct gw_err e;

    assert_int_equal(store_sessions_put(f->s, &ss, on_result, &w, NULL, &e), GW_OK);
    assert_int_equal(store_sessions_all(f->s, on_result, &w, NULL, &e), GW_OK);
    store_close(f->s);
    f->s = NULL;
    drain(f);
    assert_int_equal(w.calls, 0);
}

static void test_invalid_calls_never_call_back(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("", HEAD_A, 1);
    struct store_response no_owner = {"resp_x", NULL, 1, "[]", "{}", NULL};
    struct store_response empty_owner = {"resp_x", NULL, 1, "[]", "{}", ""};
    struct store *legacy = NULL;
    struct seen w = {0};
    uint64_t id = 77;
    struct gw_err e;

    assert_int_equal(store_sessions_put(f->s, &ss, on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(id, 77);
    assert_int_equal(store_sessions_find(f->s, NULL, NULL, on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(store_sessions_find(f->s, HEAD_A, NULL, NULL, NULL, &id, &e), GW_EINVAL);
    assert_int_equal(store_sessions_all(f->s, NULL, NULL, NULL, &e), GW_EINVAL);
    assert_int_equal(store_responses_put(f->s, &no_owner, 0, on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(store_responses_put(f->s, &empty_owner, 0, on_result, &w, &id, &e),
                     GW_EINVAL);
    assert_int_equal(store_responses_get(f->s, NULL, "resp_x", on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(store_responses_get(f->s, "", "resp_x", on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(store_responses_chain(f->s, KEY_A, "resp_x", 0, on_result, &w, &id, &e),
                     GW_EINVAL);
    assert_int_equal(store_responses_chain(f->s, KEY_A, "resp_x", STORE_CHAIN_MAX + 1, on_result,
                                           &w, &id, &e),
                     GW_EINVAL);
    assert_int_equal(store_responses_delete(f->s, KEY_A, NULL, on_result, &w, &id, &e), GW_EINVAL);
    assert_int_equal(id, 77);

    /* A store opened without a loop takes no asynchronous call. */
    assert_int_equal(store_sqlite_open(NULL, f->dir, &legacy, &e), GW_OK);
    ss = session("s1", HEAD_A, 1);
    assert_int_equal(store_sessions_put(legacy, &ss, on_result, &w, &id, &e), GW_EINVAL);
    print_message("error: %s\n", e.msg);
    store_close(legacy);
    drain(f);
    assert_int_equal(w.calls, 0);
}

/* ---- owners -------------------------------------------------------------------------------- */

static void test_owner_isolation(void **state)
{
    struct fx *f = *state;
    struct seen w;
    sqlite3 *db;

    rput(f, KEY_A, "resp_a1", NULL);
    rput(f, KEY_A, "resp_a2", "resp_a1");
    rput(f, KEY_A, "resp_a3", "resp_a2");

    /* A sees its own. */
    w = rget(f, KEY_A, "resp_a2");
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.first_id, "resp_a2");
    w = rchain(f, KEY_A, "resp_a3", 10);
    assert_int_equal(w.rc, 3);
    assert_string_equal(w.ids[0], "resp_a3");
    assert_string_equal(w.ids[1], "resp_a2");
    assert_string_equal(w.ids[2], "resp_a1");
    assert_string_equal(w.prev_last, "");

    /* B and anon see nothing of it: get, chain and delete are all "not found". */
    assert_int_equal(rget(f, KEY_B, "resp_a2").rc, 0);
    assert_int_equal(rget(f, "anon", "resp_a2").rc, 0);
    assert_int_equal(rchain(f, KEY_B, "resp_a3", 10).rc, 0);
    assert_int_equal(rdelete(f, KEY_B, "resp_a2").rc, 0);
    assert_int_equal(rget(f, KEY_A, "resp_a2").rc, 1); /* still there */

    /* B continuing A's response by id reaches only B's own part of the chain. */
    rput(f, KEY_B, "resp_b1", "resp_a3");
    w = rchain(f, KEY_B, "resp_b1", 10);
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.prev_last, "resp_a3"); /* the chain was cut */

    /* The bound: max rows, the last one still has a prev. */
    w = rchain(f, KEY_A, "resp_a3", 2);
    assert_int_equal(w.rc, 2);
    assert_string_equal(w.prev_last, "resp_a1");

    /* A deleted middle link cuts the chain for its owner too. */
    assert_int_equal(rdelete(f, KEY_A, "resp_a2").rc, 1);
    w = rchain(f, KEY_A, "resp_a3", 10);
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.prev_last, "resp_a2");

    /* A row from before owners (owner '') is anon's only. */
    w = rget(f, KEY_B, "resp_b1");
    assert_string_equal(w.sr.owner, KEY_B);
    db = raw_open(f->db);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO responses VALUES('resp_legacy', NULL, 1, "
                                      "'[]', '{}', '')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rget(f, "anon", "resp_legacy").rc, 1);
    assert_int_equal(rget(f, KEY_A, "resp_legacy").rc, 0);
    assert_int_equal(rdelete(f, KEY_A, "resp_legacy").rc, 0);
    assert_int_equal(rdelete(f, "anon", "resp_legacy").rc, 1);
}

/* A gateway.db written by schema 2 (no owners) becomes schema 3 and keeps its rows; they
 * belong to "anon". */
static void test_migrate_from_v2(void **state)
{
    struct fx *f = *state;
    struct seen w;
    struct gw_err e;
    sqlite3 *db;
    sqlite3_stmt *st;

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL;"
                     "CREATE TABLE sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL,"
                     " pin TEXT, model TEXT NOT NULL, last_used INTEGER NOT NULL);"
                     "CREATE INDEX sessions_head_pin ON sessions(head, pin, last_used);"
                     "CREATE TABLE responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT,"
                     " created INTEGER NOT NULL, input TEXT NOT NULL, response TEXT NOT NULL);"
                     "CREATE INDEX responses_created ON responses(created);"
                     "INSERT INTO sessions VALUES('s1','" HEAD_A "','pin','m',5);"
                     "INSERT INTO responses VALUES('resp_old1', NULL, 1, '[]', '{}');"
                     "INSERT INTO responses VALUES('resp_old2', 'resp_old1', 2, '[1]', '{}');"
                     "PRAGMA user_version = 2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    w = (struct seen){0};
    assert_int_equal(answer(f, store_sessions_find(f->s, HEAD_A, "pin", on_result, &w, NULL, &e),
                            &w),
                     1);
    assert_string_equal(w.first_id, "s1");
    w = rchain(f, "anon", "resp_old2", 10);
    assert_int_equal(w.rc, 2);
    assert_string_equal(w.ids[1], "resp_old1");
    assert_int_equal(rget(f, KEY_A, "resp_old1").rc, 0);
    rput(f, KEY_A, "resp_new", "resp_old2");

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- durability and the checkpointer ------------------------------------------------------ */

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Waits (up to 20 s, polling; a bound, not a timing claim) until the checkpointer has run. */
static void wait_checkpoints(struct store *s, uint64_t at_least, struct store_stats *st)
{
    for (int i = 0; i < 2000; i++) {
        store_stats(s, st);
        if (st->checkpoints >= at_least)
            return;
        usleep(10 * 1000);
    }
    fail_msg("the checkpointer never ran");
}

/*
 * With automatic checkpoints off on the loop's connection, only the
 * checkpointer keeps the WAL from growing: after 16 MB of puts the WAL is
 * back under its 4 MB limit, and store_close() leaves no WAL behind.
 */
static void test_checkpointer_runs(void **state)
{
    struct fx *f = *state;
    static char big[64 * 1024];
    struct store_stats st;
    struct gw_err e;
    char wal[160];
    off_t before, after;

    snprintf(wal, sizeof(wal), "%s-wal", f->db);
    memset(big, 'x', sizeof(big) - 1);
    for (int i = 0; i < 256; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", big, KEY_A};
        snprintf(id, sizeof(id), "resp_%d", i);
        assert_int_equal(store_responses_put(f->s, &sr, 0, NULL, NULL, NULL, &e), GW_OK);
        drain(f);
    }
    wait_checkpoints(f->s, 1, &st);
    before = file_size(wal);
    /* Once the WAL is checkpointed, the next commit starts it over and truncates it. */
    for (int i = 0; i < 200; i++) {
        struct store_session ss = session("s1", HEAD_A, i);
        assert_int_equal(store_sessions_put(f->s, &ss, NULL, NULL, NULL, &e), GW_OK);
        drain(f);
        store_stats(f->s, &st);
        if (file_size(wal) <= 4 * 1024 * 1024 + 64 * 1024)
            break;
        usleep(10 * 1000);
    }
    after = file_size(wal);
    print_message("checkpoints %llu, most frames %llu, longest %llu us; WAL %lld -> %lld bytes\n",
                  (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoint_frames_max,
                  (unsigned long long)st.checkpoint_us_max, (long long)before, (long long)after);
    assert_true(st.checkpoint_frames_max >= STORE_CHECKPOINT_PAGES);
    assert_true(after <= 4 * 1024 * 1024 + 64 * 1024);
    store_close(f->s);
    f->s = NULL;
    assert_true(file_size(wal) <= 0); /* gone, or truncated to nothing */
    /* Everything acknowledged is in the database file. */
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_int_equal(rget(f, KEY_A, "resp_255").rc, 1);
    assert_int_equal(rget(f, KEY_A, "resp_0").rc, 1);
}

/* A put that finds no room answers 507 through its callback, as the old API returns it. */
static void test_async_write_failure_is_507(void **state)
{
    struct fx *f = *state;
    static char big[64 * 1024 + 32];
    struct rlimit old, lim;
    struct seen w = {0};
    struct gw_err e;
    int i, writable;

    memset(big, 'x', sizeof(big) - 1);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (i = 0; i < 100 && w.rc == GW_OK; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", big, KEY_A};
        snprintf(id, sizeof(id), "resp_big%d", i);
        memset(&w, 0, sizeof(w));
        assert_int_equal(store_responses_put(f->s, &sr, 0, on_result, &w, NULL, &e), GW_OK);
        drain(f);
        assert_int_equal(w.calls, 1);
    }
    /* No room even for store_writable()'s probe write. */
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    writable = store_writable(f->s, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    print_message("put %d failed: %s\n", i, w.err.msg);
    assert_int_equal(w.rc, GW_EIO);
    assert_int_equal(w.err.http_status, STORE_HTTP_NO_STORAGE);
    assert_string_equal(w.err.api_code, "insufficient_storage");
    assert_non_null(strstr(w.err.msg, "'gateway.db'"));
    assert_null(strstr(w.err.msg, f->dir));
    assert_null(strstr(w.err.msg, "INSERT"));
    assert_int_equal(writable, 0);
    assert_int_equal(e.http_status, STORE_HTTP_NO_STORAGE);
}


/* ---- group commit: writes without a callback ------------------------------------------- */

/* What another connection (another process: the CLI, a backup) sees of f's file. */
static int raw_count(struct fx *f, const char *sql)
{
    sqlite3 *db = raw_open(f->db);
    sqlite3_stmt *st;
    int n;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int usage_rows(struct fx *f)
{
    return raw_count(f, "SELECT count(*) FROM usage");
}

static int session_rows(struct fx *f, const char *sid)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions WHERE sid = '%s'", sid);
    return raw_count(f, sql);
}

/* A usage row as http/flow.c records it: no callback. */
static void usage_queue(struct fx *f, int i)
{
    char rid[32];
    struct store_usage u = {.ts = 1000 + i, .request_id = rid, .principal = "vk:x",
                            .key_name = "alice", .model = "gpt-5", .api = "chat",
                            .status = 200, .input_tokens = i, .output_tokens = 1};
    struct gw_err e;

    snprintf(rid, sizeof(rid), "req-%d", i);
    assert_int_equal(store_usage_add(f->s, &u, NULL, NULL, NULL, &e), GW_OK);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Queued writes are not in the file yet (another connection sees none of
 * them), but any operation of the same store sees them: it commits the
 * queue first.  The loop never runs in between, so the timer cannot have.
 */
static void test_gc_read_your_writes(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("s1", HEAD_A, 10);
    struct store_usage_query q = {.group_by = "key"};
    struct seen w = {0};
    struct gw_err e;

    assert_int_equal(store_sessions_put(f->s, &ss, NULL, NULL, NULL, &e), GW_OK);
    usage_queue(f, 1);
    usage_queue(f, 2);
    assert_int_equal(session_rows(f, "s1"), 0);
    assert_int_equal(usage_rows(f), 0);
    assert_int_equal(store_sessions_find(f->s, HEAD_A, NULL, on_result, &w, NULL, &e), GW_OK);
    assert_int_equal(session_rows(f, "s1"), 1); /* committed by the call, before its answer */
    assert_int_equal(usage_rows(f), 2);
    assert_int_equal(answer(f, GW_OK, &w), 1);
    assert_string_equal(w.first_id, "s1");

    /* A queued delete is seen too, and so are usage rows by the report (/admin/usage). */
    assert_int_equal(store_sessions_delete(f->s, "s1", NULL, NULL, NULL, &e), GW_OK);
    usage_queue(f, 3);
    memset(&w, 0, sizeof(w));
    assert_int_equal(answer(f, store_sessions_find(f->s, HEAD_A, NULL, on_result, &w, NULL, &e),
                            &w),
                     0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_usage_report(f->s, &q, on_result, &w, NULL, &e), GW_OK);
    assert_int_equal(usage_rows(f), 3);
    assert_int_equal(answer(f, GW_OK, &w), 1); /* one group: alice */

    /* A write with a callback commits the queue before itself. */
    usage_queue(f, 4);
    ss = session("s2", HEAD_B, 20);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_sessions_put(f->s, &ss, on_result, &w, NULL, &e), GW_OK);
    assert_int_equal(usage_rows(f), 4);
    assert_int_equal(session_rows(f, "s2"), 1);
    assert_int_equal(answer(f, GW_OK, &w), 0);
}

/* Left alone, the queue is committed by the loop STORE_GROUP_COMMIT_MS after its first write. */
static void test_gc_timer(void **state)
{
    struct fx *f = *state;
    struct store_session ss = session("s1", HEAD_A, 10);
    struct gw_err e;
    int64_t t0 = mono_ms(), waited;
    int turns = 0;

    usage_queue(f, 1);
    assert_int_equal(store_sessions_put(f->s, &ss, NULL, NULL, NULL, &e), GW_OK);
    drain(f);
    /* Each turn blocks until something is due; with nothing left to run it returns 1. */
    while (usage_rows(f) == 0 && turns++ < 10)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    waited = mono_ms() - t0;
    print_message("queue committed by the timer after %lld ms, %d loop turns\n",
                  (long long)waited, turns);
    assert_int_equal(usage_rows(f), 1);
    assert_int_equal(session_rows(f, "s1"), 1);
    /* libevent's timers run on CLOCK_MONOTONIC_COARSE (a tick is 4 ms here): seen at 97 ms */
    assert_true(waited >= STORE_GROUP_COMMIT_MS - 10);
    /* Nothing is armed any more: the loop has nothing left to wait for. */
    assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 1);
}

/* The STORE_GROUP_COMMIT_MAXth queued write commits the queue at once, in its own call. */
static void test_gc_full_queue(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < STORE_GROUP_COMMIT_MAX - 1; i++)
        usage_queue(f, i);
    assert_int_equal(usage_rows(f), 0);
    usage_queue(f, STORE_GROUP_COMMIT_MAX - 1);
    assert_int_equal(usage_rows(f), STORE_GROUP_COMMIT_MAX);
    usage_queue(f, STORE_GROUP_COMMIT_MAX);
    assert_int_equal(usage_rows(f), STORE_GROUP_COMMIT_MAX); /* a new queue */
}

/*
 * store_close() (the SIGTERM path) commits the queue, in call order: a put
 * then a delete of one row ends deleted, a delete then a put ends put, the
 * last of two puts wins.
 */
static void test_gc_close_commits_in_order(void **state)
{
    struct fx *f = *state;
    struct store_session a = session("s1", HEAD_A, 10), b = session("s2", HEAD_A, 20);
    struct gw_err e;

    assert_int_equal(store_sessions_put(f->s, &a, NULL, NULL, NULL, &e), GW_OK);
    assert_int_equal(store_sessions_delete(f->s, "s1", NULL, NULL, NULL, &e), GW_OK);
    assert_int_equal(store_sessions_delete(f->s, "s2", NULL, NULL, NULL, &e), GW_OK);
    assert_int_equal(store_sessions_put(f->s, &b, NULL, NULL, NULL, &e), GW_OK);
    b.last_used = 30;
    b.model = "claude";
    assert_int_equal(store_sessions_put(f->s, &b, NULL, NULL, NULL, &e), GW_OK);
    for (int i = 0; i < 5; i++)
        usage_queue(f, i);
    assert_int_equal(usage_rows(f), 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(usage_rows(f), 5);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM usage"
                                  " WHERE request_id = 'req-' || (ts - 1000)"
                                  " AND input_tokens = ts - 1000 AND key_name = 'alice'"),
                     5); /* each row as given */
    assert_int_equal(session_rows(f, "s1"), 0);
    assert_int_equal(raw_count(f, "SELECT count(*) FROM sessions WHERE sid = 's2'"
                                  " AND last_used = 30 AND model = 'claude'"),
                     1);
}

/*
 * A commit that fails (another process holds the write lock past the busy
 * timeout) loses the queue and says so in one line with the count; the
 * store reports it unwritable, and the next queue commits again.
 */
static void test_gc_failure_logged_once(void **state)
{
    struct fx *f = *state;
    char logpath[160], logs[4096];
    struct gw_err e;
    sqlite3 *holder = raw_open(f->db);
    const char *line;
    int saved, fd;

    usage_queue(f, 1);
    usage_queue(f, 2);
    usage_queue(f, 3);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
    fflush(stderr);
    saved = dup(2);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);
    {
        struct seen w = {0};
        /* The read commits first; its own answer comes from the snapshot it can read. */
        assert_int_equal(answer(f, store_sessions_all(f->s, on_result, &w, NULL, &e), &w), 0);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    {
        FILE *in = fopen(logpath, "r");
        size_t k;
        assert_non_null(in);
        k = fread(logs, 1, sizeof(logs) - 1, in);
        logs[k] = '\0';
        fclose(in);
    }
    print_message("%s", logs);
    line = strstr(logs, "3 queued writes lost");
    assert_non_null(line);
    assert_null(strstr(line + strlen("3 queued writes lost"), "queued writes lost")); /* once */
    assert_non_null(strstr(logs, " store "));
    assert_non_null(strstr(logs, "'gateway.db'"));
    assert_int_equal(store_writable(f->s, &e), 1); /* the probe works again: lock released */
    assert_int_equal(usage_rows(f), 0);
    usage_queue(f, 4);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(usage_rows(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_callbacks_run_later_in_order, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_callback_may_call_store, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_close_drops_pending, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_calls_never_call_back, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_owner_isolation, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_checkpointer_runs, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_async_write_failure_is_507, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_gc_read_your_writes, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_gc_timer, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_gc_full_queue, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_gc_close_commits_in_order, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_gc_failure_logged_once, setup_open, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
