/*
 * src/client/request: header lists, field validation, and the body sources (memory, file,
 * pipe): lengths, reading in pieces, rewinding for a redirect, a file that shrinks.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "errors.h"
#include "request.h"
#include "proc.h"

Test(client_request, headers)
{
    struct tbc_headers hs = {0};

    cr_assert_eq(tbc_headers_add_str(&hs, "Accept", "*/*"), 0);
    cr_assert_eq(tbc_headers_add_str(&hs, "X-A", "1"), 0);
    cr_assert_eq(tbc_headers_add_str(&hs, "x-a", "2"), 0);
    cr_assert_str_eq(tbc_headers_get(&hs, "ACCEPT"), "*/*");
    cr_assert_str_eq(tbc_headers_get(&hs, "x-a"), "1");
    cr_assert_null(tbc_headers_get(&hs, "none"));
    cr_assert_eq(tbc_headers_set(&hs, "X-a", "3"), 0);
    cr_assert_eq(hs.n, 3);
    cr_assert_str_eq(hs.h[2].value, "3");
    cr_assert_eq(tbc_headers_set(&hs, "New", "v"), 0);
    cr_assert_eq(hs.n, 4);
    tbc_headers_remove(&hs, "x-A");
    cr_assert_eq(hs.n, 2);
    cr_assert_str_eq(hs.h[1].name, "New");
    tbc_headers_dispose(&hs);
    cr_assert_eq(hs.n, 0);
}

Test(client_request, headers_bound)
{
    struct tbc_headers hs = {0};
    int i;

    for (i = 0; i < TBC_MAX_FIELDS; i++)
        cr_assert_eq(tbc_headers_add_str(&hs, "a", "b"), 0);
    cr_assert_eq(tbc_headers_add_str(&hs, "a", "b"), TBC_EUSAGE);
    tbc_headers_dispose(&hs);
}

Test(client_request, field_validation)
{
    cr_assert(tbc_header_valid("X-Ok", 4, "a b\tc", 5));
    cr_assert(tbc_header_valid("X-Ok", 4, "", 0));
    cr_assert(!tbc_header_valid("", 0, "v", 1));
    cr_assert(!tbc_header_valid("X Bad", 5, "v", 1));
    cr_assert(!tbc_header_valid("X:", 2, "v", 1));
    cr_assert(!tbc_header_valid("X", 1, "a\r\nInjected: 1", 15));
    cr_assert(!tbc_header_valid("X", 1, "a\nb", 3));
}

Test(client_request, memory_body)
{
    struct tbc_body b;
    char buf[4];

    tbc_body_mem(&b, "hello", 5);
    cr_assert_eq(b.len, 5);
    cr_assert_eq(tbc_body_read(&b, buf, 4), 4);
    cr_assert_eq(tbc_body_read(&b, buf, 4), 1);
    cr_assert_eq(buf[0], 'o');
    cr_assert_eq(tbc_body_read(&b, buf, 4), 0);
    cr_assert_eq(tbc_body_rewind(&b), 0);
    cr_assert_eq(tbc_body_read(&b, buf, 4), 4);
    cr_assert_arr_eq(buf, "hell", 4);
}

Test(client_request, file_body)
{
    char dir[512], path[600], buf[8];
    struct tbc_body b;
    int fd;

    cr_assert_eq(tbt_tempdir("tbclient-body", dir, sizeof(dir)), 0);
    cr_assert_eq(tbt_write_file(dir, "f", "0123456789", 10), 0);
    snprintf(path, sizeof(path), "%s/f", dir);
    fd = open(path, O_RDONLY);
    cr_assert_neq(fd, -1);
    cr_assert_eq(lseek(fd, 2, SEEK_SET), 2);
    cr_assert_eq(tbc_body_fd(&b, fd), 0);
    cr_assert_eq(b.len, 8, "from the current offset");
    cr_assert(b.rewindable);
    cr_assert_eq(tbc_body_read(&b, buf, sizeof(buf)), 8);
    cr_assert_arr_eq(buf, "23456789", 8);
    cr_assert_eq(tbc_body_read(&b, buf, sizeof(buf)), 0);
    cr_assert_eq(tbc_body_rewind(&b), 0);
    cr_assert_eq(tbc_body_read(&b, buf, 3), 3);
    cr_assert_arr_eq(buf, "234", 3);
    /* the file shrinks under us: an error, not a short body */
    cr_assert_eq(truncate(path, 4), 0);
    cr_assert_eq(tbc_body_read(&b, buf, 3), TBC_EREAD);
    close(fd);
    tbt_rmdir_all(dir);
}

Test(client_request, pipe_body)
{
    struct tbc_body b;
    char buf[8];
    int p[2];

    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "abc", 3), 3);
    close(p[1]);
    cr_assert_eq(tbc_body_fd(&b, p[0]), 0);
    cr_assert_eq(b.len, -1);
    cr_assert(!b.rewindable);
    cr_assert_eq(tbc_body_rewind(&b), 0, "nothing read yet");
    cr_assert_eq(tbc_body_read(&b, buf, sizeof(buf)), 3);
    cr_assert_eq(tbc_body_read(&b, buf, sizeof(buf)), 0);
    cr_assert_eq(tbc_body_rewind(&b), TBC_EREWIND);
    close(p[0]);
}
