/* fault_relay.h - a TCP relay that breaks connections on demand, for the
 * fault suite (issue 15): a test puts it between ringsync and a server (the
 * source or the destination) and, while the load runs, resets, stalls,
 * slows or cuts what passes through it.
 *
 *     ringsync ---client leg---> [ relay 127.0.0.1:port ] ---server leg---> redis-server
 *              <-------------------------------------------------------
 *          C2S: what the client sends          S2C: what the server answers
 *
 * One thread of its own runs a ppoll loop over the listening socket, a wake
 * eventfd and every connection's two legs (non-blocking; it never waits on a
 * peer). A connection accepted gets its server leg by a non-blocking connect
 * to 127.0.0.1:target_port; a refused one resets the client leg. What one leg
 * reads is written to the other as it is (16 KiB at a time per direction),
 * an EOF is passed on as a half-close (shutdown SHUT_WR), a read or write
 * error on one leg resets the other.
 *
 * Faults are per direction (but a RESET and a RESET_NEW, which are for
 * connections), for every connection open now and every one accepted while
 * they last. Several may hold at once (a black hole wins).
 * fault_relay_set returns once the relay thread has taken the change: a
 * RESET has been done when it returns, a CUT is armed.
 *
 * Threads: every function may be called from any thread but the relay's;
 * one fault_relay is driven by one thread at a time (the test's). */
#ifndef RS_TEST_FAULT_RELAY_H
#define RS_TEST_FAULT_RELAY_H

#include <stdint.h>

enum fault_relay_dir {
    FAULT_RELAY_C2S = 1 << 0, /* client -> server: commands, REPLCONF ACK */
    FAULT_RELAY_S2C = 1 << 1, /* server -> client: replies, the replication stream */
    FAULT_RELAY_BOTH = FAULT_RELAY_C2S | FAULT_RELAY_S2C,
};

enum fault_relay_fault {
    /* Ends every fault of dirs (an armed CUT too): bytes pass as they come. */
    FAULT_RELAY_CLEAR,
    /* Every connection open now is reset on both legs (SO_LINGER 0, close:
     * each peer gets an RST; bytes the relay held are dropped). dirs and arg
     * are ignored. Done when fault_relay_set returns. */
    FAULT_RELAY_RESET,
    /* Nothing passes in dirs, not even an EOF, but the connections stay:
     * bytes are held (in the relay and the kernel's buffers), not dropped,
     * and go on when the hole ends, as TCP delivers them once a path comes
     * back, even when their sender closed meanwhile (its kernel sends what
     * it holds after a close). A sender that reset its leg meanwhile had its
     * bytes dropped with it: when the hole ends over an RST from the
     * sender, the connection is reset and nothing it held passes. arg: how
     * long in ms (0: until cleared). */
    FAULT_RELAY_BLACK_HOLE,
    /* The same for the connections open now only: those accepted later pass
     * (a path that died under the flows hashed to it, as ECMP does). */
    FAULT_RELAY_BLACK_HOLE_OPEN,
    /* Bytes in dirs are written one per write, at least arg microseconds
     * apart (0: as fast as the loop turns), until cleared. */
    FAULT_RELAY_ONE_BYTE,
    /* After arg more bytes in a direction of dirs (counted over all
     * connections), the connection whose next byte would pass that mark is
     * closed on both legs as soon as that byte is there, so a reply or a
     * command is cut after exactly arg bytes. Once per direction: armed
     * again only by another call. */
    FAULT_RELAY_CUT,
    /* The next arg connections accepted pass; every one accepted after
     * them is reset at once, before its server leg is made: its client sees
     * its connect succeed, then a reset, as from a server that went away
     * after answering arg connections. Connections open now are left
     * alone. dirs are ignored. Until cleared (FAULT_RELAY_CLEAR, any dirs). */
    FAULT_RELAY_RESET_NEW,
};

struct fault_relay_stats {
    uint64_t accepted;    /* connections accepted */
    uint64_t open;        /* connections open now */
    uint64_t refused;     /* connections whose server leg could not connect, or over the cap */
    uint64_t bytes[2];    /* forwarded: [0] C2S, [1] S2C */
    uint64_t resets;      /* connections reset by FAULT_RELAY_RESET */
    uint64_t resets_new;  /* connections reset as they came by FAULT_RELAY_RESET_NEW */
    uint64_t cuts;        /* connections closed by FAULT_RELAY_CUT */
    uint64_t byte_writes; /* one-byte writes made by FAULT_RELAY_ONE_BYTE */
    /* The last cut: its direction, the bytes forwarded just before it and
     * the first ones it kept back, escaped ("S2C cut: ...'+OK\r\n+O' | 'K\r\n'..."). */
    char last_cut[192];
};

struct fault_relay;

/* Starts a relay listening on a free 127.0.0.1 port and forwarding to
 * 127.0.0.1:target_port. NULL with errno set when it could not (a socket,
 * the thread). */
struct fault_relay *fault_relay_start(int target_port);

/* The port it listens on. */
int fault_relay_port(const struct fault_relay *r);

/* Switches fault f on (or off: FAULT_RELAY_CLEAR) for the directions in
 * dirs (a mask of enum fault_relay_dir), arg as f says. Returns 0 once the
 * relay thread has taken it, -EINVAL for a bad argument, -ETIMEDOUT when
 * the relay thread did not answer within 5 s (it never should). */
int fault_relay_set(struct fault_relay *r, unsigned dirs, enum fault_relay_fault f, long long arg);

/* A copy of its counters. */
void fault_relay_stats(struct fault_relay *r, struct fault_relay_stats *out);

/* Stops the thread (joined), closes every connection (its peers see an EOF
 * or a reset) and the listening socket, frees r. NULL is a no-op. */
void fault_relay_stop(struct fault_relay *r);

#endif
