/*
 * Wake-up probe for `npm run bench:sensor`: an ordinary (SCHED_OTHER, nice 0) thread that sleeps 1 ms at a
 * time and records how late each wake-up is. Run beside the exec storm, it shows whether a listener at
 * real-time priority keeps ordinary work off the CPU. On SIGTERM prints "<wake-ups> <p99 µs> <max µs>".
 *
 * usage: wake-probe
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stopping = 0;

static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  const long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  struct sigaction action = {0};
  action.sa_handler = on_term;
  sigaction(SIGTERM, &action, NULL);
  size_t capacity = 1 << 16, count = 0;
  long long *lateness = malloc(capacity * sizeof *lateness);
  if (lateness == NULL) return 1;
  const struct timespec period = {0, 1000000};
  while (!stopping) {
    const long long due = now_ns() + 1000000;
    if (clock_nanosleep(CLOCK_MONOTONIC, 0, &period, NULL) != 0) continue;  // interrupted: not a sample
    const long long late = now_ns() - due;
    if (count == capacity) {
      long long *grown = realloc(lateness, 2 * capacity * sizeof *lateness);
      if (grown == NULL) break;
      lateness = grown;
      capacity *= 2;
    }
    lateness[count++] = late < 0 ? 0 : late;
  }
  if (count == 0) {
    printf("0 0 0\n");
    return 0;
  }
  qsort(lateness, count, sizeof *lateness, by_value);
  const size_t p99 = (count * 99 + 99) / 100 - 1;
  printf("%zu %lld %lld\n", count, lateness[p99] / 1000, lateness[count - 1] / 1000);
  return 0;
}
