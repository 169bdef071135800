/* replay_main.c - runs saved inputs through a fuzz target without libFuzzer.
 *
 * usage: <name>_replay PATH...
 * Each PATH is a file, or a directory whose regular files (not recursing, not
 * hidden ones such as .gitkeep) are replayed in name order. Each input is
 * read into a buffer of exactly its size, so sanitizers catch over-reads.
 * Prints "replayed N inputs" and returns 0; a path that cannot be read returns 1
 * (a crash in the target is the failure this program exists to show).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_target.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    /* Exactly the input's size: reading one byte past it is an ASan report. */
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len > 0 ? len : 1);
    int ok = buf != NULL && fread(buf, 1, len, f) == len;
    fclose(f);
    if (ok)
        LLVMFuzzerTestOneInput(buf, len);
    else
        fprintf(stderr, "replay: %s: cannot read\n", path);
    free(buf);
    return ok ? 0 : -1;
}

static int is_visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Returns the number of inputs replayed, or -1. */
static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;

    struct dirent **entries;
    int count = scandir(path, &entries, is_visible, alphasort);
    if (count < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    long replayed = 0;
    for (int i = 0; i < count; i++) {
        char child[4096];
        snprintf(child, sizeof(child), "%s/%s", path, entries[i]->d_name);
        if (replayed >= 0 && stat(child, &st) == 0 && S_ISREG(st.st_mode))
            replayed = replay_file(child) == 0 ? replayed + 1 : -1;
        free(entries[i]);
    }
    free(entries);
    return replayed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = replay_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
