/* Unit tests for keys/sealed: secrets sealed at rest with the operator's key file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys/sealed.h"

static const char MATERIAL[] = "0123456789abcdef0123456789abcdef-test-material";

static void test_round_trip(void **state)
{
    struct sealer *s = sealer_new(MATERIAL, sizeof(MATERIAL) - 1);
    struct gw_err e;
    char *a = sealer_seal(s, "github-token:alice@corp", "gho_secret", 10);
    char *b = sealer_seal(s, "github-token:alice@corp", "gho_secret", 10);
    char *opened;

    assert_non_null(a);
    assert_memory_equal(a, "v1.", 3);
    assert_null(strstr(a, "gho_secret"));
    assert_string_not_equal(a, b); /* a fresh nonce each time */
    opened = sealer_open(s, "github-token:alice@corp", a, &e);
    assert_string_equal(opened, "gho_secret");
    free(opened);
    /* another owner's row, another key, a changed byte: none opens */
    assert_null(sealer_open(s, "github-token:bob@corp", a, &e));
    struct sealer *other = sealer_new("another key file's contents, 32+ bytes", 38);
    assert_null(sealer_open(other, "github-token:alice@corp", a, &e));
    a[10] = a[10] == '0' ? '1' : '0';
    assert_null(sealer_open(s, "github-token:alice@corp", a, &e));
    assert_null(strstr(e.msg, "gho_"));
    /* not sealed texts */
    assert_null(sealer_open(s, "x", "", &e));
    assert_null(sealer_open(s, "x", "v1.", &e));
    assert_null(sealer_open(s, "x", "v1.zz", &e));
    assert_null(sealer_open(s, "x", "v2.00112233445566778899aabbccddeeff00112233445566778899", &e));
    /* the empty secret seals and opens */
    char *z = sealer_seal(s, "x", "", 0);
    opened = sealer_open(s, "x", z, &e);
    assert_string_equal(opened, "");
    free(opened);
    free(z);
    free(a);
    free(b);
    sealer_free(other);
    sealer_free(s);
}

static void test_key_file(void **state)
{
    char dir[] = "/tmp/test_sealed.XXXXXX", path[64];
    struct sealer *s = NULL;
    struct gw_err e;
    int fd;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(write(fd, MATERIAL, sizeof(MATERIAL) - 1) > 0);
    close(fd);
    assert_int_equal(sealer_load(path, &s, &e), GW_EINVAL); /* readable by others */
    assert_non_null(strstr(e.msg, "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(sealer_load(path, &s, &e), GW_OK);
    /* the same material as in memory: the same key */
    struct sealer *m = sealer_new(MATERIAL, sizeof(MATERIAL) - 1);
    char *sealed = sealer_seal(s, "ad", "tok", 3), *opened = sealer_open(m, "ad", sealed, &e);
    assert_string_equal(opened, "tok");
    free(opened);
    free(sealed);
    sealer_free(m);
    sealer_free(s);
    /* too short; missing */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(write(fd, "short", 5) == 5);
    close(fd);
    assert_int_equal(sealer_load(path, &s, &e), GW_EINVAL);
    unlink(path);
    assert_int_equal(sealer_load(path, &s, &e), GW_EINVAL);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
