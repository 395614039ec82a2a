/*
 * The session table: live runtime sessions found by the history they hold
 * (and their pin), evicted by LRU, idle and tool timeouts and the cap,
 * closed in the runtime, recorded in the store while idle and brought back
 * from it when dormant.  Every call into store/store.h is in this file.
 */
#include "broker/broker_int.h"

#include <assert.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "broker/seed.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* ---- owners ---------------------------------------------------------------------- */

void sess_owner_set(struct sess_owner *o, const char *principal,
                    const struct session_profile *profile, const char *github_token)
{
    snprintf(o->principal, sizeof(o->principal), "%s", principal ? principal : "");
    o->profile = profile ? profile : &profile_pure_model;
    o->github_token = github_token && *github_token ? xstrdup(github_token) : NULL;
    o->token_fp[0] = '\0';
    if (o->github_token) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(o->github_token, strlen(o->github_token), md, &len, EVP_sha256(), NULL) ==
                1 &&
            len >= 8)
            for (int i = 0; i < 8; i++)
                snprintf(o->token_fp + 2 * i, 3, "%02x", md[i]);
        else
            snprintf(o->token_fp, sizeof(o->token_fp), "unhashed");
    }
}

void sess_owner_who(const struct sess_owner *o, char *out, size_t n)
{
    if (o->token_fp[0])
        snprintf(out, n, "%s\x1fgh:%s", o->principal, o->token_fp);
    else
        snprintf(out, n, "%s", o->principal);
}

void sess_owner_copy(struct sess_owner *dst, const struct sess_owner *src)
{
    sess_owner_set(dst, src->principal, src->profile, src->github_token);
}

void sess_owner_release(struct sess_owner *o)
{
    if (o->github_token) {
        memset(o->github_token, 0, strlen(o->github_token)); /* a secret: leave no copy */
        free(o->github_token);
    }
    o->github_token = NULL;
}

static int owner_eq(const struct sess_owner *a, const struct sess_owner *b)
{
    return strcmp(a->principal, b->principal) == 0 && a->profile == b->profile &&
           strcmp(a->token_fp, b->token_fp) == 0;
}

json_t *sess__params(const struct sess *s, const struct conv *c, int warmup)
{
    const struct broker *b = s->b;

    return profile_session_params(s->owner.profile, c, s->sid,
                                  warmup ? b->warmup_provider : b->provider, b->workdir,
                                  s->owner.github_token);
}

/* ---- the indexes (broker_int.h) ------------------------------------------------------ */

#define IX_MIN_SLOTS 64

/* Spreads a key over the slots (the splitmix64 finaliser): pins and ids are hashed with
 * FNV-1a, whose low bits alone are poor. */
static uint64_t ix_mix(uint64_t k)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    return k ^ (k >> 31);
}

static uint64_t str_key(const char *str)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (const unsigned char *p = (const unsigned char *)str; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static uint64_t head_key(const struct hash *h)
{
    uint64_t k;

    memcpy(&k, h->b, sizeof(k)); /* SHA-256: any 8 bytes are as good as a hash */
    return k;
}

/* A pinned session's key: its pin and its conversation root, so that one client's many
 * conversations under one pin do not share a chain. */
static uint64_t pin_key(const char *pin, const struct hash *root)
{
    return str_key(pin) ^ ix_mix(head_key(root));
}

static void ix_link(struct sess_hindex *x, int ix, struct sess *s)
{
    struct sess **slot = &x->slot[ix_mix(s->hl[ix].key) & x->mask];

    s->hl[ix].prev = NULL;
    s->hl[ix].next = *slot;
    if (*slot)
        (*slot)->hl[ix].prev = s;
    *slot = s;
}

/* Doubles the slots once there are as many entries (chains stay about one long). */
static void ix_grow(struct sess_hindex *x, int ix)
{
    struct sess **old = x->slot;
    size_t nold = x->slot ? x->mask + 1 : 0;
    size_t nslots = nold ? 2 * nold : IX_MIN_SLOTS;

    x->slot = xcalloc(nslots, sizeof(*x->slot));
    x->mask = nslots - 1;
    for (size_t i = 0; i < nold; i++)
        for (struct sess *s = old[i], *n; s; s = n) {
            n = s->hl[ix].next;
            ix_link(x, ix, s);
        }
    free(old);
}

static void ix_add(struct broker *b, int ix, struct sess *s, uint64_t key)
{
    struct sess_hindex *x = &b->ix[ix];

    assert(!s->hl[ix].in);
    if (!x->slot || x->n >= x->mask + 1)
        ix_grow(x, ix);
    s->hl[ix].key = key;
    s->hl[ix].in = 1;
    ix_link(x, ix, s);
    x->n++;
}

/* Takes s out of index ix (safe if it is not in it); the last one out frees the slots, so
 * that the broker's sessions going (broker_free()) leaves nothing behind. */
static void ix_del(struct broker *b, int ix, struct sess *s)
{
    struct sess_hindex *x = &b->ix[ix];
    struct sess_hlink *l = &s->hl[ix];

    if (!l->in)
        return;
    if (l->prev)
        l->prev->hl[ix].next = l->next;
    else
        x->slot[ix_mix(l->key) & x->mask] = l->next;
    if (l->next)
        l->next->hl[ix].prev = l->prev;
    memset(l, 0, sizeof(*l));
    if (--x->n == 0) {
        free(x->slot);
        x->slot = NULL;
        x->mask = 0;
    }
}

/* The first session of key's bucket (walk on with ->hl[ix].next and compare the key). */
static struct sess *ix_bucket(const struct broker *b, int ix, uint64_t key)
{
    const struct sess_hindex *x = &b->ix[ix];

    return x->slot ? x->slot[ix_mix(key) & x->mask] : NULL;
}

/* 1 if a is evicted before b: used less recently, or as recently and newer (the order of
 * the scan over b->sessions, newest first, that these queues replace). */
static int evicts_before(const struct sess *a, const struct sess *b)
{
    return a->last_used_ms < b->last_used_ms ||
           (a->last_used_ms == b->last_used_ms && a->seq > b->seq);
}

/* Puts s in q at its place by last use: at the front, unless the clock went back or
 * several sessions share a millisecond. */
static void q_insert(struct sess_queue *q, int k, struct sess *s)
{
    struct sess *at = q->front;

    while (at && evicts_before(s, at))
        at = at->ql[k].next;
    s->ql[k].next = at;
    s->ql[k].prev = at ? at->ql[k].prev : q->back;
    if (s->ql[k].prev)
        s->ql[k].prev->ql[k].next = s;
    else
        q->front = s;
    if (at)
        at->ql[k].prev = s;
    else
        q->back = s;
}

static void q_remove(struct sess_queue *q, int k, struct sess *s)
{
    if (s->ql[k].prev)
        s->ql[k].prev->ql[k].next = s->ql[k].next;
    else
        q->front = s->ql[k].next;
    if (s->ql[k].next)
        s->ql[k].next->ql[k].prev = s->ql[k].prev;
    else
        q->back = s->ql[k].prev;
    s->ql[k].next = s->ql[k].prev = NULL;
}

/* The queue of s's state, or NULL for busy and closing sessions (in none). */
static struct sess_queue *state_queue(struct sess *s)
{
    return s->state == SS_IDLE ? &s->b->idle : s->state == SS_PARKED ? &s->b->parked : NULL;
}

static void q_leave(struct sess *s)
{
    struct sess_queue *q = state_queue(s);

    if (!q)
        return;
    q_remove(q, SQ_STATE, s);
    if (s->state == SS_IDLE && s->prof)
        q_remove(&s->prof->idle, SQ_PROFILE, s);
}

static void q_enter(struct sess *s)
{
    struct sess_queue *q = state_queue(s);

    if (!q)
        return;
    q_insert(q, SQ_STATE, s);
    if (s->state == SS_IDLE && s->prof)
        q_insert(&s->prof->idle, SQ_PROFILE, s);
}

/* The entry of profile, or NULL.  Linear in the profiles with live sessions (the pure
 * model and the configured agents), not in the sessions. */
static struct sess_prof *prof_find(struct broker *b, const struct session_profile *profile)
{
    for (struct sess_prof *e = b->profs; e; e = e->next)
        if (e->profile == profile)
            return e;
    return NULL;
}

static struct sess_prof *prof_get(struct broker *b, const struct session_profile *profile)
{
    struct sess_prof *e = prof_find(b, profile);

    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->profile = profile;
        e->next = b->profs;
        b->profs = e;
    }
    e->n++;
    return e;
}

static void prof_put(struct broker *b, struct sess_prof *e)
{
    if (--e->n > 0)
        return;
    assert(!e->idle.front);
    for (struct sess_prof **pp = &b->profs; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e);
}

void sess__set_head(struct sess *s, const struct hash *h)
{
    ix_del(s->b, SIX_HEAD, s);
    s->head = *h;
    ix_add(s->b, SIX_HEAD, s, head_key(h));
}

void sess__touch(struct sess *s, uint64_t now_ms)
{
    q_leave(s);
    s->last_used_ms = now_ms;
    q_enter(s);
}

/* Clears s's pin (its conversation was edited). */
static void sess_drop_pin(struct sess *s)
{
    ix_del(s->b, SIX_PIN, s);
    free(s->pin);
    s->pin = NULL;
}

/* ---- sessions --------------------------------------------------------------------- */

void sess__pcalls_clear(struct sess *s)
{
    for (size_t i = 0; i < s->ncalls; i++) {
        free(s->calls[i].id);
        free(s->calls[i].name);
        free(s->calls[i].request_id);
        buf_release(&s->calls[i].args);
    }
    free(s->calls);
    s->calls = NULL;
    s->ncalls = 0;
}

void sess__set_state(struct sess *s, enum sess_state st)
{
    struct broker *b = s->b;

    q_leave(s);
    if (s->state == SS_PARKED)
        b->st.sessions_parked--;
    if (st == SS_CLOSING && s->prof) {
        prof_put(b, s->prof);
        s->prof = NULL;
    }
    s->state = st;
    if (st == SS_PARKED)
        b->st.sessions_parked++;
    q_enter(s);
}

static void on_sess_event(void *ud, const char *type, const json_t *ev);
static void on_sess_lost(void *ud, const struct gw_err *err);
static void on_sess_request(void *ud, uint64_t req, const char *method, const json_t *params);
static const struct rt_watch_ops sess_watch_ops = {
    .event = on_sess_event, .lost = on_sess_lost, .request = on_sess_request};

struct sess *sess__new(struct rtp *p, const char *sid, const char *pin, const char *model,
                       const struct sess_owner *owner, const struct hash *root)
{
    struct broker *b = p->b;
    struct sess *s = xcalloc(1, sizeof(*s));
    s->b = b;
    s->p = p;
    p->nsess++;
    p->opened++;
    if (sid)
        snprintf(s->sid, sizeof(s->sid), "%s", sid);
    else
        util_uuid(s->sid);
    s->pin = xstrdup(pin);
    s->model = xstrdup(model);
    sess_owner_copy(&s->owner, owner);
    s->root = *root;
    s->gen = rt_generation(p->rt);
    s->state = SS_BUSY;
    s->last_used_ms = util_now_ms();
    s->seq = ++b->sess_seq;
    s->prof = prof_get(b, s->owner.profile);
    s->next = b->sessions;
    if (b->sessions)
        b->sessions->prev = s;
    b->sessions = s;
    ix_add(b, SIX_SID, s, str_key(s->sid));
    if (s->pin)
        ix_add(b, SIX_PIN, s, pin_key(s->pin, root));
    b->st.sessions_live++;
    return s;
}

void sess__free(struct sess *s)
{
    struct broker *b = s->b;
    if (s->prev)
        s->prev->next = s->next;
    else
        b->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->state != SS_CLOSING)
        b->st.sessions_live--;
    sess__set_state(s, SS_CLOSING);
    for (int ix = 0; ix < SIX_N; ix++)
        ix_del(b, ix, s);
    if (s->watching)
        rt_unwatch(s->p->rt, s->sid);
    s->p->nsess--;
    pool__maybe_recycle(s->p);
    if (s->timer)
        event_free(s->timer);
    sess__pcalls_clear(s);
    sess_owner_release(&s->owner);
    json_decref(s->subagents);
    free(s->pin);
    free(s->model);
    free(s);
}

int sess__watch(struct sess *s)
{
    if (rt_watch(s->p->rt, s->sid, &sess_watch_ops, s))
        return GW_ERUNTIME;
    s->watching = 1;
    return GW_OK;
}

/* ---- the session map (store/store.h, asynchronous) ------------------------------------ */

/* Writes are fire and forget: the store logs a failure, and a row that could not be written
 * only means a reseed instead of a resume later. */
void sess__persist(struct sess *s)
{
    struct broker *b = s->b;
    struct store_session row;
    struct gw_err err;

    if (!b->store)
        return;
    memset(&row, 0, sizeof(row));
    memcpy(row.sid, s->sid, sizeof(row.sid));
    hash_hex(&s->head, row.head);
    row.pin = s->pin;
    row.model = s->model ? s->model : "";
    row.last_used = (int64_t)time(NULL) * 1000;
    if (store_sessions_put(b->store, &row, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "broker", "session=%s cannot record it: %s", s->sid, err.msg);
    else
        s->persisted = 1;
}

void sess__unpersist(struct sess *s)
{
    struct gw_err err;
    if (!s->persisted || !s->b->store)
        return;
    if (store_sessions_delete(s->b->store, s->sid, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "broker", "session=%s cannot forget it: %s", s->sid, err.msg);
    s->persisted = 0;
}

static struct sess *sess_by_sid(struct broker *b, const char *sid)
{
    uint64_t key = str_key(sid);

    for (struct sess *s = ix_bucket(b, SIX_SID, key); s; s = s->hl[SIX_SID].next)
        if (s->hl[SIX_SID].key == key && strcmp(s->sid, sid) == 0)
            return s;
    return NULL;
}

/*
 * The row's session is taken only if it is not live when the answer comes:
 * answers are delivered one at a time on the loop, and the first of two
 * lookups that found the same row makes its session live (sess__new) before
 * the second one's answer runs, so only one turn ever resumes a row.  A read
 * error is logged and counts as no row: the turn opens a new seeded session.
 */
static void on_dormant_found(void *ud, const struct store_result *res)
{
    struct turn *t = ud;
    const char *sid = NULL;

    t->lookup = 0;
    if (res->rc < 0)
        log_msg(LOG_WARN, "broker", "req=%s session map: %s", t->rid, res->err->msg);
    else if (res->rc > 0 && res->n_sessions > 0 && !sess_by_sid(t->b, res->sessions[0].sid))
        sid = res->sessions[0].sid;
    turn__dormant(t, sid);
}

/*
 * A row is found by the head it holds, and the head's root includes the
 * principal and the profile (broker/hash.h): a dormant session only ever
 * comes back to the principal and profile it served.
 */
int sess__find_dormant(struct turn *t, const struct hash *h)
{
    struct broker *b = t->b;
    struct gw_err err;
    char hex[2 * HASH_LEN + 1];

    if (!b->store)
        return 0;
    hash_hex(h, hex);
    if (store_sessions_find(b->store, hex, t->conv->pin, on_dormant_found, t, &t->lookup,
                            &err)) {
        log_msg(LOG_WARN, "broker", "req=%s session map: %s", t->rid, err.msg);
        t->lookup = 0;
        return 0;
    }
    return 1;
}

void sess__lookup_cancel(struct turn *t)
{
    if (t->lookup && t->b->store)
        store_cancel(t->b->store, t->lookup);
    t->lookup = 0;
}

/*
 * Start-up sweep: rows that expired or lost their files go, and so do
 * session directories no row accounts for (sessions of a gateway that was
 * killed, or that were never recorded).  The directory is listed when the
 * broker starts, before any runtime process does, so the sessions opened
 * meanwhile (warm-up) are not in the list; the listed directories are
 * removed only once the rows have been read, and the broker is not ready
 * (broker_ready()) until then, so no turn starts before the sweep is done.
 * If the rows cannot be read, no directory is removed.
 */
struct sweep {
    char **dirs;  /* session-state entries when the broker started */
    size_t ndirs;
    int64_t cutoff;
};

static void sweep_free(struct sweep *w)
{
    for (size_t i = 0; i < w->ndirs; i++)
        free(w->dirs[i]);
    free(w->dirs);
    free(w);
}

static void sweep_finish(struct broker *b, const struct store_result *res)
{
    struct sweep *w = b->sweep;
    size_t kept = 0, removed = 0;
    char path[PATH_MAX];
    struct gw_err err;

    b->sweep = NULL;
    b->sweep_id = 0;
    if (res && res->rc < 0) {
        log_msg(LOG_WARN, "broker", "session map: %s; session files kept", res->err->msg);
        sweep_free(w);
        return;
    }
    for (size_t r = 0; res && r < res->n_sessions; r++) {
        const struct store_session *ss = &res->sessions[r];
        int expired = ss->last_used < w->cutoff;

        snprintf(path, sizeof(path), "%s/session-state/%s/events.jsonl", b->home, ss->sid);
        if (expired || access(path, R_OK) != 0) {
            if (!expired && store_sessions_delete(b->store, ss->sid, NULL, NULL, NULL, &err))
                log_msg(LOG_WARN, "broker", "session map: %s", err.msg);
            seed_remove(b->home, ss->sid);
            continue;
        }
        kept++;
        for (size_t i = 0; i < w->ndirs; i++)
            if (w->dirs[i] && strcmp(w->dirs[i], ss->sid) == 0) {
                free(w->dirs[i]);
                w->dirs[i] = NULL; /* accounted for */
            }
    }
    if (b->store && store_sessions_expire(b->store, w->cutoff, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "broker", "session map: %s", err.msg);
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i]) {
            seed_remove(b->home, w->dirs[i]);
            removed++;
        }
    sweep_free(w);
    log_msg(LOG_INFO, "broker", "%zu resumable session(s) kept, %zu stale session(s) removed",
            kept, removed);
}

static void on_swept_rows(void *ud, const struct store_result *res)
{
    sweep_finish(ud, res);
}

void sess__sweep(struct broker *b)
{
    struct sweep *w = xcalloc(1, sizeof(*w));
    char dir[PATH_MAX];
    struct gw_err err;
    struct dirent *de;
    DIR *d;

    w->cutoff = (int64_t)time(NULL) * 1000 - (int64_t)b->cfg.session_idle_s * 1000;
    snprintf(dir, sizeof(dir), "%s/session-state", b->home);
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        w->dirs = xrealloc(w->dirs, (w->ndirs + 1) * sizeof(char *));
        w->dirs[w->ndirs++] = xstrdup(de->d_name);
    }
    if (d)
        closedir(d);
    b->sweep = w;
    if (!b->store) {
        sweep_finish(b, NULL); /* no rows: nothing is resumable */
        return;
    }
    if (store_sessions_all(b->store, on_swept_rows, b, &b->sweep_id, &err)) {
        struct store_result res = {.rc = err.code ? err.code : GW_EIO, .err = &err};
        sweep_finish(b, &res);
    }
}

void sess__sweep_cancel(struct broker *b)
{
    if (!b->sweep)
        return;
    if (b->store)
        store_cancel(b->store, b->sweep_id);
    sweep_free(b->sweep);
    b->sweep = NULL;
    b->sweep_id = 0;
}

/* ---- closing ------------------------------------------------------------------------ */

static void on_closed(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    /* The runtime is gone or refused, or could not close it (success false: e.g. its disk
     * is full and the final event could not be written): make sure no files are left. */
    if (err || !json_is_true(json_object_get(result, "success")))
        seed_remove(s->b->home, s->sid);
    sess__free(s);
}

static void on_abort_done(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    s->running = 0;
    sess__close_step(s);
}

/* Abort if a runtime turn may be running, then delete. */
void sess__close_step(struct sess *s)
{
    struct broker *b = s->b;
    const char *method = s->running ? "session.abort" : "session.delete";
    rt_reply_cb cb = s->running ? on_abort_done : on_closed;

    if (s->call || (s->turn && s->turn->call))
        return; /* continue from the reply in flight */
    if (!s->created || s->gen != rt_generation(s->p->rt) ||
        rt_call(s->p->rt, method, json_pack("{s:s}", "sessionId", s->sid), CLOSE_TIMEOUT_MS, cb,
                s, &s->call)) {
        seed_remove(b->home, s->sid);
        sess__free(s);
    }
}

void sess__close(struct sess *s, const char *why)
{
    struct broker *b = s->b;

    if (s->state == SS_CLOSING)
        return;
    log_msg(LOG_DEBUG, "broker", "session=%s closing: %s", s->sid, why);
    sess__unpersist(s);
    b->st.sessions_live--;
    sess__set_state(s, SS_CLOSING);
    if (s->timer)
        event_del(s->timer);
    sess__close_step(s);
}

static void on_detached(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    sess__free(s); /* dormant: its files and row stay; any process can resume it */
}

/* An idle session leaves its process: detached it becomes dormant (row and files kept; its
 * next request resumes it on any process), or is closed if it has no row. */
static void sess_retire(struct sess *s, const char *why)
{
    struct broker *b = s->b;

    if (!s->persisted) {
        sess__close(s, why);
        return;
    }
    log_msg(LOG_DEBUG, "broker", "session=%s dormant: %s", s->sid, why);
    b->st.sessions_live--;
    sess__set_state(s, SS_CLOSING);
    if (s->timer)
        event_del(s->timer);
    if (rt_call(s->p->rt, "session.detach", json_pack("{s:s}", "sessionId", s->sid),
                CLOSE_TIMEOUT_MS, on_detached, s, &s->call))
        sess__free(s);
}

/* A draining process hands its idle sessions over: detached, they become
 * dormant and their next request resumes them on another process.  It runs
 * again at each turn's end on that process while it drains: it walks only the
 * idle sessions. */
void sess__hand_over(struct rtp *p)
{
    struct broker *b = p->b;

    for (struct sess *s = b->idle.front, *n; s; s = n) {
        n = s->ql[SQ_STATE].next;
        if (s->p != p || s->call)
            continue;
        sess_retire(s, "its runtime is being recycled");
    }
}

/* ---- timers, lookup, eviction --------------------------------------------------------- */

static void on_sess_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    s->b->st.sessions_evicted++;
    sess__close(s, s->state == SS_PARKED ? "no tool results within the tool timeout"
                                          : "idle timeout");
}

void sess__arm_timer(struct sess *s, int seconds)
{
    struct timeval tv = {seconds, 0};
    if (!s->timer)
        s->timer = evtimer_new(s->b->base, on_sess_timer, s);
    evtimer_add(s->timer, &tv);
}

/*
 * The head already separates principals and profiles (its root includes
 * them); the owner check says so again, so that no change to the hash can
 * ever hand one principal's session to another.
 */
struct sess *sess__find(struct broker *b, const struct hash *h, enum sess_state want,
                        const char *pin, const struct sess_owner *owner)
{
    uint64_t key = head_key(h);
    struct sess *found = NULL;

    for (struct sess *s = ix_bucket(b, SIX_HEAD, key); s; s = s->hl[SIX_HEAD].next) {
        /* A draining process takes no new turns, but finishes parked tool loops. */
        if (s->hl[SIX_HEAD].key != key || s->state != want ||
            s->gen != rt_generation(s->p->rt) || !rt_usable(s->p->rt) ||
            (want == SS_IDLE && s->p->draining) || !hash_eq(&s->head, h) ||
            !owner_eq(&s->owner, owner))
            continue;
        if ((pin ? (s->pin && strcmp(s->pin, pin) == 0) : !s->pin) &&
            (!found || s->seq > found->seq))
            found = s;
    }
    return found;
}

/*
 * Drops a pin's older sessions of the same conversation root (principal,
 * profile, model, system prompt, tools): the pinned conversation was edited.
 * Sessions under the same pin with another root are other conversations of
 * the same client (Claude Code sends one metadata.user_id for its main loop,
 * its sub-agents and its small side requests), or of another principal, and
 * stay.
 */
void sess__unpin(struct broker *b, const char *pin, const struct hash *root,
                 const struct sess_owner *owner)
{
    uint64_t key;

    if (!pin)
        return;
    key = pin_key(pin, root);
    for (struct sess *s = ix_bucket(b, SIX_PIN, key), *n; s; s = n) {
        n = s->hl[SIX_PIN].next;
        if (s->hl[SIX_PIN].key != key || strcmp(s->pin, pin) != 0 ||
            !hash_eq(&s->root, root) || !owner_eq(&s->owner, owner))
            continue;
        sess_drop_pin(s); /* out of the pin index: a new walk never meets it again */
        if (s->state == SS_IDLE || s->state == SS_PARKED) {
            sess__close(s, "its pinned conversation was edited");
            /* closing can hand a recycled process's other sessions over, freeing n: walk
             * the bucket again */
            n = ix_bucket(b, SIX_PIN, key);
        }
    }
}

/* Keeps the live session count under the cap: least recently used idle
 * sessions go first, then parked ones (their next request reseeds). */
void sess__evict_for_new(struct broker *b, const struct session_profile *profile)
{
    /* the profile's own cap (an agent's sessions each run its stdio MCP servers): its least
     * recently used idle session goes dormant */
    while (profile && profile->max_sessions > 0) {
        struct sess_prof *e = prof_find(b, profile);
        struct sess *victim = e ? e->idle.back : NULL;

        while (victim && victim->call)
            victim = victim->ql[SQ_PROFILE].prev;
        if (!e || e->n < profile->max_sessions || !victim)
            break; /* under the cap, or every one is busy: allow more */
        b->st.sessions_evicted++;
        sess_retire(victim, "the agent's max-sessions reached (least recently used)");
    }
    while (b->st.sessions_live >= b->cfg.max_sessions) {
        struct sess *victim = b->idle.back ? b->idle.back : b->parked.back;

        if (!victim)
            return; /* every session is busy: allow more than the cap */
        b->st.sessions_evicted++;
        sess__close(victim, "session cap reached (least recently used)");
    }
}

/* ---- events of a session ------------------------------------------------------------------ */

static void on_perm_answered(void *ud, const json_t *result, const struct gw_err *err)
{
    char *sid = ud;

    if (err)
        log_msg(LOG_WARN, "broker", "session=%s cannot answer a permission prompt: %s", sid,
                err->msg);
    free(sid);
}

/*
 * A permission prompt (permission.requested {requestId, permissionRequest}):
 * only a session whose profile asks for them gets one; the profile decides,
 * by default "user-not-available" (denied).
 */
static void on_permission(struct sess *s, const json_t *data)
{
    struct perm_request rq;
    json_t *params, *decision;
    char *sid;
    uint64_t id;

    memset(&rq, 0, sizeof(rq));
    rq.session_id = s->sid;
    rq.request_id = json_string_value(json_object_get(data, "requestId"));
    rq.turn_request_id = s->turn && s->turn->rid[0] ? s->turn->rid : NULL;
    rq.request = json_object_get(data, "permissionRequest");
    rq.kind = json_string_value(json_object_get(rq.request, "kind"));
    if (!rq.request_id || !s->owner.profile->request_permission)
        return;
    decision = profile_decide(s->owner.profile, s->owner.principal, &rq);
    log_msg(LOG_INFO, "broker", "session=%s permission prompt (%.32s): %s", s->sid,
            rq.kind ? rq.kind : "?", json_string_value(json_object_get(decision, "kind")));
    params = json_pack("{s:s, s:s, s:o}", "sessionId", s->sid, "requestId", rq.request_id,
                       "result", decision);
    sid = xstrdup(s->sid);
    if (rt_call(s->p->rt, "session.permissions.handlePendingPermissionRequest", params, 0,
                on_perm_answered, sid, &id))
        free(sid);
}

/* The runtime's own tool calls a turn may run (the profile's max-tool-calls), counted at
 * preToolUse; past it the call is denied and the turn fails with a 422 (over_limit set). */
static json_t *count_tool_call(struct sess *s, struct turn *t, int *over_limit)
{
    const struct session_profile *p = s->owner.profile;
    struct gw_err e;

    if (!t || t->phase == TP_DONE || p->max_tool_calls <= 0 || ++t->tool_calls <= p->max_tool_calls)
        return NULL;
    gw_err_set(&e, GW_EINVAL,
               "the agent '%s' reached its limit of %lld tool calls for one request "
               "(max-tool-calls); ask for less, or split the task",
               p->id, (long long)p->max_tool_calls);
    e.http_status = 422;
    snprintf(e.api_code, sizeof(e.api_code), "max_tool_calls");
    turn__fail(t, &e);
    *over_limit = 1;
    return json_pack("{s:s, s:s}", "permissionDecision", "deny", "permissionDecisionReason",
                     "denied: the request reached the agent's max-tool-calls limit");
}

json_t *broker__hook_invoke(struct broker *b, const json_t *params, int *over_limit)
{
    const char *sid = json_string_value(json_object_get(params, "sessionId"));
    const char *type = json_string_value(json_object_get(params, "hookType"));
    const json_t *input = json_object_get(params, "input");
    struct sess *s = sid ? sess_by_sid(b, sid) : NULL;
    const struct session_profile *p = s ? s->owner.profile : NULL;
    struct turn *t = s ? s->turn : NULL;
    struct hook_call hc;
    const char *isid, *tool;
    json_t *out = NULL;

    *over_limit = 0;
    if (!p || !p->hooks || !type)
        return json_object();
    memset(&hc, 0, sizeof(hc));
    hc.principal = s->owner.principal;
    hc.session_id = sid;
    hc.request_id = t && t->rid[0] ? t->rid : NULL;
    hc.hook_type = type;
    hc.input = input;
    /* A sub-agent's hooks name its own id as input.sessionId (runtime-requests.md). */
    isid = json_string_value(json_object_get(input, "sessionId"));
    if (isid && strcmp(isid, sid) != 0) {
        hc.subagent = s->subagents ? json_string_value(json_object_get(s->subagents, isid)) : NULL;
        if (!hc.subagent)
            hc.subagent = "?"; /* not announced: the profile's hook denies what it cannot place */
    }
    tool = json_string_value(json_object_get(input, "toolName"));
    hc.client_tool = tool && t && !hc.subagent && turn__client_tool(t, tool);
    if (strcmp(type, "preToolUse") == 0 && tool && !hc.client_tool)
        out = count_tool_call(s, t, over_limit);
    if (!out && p->ops && p->ops->hook)
        out = p->ops->hook(p->ops_ud, &hc);
    return out ? json_pack("{s:o}", "output", out) : json_object();
}

/* A request from the runtime about this session (rt/rt.h): hooks go to the profile; the
 * rest are not offered, so they get "method not found". */
static void on_sess_request(void *ud, uint64_t req, const char *method, const json_t *params)
{
    struct sess *s = ud;
    struct rt *rt = s->p->rt;
    int over_limit = 0;

    if (strcmp(method, "hooks.invoke") == 0) {
        if (rt_answer(rt, req, broker__hook_invoke(s->b, params, &over_limit)))
            log_msg(LOG_WARN, "broker", "session=%s cannot answer a hook", s->sid);
        if (over_limit && s->turn)
            turn__finish(s->turn); /* failed: its session is aborted and closed */
        return;
    }
    if (rt_answer_error(rt, req, -32601, "Unhandled method"))
        log_msg(LOG_DEBUG, "broker", "session=%s request already gone", s->sid);
}

/* subagent.started {agentName} with the event's agentId: whose hooks those are. */
static void note_subagent(struct sess *s, const json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "agentId"));
    const char *name =
        json_string_value(json_object_get(json_object_get(ev, "data"), "agentName"));

    if (!id || !name)
        return;
    if (!s->subagents)
        s->subagents = json_object();
    json_object_set_new(s->subagents, id, json_string(name));
}

static void on_sess_event(void *ud, const char *type, const json_t *ev)
{
    struct sess *s = ud;
    struct turn *t = s->turn;

    if (strcmp(type, "permission.requested") == 0) {
        on_permission(s, json_object_get(ev, "data")); /* a sub-agent's too: it waits for it */
        return;
    }
    if (strcmp(type, "subagent.started") == 0)
        note_subagent(s, ev);
    if (t && t->phase != TP_DONE &&
        (strcmp(type, "tool.execution_start") == 0 || strcmp(type, "tool.execution_complete") == 0))
        turn__progress(t, type, ev);
    if (json_object_get(ev, "agentId"))
        return; /* sub-agent events are not part of the answer */
    if (strcmp(type, "session.idle") == 0)
        s->running = 0;
    if (!t || t->phase == TP_DONE)
        return;
    turn__event(t, type, json_object_get(ev, "data"));
}

static void on_sess_lost(void *ud, const struct gw_err *err)
{
    struct sess *s = ud;
    struct turn *t = s->turn;

    s->watching = 0;
    s->running = 0;
    if (t && t->phase != TP_DONE && turn__retry_elsewhere(t))
        return;
    if (t && t->phase != TP_DONE) {
        struct gw_err e;
        gw_err_set(&e, GW_ERUNTIME,
                   "the Copilot runtime exited during the request; it is being restarted, "
                   "please retry");
        turn__fail(t, &e);
        turn__finish(t); /* a failed turn closes its session */
        return;
    }
    if (s->state == SS_IDLE && s->persisted) {
        /* Dormant: its files and row stay, so its next request resumes it. */
        log_msg(LOG_DEBUG, "broker", "session=%s dormant: the runtime exited", s->sid);
        sess__free(s);
        return;
    }
    sess__close(s, "the runtime exited");
}
