/* fuzz_target.h - the one function every tests/fuzz/fuzz_*.c defines.
 *
 * CMake force-includes this header into every fuzz target, so the definition
 * has its prototype (-Wmissing-prototypes) without each file including it.
 * The same file builds two ways: `<name>` linked with libFuzzer
 * (-DRS_LIBFUZZER=ON, clang) and `<name>_replay` linked with replay_main.c,
 * which the test command runs over tests/fuzz/corpus/<name without fuzz_>/.
 */
#ifndef RS_FUZZ_TARGET_H
#define RS_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; returns 0. Must not keep data after it returns. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
