/* cpu_features.h: run-time detection of the x86-64 SIMD extensions cconv has kernels for. */
#ifndef CCONV_CPU_FEATURES_H
#define CCONV_CPU_FEATURES_H

int cconv_cpu_has_avx2_fma(void);   /* AVX2 + FMA3, and the OS saves YMM state */
int cconv_cpu_has_avx512(void);     /* AVX-512 F/BW/DQ/VL, and the OS saves ZMM state */

#endif
