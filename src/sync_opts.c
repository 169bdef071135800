/* sync_opts.c - the options of sync, restore and replay (see sync_opts.h). */
#include "sync_opts.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "job.h"
#include "job_file.h"
#include "log.h"
#include "status_server.h"

#define SYNC_CONNECT_TIMEOUT_MS 5000
#define SYNC_HEADER_BYTES       9
#define SYNC_INITIAL_MAX        (64 * 1024)
#define SYNC_BATCHES_PER_WORKER 64
#define SYNC_EXPIRY_MARGIN_S    3600 /* --expiry-margin's default (stream_rewrite.h) */
#define SYNC_MAX_MEMORY                                                                            \
    (128u * 1024 * 1024) /* source bytes held in memory before the spill file                      \
                          */

void sync_opts_usage(FILE *f, enum sync_mode mode)
{
    if (mode == MODE_SYNC)
        fprintf(f, "usage: ringsync sync --source URI --target URI [options]\n");
    else if (mode == MODE_RESTORE)
        fprintf(f, "usage: ringsync restore FILE.rdb|- --target URI [options]\n");
    else
        fprintf(f, "usage: ringsync replay DIR --target URI [--speed 1|N|max] [options]\n"
                   "\n"
                   "Applies a capture (ringsync capture) to the target through the write path of\n"
                   "sync: its snapshot, then its command stream at the recorded pace (1), N times\n"
                   "faster, or as fast as the target takes it (max); then reports throughput and\n"
                   "latency percentiles per command. The capture is checked whole first.\n");
    fprintf(f, "\n"
               "URIs are redis://[user[:password]@]host:port; passwords may come from\n"
               "RINGSYNC_SOURCE_PASSWORD / RINGSYNC_TARGET_PASSWORD instead.\n"
               "\n"
               "  --config FILE               the job's options from a YAML job file; flags\n"
               "                              given too override it (README: Job files)\n"
               "  --workers N                 shard workers (default: the CPUs less one, at\n"
               "                              least one)\n"
               "  --target-nonempty P         refuse (default) | keep | flush, when the\n"
               "                              destination already holds keys\n"
               "  --restore auto|never        RESTORE small values (auto), or write every\n"
               "                              value with native commands (never)\n"
               "  --timeout-ms N              connect and handshake timeout (default 5000)\n"
               "  --on-error stop|skip        a command the destination refuses stops the job\n"
               "                              (default), or is logged, counted and skipped\n"
               "  --target-retry-timeout S    how long to retry what a busy or loading\n"
               "                              destination refuses (default 300; 0 forever)\n"
               "  --quiet                     no progress line\n"
               "  --target-mode M             auto (default: ask the target) | standalone |\n"
               "                              cluster (the target is any node of it) | proxy\n"
               "                              (twemproxy/nutcracker in front of the servers) |\n"
               "                              relay (an empty standalone destination becomes\n"
               "                              a replica of ringsync: src/RELAY.md)\n"
               "  --relay-listen HOST:PORT    relay: where the destination connects to ringsync\n"
               "                              (default 127.0.0.1:0, any free port)\n"
               "  --rate-limit SPEC           at most this fast, the full sync and the stream:\n"
               "                              ops=N[,bytes=M] per second (M with k/m/g), or\n"
               "                              micro|small|medium|large|xlarge (200, 2000,\n"
               "                              5000, 11000, 17000 ops/s)\n"
               "  --snapshot-rate-limit SPEC  the same, the full sync only\n"
               "  --stream-rate-limit SPEC    the same, the stream only\n"
               "  --heartbeat-key KEY         write KEY on the source every second and time it\n"
               "                              through to the destination: the status's\n"
               "                              heartbeat lag (a standalone source)\n"
               "  --proxy-connections N       a proxy: connections per worker (default 4)\n"
               "  --proxy-hash-tag {}         a proxy: its hash_tag, so that keys of one {tag}\n"
               "                              share a server (default: none)\n"
               "  --db-map SRC:DST[,...]      source db to destination db (default: each to\n"
               "                              itself; on a cluster 0:0, its only db)\n"
               "  --db-prefix[=PATTERN]       a cluster: every source db N into db 0 with its\n"
               "                              keys prefixed by PATTERN, {N} the db (db{N}:)\n"
               "  --db-unmapped stop|skip     a source db the map leaves out stops the job\n"
               "                              (default), or its keys and writes are dropped\n"
               "  --cross-slot stop|skip      a command a cluster cannot run (keys of several\n"
               "                              slots, no per-slot form), or whose keys the\n"
               "                              filters split, stops the job (default) or is\n"
               "                              logged, counted and dropped\n"
               "  --filter-key-prefix P       copy only keys starting with P (repeatable)\n"
               "  --block-key-prefix P        leave out keys starting with P (repeatable)\n"
               "  --filter-db N               copy only source database N (repeatable)\n"
               "  --block-command NAME        leave out every NAME command (repeatable; any\n"
               "                              case, FLUSHALL for example)\n"
               "  --status-addr HOST:PORT     serve /status and /metrics over HTTP there (sync's\n"
               "                              default 127.0.0.1:0, a free port, logged at\n"
               "                              start; none: no server, restore's and replay's)\n"
               "  --cutover-lag-ms N          ready_for_cutover needs a lag under N ms\n"
               "                              (default 1000)\n"
               "  --log-format text|json      one line per message: text (default), or a JSON\n"
               "                              object with time, level and message\n");
    if (mode != MODE_RESTORE)
        fprintf(f,
                "  --expiry-margin S           while following, write every expiry S seconds\n"
                "                              late, so the destination never expires a key\n"
                "                              before the source's DEL of it; taken back off\n"
                "                              when the job stops (default %d, 0: exact)\n",
                SYNC_EXPIRY_MARGIN_S);
    if (mode == MODE_REPLAY)
        fprintf(f, "  --speed 1|N|max             the pace (default 1)\n"
                   "  --json FILE                 the report as JSON too\n");
    if (mode == MODE_SYNC)
        fprintf(
            f,
            "  --listening-port N          the port the source shows for ringsync\n"
            "  --snapshot-only             stop once the snapshot is applied\n"
            "  --forward-publish           apply PUBLISH from the stream (dropped by default)\n"
            "  --checkpoint target|none    keep the job's progress in the destination (default\n"
            "                              target: keys " CHECKPOINT_PREFIX
            "<job>:...), so that a\n"
            "                              restart resumes exactly where it stopped;\n"
            "                              file:PATH (a proxy destination): in a local file,\n"
            "                              a restart applies again what came after it\n"
            "  --job-id ID                 names the job's checkpoints (default: the source\n"
            "                              as given, host:port)\n"
            "  --topology oneway|bidirectional  bidirectional: both directions of a two-way\n"
            "                              job here (forward first, reverse once its\n"
            "                              snapshot is applied), conflicts reported\n"
            "  --conflict-window-ms N      a key written on both sides within N ms is a\n"
            "                              conflict (default 1000)\n"
            "  --conflict report|a-wins|b-wins  bidirectional: a conflict is reported\n"
            "                              (default), or the key copied from the winning\n"
            "                              side to the other once the window has passed\n"
            "  --direction forward|reverse one direction of a two-way job named by --job-id:\n"
            "                              forward A->B (full sync, then A's writes),\n"
            "                              reverse B->A (B's writes from now); each drops\n"
            "                              the other's writes (src/BIDIRECTIONAL.md)\n"
            "  --resync-on-lost-backlog    resuming, when the source no longer holds the\n"
            "                              offset: flush the destination and sync anew\n"
            "                              (default: stop and say how big the backlog must be)\n"
            "  --source-timeout S          the source's link is lost when nothing, not even\n"
            "                              its PING, came for S seconds (default 60; 0 never)\n"
            "  --source-retry-timeout S    a lost source link is reconnected (PSYNC from the\n"
            "                              offset received) for up to S s (default 300; 0 ever)\n");
}

/* The index of arg among names (NULL-ended), or -1 after saying what the
 * option takes. */
static int choice(const char *arg, const char *option, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(arg, names[i]) == 0)
            return i;
    char list[128] = "";
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
    rs_log("%s takes one of %s, not '%s'", option, list, arg);
    return -1;
}

/* Options without a letter of their own (getopt_long's values past a char). */
enum {
    OPT_FILTER_KEY_PREFIX = 256,
    OPT_BLOCK_KEY_PREFIX,
    OPT_FILTER_DB,
    OPT_BLOCK_COMMAND,
    OPT_RELAY_LISTEN,
    OPT_RATE_LIMIT,
    OPT_SNAPSHOT_RATE_LIMIT,
    OPT_STREAM_RATE_LIMIT,
    OPT_HEARTBEAT_KEY,
    OPT_CONFLICT
};

static const char *const nonempty_names[] = {"refuse", "keep", "flush", NULL};
static const char *const restore_names[] = {"auto", "never", NULL};
static const char *const on_error_names[] = {"stop", "skip", NULL};
static const char *const target_mode_names[] = {"auto",  "standalone", "cluster",
                                                "proxy", "relay",      NULL};
static const char *const checkpoint_names[] = {"target", "none", NULL};
static const char *const direction_names[] = {"forward", "reverse", NULL};
static const char *const topology_names[] = {"oneway", "bidirectional", NULL};
static const char *const conflict_names[] = {"report", "a-wins", "b-wins", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};

int sync_opts_parse(int argc, char **argv, enum sync_mode mode, struct sync_opts *o)
{
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"target", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'w'},
        {"target-nonempty", required_argument, NULL, 'n'},
        {"restore", required_argument, NULL, 'r'},
        {"listening-port", required_argument, NULL, 'l'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"snapshot-only", no_argument, NULL, 'S'},
        {"forward-publish", no_argument, NULL, 'P'},
        {"on-error", required_argument, NULL, 'E'},
        {"target-retry-timeout", required_argument, NULL, 'W'},
        {"max-memory", required_argument, NULL, 'M'},
        {"spill-dir", required_argument, NULL, 'D'},
        {"speed", required_argument, NULL, 'V'},
        {"json", required_argument, NULL, 'J'},
        {"expiry-margin", required_argument, NULL, 'X'},
        {"target-mode", required_argument, NULL, 'G'},
        {"proxy-connections", required_argument, NULL, 'y'},
        {"direction", required_argument, NULL, 'd'},
        {"topology", required_argument, NULL, 'g'},
        {"conflict-window-ms", required_argument, NULL, 'Z'},
        {"proxy-hash-tag", required_argument, NULL, 'Y'},
        {"db-map", required_argument, NULL, 'B'},
        {"db-prefix", optional_argument, NULL, 'K'},
        {"db-unmapped", required_argument, NULL, 'U'},
        {"cross-slot", required_argument, NULL, 'C'},
        {"checkpoint", required_argument, NULL, 'k'},
        {"job-id", required_argument, NULL, 'j'},
        {"resync-on-lost-backlog", no_argument, NULL, 'R'},
        {"source-timeout", required_argument, NULL, 'o'},
        {"source-retry-timeout", required_argument, NULL, 'O'},
        {"status-addr", required_argument, NULL, 'A'},
        {"cutover-lag-ms", required_argument, NULL, 'L'},
        {"log-format", required_argument, NULL, 'F'},
        {"filter-key-prefix", required_argument, NULL, OPT_FILTER_KEY_PREFIX},
        {"block-key-prefix", required_argument, NULL, OPT_BLOCK_KEY_PREFIX},
        {"filter-db", required_argument, NULL, OPT_FILTER_DB},
        {"block-command", required_argument, NULL, OPT_BLOCK_COMMAND},
        {"relay-listen", required_argument, NULL, OPT_RELAY_LISTEN},
        {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
        {"snapshot-rate-limit", required_argument, NULL, OPT_SNAPSHOT_RATE_LIMIT},
        {"stream-rate-limit", required_argument, NULL, OPT_STREAM_RATE_LIMIT},
        {"heartbeat-key", required_argument, NULL, OPT_HEARTBEAT_KEY},
        {"conflict", required_argument, NULL, OPT_CONFLICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* One CPU is left to the main thread, the kernel's network work and the
     * Redis servers that often share the machine: on this 2-core box one
     * worker kept the lag p99 at 2.2 ms where two gave 7 ms (bench/README.md). */
    o->workers = ncpu > 2 ? (unsigned)ncpu - 1 : 1;
    if (o->workers > JOB_MAX_WORKERS)
        o->workers = JOB_MAX_WORKERS;
    o->timeout_ms = SYNC_CONNECT_TIMEOUT_MS;
    o->max_memory = SYNC_MAX_MEMORY;
    o->speed = 1;
    o->retry_timeout_s = 300;
    o->source_timeout_s = 60;
    o->source_retry_timeout_s = 300;
    o->expiry_margin_ms = (int64_t)SYNC_EXPIRY_MARGIN_S * 1000;
    o->conflict_window_ms = 1000;
    o->status_addr = mode == MODE_SYNC ? STATUS_SERVER_ADDR_DEFAULT : "none"; /* asked for */
    o->cutover_lag_ms = STATUS_SERVER_CUTOVER_LAG_MS;
    optind = 1;
    int c, pick;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        job_file_at(optarg); /* a value from a job file: its place in messages */
        switch (c) {
        case 's':
            o->source_uri = optarg;
            break;
        case 't':
            o->target_uri = optarg;
            break;
        case 'w': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > JOB_MAX_WORKERS) {
                rs_log("--workers must be a number from 1 to %d, not '%s'", JOB_MAX_WORKERS,
                       optarg);
                return 2;
            }
            o->workers = (unsigned)v;
            break;
        }
        case 'n':
            if ((o->nonempty = choice(optarg, "--target-nonempty", nonempty_names)) < 0)
                return 2;
            break;
        case 'r':
            if ((pick = choice(optarg, "--restore", restore_names)) < 0)
                return 2;
            o->restore_never = pick == 1;
            break;
        case 'l':
            o->listening_port = atoi(optarg);
            break;
        case 'T':
            o->timeout_ms = atoi(optarg);
            if (o->timeout_ms <= 0) {
                rs_log("--timeout-ms must be a positive number");
                return 2;
            }
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'S':
            o->snapshot_only = true;
            break;
        case 'P':
            o->forward_publish = true;
            break;
        case 'M': {
            double v = strtod(optarg, &end);
            double mul = 1;
            if (*end == 'k' || *end == 'K')
                mul = 1024.0, end++;
            else if (*end == 'm' || *end == 'M')
                mul = 1024.0 * 1024, end++;
            else if (*end == 'g' || *end == 'G')
                mul = 1024.0 * 1024 * 1024, end++;
            if (*end == 'b' || *end == 'B')
                end++;
            if (*end || v <= 0) {
                rs_log("--max-memory takes a size such as 64mb or 1g, not '%s'", optarg);
                return 2;
            }
            o->max_memory = (uint64_t)(v * mul);
            break;
        }
        case 'D':
            o->spill_dir = optarg;
            break;
        case 'W':
            o->retry_timeout_s = strtod(optarg, &end);
            if (*end || !(o->retry_timeout_s >= 0)) {
                rs_log("--target-retry-timeout takes seconds (0: forever), not '%s'", optarg);
                return 2;
            }
            break;
        case 'E':
            if ((pick = choice(optarg, "--on-error", on_error_names)) < 0)
                return 2;
            o->skip_errors = pick == 1;
            break;
        case 'V':
            if (strcmp(optarg, "max") == 0) {
                o->speed = 0;
                break;
            }
            o->speed = strtod(optarg, &end);
            if (*end || !(o->speed > 0) || o->speed > 1e6) {
                rs_log("--speed takes 1 (the recorded pace), a factor N > 0 or max, not '%s'",
                       optarg);
                return 2;
            }
            break;
        case 'J':
            o->json_path = optarg;
            break;
        case 'X': {
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg || v < 0 || v > 10LL * 365 * 86400) {
                rs_log("--expiry-margin takes seconds (0 to 315360000), not '%s'", optarg);
                return 2;
            }
            o->expiry_margin_ms = v * 1000;
            o->expiry_margin_given = true;
            break;
        }
        case 'G':
            if ((pick = choice(optarg, "--target-mode", target_mode_names)) < 0)
                return 2;
            o->target_mode = (enum dest_nodes_mode)pick;
            break;
        case 'Z': {
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 3600 * 1000) {
                rs_log("--conflict-window-ms takes 1 to 3600000, not '%s'", optarg);
                return 2;
            }
            o->conflict_window_ms = v;
            break;
        }
        case 'g':
            if ((pick = choice(optarg, "--topology", topology_names)) < 0)
                return 2;
            o->bidirectional = pick == 1;
            break;
        case 'd':
            if ((pick = choice(optarg, "--direction", direction_names)) < 0)
                return 2;
            o->direction = direction_names[pick];
            break;
        case 'y': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                rs_log("--proxy-connections must be a number from 1 to 64, not '%s'", optarg);
                return 2;
            }
            o->proxy_connections = (unsigned)v;
            break;
        }
        case 'Y':
            if (strcmp(optarg, "{}") != 0) {
                rs_log("--proxy-hash-tag takes {} (the tags Redis Cluster uses, and the proxy's "
                       "hash_tag must be the same), not '%s'",
                       optarg);
                return 2;
            }
            o->proxy_tag = true;
            break;
        case 'B':
            o->db_map = optarg;
            break;
        case 'K':
            o->db_prefix = optarg ? optarg : "db{N}:";
            break;
        case 'U':
            if ((pick = choice(optarg, "--db-unmapped", on_error_names)) < 0)
                return 2;
            o->db_unmapped_skip = pick == 1;
            break;
        case 'C':
            if ((pick = choice(optarg, "--cross-slot", on_error_names)) < 0)
                return 2;
            o->cross_slot_skip = pick == 1;
            break;
        case 'k':
            if (strncmp(optarg, "file:", 5) == 0) {
                if (optarg[5] == '\0') {
                    rs_log("--checkpoint file:PATH needs a path");
                    return 2;
                }
                o->checkpoint_file = optarg + 5;
                o->checkpoint = false;
                o->checkpoint_given = true;
                break;
            }
            if ((pick = choice(optarg, "--checkpoint", checkpoint_names)) < 0)
                return 2;
            o->checkpoint = pick == 0;
            o->checkpoint_given = true;
            break;
        case 'j': {
            struct rs_error err = {0};
            if (checkpoint_job_valid(optarg, &err) < 0) {
                rs_log("--job-id: %s", err.msg);
                return 2;
            }
            o->job_id = optarg;
            break;
        }
        case 'R':
            o->resync_on_lost_backlog = true;
            break;
        case 'o':
            o->source_timeout_s = strtod(optarg, &end);
            if (*end || !(o->source_timeout_s >= 0)) {
                rs_log("--source-timeout takes seconds (0: never), not '%s'", optarg);
                return 2;
            }
            o->source_given = true;
            break;
        case 'O':
            o->source_retry_timeout_s = strtod(optarg, &end);
            if (*end || !(o->source_retry_timeout_s >= 0)) {
                rs_log("--source-retry-timeout takes seconds (0: forever), not '%s'", optarg);
                return 2;
            }
            o->source_given = true;
            break;
        case 'A':
            o->status_addr = optarg;
            break;
        case 'L':
            o->cutover_lag_ms = strtod(optarg, &end);
            if (*end || end == optarg || !(o->cutover_lag_ms > 0)) {
                rs_log("--cutover-lag-ms takes a number of milliseconds above 0, not '%s'", optarg);
                return 2;
            }
            break;
        case 'F':
            if ((pick = choice(optarg, "--log-format", log_format_names)) < 0)
                return 2;
            rs_log_set_format(pick == 1 ? RS_LOG_JSON : RS_LOG_TEXT);
            break;
        case OPT_RELAY_LISTEN:
            o->relay_listen = optarg;
            break;
        case OPT_CONFLICT:
            if ((o->conflict_policy = choice(optarg, "--conflict", conflict_names)) < 0)
                return 2;
            break;
        case OPT_HEARTBEAT_KEY:
            if (optarg[0] == '\0') {
                rs_log("--heartbeat-key takes a key name");
                return 2;
            }
            o->heartbeat_key = optarg;
            break;
        case OPT_RATE_LIMIT:
        case OPT_SNAPSHOT_RATE_LIMIT:
        case OPT_STREAM_RATE_LIMIT: {
            struct rate_limit_spec spec;
            struct rs_error rerr = {0};
            const char *name = c == OPT_RATE_LIMIT            ? "--rate-limit"
                               : c == OPT_SNAPSHOT_RATE_LIMIT ? "--snapshot-rate-limit"
                                                              : "--stream-rate-limit";
            if (rate_limit_parse(optarg, name, &spec, &rerr) < 0) {
                rs_log("%s", rerr.msg);
                return 2;
            }
            if (c != OPT_STREAM_RATE_LIMIT)
                o->snapshot_limit = spec;
            if (c != OPT_SNAPSHOT_RATE_LIMIT)
                o->stream_limit = spec;
            break;
        }
        case OPT_FILTER_KEY_PREFIX:
        case OPT_BLOCK_KEY_PREFIX:
        case OPT_FILTER_DB:
        case OPT_BLOCK_COMMAND: {
            struct rs_error err = {0};
            int x =
                c == OPT_FILTER_KEY_PREFIX  ? key_filter_add_keep_prefix(&o->filter, optarg, &err)
                : c == OPT_BLOCK_KEY_PREFIX ? key_filter_add_block_prefix(&o->filter, optarg, &err)
                : c == OPT_FILTER_DB        ? key_filter_add_db(&o->filter, optarg, &err)
                                            : key_filter_add_command(&o->filter, optarg, &err);
            if (x < 0) {
                rs_log("%s", err.msg);
                return 2;
            }
            break;
        }
        case 'h':
            sync_opts_usage(stdout, mode);
            return -1;
        default:
            sync_opts_usage(stderr, mode);
            return 2;
        }
    }
    job_file_at(NULL);
    bool sync_only = o->source_uri || o->listening_port || o->snapshot_only || o->forward_publish ||
                     o->direction || o->bidirectional || o->spill_dir || o->checkpoint_given ||
                     o->job_id || o->resync_on_lost_backlog || o->source_given;
    if (o->conflict_policy != 0 && !o->bidirectional) {
        rs_log("--conflict %s needs --topology bidirectional: only one process that reads both "
               "sides' streams sees a conflict",
               conflict_names[o->conflict_policy]);
        return 2;
    }
    if (mode == MODE_SYNC && !o->checkpoint_given)
        o->checkpoint = !o->snapshot_only; /* a lone snapshot has no stream to resume */
    bool replay_only = o->speed != 1 || o->json_path;
    if (mode == MODE_RESTORE && o->expiry_margin_given) {
        rs_log("--expiry-margin is for sync and replay: restore writes expiries as they are");
        return 2;
    }
    if ((mode != MODE_SYNC && sync_only) || (mode != MODE_REPLAY && replay_only)) {
        rs_log("an option given is not one of this command's (see --help)");
        return 2;
    }
    if (mode != MODE_SYNC) {
        if (optind + 1 != argc) {
            sync_opts_usage(stderr, mode);
            return 2;
        }
        o->file = argv[optind];
    } else if (optind != argc || o->source_uri == NULL) {
        sync_opts_usage(stderr, mode);
        return 2;
    }
    if (o->target_uri == NULL) {
        rs_log("--target is required");
        sync_opts_usage(stderr, mode);
        return 2;
    }
    return 0;
}

void sync_opts_describe(const struct sync_opts *o, enum sync_mode mode,
                        void (*emit)(void *ctx, const char *option, const char *value), void *ctx)
{
    char b[64];
    if (mode == MODE_SYNC)
        emit(ctx, "source", o->source_uri);
    emit(ctx, "target", o->target_uri);
    snprintf(b, sizeof(b), "%u", o->workers);
    emit(ctx, "workers", b);
    emit(ctx, "target-mode", target_mode_names[o->target_mode]);
    emit(ctx, "relay-listen", o->relay_listen);
    emit(ctx, "heartbeat-key", o->heartbeat_key);
    if (rate_limit_spec_on(&o->snapshot_limit)) {
        rate_limit_describe(&o->snapshot_limit, b, sizeof(b));
        emit(ctx, "snapshot-rate-limit", b);
    }
    if (rate_limit_spec_on(&o->stream_limit)) {
        rate_limit_describe(&o->stream_limit, b, sizeof(b));
        emit(ctx, "stream-rate-limit", b);
    }
    emit(ctx, "target-nonempty", nonempty_names[o->nonempty]);
    emit(ctx, "db-map", o->db_map);
    emit(ctx, "db-prefix", o->db_prefix);
    emit(ctx, "db-unmapped", on_error_names[o->db_unmapped_skip]);
    emit(ctx, "cross-slot", on_error_names[o->cross_slot_skip]);
    emit(ctx, "status-addr", o->status_addr);
    snprintf(b, sizeof(b), "%g", o->cutover_lag_ms);
    emit(ctx, "cutover-lag-ms", b);
    emit(ctx, "restore", restore_names[o->restore_never]);
    emit(ctx, "on-error", on_error_names[o->skip_errors]);
    snprintf(b, sizeof(b), "%g", o->retry_timeout_s);
    emit(ctx, "target-retry-timeout", b);
    snprintf(b, sizeof(b), "%d", o->timeout_ms);
    emit(ctx, "timeout-ms", b);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)o->max_memory);
    emit(ctx, "max-memory", b);
    snprintf(b, sizeof(b), "%u", o->proxy_connections ? o->proxy_connections : 4);
    emit(ctx, "proxy-connections", b);
    emit(ctx, "proxy-hash-tag", o->proxy_tag ? "{}" : NULL);
    emit(ctx, "quiet", o->quiet ? "true" : "false");
    if (mode != MODE_RESTORE) {
        snprintf(b, sizeof(b), "%lld", (long long)(o->expiry_margin_ms / 1000));
        emit(ctx, "expiry-margin", b);
    }
    if (mode == MODE_REPLAY) {
        snprintf(b, sizeof(b), "%g", o->speed);
        emit(ctx, "speed", o->speed == 0 ? "max" : b);
        emit(ctx, "json", o->json_path);
    }
    if (mode != MODE_SYNC)
        return;
    emit(ctx, "topology", o->bidirectional ? "bidirectional" : "oneway");
    emit(ctx, "direction", o->direction);
    snprintf(b, sizeof(b), "%lld", (long long)o->conflict_window_ms);
    emit(ctx, "conflict-window-ms", b);
    emit(ctx, "conflict", conflict_names[o->conflict_policy]);
    char cp[4200];
    snprintf(cp, sizeof(cp), "file:%s", o->checkpoint_file ? o->checkpoint_file : "");
    emit(ctx, "checkpoint", o->checkpoint_file ? cp : o->checkpoint ? "target" : "none");
    emit(ctx, "job-id", o->job_id);
    emit(ctx, "resync-on-lost-backlog", o->resync_on_lost_backlog ? "true" : "false");
    snprintf(b, sizeof(b), "%g", o->source_timeout_s);
    emit(ctx, "source-timeout", b);
    snprintf(b, sizeof(b), "%g", o->source_retry_timeout_s);
    emit(ctx, "source-retry-timeout", b);
    if (o->listening_port)
        snprintf(b, sizeof(b), "%d", o->listening_port);
    emit(ctx, "listening-port", o->listening_port ? b : NULL);
    emit(ctx, "snapshot-only", o->snapshot_only ? "true" : "false");
    emit(ctx, "forward-publish", o->forward_publish ? "true" : "false");
    emit(ctx, "spill-dir", o->spill_dir);
}
