/* fuzz_job_file.c - job_file_translate on any bytes: no crash, no leak, no
 * read past the input, and no password in a message or an option.
 *
 * Input: a byte choosing the command (its low 3 bits: 0 the file's own
 * `command:`, 1..5 sync, restore, replay, verify, capture), then the file.
 * The variable RS_FUZZ_JOB_PASSWORD holds a password a file may name with
 * password_env (password_file is left to the unit tests: no file of a fuzz
 * input is read on purpose, though /dev/null and the like may be).
 *
 * Checks, on every input:
 *  - the result is 0 or a negative errno; a failure leaves the job empty
 *    and a printable message (control bytes of the input shown as '?')
 *    that names job.yaml;
 *  - a success gives options that begin "--" and places inside the input
 *    (line 1.. the number of lines + 1), a command among the five;
 *  - the password is in no message and no option (only in the secret);
 *  - merged with a command line, argv ends with NULL after argc strings.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_file.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_job_file: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define PASSWORD "Fuzz-Secret-Password-1"

static bool is_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static bool is_set;
    if (!is_set) {
        setenv("RS_FUZZ_JOB_PASSWORD", PASSWORD, 1);
        is_set = true;
    }
    unsigned pick = data[0] & 7;
    unsigned command = pick >= 1 && pick <= 5 ? 1u << (pick - 1) : 0;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1); /* exactly the input: reading past it is an ASan report */
    CHECK(text != NULL);
    memcpy(text, data + 1, len);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n' || text[i] == '\r';

    struct job_file jf;
    struct rs_error err = {0};
    int rc = job_file_translate("job.yaml", text, len, command, &jf, &err);
    CHECK(rc == 0 || (rc < 0 && rc > -4096));
    if (rc < 0) {
        CHECK(jf.nopts == 0 && jf.opts == NULL && jf.input == NULL);
        CHECK(jf.secret[0].password == NULL && jf.secret[1].password == NULL);
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL && err.msg[0] != '\0');
        CHECK(strstr(err.msg, "job.yaml") != NULL);
        CHECK(strstr(err.msg, PASSWORD) == NULL);
        CHECK(is_printable(err.msg));
    } else {
        CHECK(command == 0 || jf.command == command);
        CHECK(job_command_name(jf.command) != NULL);
        for (int i = 0; i < jf.nopts; i++) {
            CHECK(strncmp(jf.opts[i], "--", 2) == 0);
            CHECK(strstr(jf.opts[i], PASSWORD) == NULL);
            CHECK(jf.places[i].line >= 1 && jf.places[i].line <= lines + 1);
            CHECK(jf.places[i].column >= 1 && jf.places[i].key != NULL);
        }
        char *cli[] = {(char *)job_command_name(jf.command), "--workers", "1", NULL};
        job_file_merge(&jf, 3, cli);
        CHECK(jf.argc == jf.nopts + 3 + (jf.input != NULL));
        CHECK(jf.argv[jf.argc] == NULL);
        unsetenv("RINGSYNC_SOURCE_PASSWORD");
        unsetenv("RINGSYNC_TARGET_PASSWORD");
    }
    job_file_deinit(&jf);
    free(text);
    return 0;
}
