/*
 * What every libFuzzer target in tests/fuzz shares: the entry point's prototype and CHECK, the
 * oracle's assertion (a failed one aborts, which libFuzzer reports as a crash with its input).
 */
#ifndef TB_FUZZ_H
#define TB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#endif
