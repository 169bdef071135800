/* restore_cmd.c - `ringsync restore` and `ringsync replay` (see sync.h): a
 * snapshot file, or a capture at its pace, through sync's write path
 * (sync_run.h).
 *
 *   parse options -> open the input (the file, or a pipe from the replay's
 *   feeder) -> sync_prepare_target -> read the RDB header ->
 *   sync_probe_restore -> sync_run_job -> [replay: its report]
 */
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture_file.h"
#include "control_link.h"
#include "dest_nodes.h"
#include "endpoint.h"
#include "job.h"
#include "log.h"
#include "replay.h"
#include "rs_error.h"
#include "status_server.h"
#include "sync_opts.h"
#include "sync_run.h"

static int restore_run(int argc, char **argv, struct dest_nodes *nodes);

int restore_main(int argc, char **argv)
{
    struct dest_nodes nodes = {0};
    int status = restore_run(argc, argv, &nodes);
    status_server_stop();
    dest_nodes_deinit(&nodes);
    return status;
}

static int restore_run(int argc, char **argv, struct dest_nodes *nodes)
{
    struct sync_opts o;
    int rc = sync_opts_parse(argc, argv, MODE_RESTORE, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    struct run_ctx r = {.o = &o, .rdb_len = UINT64_MAX, .nodes = nodes};
    struct rs_error err = {0};
    if (endpoint_parse(o.target_uri, "RINGSYNC_TARGET_PASSWORD", &r.target, &err) < 0) {
        rs_log("--target: %s", err.msg);
        return 2;
    }
    sync_install_signals();
    if ((rc = status_server_start(o.status_addr, o.cutover_lag_ms)) != 0)
        return rc;
    r.source_name = strcmp(o.file, "-") == 0 ? "standard input" : o.file;
    r.input_fd = strcmp(o.file, "-") == 0 ? STDIN_FILENO : open(o.file, O_RDONLY | O_CLOEXEC);
    if (r.input_fd < 0) {
        rs_log("cannot open %s: %s", o.file, strerror(errno));
        return 1;
    }
    struct stat sb;
    if (fstat(r.input_fd, &sb) == 0 && S_ISREG(sb.st_mode))
        r.rdb_len = (uint64_t)sb.st_size;
    static uint8_t initial[SYNC_INITIAL_MAX];
    while (r.initial_len < SYNC_HEADER_BYTES) {
        ssize_t n = read(r.input_fd, initial + r.initial_len, sizeof(initial) - r.initial_len);
        if (n <= 0)
            break;
        r.initial_len += (size_t)n;
    }
    r.initial = initial;
    struct control_link tcl = {0};
    int status = sync_prepare_target(&r, &tcl);
    if (status == 0) {
        int probe = 0;
        if (!o.restore_never &&
            sync_parse_header_version(initial, r.initial_len, &r.rdb_version) == 0)
            probe = sync_probe_restore(&tcl, r.rdb_version, &r.nodes->eps[r.probe_node]);
        r.use_restore = probe == 1;
        control_link_close(&tcl);
        if (probe < 0) {
            if (r.input_fd != STDIN_FILENO)
                close(r.input_fd);
            return 1;
        }
        if (!o.quiet)
            rs_log("restore: %s -> %s, %u workers, %s", r.source_name, r.target.name, o.workers,
                   r.use_restore ? "RESTORE for small values" : "native commands only");
        status = sync_run_job(&r);
    } else {
        control_link_close(&tcl);
    }
    if (r.input_fd != STDIN_FILENO)
        close(r.input_fd);
    return status;
}

/* replay: the feeder runs beside the workers, from their start to their end. */
struct replay_hooks {
    struct capture_reader *cr;
    int pipe_w;
    double speed;
    struct replay_feeder *feeder;
};

static void replay_on_start(struct job *job, void *ctx)
{
    struct replay_hooks *h = ctx;
    h->feeder = replay_feeder_start(h->cr, h->pipe_w, h->speed, job);
    if (h->feeder == NULL) {
        close(h->pipe_w);
        job_fail(job, "cannot start the replay's feeder thread");
    }
    h->pipe_w = -1; /* the feeder's now */
}

static void replay_on_end(void *ctx)
{
    struct replay_hooks *h = ctx;
    if (h->feeder != NULL)
        replay_feeder_join(h->feeder);
}

static int replay_run(int argc, char **argv, struct dest_nodes *nodes);

int replay_main(int argc, char **argv)
{
    struct dest_nodes nodes = {0};
    int status = replay_run(argc, argv, &nodes);
    status_server_stop();
    dest_nodes_deinit(&nodes);
    return status;
}

static int replay_run(int argc, char **argv, struct dest_nodes *nodes)
{
    struct sync_opts o;
    int rc = sync_opts_parse(argc, argv, MODE_REPLAY, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    struct run_ctx r = {.o = &o, .is_replay = true, .nodes = nodes};
    struct rs_error err = {0};
    if (endpoint_parse(o.target_uri, "RINGSYNC_TARGET_PASSWORD", &r.target, &err) < 0) {
        rs_log("--target: %s", err.msg);
        return 2;
    }
    sync_install_signals();
    if ((rc = status_server_start(o.status_addr, o.cutover_lag_ms)) != 0)
        return rc;
    struct capture_reader cr;
    if (capture_reader_open(&cr, o.file, &err) < 0) {
        rs_log("replay: the capture in %s cannot be replayed (nothing was applied): %s (%s)",
               o.file, err.msg, rs_error_code_name(err.code));
        capture_reader_close(&cr);
        return 1;
    }
    /* the snapshot's first bytes decide RESTORE */
    static uint8_t initial[SYNC_HEADER_BYTES];
    int hfd = open(cr.snapshot_path, O_RDONLY | O_CLOEXEC);
    ssize_t hn = hfd >= 0 ? read(hfd, initial, sizeof(initial)) : -1;
    if (hfd >= 0)
        close(hfd);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rs_log("replay: pipe: %s", strerror(errno));
        capture_reader_close(&cr);
        return 1;
    }
    r.source_name = o.file;
    r.input_fd = fds[0];
    r.rdb_len = cr.meta.snapshot_bytes;
    r.stream_start = cr.meta.start_offset;
    struct replay_hooks hooks = {.cr = &cr, .pipe_w = fds[1], .speed = o.speed};
    r.on_start = replay_on_start;
    r.on_end = replay_on_end;
    r.hook_ctx = &hooks;
    struct control_link tcl = {0};
    int status = sync_prepare_target(&r, &tcl);
    if (status == 0) {
        int probe = 0;
        if (!o.restore_never && hn == SYNC_HEADER_BYTES &&
            sync_parse_header_version(initial, (size_t)hn, &r.rdb_version) == 0)
            probe = sync_probe_restore(&tcl, r.rdb_version, &r.nodes->eps[r.probe_node]);
        r.use_restore = probe == 1;
        control_link_close(&tcl);
        if (probe < 0)
            status = 1;
    } else {
        control_link_close(&tcl);
    }
    if (status == 0) {
        char pace[32] = "max";
        if (o.speed > 0)
            snprintf(pace, sizeof(pace), "%gx", o.speed);
        if (!o.quiet)
            rs_log("replay: %s (source %s, %" PRIu64 " snapshot bytes, %" PRIu64
                   " stream bytes over %.2f s) -> %s at %s, %u workers",
                   o.file, cr.meta.source, cr.meta.snapshot_bytes, cr.meta.stream_bytes,
                   cr.meta.duration_s - cr.meta.snapshot_s, r.target.name, pace, o.workers);
        status = sync_run_job(&r);
        if (hooks.feeder != NULL) {
            const char *ferr = replay_error(hooks.feeder);
            if (ferr != NULL) {
                rs_log("replay: %s", ferr);
                status = 1;
            } else if (status == 0 && !replay_complete(hooks.feeder) && !sync_signal_caught()) {
                rs_log("replay: the stream was not applied to its end (offset %" PRIu64
                       " of %" PRIu64 ")",
                       r.applied_at_end, cr.meta.end_offset);
                status = 1;
            }
            if (replay_report(hooks.feeder, stdout, o.json_path, o.file, r.target.name) < 0 &&
                status == 0)
                status = 1;
            replay_feeder_free(hooks.feeder);
        }
    }
    if (hooks.pipe_w >= 0)
        close(hooks.pipe_w);
    close(fds[0]);
    capture_reader_close(&cr);
    return status;
}
