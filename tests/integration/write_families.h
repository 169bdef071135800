/* write_families.h - one command of (nearly) every write command family of
 * Redis 7.0, as text lines, for the stream phase of destination tests: every
 * command's keys share one hash slot (a {tag}), except for a few splittable
 * ones (MSET, DEL, UNLINK, TOUCH) and two transactions that span tags. So a
 * cluster runs each as it came or split per slot, and a proxy that hashes
 * {tags} (hash_tag "{}") puts each one's keys on one server. Every command
 * succeeds on a source that holds none of these keys first; expiries are
 * far in the future. No '%' in any line: each is sent as a format without
 * arguments. Shared by test_cluster_dest.c and test_proxy_dest.c. */
#ifndef RS_TEST_WRITE_FAMILIES_H
#define RS_TEST_WRITE_FAMILIES_H

#include <stddef.h>

extern const char *const write_families_one_tag[];
extern const size_t write_families_one_tag_n;

#endif
