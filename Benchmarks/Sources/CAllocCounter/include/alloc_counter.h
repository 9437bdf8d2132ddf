#ifndef DEVTS_ALLOC_COUNTER_H
#define DEVTS_ALLOC_COUNTER_H

#include <stdint.h>

/*
 * Counts allocations in the process that links this target, by defining malloc, calloc, realloc,
 * posix_memalign, aligned_alloc and memalign over glibc's own (__libc_malloc and friends). An
 * executable's definitions take precedence over libc's for every library in the process.
 *
 * Link it into a stand-alone executable only: never next to another malloc interposer (such as
 * package-benchmark's), which defines the same symbols.
 */

/// Allocation calls (malloc, calloc, realloc, the aligned variants) since the process started.
uint64_t alloc_counter_count(void);

/// True when the counting functions are the ones the process actually calls.
int alloc_counter_active(void);

#endif
