/* Unit tests for rt/probe: reading /proc/PID/stat and judging a process that leaves a ping unanswered. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rt/probe.h"

/* ---- probe_parse_stat ------------------------------------------------------------------------ */

static void test_parse_stat(void **state)
{
    static const struct {
        const char *line;
        long hz;
        int rc;
        char st;
        uint64_t cpu_ms;
    } cases[] = {
        /* utime 150 + stime 50 ticks at 100 Hz = 2 s */
        {"4242 (copilot-runtime) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 7 0 1 2 3\n",
         100, 0, 'S', 2000},
        {"4242 (copilot-runtime) T 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 7 0\n", 100, 0,
         'T', 100},
        /* a command name with blanks and parentheses: fields come after the last ')' */
        {"7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 1000 1000 0 0\n", 1000, 0, 'R', 2000},
        {"7 (x) t 1 7 7 0 -1 0 0 0 0 0 3 0", 100, 0, 't', 30},
        /* unreadable */
        {"", 100, -1, 0, 0},
        {"7 (x)", 100, -1, 0, 0},
        {"7 (x) S", 100, -1, 0, 0},
        {"7 (x) S 1 7 7 0 -1 0 0 0 0", 100, -1, 0, 0},
        {"7 (x) S 1 7 7 0 -1 0 0 0 0 0 abc 5", 100, -1, 0, 0},
        {"7 (x) S 1 7 7 0 -1 0 0 0 0 0 5 x", 100, -1, 0, 0},
        {"7 (x) S 1 7 7 0 -1 0 0 0 0 0 5 5", 0, -1, 0, 0},
        {"7 x S 1 7 7 0 -1 0 0 0 0 0 5 5", 100, -1, 0, 0},
        {NULL, 100, -1, 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct probe_sample s;
        int rc;

        memset(&s, 0x55, sizeof(s));
        rc = probe_parse_stat(cases[i].line, cases[i].hz, &s);
        if (rc != cases[i].rc || s.state != cases[i].st || s.cpu_ms != cases[i].cpu_ms)
            fail_msg("case %zu: got rc=%d state=%c cpu=%llu, want rc=%d state=%c cpu=%llu", i, rc,
                     s.state ? s.state : '0', (unsigned long long)s.cpu_ms, cases[i].rc,
                     cases[i].st ? cases[i].st : '0', (unsigned long long)cases[i].cpu_ms);
    }
}

/* Our own /proc entry parses: a running process with some CPU time. */
static void test_parse_self(void **state)
{
    char path[64], line[1024];
    struct probe_sample s;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)getpid());
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_int_equal(probe_parse_stat(line, sysconf(_SC_CLK_TCK), &s), 0);
    assert_true(s.state == 'R' || s.state == 'S');
}

/* ---- probe_judge ------------------------------------------------------------------------------ */

static void test_judge(void **state)
{
    static const struct {
        char st0;
        uint64_t cpu0;
        char st1;
        uint64_t cpu1;
        uint64_t window, waited;
        enum probe_verdict want;
    } cases[] = {
        /* stopped: at once, whatever the CPU says */
        {'S', 0, 'T', 0, 10000, 10000, PROBE_STOPPED},
        {'R', 0, 't', 9000, 10000, 10000, PROBE_STOPPED},
        {0, 0, 'T', 0, 10000, 10000, PROBE_STOPPED},
        /* hung: no CPU, or a trickle (an idle runtime uses < 1% of a core) */
        {'S', 100, 'S', 100, 10000, 10000, PROBE_SILENT},
        {'S', 100, 'S', 199, 10000, 10000, PROBE_SILENT},
        {'S', 100, 'S', 599, 10000, 10000, PROBE_SILENT},
        /* busy: 5% of a core or more gets another window */
        {'S', 100, 'R', 600, 10000, 10000, PROBE_WAIT},
        {'R', 0, 'R', 10000, 10000, 10000, PROBE_WAIT},
        {'R', 0, 'R', 10000, 10000, 10000 * (PROBE_BUSY_WINDOWS - 1), PROBE_WAIT},
        /* ... but not forever */
        {'R', 0, 'R', 10000, 10000, 10000 * PROBE_BUSY_WINDOWS, PROBE_TOO_LONG},
        {'R', 0, 'R', 1000, 1000, 1000 * PROBE_BUSY_WINDOWS + 5, PROBE_TOO_LONG},
        /* unknown state (no /proc, a new pid): the clock alone */
        {0, 0, 0, 0, 10000, 10000, PROBE_SILENT},
        {'R', 0, 0, 0, 10000, 10000, PROBE_SILENT},
        {0, 0, 'R', 5000, 10000, 10000, PROBE_SILENT},
        /* CPU time going backwards: another process under the same pid */
        {'R', 9000, 'R', 10, 10000, 10000, PROBE_SILENT},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct probe_sample a = {cases[i].st0, cases[i].cpu0}, b = {cases[i].st1, cases[i].cpu1};
        enum probe_verdict v = probe_judge(&a, &b, cases[i].window, cases[i].waited);
        if (v != cases[i].want)
            fail_msg("case %zu: got %d (%s), want %d (%s)", i, (int)v, probe_verdict_text(v),
                     (int)cases[i].want, probe_verdict_text(cases[i].want));
    }
}

static void test_verdict_text(void **state)
{
    assert_non_null(strstr(probe_verdict_text(PROBE_STOPPED), "stopped"));
    assert_non_null(strstr(probe_verdict_text(PROBE_SILENT), "hung"));
    assert_non_null(strstr(probe_verdict_text(PROBE_TOO_LONG), "busy"));
    assert_non_null(probe_verdict_text((enum probe_verdict)42));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_parse_self),
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_verdict_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
