/* cpu_features.c: CPUID / XGETBV checks for AVX2+FMA and AVX-512 (x86-64, GCC/Clang/MSVC).
 * On other architectures every check answers 0 and the portable kernels run. */
#include "cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#if defined(_MSC_VER)
#include <intrin.h>
static void cpuid(int leaf, int subleaf, unsigned regs[4])
{
    int r[4];
    __cpuidex(r, leaf, subleaf);
    regs[0] = (unsigned)r[0]; regs[1] = (unsigned)r[1]; regs[2] = (unsigned)r[2]; regs[3] = (unsigned)r[3];
}
static unsigned long long xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cpuid(int leaf, int subleaf, unsigned regs[4])
{
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
}
static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static int os_saves(unsigned long long mask)
{
    unsigned regs[4];
    cpuid(1, 0, regs);
    if (!(regs[2] & (1u << 27))) return 0;  /* OSXSAVE */
    return (xgetbv0() & mask) == mask;
}

int cconv_cpu_has_avx2_fma(void)
{
    unsigned regs[4];
    cpuid(0, 0, regs);
    if (regs[0] < 7) return 0;
    cpuid(1, 0, regs);
    if (!(regs[2] & (1u << 12)) || !(regs[2] & (1u << 28))) return 0;  /* FMA, AVX */
    cpuid(7, 0, regs);
    if (!(regs[1] & (1u << 5))) return 0;                                /* AVX2 */
    return os_saves(0x6);                                                /* XMM | YMM */
}

int cconv_cpu_has_avx512(void)
{
    unsigned regs[4];
    if (!cconv_cpu_has_avx2_fma()) return 0;
    cpuid(7, 0, regs);
    unsigned need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);   /* F, DQ, BW, VL */
    if ((regs[1] & need) != need) return 0;
    return os_saves(0xE6);                                               /* + opmask, ZMM */
}
#else
int cconv_cpu_has_avx2_fma(void) { return 0; }
int cconv_cpu_has_avx512(void) { return 0; }
#endif
