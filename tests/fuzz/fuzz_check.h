/*
 * What every fuzz target shares: the libFuzzer entry point's prototype and
 * FUZZ_CHECK, which turns a broken invariant into a crash that libFuzzer
 * reports and saves, with a line saying which invariant broke.
 */
#ifndef TORPOR_TESTS_FUZZ_CHECK_H
#define TORPOR_TESTS_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                                 \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", __FILE__,    \
                    __LINE__, (what), #cond);                                  \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif /* TORPOR_TESTS_FUZZ_CHECK_H */
