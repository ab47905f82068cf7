/*
 * Exec storm for `npm run bench:sensor`: one worker per core, each forking and exec'ing /bin/true in a loop
 * for the given time. Every child gets a unique argv[1] (<tag>-<worker>-<sequence>) and the worker logs
 * "<worker pid> <child pid> <argv[1]>" per exec (to <log prefix>.<worker>, one file each so buffered lines
 * never interleave), so the benchmark can tell which process each captured event must describe. Prints the
 * total number of execs and the elapsed seconds.
 *
 * usage: exec-storm <milliseconds> <workers> <tag> <log prefix>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <milliseconds> <workers> <tag> <log prefix>\n", argv[0]);
    return 2;
  }
  const double seconds = atof(argv[1]) / 1000.0;
  const int workers = atoi(argv[2]);
  const char *tag = argv[3];
  long *counts = mmap(NULL, sizeof(long) * (size_t)workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (counts == MAP_FAILED) return 1;
  const double start = now_seconds();
  for (int w = 0; w < workers; w++) {
    pid_t worker = fork();
    if (worker < 0) return 1;
    if (worker > 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", argv[4], w);
    FILE *log = fopen(path, "w");
    if (log == NULL) {
      perror(path);
      _exit(1);
    }
    char marker[128];
    char *child_argv[] = {"/bin/true", marker, NULL};
    long sequence = 0;
    while (now_seconds() - start < seconds) {
      snprintf(marker, sizeof marker, "%s-%d-%ld", tag, w, sequence);
      pid_t child = fork();
      if (child == 0) {
        execv(child_argv[0], child_argv);
        _exit(127);
      }
      if (child < 0) continue;
      fprintf(log, "%d %d %s\n", (int)getpid(), (int)child, marker);
      waitpid(child, NULL, 0);
      sequence++;
    }
    counts[w] = sequence;
    fclose(log);
    _exit(0);
  }
  for (int w = 0; w < workers; w++) wait(NULL);
  const double elapsed = now_seconds() - start;
  long total = 0;
  for (int w = 0; w < workers; w++) total += counts[w];
  printf("%ld %.6f\n", total, elapsed);
  return 0;
}
