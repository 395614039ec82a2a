/* The checkpointer: copies the WAL into gateway.db, fsyncs and all, on a thread of its own. */
#include "store/sqlite.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "util/xmalloc.h"

/* TRUNCATE at close waits this long for a reader or writer of another process. */
#define CKPT_BUSY_TIMEOUT_MS 1000

struct store__ckpt {
    sqlite3 *db; /* used by the thread only, once it runs */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Under mu: */
    int kicked; /* a checkpoint is asked for */
    int stop;
    struct store_stats st;
};

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Runs one checkpoint and counts it: 0 with *log (frames in the WAL when it
 * began) and *done (how many of those are now in the database), or -1.
 * PASSIVE never waits: it copies what no reader needs and leaves the rest;
 * the writer on the loop is never blocked by it.
 */
static int checkpoint(struct store__ckpt *c, int mode, int *log, int *done)
{
    uint64_t t0 = mono_us(), us;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, mode, log, done);

    us = mono_us() - t0;
    pthread_mutex_lock(&c->mu);
    if (rc == SQLITE_OK && *log >= 0) {
        c->st.checkpoints++;
        if (*done > 0 && (uint64_t)*done > c->st.checkpoint_frames_max)
            c->st.checkpoint_frames_max = (uint64_t)*done;
        if (us > c->st.checkpoint_us_max)
            c->st.checkpoint_us_max = us;
    } else {
        /* SQLITE_BUSY (another process checkpoints), a full disk, or (log -1) no WAL: the
         * next kick retries, and the WAL keeps every commit meanwhile. */
        c->st.checkpoint_errors++;
    }
    pthread_mutex_unlock(&c->mu);
    return rc == SQLITE_OK && *log >= 0 ? 0 : -1;
}

static int stopping(struct store__ckpt *c)
{
    int stop;

    pthread_mutex_lock(&c->mu);
    stop = c->stop;
    pthread_mutex_unlock(&c->mu);
    return stop;
}

/*
 * Checkpoints until one finds nothing new: the writer kept committing during
 * the last one, so the WAL it saw was already short of the real one.  Once
 * caught up, the writer's next commit starts the WAL over (it cannot while a
 * checkpoint runs).  A checkpoint that finds nothing to copy does no I/O.  A
 * reader of another process that holds back the copy also ends the round (no
 * progress), as does a failure: the next kick retries.
 */
static void catch_up(struct store__ckpt *c)
{
    int log = -1, done = -1, plog, pdone;

    do {
        plog = log;
        pdone = done;
        if (checkpoint(c, SQLITE_CHECKPOINT_PASSIVE, &log, &done) < 0)
            return;
    } while ((log != plog || done != pdone) && !stopping(c));
}

/* The thread: one catch-up round per kick (sqlite.c kicks once per WAL generation). */
static void *run(void *arg)
{
    struct store__ckpt *c = arg;
    int log, done;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->kicked && !c->stop)
            pthread_cond_wait(&c->cond, &c->mu);
        if (c->stop)
            break;
        c->kicked = 0;
        pthread_mutex_unlock(&c->mu);
        catch_up(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    /* Leave an empty WAL behind: a copy of gateway.db alone is then the whole database. */
    checkpoint(c, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    return NULL;
}

/* Starts the thread with every signal blocked: the process's signals stay the loop's. */
static int start_thread(struct store__ckpt *c)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->thread, NULL, run, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int store__ckpt_start(const char *path, struct store__ckpt **out, struct gw_err *err)
{
    struct store__ckpt *c = xcalloc(1, sizeof(*c));
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

    *out = NULL;
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, CKPT_BUSY_TIMEOUT_MS);
    /* Its own close must not checkpoint again after the TRUNCATE, nor on a full disk. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    /* A connection finds the file in WAL mode on its first read; until then a checkpoint
     * does nothing (and says log -1). */
    rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (start_thread(c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        sqlite3_close(c->db);
        free(c);
        return gw_err_set(err, GW_EIO, "cannot start the checkpointer for '" DB_NAME "'");
    }
    *out = c;
    return GW_OK;

fail:
    sqlite3_close(c->db);
    free(c);
    return store__db_error(err, rc, "open a checkpointer for");
}

void store__ckpt_kick(struct store__ckpt *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    if (!c->kicked) {
        c->kicked = 1;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

void store__ckpt_stop(struct store__ckpt *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void store__ckpt_stats(struct store__ckpt *c, struct store_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->checkpoints = c->st.checkpoints;
    out->checkpoint_frames_max = c->st.checkpoint_frames_max;
    out->checkpoint_us_max = c->st.checkpoint_us_max;
    out->checkpoint_errors = c->st.checkpoint_errors;
    pthread_mutex_unlock(&c->mu);
}
