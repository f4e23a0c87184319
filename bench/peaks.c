/*
 * Machine peaks for the benchmark report: an FMA loop and a streaming copy.
 *
 *   peaks fma f32|f64 THREADS     -> prints GFLOP/s (2 flops per multiply-add)
 *   peaks copy THREADS MIB        -> prints GB/s, counting bytes read + bytes written
 *                                    (the STREAM "Copy" convention)
 *
 * Built by bench/machine.py with `gcc -O3 -march=native -fopenmp`. The FMA loop keeps
 * 16 independent accumulator vectors per thread so both FMA pipes stay busy despite the
 * 4-cycle FMA latency (2 pipes x 4 cycles = 8 in flight at least; 16 leaves slack).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACCUMULATORS 16

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__AVX512F__)
typedef __m512 vec_f32;
typedef __m512d vec_f64;
#define LANES_F32 16
#define LANES_F64 8
#define SET1_F32 _mm512_set1_ps
#define SET1_F64 _mm512_set1_pd
#define FMA_F32 _mm512_fmadd_ps
#define FMA_F64 _mm512_fmadd_pd
#define ADD_F32 _mm512_add_ps
#define ADD_F64 _mm512_add_pd
#define SUM_F32 _mm512_reduce_add_ps
#define SUM_F64 _mm512_reduce_add_pd
#define ISA_NAME "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec_f32;
typedef __m256d vec_f64;
#define LANES_F32 8
#define LANES_F64 4
#define SET1_F32 _mm256_set1_ps
#define SET1_F64 _mm256_set1_pd
#define FMA_F32 _mm256_fmadd_ps
#define FMA_F64 _mm256_fmadd_pd
#define ADD_F32 _mm256_add_ps
#define ADD_F64 _mm256_add_pd
static float SUM_F32(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float total = 0;
    for (int i = 0; i < 8; i++) total += lanes[i];
    return total;
}
static double SUM_F64(__m256d v) {
    double lanes[4];
    _mm256_storeu_pd(lanes, v);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#define ISA_NAME "avx2"
#else
#error "peaks.c needs AVX2+FMA or AVX-512F"
#endif

/* One thread's FMA loop; returns a value derived from the accumulators so the
 * compiler cannot drop the work. */
static double fma_loop_f32(long iterations) {
    vec_f32 acc[ACCUMULATORS];
    for (int a = 0; a < ACCUMULATORS; a++) acc[a] = SET1_F32(1.0f + 1e-3f * (float)a);
    const vec_f32 mul = SET1_F32(0.999999f);
    const vec_f32 add = SET1_F32(1e-7f);
    for (long i = 0; i < iterations; i++) {
        for (int a = 0; a < ACCUMULATORS; a++) acc[a] = FMA_F32(acc[a], mul, add);
    }
    vec_f32 total = acc[0];
    for (int a = 1; a < ACCUMULATORS; a++) total = ADD_F32(total, acc[a]);
    return (double)SUM_F32(total);
}

static double fma_loop_f64(long iterations) {
    vec_f64 acc[ACCUMULATORS];
    for (int a = 0; a < ACCUMULATORS; a++) acc[a] = SET1_F64(1.0 + 1e-3 * (double)a);
    const vec_f64 mul = SET1_F64(0.999999);
    const vec_f64 add = SET1_F64(1e-9);
    for (long i = 0; i < iterations; i++) {
        for (int a = 0; a < ACCUMULATORS; a++) acc[a] = FMA_F64(acc[a], mul, add);
    }
    vec_f64 total = acc[0];
    for (int a = 1; a < ACCUMULATORS; a++) total = ADD_F64(total, acc[a]);
    return SUM_F64(total);
}

/* Best of several trials of `threads` threads each running the FMA loop. */
static double measure_fma(int is_f64, int threads) {
    const long iterations = 50L * 1000 * 1000;
    const int lanes = is_f64 ? LANES_F64 : LANES_F32;
    double best = 0.0, sink = 0.0;
    for (int trial = 0; trial < 5; trial++) {
        double start = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        { sink += is_f64 ? fma_loop_f64(iterations) : fma_loop_f32(iterations); }
        double seconds = now_seconds() - start;
        double flops = 2.0 * lanes * ACCUMULATORS * (double)iterations * threads;
        if (flops / seconds > best) best = flops / seconds;
    }
    if (sink == 12345.678) printf("#");  /* keeps `sink` observable */
    return best / 1e9;
}

/* Best of several trials of a parallel copy src -> dst of `mib` MiB each. */
static double measure_copy(int threads, long mib) {
    const size_t count = (size_t)mib * 1024 * 1024 / sizeof(double);
    double *src = aligned_alloc(64, count * sizeof(double));
    double *dst = aligned_alloc(64, count * sizeof(double));
    if (!src || !dst) return -1.0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < count; i++) {  /* first touch by the thread that copies it */
        src[i] = (double)i;
        dst[i] = 0.0;
    }
    double best = 0.0;
    for (int trial = 0; trial < 5; trial++) {
        double start = now_seconds();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < count; i++) dst[i] = src[i];
        double seconds = now_seconds() - start;
        double bytes = 2.0 * (double)count * sizeof(double);
        if (bytes / seconds > best) best = bytes / seconds;
    }
    if (dst[count / 2] != (double)(count / 2)) best = -1.0;  /* the copy really happened */
    free(src);
    free(dst);
    return best / 1e9;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "fma") == 0) {
        int is_f64 = strcmp(argv[2], "f64") == 0;
        printf("%.3f %s\n", measure_fma(is_f64, atoi(argv[3])), ISA_NAME);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "copy") == 0) {
        printf("%.3f\n", measure_copy(atoi(argv[2]), atol(argv[3])));
        return 0;
    }
    fprintf(stderr, "usage: peaks fma f32|f64 THREADS | peaks copy THREADS MIB\n");
    return 2;
}
