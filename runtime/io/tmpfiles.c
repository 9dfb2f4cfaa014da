/*
** tmpfiles.c: temporary files removed when a signal ends the process, or by the next
** writer when the process that made them is gone. See tmpfiles.h.
*/
#include "tmpfiles.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Slots, not a list: a signal handler may read them at any moment, so each has a fixed
   buffer and a state that says when the buffer holds a whole name. A run writes a handful
   of files at once (a video and its preview sheet, a storyboard's shots side by side), an
   image sequence one per frame until it is closed. */
#define SLOTS 256 /* a sequence of more stills than this leaves the rest to the sweep */
enum { FREE, FILLING, LIVE };

static atomic_int state[SLOTS];
static char paths[SLOTS][PATH_MAX]; /* untouched pages cost nothing */

void zoe_tmpfiles_add(const char *path) {
  size_t n = strlen(path);
  if (n >= PATH_MAX) return;
  for (int i = 0; i < SLOTS; i++) {
    int expected = FREE;
    if (!atomic_compare_exchange_strong(&state[i], &expected, FILLING)) continue;
    memcpy(paths[i], path, n + 1);
    atomic_store(&state[i], LIVE);
    return;
  }
}

void zoe_tmpfiles_forget(const char *path) {
  for (int i = 0; i < SLOTS; i++)
    if (atomic_load(&state[i]) == LIVE && strcmp(paths[i], path) == 0) {
      atomic_store(&state[i], FREE);
      return;
    }
}

void zoe_tmpfiles_remove_all(void) {
  for (int i = 0; i < SLOTS; i++)
    if (atomic_load(&state[i]) == LIVE) unlink(paths[i]);
}

static void on_signal(int sig) {
  int saved = errno;
  zoe_tmpfiles_remove_all();
  signal(sig, SIG_DFL); /* then die of it, so the parent sees the signal */
  raise(sig);
  errno = saved;
}

void zoe_tmpfiles_on_signals(void) {
  const int sigs[] = {SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    /* a signal the parent made us ignore (nohup) stays ignored */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaction(sigs[i], &sa, NULL);
  }
}

/* '.BASE.PID-N.tmp' for this BASE: the PID, or 0 when 'name' is not one */
static long pid_of(const char *name, const char *base) {
  size_t nb = strlen(base);
  if (name[0] != '.' || strncmp(name + 1, base, nb) != 0 || name[1 + nb] != '.') return 0;
  const char *p = name + 2 + nb;
  char *end;
  errno = 0;
  long pid = strtol(p, &end, 10);
  if (errno || end == p || pid <= 0 || *end != '-') return 0;
  p = end + 1;
  strtoul(p, &end, 10);
  if (end == p || strcmp(end, ".tmp") != 0) return 0;
  return pid;
}

void zoe_tmpfiles_sweep(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char dir[PATH_MAX];
  size_t dirlen = slash ? (size_t)(slash - path) : 0;
  if (!*base || dirlen + 2 >= sizeof dir) return;
  if (slash) {
    memcpy(dir, path, dirlen ? dirlen : 1); /* "/x" lives in "/" */
    dir[dirlen ? dirlen : 1] = '\0';
  } else {
    strcpy(dir, ".");
  }
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    long pid = pid_of(de->d_name, base);
    /* gone: no such process (a live one, even another program's reusing the number, keeps it) */
    if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char full[PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) < (int)sizeof full) unlink(full);
  }
  closedir(d);
}
