/*
 * Reads a bash command line without running it: which commands would run and
 * which files its redirections touch (policy/policy.h, shell_read()).
 *
 * A small recursive-descent reader over the bytes of the line.  It is not a
 * shell: where bash could do something the reader does not model (a command
 * name built by an expansion, a glob or brace in a command name, coproc), it
 * gives up and the caller denies.  Listing too much is safe; listing too
 * little is the bug to avoid.
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define SHELL_MAX_LINE (64u * 1024)
#define SHELL_MAX_DEPTH 16
#define SHELL_MAX_HEREDOCS 32

/* One word as bash would see it after quote removal (expansions left out). */
struct word {
    struct buf lit;
    int exp;    /* a parameter expansion, command substitution or process substitution */
    int glob;   /* an unquoted * ? or [...] */
    int brace;  /* an unquoted {a,b} or {1..3} (brace expansion) */
    int tilde;  /* an unquoted leading ~ */
    int quoted; /* any quoting at all: not a keyword */
    int open_br, open_brace, brace_sep;
};

struct words {
    struct word *v;
    size_t n, cap;
};

struct heredoc {
    char *delim;
    int strip_tabs;
    int expand; /* unquoted delimiter: the body is expanded */
};

struct rd {
    const char *s;
    size_t n, i;
    int depth;
    int case_depth;     /* open case ... esac */
    int expect_pattern; /* after `in` or `;;`: a case pattern or esac comes next */
    struct shell_ops *out;
    char *why;
    size_t whylen;
    struct heredoc hd[SHELL_MAX_HEREDOCS];
    size_t nhd;
};

static int read_line(const char *s, size_t n, int depth, struct shell_ops *out, char *why,
                     size_t whylen);
static int parse_list(struct rd *r, int term);
static int read_dollar(struct rd *r, struct word *w, int dq);
static int read_backtick(struct rd *r, struct word *w, int dq);
static int analyze(struct rd *r, struct word *v, size_t n);

static int fail(struct rd *r, const char *what)
{
    if (r->why && r->whylen && !r->why[0])
        snprintf(r->why, r->whylen, "%s", what);
    return -1;
}

static int peek(const struct rd *r, size_t k)
{
    return r->i + k < r->n ? (unsigned char)r->s[r->i + k] : 0;
}

static int at_end(const struct rd *r)
{
    return r->i >= r->n;
}

static void emit(struct rd *r, enum pol_kind kind, const char *name)
{
    struct shell_ops *o = r->out;

    o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
    o->v[o->n].kind = kind;
    o->v[o->n].name = xstrdup(name);
    o->n++;
}

static int wadd(struct rd *r, struct word *w, const char *p, size_t n)
{
    if (buf_add(&w->lit, p, n) != 0)
        return fail(r, "word too long");
    return 0;
}

static int wadd_c(struct rd *r, struct word *w, int c)
{
    char ch = (char)c;

    return wadd(r, w, &ch, 1);
}

static int enter(struct rd *r)
{
    if (++r->depth > SHELL_MAX_DEPTH)
        return fail(r, "nesting too deep");
    return 0;
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* A byte that ends an unquoted word. */
static int is_meta(int c)
{
    return c == 0 || is_blank(c) || c == '\n' || strchr(";&|()<>", c) != NULL;
}

static int is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static void word_init(struct word *w)
{
    memset(w, 0, sizeof(*w));
    buf_init(&w->lit, SHELL_MAX_LINE);
    if (buf_add(&w->lit, "", 0) != 0)
        abort();
}

static void word_release(struct word *w)
{
    buf_release(&w->lit);
}

static void words_free(struct words *ws)
{
    for (size_t k = 0; k < ws->n; k++)
        word_release(&ws->v[k]);
    free(ws->v);
    ws->v = NULL;
    ws->n = ws->cap = 0;
}

static struct word *words_push(struct words *ws)
{
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 8;
        ws->v = xrealloc(ws->v, ws->cap * sizeof(*ws->v));
    }
    word_init(&ws->v[ws->n]);
    return &ws->v[ws->n++];
}

static const char *wstr(const struct word *w)
{
    return buf_str(&w->lit);
}

/* An unquoted literal word equal to kw. */
static int is_kw(const struct word *w, const char *kw)
{
    return !w->quoted && !w->exp && strcmp(wstr(w), kw) == 0;
}

/* The next token is the bare keyword kw (not consumed). */
static int peek_kw(const struct rd *r, const char *kw)
{
    size_t k = strlen(kw);

    return r->n - r->i >= k && memcmp(r->s + r->i, kw, k) == 0 && is_meta(peek(r, k));
}

/* ---- here documents ------------------------------------------------------------------- */

static int flush_heredocs(struct rd *r);

/* Reads the substitutions of an expanded here-doc body (quotes are not special there). */
static int read_body(struct rd *r, const char *p, size_t n)
{
    struct rd sub = *r;
    struct word w;
    int rc = 0;

    sub.s = p;
    sub.n = n;
    sub.i = 0;
    sub.nhd = 0;
    word_init(&w);
    while (rc == 0 && !at_end(&sub)) {
        int c = peek(&sub, 0);

        if (c == '\\') {
            sub.i += 2;
        } else if (c == '$') {
            rc = read_dollar(&sub, &w, 1);
        } else if (c == '`') {
            rc = read_backtick(&sub, &w, 1);
        } else {
            sub.i++;
        }
    }
    if (rc == 0 && sub.nhd)
        rc = flush_heredocs(&sub);
    for (size_t k = 0; k < sub.nhd; k++)
        free(sub.hd[k].delim);
    word_release(&w);
    return rc;
}

/* At the start of a line: skips the bodies of the here documents begun on the last one. */
static int flush_heredocs(struct rd *r)
{
    for (size_t k = 0; k < r->nhd; k++) {
        struct heredoc *h = &r->hd[k];
        size_t start = r->i, body_end = r->n, next = r->n;
        size_t dl = strlen(h->delim);

        while (r->i < r->n) {
            size_t ls = r->i, le = ls;

            while (le < r->n && r->s[le] != '\n')
                le++;
            size_t cs = ls;
            if (h->strip_tabs)
                while (cs < le && r->s[cs] == '\t')
                    cs++;
            if (le - cs == dl && memcmp(r->s + cs, h->delim, dl) == 0) {
                body_end = ls;
                next = le < r->n ? le + 1 : le;
                break;
            }
            r->i = le < r->n ? le + 1 : le;
        }
        r->i = next;
        if (h->expand && read_body(r, r->s + start, body_end - start) != 0)
            return -1;
    }
    for (size_t k = 0; k < r->nhd; k++)
        free(r->hd[k].delim);
    r->nhd = 0;
    return 0;
}

static int eat_newline(struct rd *r)
{
    r->i++;
    return flush_heredocs(r);
}

/* Skips blanks, line continuations and (at a token start) comments. */
static void skip_blanks(struct rd *r)
{
    for (;;) {
        int c = peek(r, 0);

        if (is_blank(c)) {
            r->i++;
        } else if (c == '\\' && peek(r, 1) == '\n') {
            r->i += 2;
        } else if (c == '#') {
            while (!at_end(r) && peek(r, 0) != '\n')
                r->i++;
        } else {
            return;
        }
    }
}

/* ---- words ---------------------------------------------------------------------------- */

/* After "$((" or "((": an arithmetic expression up to "))"; no substitutions inside. */
static int skip_arith(struct rd *r)
{
    int depth = 0;

    for (;;) {
        int c = peek(r, 0);

        if (at_end(r))
            return fail(r, "unbalanced parenthesis");
        if (c == '`' || (c == '$' && peek(r, 1) == '(' && peek(r, 2) != '('))
            return fail(r, "command substitution inside arithmetic");
        if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (depth > 0) {
                depth--;
            } else if (peek(r, 1) == ')') {
                r->i += 2;
                return 0;
            } else {
                return fail(r, "ambiguous $(( ... )");
            }
        }
        r->i++;
    }
}

/* After "$(": the command list of a command substitution, up to its ")". */
static int read_cmdsubst(struct rd *r)
{
    int cd = r->case_depth, ep = r->expect_pattern, rc;

    if (enter(r) != 0)
        return -1;
    r->case_depth = 0;
    r->expect_pattern = 0;
    rc = parse_list(r, ')');
    r->case_depth = cd;
    r->expect_pattern = ep;
    r->depth--;
    return rc;
}

static int read_dq(struct rd *r, struct word *w);
static int read_squote(struct rd *r, struct word *w);

/* After "${": a parameter expansion up to its "}", reading what it substitutes. */
static int read_param(struct rd *r, struct word *w, int dq)
{
    if (enter(r) != 0)
        return -1;
    for (;;) {
        int c = peek(r, 0);

        if (at_end(r))
            return fail(r, "unbalanced ${");
        if (c == '}') {
            r->i++;
            break;
        }
        if (c == '\\') {
            r->i += 2;
        } else if (c == '\'' && !dq) {
            struct word tmp;
            word_init(&tmp);
            int rc = read_squote(r, &tmp);
            word_release(&tmp);
            if (rc != 0)
                return -1;
        } else if (c == '"') {
            struct word tmp;
            word_init(&tmp);
            r->i++;
            int rc = read_dq(r, &tmp);
            word_release(&tmp);
            if (rc != 0)
                return -1;
        } else if (c == '$') {
            if (read_dollar(r, w, dq) != 0)
                return -1;
        } else if (c == '`') {
            if (read_backtick(r, w, dq) != 0)
                return -1;
        } else {
            r->i++;
        }
    }
    r->depth--;
    w->exp = 1;
    return 0;
}

/* After "$'": an ANSI-C quoted string; decoded, since `$'\x72m'` is rm. */
static int read_ansi(struct rd *r, struct word *w)
{
    static const char esc_in[] = "abeEfnrtv\\'\"?";
    static const char esc_out[] = "\a\b\033\033\f\n\r\t\v\\'\"?";

    w->quoted = 1;
    for (;;) {
        int c = peek(r, 0), v = -1;

        if (at_end(r))
            return fail(r, "unbalanced quote");
        r->i++;
        if (c == '\'')
            return 0;
        if (c != '\\') {
            if (wadd_c(r, w, c) != 0)
                return -1;
            continue;
        }
        c = peek(r, 0);
        if (at_end(r))
            return fail(r, "unbalanced quote");
        r->i++;
        const char *e = c ? strchr(esc_in, c) : NULL;
        if (e) {
            v = (unsigned char)esc_out[e - esc_in];
        } else if (c >= '0' && c <= '7') {
            v = c - '0';
            for (int k = 0; k < 2 && peek(r, 0) >= '0' && peek(r, 0) <= '7'; k++)
                v = v * 8 + (peek(r, 0) - '0'), r->i++;
            v &= 0xff;
        } else if (c == 'x' && util_hexval(peek(r, 0)) >= 0) {
            v = util_hexval(peek(r, 0));
            r->i++;
            if (util_hexval(peek(r, 0)) >= 0)
                v = v * 16 + util_hexval(peek(r, 0)), r->i++;
        } else if (c == 'c' && !at_end(r)) {
            v = peek(r, 0) & 0x1f;
            r->i++;
        } else {
            /* \u, \U and the like: not worth modelling; never a command name then. */
            w->exp = 1;
            if (wadd_c(r, w, '\\') != 0 || wadd_c(r, w, c) != 0)
                return -1;
            continue;
        }
        if (v == 0) {
            w->exp = 1; /* bash cuts the string at a NUL */
            continue;
        }
        if (wadd_c(r, w, v) != 0)
            return -1;
    }
}

/* At "$": an expansion of some kind, or a literal dollar. */
static int read_dollar(struct rd *r, struct word *w, int dq)
{
    int c = peek(r, 1);

    if (c == '(') {
        r->i += 2;
        w->exp = 1;
        if (peek(r, 0) == '(') {
            r->i++;
            return skip_arith(r);
        }
        return read_cmdsubst(r);
    }
    if (c == '{') {
        r->i += 2;
        return read_param(r, w, dq);
    }
    if (c == '\'' && !dq) {
        r->i += 2;
        return read_ansi(r, w);
    }
    if (c == '"' && !dq) {
        r->i += 2;
        return read_dq(r, w);
    }
    if (is_name_start(c)) {
        r->i++;
        while (is_name_char(peek(r, 0)))
            r->i++;
        w->exp = 1;
        return 0;
    }
    if (c && strchr("0123456789@*#?$!-", c)) {
        r->i += 2;
        w->exp = 1;
        return 0;
    }
    r->i++;
    return wadd_c(r, w, '$');
}

/* At "`": an old-style command substitution, read as a line of its own. */
static int read_backtick(struct rd *r, struct word *w, int dq)
{
    struct buf inner;
    int rc;

    buf_init(&inner, SHELL_MAX_LINE);
    r->i++;
    for (;;) {
        int c = peek(r, 0);

        if (at_end(r)) {
            buf_release(&inner);
            return fail(r, "unbalanced `");
        }
        r->i++;
        if (c == '`')
            break;
        if (c == '\\' && !at_end(r)) {
            int d = peek(r, 0);
            if (d == '`' || d == '$' || d == '\\' || (dq && d == '"')) {
                c = d;
                r->i++;
            }
        }
        char ch = (char)c;
        if (buf_add(&inner, &ch, 1) != 0)
            return fail(r, "line too long");
    }
    w->exp = 1;
    rc = read_line(buf_str(&inner), inner.len, r->depth + 1, r->out, r->why, r->whylen);
    buf_release(&inner);
    return rc;
}

/* After the opening "'". */
static int read_squote(struct rd *r, struct word *w)
{
    const char *q;

    r->i++;
    q = memchr(r->s + r->i, '\'', r->n - r->i);
    if (!q)
        return fail(r, "unbalanced quote");
    w->quoted = 1;
    if (wadd(r, w, r->s + r->i, (size_t)(q - (r->s + r->i))) != 0)
        return -1;
    r->i = (size_t)(q - r->s) + 1;
    return 0;
}

/* After the opening '"'. */
static int read_dq(struct rd *r, struct word *w)
{
    w->quoted = 1;
    for (;;) {
        int c = peek(r, 0);

        if (at_end(r))
            return fail(r, "unbalanced quote");
        if (c == '"') {
            r->i++;
            return 0;
        }
        if (c == '\\') {
            int d = peek(r, 1);
            if (d == '\n') {
                r->i += 2;
                continue;
            }
            if (d == '$' || d == '`' || d == '"' || d == '\\') {
                r->i += 2;
                if (wadd_c(r, w, d) != 0)
                    return -1;
                continue;
            }
            r->i++;
            if (wadd_c(r, w, '\\') != 0)
                return -1;
            continue;
        }
        if (c == '$') {
            if (read_dollar(r, w, 1) != 0)
                return -1;
        } else if (c == '`') {
            if (read_backtick(r, w, 1) != 0)
                return -1;
        } else {
            r->i++;
            if (wadd_c(r, w, c) != 0)
                return -1;
        }
    }
}

/* One word up to an unquoted metacharacter; substitutions inside are read (listed). */
static int read_word(struct rd *r, struct word *w)
{
    if (peek(r, 0) == '~')
        w->tilde = 1;
    for (;;) {
        int c = peek(r, 0);

        if (at_end(r) || is_meta(c))
            return 0;
        if (c == '\\') {
            if (peek(r, 1) == '\n') {
                r->i += 2;
                continue;
            }
            if (r->i + 1 >= r->n)
                return fail(r, "trailing backslash");
            w->quoted = 1;
            r->i += 2;
            if (wadd_c(r, w, r->s[r->i - 1]) != 0)
                return -1;
            continue;
        }
        if (c == '\'') {
            if (read_squote(r, w) != 0)
                return -1;
        } else if (c == '"') {
            r->i++;
            if (read_dq(r, w) != 0)
                return -1;
        } else if (c == '$') {
            if (read_dollar(r, w, 0) != 0)
                return -1;
        } else if (c == '`') {
            if (read_backtick(r, w, 0) != 0)
                return -1;
        } else {
            if (c == '*' || c == '?')
                w->glob = 1;
            if (c == '[')
                w->open_br = 1;
            if (c == ']' && w->open_br)
                w->glob = 1;
            if (c == '{')
                w->open_brace = 1;
            if (w->open_brace && (c == ',' || (c == '.' && peek(r, 1) == '.')))
                w->brace_sep = 1;
            if (c == '}' && w->brace_sep)
                w->brace = 1;
            r->i++;
            if (wadd_c(r, w, c) != 0)
                return -1;
        }
    }
}

/* ---- redirections --------------------------------------------------------------------- */

/* At a redirection: [N]< > >> >| <> <& >& &> &>> << <<- <<<. */
static int starts_redirect(const struct rd *r)
{
    size_t k = 0;

    if (peek(r, 0) == '&' && peek(r, 1) == '>')
        return 1;
    while (peek(r, k) >= '0' && peek(r, k) <= '9')
        k++;
    return (peek(r, k) == '<' || peek(r, k) == '>') && peek(r, k + 1) != '(';
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int read_target(struct rd *r, struct word *w)
{
    skip_blanks(r);
    if (at_end(r) || is_meta(peek(r, 0)))
        return fail(r, "missing redirection target");
    return read_word(r, w);
}

static int heredoc_push(struct rd *r, const struct word *w, int strip)
{
    if (w->exp)
        return fail(r, "here-document delimiter is an expansion");
    if (r->nhd == SHELL_MAX_HEREDOCS)
        return fail(r, "too many here-documents");
    r->hd[r->nhd].delim = xstrdup(wstr(w));
    r->hd[r->nhd].strip_tabs = strip;
    r->hd[r->nhd].expand = !w->quoted;
    r->nhd++;
    return 0;
}

static int parse_redirect(struct rd *r)
{
    enum { R_READ, R_WRITE, R_DUP_IN, R_DUP_OUT, R_HERESTR, R_HEREDOC, R_HEREDOC_TABS } t;
    struct word w;
    int rc;

    while (peek(r, 0) >= '0' && peek(r, 0) <= '9')
        r->i++;
    const char *p = r->s + r->i;
    size_t left = r->n - r->i;
#define OP(s) (left >= sizeof(s) - 1 && memcmp(p, s, sizeof(s) - 1) == 0 && (r->i += sizeof(s) - 1))
    if (OP("&>>") || OP("&>") || OP(">>") || OP(">|") || OP("<>"))
        t = R_WRITE;
    else if (OP("<<<"))
        t = R_HERESTR;
    else if (OP("<<-"))
        t = R_HEREDOC_TABS;
    else if (OP("<<"))
        t = R_HEREDOC;
    else if (OP("<&"))
        t = R_DUP_IN;
    else if (OP(">&"))
        t = R_DUP_OUT;
    else if (OP("<"))
        t = R_READ;
    else if (OP(">"))
        t = R_WRITE;
    else
        return fail(r, "bad redirection");
#undef OP
    word_init(&w);
    rc = read_target(r, &w);
    if (rc == 0) {
        const char *s = wstr(&w);
        int bad = w.exp || w.glob || w.brace || w.tilde;
        size_t sl = strlen(s);

        switch (t) {
        case R_HERESTR:
            break;
        case R_HEREDOC:
        case R_HEREDOC_TABS:
            rc = heredoc_push(r, &w, t == R_HEREDOC_TABS);
            break;
        case R_DUP_IN:
        case R_DUP_OUT:
            if (!w.exp && (strcmp(s, "-") == 0 || all_digits(s) ||
                           (sl > 1 && s[sl - 1] == '-' && strspn(s, "0123456789") == sl - 1)))
                break;
            /* >&file is &>file */
            /* fall through */
        case R_READ:
        case R_WRITE:
            if (bad || sl != w.lit.len)
                rc = fail(r, "redirection target is an expansion");
            else
                emit(r, t == R_READ || t == R_DUP_IN ? POL_READ : POL_WRITE, s);
            break;
        }
    }
    word_release(&w);
    return rc;
}

/* ---- commands ------------------------------------------------------------------------- */

/* `case` patterns: after `in` or `;;`, up to ")" (or the closing esac). */
static int read_pattern(struct rd *r)
{
    r->expect_pattern = 0;
    for (;;) {
        skip_blanks(r);
        if (peek(r, 0) == '\n') {
            if (eat_newline(r) != 0)
                return -1;
            continue;
        }
        break;
    }
    if (peek_kw(r, "esac")) {
        r->i += 4;
        r->case_depth--;
        return 0;
    }
    if (peek(r, 0) == '(')
        r->i++;
    for (;;) {
        struct word w;
        int rc;

        skip_blanks(r);
        int c = peek(r, 0);
        if (at_end(r))
            return fail(r, "unterminated case pattern");
        if (c == ')') {
            r->i++;
            return 0;
        }
        if (c == '|') {
            r->i++;
            continue;
        }
        if (is_meta(c))
            return fail(r, "bad case pattern");
        word_init(&w);
        rc = read_word(r, &w);
        word_release(&w);
        if (rc != 0)
            return -1;
    }
}

/* After `for`/`select`: the name and the word list (read for substitutions). */
static int read_for(struct rd *r)
{
    skip_blanks(r);
    if (peek(r, 0) == '(' && peek(r, 1) == '(') {
        r->i += 2;
        return skip_arith(r);
    }
    for (int k = 0;; k++) {
        struct word w;
        int rc, is_do;

        skip_blanks(r);
        if (at_end(r) || is_meta(peek(r, 0)))
            return 0;
        word_init(&w);
        rc = read_word(r, &w);
        is_do = k > 0 && is_kw(&w, "do");
        word_release(&w);
        if (rc != 0)
            return -1;
        if (is_do)
            return 0; /* `for x do CMD`: the command follows */
    }
}

/* After `[[`: words and operators up to `]]`; substitutions are read. */
static int read_cond(struct rd *r)
{
    for (;;) {
        struct word w;
        int rc, end;

        skip_blanks(r);
        int c = peek(r, 0);
        if (at_end(r))
            return fail(r, "unterminated [[");
        if (c == '\n') {
            if (eat_newline(r) != 0)
                return -1;
            continue;
        }
        if (strchr("&|()<>;", c)) {
            r->i++;
            continue;
        }
        word_init(&w);
        rc = read_word(r, &w);
        end = is_kw(&w, "]]");
        word_release(&w);
        if (rc != 0)
            return -1;
        if (end)
            return 0;
    }
}

/* NAME=, NAME+= or NAME[...]= before the command name. */
static int is_assignment(const struct word *w, const struct rd *r, size_t start)
{
    const char *p = r->s + start;
    size_t k = 0, len = r->i - start;

    if (len == 0 || !is_name_start((unsigned char)p[0]))
        return 0;
    while (k < len && is_name_char((unsigned char)p[k]))
        k++;
    if (k < len && p[k] == '[') {
        while (k < len && p[k] != ']')
            k++;
        k++;
    }
    if (k < len && p[k] == '+')
        k++;
    return k < len && p[k] == '=';
}

/* After `NAME=(`: array elements up to ")". */
static int read_array(struct rd *r)
{
    r->i++;
    for (;;) {
        struct word w;
        int rc;

        skip_blanks(r);
        int c = peek(r, 0);
        if (at_end(r))
            return fail(r, "unbalanced parenthesis");
        if (c == ')') {
            r->i++;
            return 0;
        }
        if (c == '\n') {
            if (eat_newline(r) != 0)
                return -1;
            continue;
        }
        if (is_meta(c))
            return fail(r, "bad array assignment");
        word_init(&w);
        rc = read_word(r, &w);
        word_release(&w);
        if (rc != 0)
            return -1;
    }
}

/* A keyword in command position; returns 1 if it was one (and handled), 0 if not, -1. */
static int keyword(struct rd *r, const struct word *w)
{
    static const char *const skip[] = {"{", "}", "!", "if", "then", "else", "elif", "fi",
                                       "do", "done", "while", "until", NULL};

    for (size_t k = 0; skip[k]; k++)
        if (is_kw(w, skip[k]))
            return 1;
    if (is_kw(w, "esac") && r->case_depth > 0) {
        r->case_depth--;
        return 1;
    }
    if (is_kw(w, "for") || is_kw(w, "select"))
        return read_for(r) == 0 ? 1 : -1;
    if (is_kw(w, "[["))
        return read_cond(r) == 0 ? 1 : -1;
    if (is_kw(w, "function")) {
        struct word name;
        int rc;

        skip_blanks(r);
        word_init(&name);
        rc = read_word(r, &name);
        word_release(&name);
        if (rc != 0)
            return -1;
        skip_blanks(r);
        if (peek(r, 0) == '(') {
            r->i++;
            skip_blanks(r);
            if (peek(r, 0) != ')')
                return fail(r, "bad function definition");
            r->i++;
        }
        return 1;
    }
    if (is_kw(w, "case")) {
        struct word subj;
        int rc;

        skip_blanks(r);
        word_init(&subj);
        rc = read_word(r, &subj);
        word_release(&subj);
        if (rc != 0)
            return -1;
        for (;;) {
            skip_blanks(r);
            if (peek(r, 0) != '\n')
                break;
            if (eat_newline(r) != 0)
                return -1;
        }
        if (!peek_kw(r, "in"))
            return fail(r, "case without in");
        r->i += 2;
        r->case_depth++;
        return read_pattern(r) == 0 ? 1 : -1;
    }
    if (is_kw(w, "coproc"))
        return fail(r, "coproc");
    return 0;
}

/* One simple or compound command, up to a list operator. */
static int parse_command(struct rd *r)
{
    struct words ws = {0};
    int rc = 0;

    if (r->expect_pattern && read_pattern(r) != 0)
        return -1;
    while (rc == 0) {
        skip_blanks(r);
        int c = peek(r, 0);

        if (at_end(r))
            break;
        if ((c == '<' || c == '>') && peek(r, 1) == '(') {
            /* process substitution: its commands run; the word is a /dev/fd path */
            r->i += 2;
            rc = read_cmdsubst(r);
            if (rc == 0)
                words_push(&ws)->exp = 1;
            continue;
        }
        if (starts_redirect(r)) {
            rc = parse_redirect(r);
            continue;
        }
        if (c == '(') {
            if (ws.n == 0 && peek(r, 1) == '(') {
                r->i += 2;
                rc = skip_arith(r);
            } else if (ws.n == 0) {
                r->i++;
                rc = enter(r);
                if (rc == 0)
                    rc = parse_list(r, ')');
                r->depth--;
            } else if (ws.n == 1) {
                /* f() { ...; }: the body follows as a compound command */
                r->i++;
                skip_blanks(r);
                if (peek(r, 0) != ')') {
                    rc = fail(r, "unexpected (");
                    break;
                }
                r->i++;
                words_free(&ws);
            } else {
                rc = fail(r, "unexpected (");
            }
            continue;
        }
        if (is_meta(c))
            break;

        size_t start = r->i;
        struct word *w = words_push(&ws);
        rc = read_word(r, w);
        if (rc != 0)
            break;
        if (ws.n == 1) {
            int k = keyword(r, w);
            if (k != 0) {
                word_release(w);
                ws.n--;
                rc = k < 0 ? -1 : 0;
                continue;
            }
            if (is_assignment(w, r, start)) {
                if (r->i > start && r->s[r->i - 1] == '=' && peek(r, 0) == '(')
                    rc = read_array(r);
                word_release(w);
                ws.n--;
                continue;
            }
        }
    }
    if (rc == 0)
        rc = analyze(r, ws.v, ws.n);
    words_free(&ws);
    return rc;
}

/* A list of commands up to term (')' or 0 for the end of the line). */
static int parse_list(struct rd *r, int term)
{
    for (;;) {
        skip_blanks(r);
        int c = peek(r, 0);

        if (at_end(r)) {
            if (term)
                return fail(r, "unbalanced parenthesis");
            return 0;
        }
        if (c == ')') {
            if (term != ')')
                return fail(r, "unbalanced parenthesis");
            r->i++;
            return 0;
        }
        if (c == '\n') {
            if (eat_newline(r) != 0)
                return -1;
            continue;
        }
        if (c == ';' && peek(r, 1) == ';') {
            if (r->case_depth == 0)
                return fail(r, "';;' outside case");
            r->i += 2;
            if (peek(r, 0) == '&')
                r->i++;
            r->expect_pattern = 1;
            continue;
        }
        if (c == ';' && peek(r, 1) == '&') {
            if (r->case_depth == 0)
                return fail(r, "';&' outside case");
            r->i += 2;
            r->expect_pattern = 1;
            continue;
        }
        if (c == '&' && peek(r, 1) != '>') {
            r->i++;
            continue;
        }
        if (c == ';' || c == '|') {
            r->i++;
            continue;
        }
        if (parse_command(r) != 0)
            return -1;
    }
}

/* ---- what a command runs ---------------------------------------------------------------- */

static const char *base_name(const char *s)
{
    const char *b = strrchr(s, '/');

    return b ? b + 1 : s;
}

/* A word that can stand for a command: no expansion, glob or brace in it. */
static int plain(const struct word *w)
{
    return !w->exp && !w->glob && !w->brace && strlen(wstr(w)) == w->lit.len;
}

/*
 * Skips a wrapper's options: short options in `with_arg` take an argument
 * (attached or the next word), long options in `long_arg` too (unless given
 * as --opt=value).  Stops at "--" (skipped) or the first non-option.  An
 * expansion among the options could be anything: -1.
 */
static int skip_opts(struct rd *r, struct word *v, size_t n, size_t *k, const char *with_arg,
                     const char *const *long_arg)
{
    while (*k < n) {
        const char *s = wstr(&v[*k]);

        if (!plain(&v[*k]))
            return fail(r, "expansion among a wrapper's options");
        if (strcmp(s, "--") == 0) {
            (*k)++;
            return 0;
        }
        if (s[0] != '-' || s[1] == '\0')
            return 0;
        (*k)++;
        if (s[1] == '-') {
            if (strchr(s, '='))
                continue;
            for (size_t j = 0; long_arg && long_arg[j]; j++)
                if (strcmp(s + 2, long_arg[j]) == 0) {
                    (*k)++;
                    break;
                }
            continue;
        }
        for (const char *c = s + 1; *c; c++)
            if (strchr(with_arg, *c)) {
                if (c[1] == '\0')
                    (*k)++;
                break;
            }
    }
    return 0;
}

static void skip_assignments(struct word *v, size_t n, size_t *k)
{
    while (*k < n) {
        const char *s = wstr(&v[*k]);
        size_t j = 0;

        if (!is_name_start((unsigned char)s[0]))
            return;
        while (is_name_char((unsigned char)s[j]))
            j++;
        if (s[j] != '=')
            return;
        (*k)++;
    }
}

static int is_shell(const char *b)
{
    return strcmp(b, "bash") == 0 || strcmp(b, "sh") == 0 || strcmp(b, "zsh") == 0 ||
           strcmp(b, "dash") == 0 || strcmp(b, "ksh") == 0;
}

/* `bash [opts] -c STR`: STR is read as a line of its own. */
static int analyze_shell(struct rd *r, struct word *v, size_t n)
{
    int dash_c = 0;
    size_t k = 1;

    while (k < n) {
        const char *s = wstr(&v[k]);

        if (!plain(&v[k]))
            return fail(r, "expansion among a shell's options");
        if ((s[0] != '-' && s[0] != '+') || s[1] == '\0' || strcmp(s, "--") == 0)
            break;
        k++;
        if (s[1] == '-') {
            if (strcmp(s, "--rcfile") == 0 || strcmp(s, "--init-file") == 0)
                k++;
            continue;
        }
        if (strchr(s + 1, 'c'))
            dash_c = 1;
        if (strchr(s + 1, 'o') || strchr(s + 1, 'O'))
            k++;
    }
    if (k < n && strcmp(wstr(&v[k]), "--") == 0)
        k++;
    if (!dash_c || k >= n)
        return 0;
    if (v[k].exp || strlen(wstr(&v[k])) != v[k].lit.len)
        return fail(r, "bash -c with an expansion");
    return read_line(wstr(&v[k]), v[k].lit.len, r->depth + 1, r->out, r->why, r->whylen);
}

/* find ... -exec CMD ... ; (or +), also -execdir, -ok, -okdir. */
static int analyze_find(struct rd *r, struct word *v, size_t n)
{
    for (size_t k = 1; k < n; k++) {
        const char *s = wstr(&v[k]);

        if (strcmp(s, "-exec") && strcmp(s, "-execdir") && strcmp(s, "-ok") && strcmp(s, "-okdir"))
            continue;
        size_t e = k + 1;
        while (e < n && strcmp(wstr(&v[e]), ";") != 0 && strcmp(wstr(&v[e]), "+") != 0)
            e++;
        if (analyze(r, v + k + 1, e - k - 1) != 0)
            return -1;
        k = e;
    }
    return 0;
}

static int analyze_tee(struct rd *r, struct word *v, size_t n)
{
    int opts = 1;

    for (size_t k = 1; k < n; k++) {
        const char *s = wstr(&v[k]);

        if (opts && strcmp(s, "--") == 0) {
            opts = 0;
            continue;
        }
        if (opts && s[0] == '-' && s[1] != '\0' && plain(&v[k]))
            continue;
        if (!plain(&v[k]) || v[k].tilde)
            return fail(r, "tee file is an expansion");
        emit(r, POL_WRITE, s);
    }
    return 0;
}

struct wrapper {
    const char *name;
    const char *with_arg;       /* short options taking an argument */
    const char *const *long_arg;
    int assignments;            /* NAME=value words may precede the command */
    int operands;               /* words before the command (timeout's DURATION, chroot's DIR) */
    const char *alone;          /* what runs when no command is given, or NULL */
};

static const char *const env_long[] = {"unset", "chdir", NULL};
static const char *const timeout_long[] = {"signal", "kill-after", NULL};
static const char *const sudo_long[] = {"user", "group", "host", "prompt", "chdir", "role",
                                        "type", "other-user", "close-from", "chroot", NULL};
static const char *const xargs_long[] = {"arg-file", "delimiter", "max-lines", "max-args",
                                         "max-procs", "max-chars", "process-slot-var", NULL};
static const char *const stdbuf_long[] = {"input", "output", "error", NULL};
static const char *const ionice_long[] = {"class", "classdata", "pid", "pgid", "uid", NULL};
static const char *const nice_long[] = {"adjustment", NULL};
static const char *const chroot_long[] = {"userspec", "groups", NULL};
static const char *const time_long[] = {"format", "output", NULL};

static const struct wrapper wrappers[] = {
    {"env", "uCS", env_long, 1, 0, NULL},
    {"command", "", NULL, 0, 0, NULL},
    {"exec", "a", NULL, 0, 0, NULL},
    {"nice", "n", nice_long, 0, 0, NULL},
    {"nohup", "", NULL, 0, 0, NULL},
    {"timeout", "sk", timeout_long, 0, 1, NULL},
    {"sudo", "ughpCDrtUTR", sudo_long, 1, 0, NULL},
    {"xargs", "adEILnPs", xargs_long, 0, 0, "echo"},
    {"time", "fo", time_long, 0, 0, NULL},
    {"stdbuf", "ioe", stdbuf_long, 0, 0, NULL},
    {"ionice", "cnpPtu", ionice_long, 0, 0, NULL},
    {"setsid", "", NULL, 0, 0, NULL},
    {"chroot", "", chroot_long, 0, 1, "sh"},
    {"builtin", "", NULL, 0, 0, NULL},
    {"doas", "uC", NULL, 0, 0, NULL},
    {"busybox", "", NULL, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, NULL},
};

static int analyze_wrapper(struct rd *r, const struct wrapper *wr, struct word *v, size_t n)
{
    size_t k = 1;

    if (strcmp(wr->name, "env") == 0)
        for (size_t j = 1; j < n; j++)
            if (strncmp(wstr(&v[j]), "-S", 2) == 0 || strncmp(wstr(&v[j]), "--split-string", 14) == 0)
                return fail(r, "env -S");
    if (skip_opts(r, v, n, &k, wr->with_arg, wr->long_arg) != 0)
        return -1;
    if (wr->assignments)
        skip_assignments(v, n, &k);
    for (int j = 0; j < wr->operands && k < n; j++, k++)
        if (!plain(&v[k]))
            return fail(r, "expansion among a wrapper's operands");
    if (k >= n) {
        if (wr->alone)
            emit(r, POL_SHELL, wr->alone);
        return 0;
    }
    return analyze(r, v + k, n - k);
}

/* Lists the command v[0] and whatever it runs in turn. */
static int analyze(struct rd *r, struct word *v, size_t n)
{
    const char *b;

    if (n == 0)
        return 0;
    if (!plain(&v[0]))
        return fail(r, "command name is an expansion");
    if (r->depth > SHELL_MAX_DEPTH)
        return fail(r, "nesting too deep");
    emit(r, POL_SHELL, wstr(&v[0]));
    b = base_name(wstr(&v[0]));
    if (is_shell(b))
        return analyze_shell(r, v, n);
    if (strcmp(b, "find") == 0)
        return analyze_find(r, v, n);
    if (strcmp(b, "tee") == 0)
        return analyze_tee(r, v, n);
    for (size_t k = 0; wrappers[k].name; k++)
        if (strcmp(b, wrappers[k].name) == 0) {
            int rc;
            r->depth++;
            rc = analyze_wrapper(r, &wrappers[k], v, n);
            r->depth--;
            return rc;
        }
    return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

static int read_line(const char *s, size_t n, int depth, struct shell_ops *out, char *why,
                     size_t whylen)
{
    struct rd r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.s = s;
    r.n = n;
    r.depth = depth;
    r.out = out;
    r.why = why;
    r.whylen = whylen;
    if (n > SHELL_MAX_LINE)
        return fail(&r, "command line too long");
    if (memchr(s, '\0', n))
        return fail(&r, "NUL in command line");
    if (depth > SHELL_MAX_DEPTH)
        return fail(&r, "nesting too deep");
    rc = parse_list(&r, 0);
    if (rc == 0 && r.case_depth != 0)
        rc = fail(&r, "case without esac");
    if (rc == 0 && r.nhd)
        rc = flush_heredocs(&r); /* here-documents with no body: empty */
    for (size_t k = 0; k < r.nhd; k++)
        free(r.hd[k].delim);
    return rc;
}

int shell_read(const char *line, struct shell_ops *out, char *why, size_t whylen)
{
    size_t n;

    out->v = NULL;
    out->n = 0;
    if (why && whylen)
        why[0] = '\0';
    if (!line) {
        if (why && whylen)
            snprintf(why, whylen, "no command line");
        return -1;
    }
    n = strnlen(line, SHELL_MAX_LINE + 1);
    if (read_line(line, n, 0, out, why, whylen) != 0) {
        shell_ops_free(out);
        if (why && whylen && !why[0])
            snprintf(why, whylen, "cannot read the command line");
        return -1;
    }
    return 0;
}

void shell_ops_free(struct shell_ops *ops)
{
    if (!ops)
        return;
    for (size_t k = 0; k < ops->n; k++)
        free(ops->v[k].name);
    free(ops->v);
    ops->v = NULL;
    ops->n = 0;
}
