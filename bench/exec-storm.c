/*
 * Exec storm for `npm run bench:sensor`: <workers> workers, each vfork()ing and exec'ing <program> (a copy of
 * /bin/true at a path nothing else uses) <execs> times, as fast as it can. Every child gets a unique argv[1]
 * (<tag>-<worker>-<sequence>) and the worker logs "<worker pid> <child pid> <argv[1]>" per exec (to
 * <log prefix>.<worker>, one file each so buffered lines never interleave), so the benchmark can tell which
 * process each captured event must describe. Prints the total number of execs and the elapsed seconds.
 *
 * usage: exec-storm <execs per worker> <workers> <tag> <log prefix> <program>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s <execs per worker> <workers> <tag> <log prefix> <program>\n", argv[0]);
    return 2;
  }
  const long execs = atol(argv[1]);
  const int workers = atoi(argv[2]);
  const char *tag = argv[3];
  char *program = argv[5];
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
    char *child_argv[] = {program, marker, NULL};
    for (long sequence = 0; sequence < execs; sequence++) {
      snprintf(marker, sizeof marker, "%s-%d-%ld", tag, w, sequence);
      // vfork: the parent sleeps until the child has exec'd, as posix_spawn does.
      pid_t child = vfork();
      if (child == 0) {
        execv(program, child_argv);
        _exit(127);
      }
      if (child < 0) {
        sequence--;
        continue;
      }
      fprintf(log, "%d %d %s\n", (int)getpid(), (int)child, marker);
      waitpid(child, NULL, 0);
    }
    fclose(log);
    _exit(0);
  }
  int failed = 0;
  for (int w = 0; w < workers; w++) {
    int status = 0;
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  const double elapsed = now_seconds() - start;
  printf("%ld %.6f\n", execs * workers, elapsed);
  return failed;
}
