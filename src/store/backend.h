/*
 * store/backend.h - what a store implementation provides, and the request
 * queue every implementation shares (store.c).  Users include store/store.h
 * only.
 *
 * An implementation embeds struct store as the first member of its own
 * struct, fills it with store__init(), and implements struct store_ops.
 * store.c validates the arguments of every domain call, makes a struct
 * store__req (the operation: id, callback, result), and hands it to the
 * op.  The op keeps copies of what it needs past the call, fills
 * req->res_* (rc, err, owned rows) and calls store__complete(req) exactly
 * once, from inside the op (SQLite) or later from the loop (PostgreSQL,
 * when the server answers).  store__complete() never calls back: it queues
 * the request, and a deferred event delivers the queue on the next loop
 * turn, in completion order.  A cancelled request is still completed by the
 * op (an implementation need not know about cancelling) and is then freed
 * without a callback.
 *
 * Ownership: the request belongs to store.c; the op borrows it until it
 *   calls store__complete(), and must not touch it afterwards.  Rows put
 *   into req->sessions / req->responses / req->audit are owned by the
 *   request (strings from malloc, freed with store_session_release() /
 *   store_response_release() / store_audit_release()).
 * Threading: event-loop thread only.
 */
#ifndef GW_STORE_BACKEND_H
#define GW_STORE_BACKEND_H

#include "store/store.h"

struct event;
struct store__req;

struct store_ops {
    const char *name; /* "sqlite" */
    /* Frees everything of the implementation, the struct store included (after store.c has
     * dropped the queued requests). */
    void (*close)(struct store *s);
    int (*writable)(struct store *s, struct gw_err *err);
    void (*stats)(struct store *s, struct store_stats *out);

    void (*sessions_put)(struct store *s, const struct store_session *ss, struct store__req *req);
    void (*sessions_delete)(struct store *s, const char *sid, struct store__req *req);
    void (*sessions_find)(struct store *s, const char *head, const char *pin,
                          struct store__req *req);
    void (*sessions_all)(struct store *s, struct store__req *req);
    void (*sessions_expire)(struct store *s, int64_t cutoff, struct store__req *req);

    void (*responses_put)(struct store *s, const struct store_response *sr, int64_t keep_max,
                          struct store__req *req);
    void (*responses_get)(struct store *s, const char *principal, const char *rid,
                          struct store__req *req);
    void (*responses_chain)(struct store *s, const char *principal, const char *rid, int max,
                            struct store__req *req);
    void (*responses_delete)(struct store *s, const char *principal, const char *rid,
                             struct store__req *req);
    void (*responses_expire)(struct store *s, int64_t cutoff, struct store__req *req);
    void (*responses_fail_unfinished)(struct store *s, const char *message,
                                      struct store__req *req);

    /* row->error and error arrive cut to STORE_AUDIT_ERROR_MAX; the TTL is s->audit_ttl_ms. */
    void (*audit_add)(struct store *s, const struct store_audit *row, struct store__req *req);
    void (*audit_outcome)(struct store *s, const char *audit_id, const char *outcome,
                          int64_t duration_ms, const char *error, struct store__req *req);
    /* f->limit is 1..STORE_AUDIT_LIMIT_MAX. */
    void (*audit_list)(struct store *s, const struct store_audit_filter *f,
                       struct store__req *req);

    /* k is checked (id, name, period) by store.c. */
    void (*keys_add)(struct store *s, const struct store_key *k, struct store__req *req);
    void (*keys_update)(struct store *s, const struct store_key *k, struct store__req *req);
    void (*keys_revoke)(struct store *s, const char *name, int64_t now_ms,
                        struct store__req *req);
    void (*keys_list)(struct store *s, int with_revoked, struct store__req *req);
    void (*keys_version)(struct store *s, struct store__req *req);
    /* user is non-empty; sealed NULL removes. */
    void (*tokens_set)(struct store *s, const char *user, const char *sealed, int64_t now_ms,
                       struct store__req *req);

    void (*usage_add)(struct store *s, const struct store_usage *u, struct store__req *req);
    /* q->group_by is checked by store.c. */
    void (*usage_report)(struct store *s, const struct store_usage_query *q,
                         struct store__req *req);
};

/* The part of every store that store.c manages. */
struct store {
    const struct store_ops *ops;
    struct event_base *base;     /* NULL: no asynchronous calls */
    struct event *deliver_ev;    /* runs deliver(): the queue's callbacks */
    struct store__req *live;     /* every request not yet delivered, for store_cancel() */
    struct store__req *done;     /* completed, in completion order ... */
    struct store__req **done_tail; /* ... appended here */
    uint64_t next_id;
    int delivering;              /* inside a callback: store_close() is a bug there */
    int64_t audit_ttl_ms;        /* store_audit_set_ttl(); 0: audit rows are kept forever */
};

struct store__req {
    struct store *s;
    uint64_t id;
    store_cb cb; /* NULL: a write nobody waits for (a failure is logged) */
    void *ud;
    const char *what; /* "store session", ...: for that log line */
    int canceled;
    int completed;
    /* The result, filled by the op. */
    int rc;
    struct gw_err err;
    struct store_session *sessions;
    size_t n_sessions;
    struct store_response *responses;
    size_t n_responses;
    struct store_audit *audit;
    size_t n_audit;
    struct store_key *keys;
    size_t n_keys;
    struct store_usage_group *groups;
    size_t n_groups;
    int more;
    struct store__req *live_prev, *live_next;
    struct store__req *done_next;
};

/* Sets the common part up; base may be NULL.  Cannot fail (aborts on OOM). */
void store__init(struct store *s, const struct store_ops *ops, struct event_base *base);

/* Drops queued requests without calling them and frees the deferred event. */
void store__release(struct store *s);

/* The op is done with req (rc, err and rows filled): queue it for delivery. */
void store__complete(struct store__req *req);

/* 0, or GW_EINVAL with err set when ss cannot be stored (no sid, an unterminated one, no
 * model): the check every implementation's put shares. */
int store__session_check(const struct store_session *ss, struct gw_err *err);

/* Appends an empty row to req->sessions / req->responses and returns it (zeroed). */
struct store_session *store__add_session(struct store__req *req);
struct store_response *store__add_response(struct store__req *req);
struct store_audit *store__add_audit(struct store__req *req);
struct store_key *store__add_key(struct store__req *req);
struct store_usage_group *store__add_group(struct store__req *req);

/* Free a row's strings and clear them.  NULL-safe. */
void store_session_release(struct store_session *ss);
void store_response_release(struct store_response *sr);
void store_audit_release(struct store_audit *sa);

#endif
