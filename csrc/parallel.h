/* OpenMP portability: every kernel compiles with or without OpenMP (and with MSVC's OpenMP 2.0).
 * Kernels take their thread count as an argument; nothing here keeps global state. */
#ifndef CCONV_PARALLEL_H
#define CCONV_PARALLEL_H

#ifdef _OPENMP
#include <omp.h>
static inline int cconv_thread_id(void) { return omp_get_thread_num(); }
static inline int cconv_max_threads(void) { return omp_get_max_threads(); }
static inline int cconv_num_procs(void) { return omp_get_num_procs(); }
static inline int cconv_openmp_version(void) { return _OPENMP; }
#else
static inline int cconv_thread_id(void) { return 0; }
static inline int cconv_max_threads(void) { return 1; }
static inline int cconv_num_procs(void) { return 1; }
static inline int cconv_openmp_version(void) { return 0; }
#endif

/* Threads worth using for `work` units when each thread should get at least `grain` units. */
static inline int cconv_threads_for(int requested, double work, double grain)
{
    int useful = (int)(work / grain);
    if (useful < 1) useful = 1;
    if (requested < 1) requested = 1;
    return requested < useful ? requested : useful;
}

#endif
