/*
** test_cli.c: the zoe command from outside: exit statuses, --json, Ctrl-C on a
** running script (SIGINT through kill), and the REPL driven through a
** pseudo-terminal (forkpty) and through a pipe. The binary is $ZOE_TEST_ZOE.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static const char *zoe;
static char tmp[256];

typedef struct proc {
  pid_t pid;
  int in, out, err; /* a pty has one fd for all three */
  char buf[1 << 16], ebuf[1 << 16];
  size_t n, en, seen; /* bytes read from out and err; where expect() goes on from */
  int status;
} proc;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read what is there (or wait up to 'wait' s for something) from out and err. */
static void pump(proc *p, double wait) {
  struct pollfd fds[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
  int nfds = p->err >= 0 ? 2 : 1;
  if (poll(fds, (nfds_t)nfds, (int)(wait * 1000)) <= 0) return;
  if (fds[0].revents & (POLLIN | POLLHUP)) {
    ssize_t k = read(p->out, p->buf + p->n, sizeof p->buf - 1 - p->n);
    if (k > 0) p->n += (size_t)k;
    p->buf[p->n] = '\0';
  }
  if (nfds == 2 && fds[1].revents & (POLLIN | POLLHUP)) {
    ssize_t k = read(p->err, p->ebuf + p->en, sizeof p->ebuf - 1 - p->en);
    if (k > 0) p->en += (size_t)k;
    p->ebuf[p->en] = '\0';
  }
}

/* Wait until 'text' shows in the output after what earlier expects matched. */
static bool expect(proc *p, const char *text, double timeout) {
  double end = now() + timeout;
  for (;;) {
    char *at = strstr(p->buf + p->seen, text);
    if (at) {
      p->seen = (size_t)(at - p->buf) + strlen(text);
      return true;
    }
    if (now() > end) {
      printf("  # expected '%s' after: [%s]\n", text, p->buf + p->seen);
      return false;
    }
    pump(p, 0.05);
  }
}

static void send(proc *p, const char *s) {
  if (write(p->in, s, strlen(s)) < 0) perror("write");
}

/* The exit status (128 + signal when killed), or -1 after 'timeout' s (then it is killed). */
static int finish(proc *p, double timeout) {
  double end = now() + timeout;
  int st;
  for (;;) {
    pump(p, 0.02);
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) break;
    if (now() > end) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      return -1;
    }
  }
  for (int i = 0; i < 5; i++) pump(p, 0.01); /* what was still in the pipes */
  if (p->in != p->out) close(p->in);
  close(p->out);
  if (p->err >= 0) close(p->err);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void child_env(void) {
  char hist[300];
  snprintf(hist, sizeof hist, "%s/history", tmp);
  setenv("ZOE_HISTORY", hist, 1);
  setenv("TERM", "xterm", 1);
}

/* zoe with pipes for stdin, stdout and stderr */
static void start_pipes(proc *p, char *const argv[]) {
  int in[2], out[2], err[2];
  memset(p, 0, sizeof *p);
  if (pipe(in) || pipe(out) || pipe(err)) perror("pipe");
  p->pid = fork();
  if (p->pid == 0) {
    dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
    close(in[1]), close(out[0]), close(err[0]);
    child_env();
    execv(zoe, argv);
    _exit(127);
  }
  close(in[0]), close(out[1]), close(err[1]);
  p->in = in[1], p->out = out[0], p->err = err[0];
}

/* zoe on a pseudo-terminal of 120 x 40 */
static void start_pty(proc *p, char *const argv[]) {
  struct winsize ws = {.ws_row = 40, .ws_col = 120};
  int master;
  memset(p, 0, sizeof *p);
  p->pid = forkpty(&master, NULL, NULL, &ws);
  if (p->pid == 0) {
    child_env();
    execv(zoe, argv);
    _exit(127);
  }
  p->in = p->out = master;
  p->err = -1;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *path, char *buf, size_t n) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return buf;
  size_t k = fread(buf, 1, n - 1, f);
  buf[k] = '\0';
  fclose(f);
  return buf;
}

/* ---- scripts ---- */

static void test_exit_status(void) {
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, "-e", "print(6 * 7)", NULL});
  int st = finish(&p, 30);
  CHECK(st == 0, "exit %d", st);
  CHECK(strcmp(p.buf, "42\n") == 0, "stdout [%s]", p.buf);
  start_pipes(&p, (char *[]){(char *)zoe, "-e", "local x = nil; x.field = 1", NULL});
  st = finish(&p, 30);
  CHECK(st == 1, "an error exits with 1, got %d", st);
  CHECK(strstr(p.ebuf, "(command line):1: attempt to index a nil value") != NULL, "stderr [%s]", p.ebuf);
  CHECK(strstr(p.ebuf, "stack traceback") != NULL, "with a traceback");
}

static void test_json_events(void) {
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, "--json", "-e",
                             "local zoe = require 'zoe'\n"
                             "for i = 1, 3 do zoe.progress{stage = 'denoise', step = i, steps = 3} end\n"
                             "print('to stderr')",
                             NULL});
  int st = finish(&p, 30);
  CHECK(st == 0, "exit %d [%s]", st, p.ebuf);
  int progress = 0, lines = 0;
  for (char *l = strtok(p.buf, "\n"); l; l = strtok(NULL, "\n")) {
    lines++;
    CHECK(l[0] == '{' && l[strlen(l) - 1] == '}', "a JSON object per line: %s", l);
    if (strstr(l, "\"event\":\"progress\"") && strstr(l, "\"stage\":\"denoise\"")) progress++;
    if (lines == 3) CHECK(strstr(l, "\"step\":3,\"steps\":3") != NULL, "third event: %s", l);
    if (lines == 4)
      CHECK(strstr(l, "{\"event\":\"job\",\"job\":1,\"name\":\"(command line)\",\"status\":\"done\"") == l,
            "the main job's end: %s", l);
  }
  CHECK(progress == 3 && lines == 4, "%d progress events in %d lines", progress, lines);
  CHECK(strcmp(p.ebuf, "to stderr\n") == 0, "print goes to stderr with --json: [%s]", p.ebuf);
}

/* A bad setting is the user's to fix: one line, no traceback, no runtime file; -v adds them. */
static void test_settings_error_one_line(void) {
  const char *src = "require('zoe').pipeline.text2video{prompt = 'a red circle', fps = 0}";
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, "-e", (char *)src, NULL});
  int st = finish(&p, 30);
  CHECK(st == 1, "exit %d", st);
  CHECK(strcmp(p.ebuf, "zoe: text2video: fps must be a number of frames per second above 0 (at most 1000), got 0\n") == 0,
        "one line: [%s]", p.ebuf);
  start_pipes(&p, (char *[]){(char *)zoe, "-v", "-e", (char *)src, NULL});
  st = finish(&p, 30);
  CHECK(st == 1 && strstr(p.ebuf, "stack traceback") && strstr(p.ebuf, "pipeline"), "-v: the traceback [%s]", p.ebuf);
  start_pipes(&p, (char *[]){(char *)zoe, "-e", "local x = nil; x.y = 1", NULL});
  st = finish(&p, 30);
  CHECK(st == 1 && strstr(p.ebuf, "stack traceback"), "a bug keeps its traceback [%s]", p.ebuf);
  start_pipes(&p, (char *[]){(char *)zoe, "--version", NULL});
  st = finish(&p, 30);
  CHECK(st == 0 && strncmp(p.buf, "zoe ", 4) == 0, "--version [%s]", p.buf);
}

/* Plain lines when stderr is not a terminal, nothing with --quiet, a bar redrawn in place on a terminal. */
static void test_progress_display(void) {
  const char *src = "local zoe = require 'zoe'\n"
                    "for i = 1, 3 do zoe.progress{stage = 'denoise', step = i, steps = 3} end\n"
                    "print('done')";
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, "-e", (char *)src, NULL});
  int st = finish(&p, 30);
  CHECK(st == 0, "exit %d", st);
  const char *lines = "[(command line)] denoise 1/3\n[(command line)] denoise 3/3 "; /* then its rate */
  CHECK(strncmp(p.ebuf, lines, strlen(lines)) == 0 && strchr(p.ebuf + strlen(lines), '\n'), "lines: [%s]", p.ebuf);
  CHECK(strcmp(p.buf, "done\n") == 0, "stdout [%s]", p.buf);
  start_pipes(&p, (char *[]){(char *)zoe, "--quiet", "-e", (char *)src, NULL});
  st = finish(&p, 30);
  CHECK(st == 0 && p.en == 0, "--quiet prints no progress: [%s]", p.ebuf);
  start_pty(&p, (char *[]){(char *)zoe, "-e", (char *)src, NULL});
  st = finish(&p, 30);
  CHECK(st == 0, "exit %d", st);
  CHECK(strstr(p.buf, "\r[(command line)] denoise [") != NULL && strstr(p.buf, "] 3/3 ") != NULL &&
            strstr(p.buf, "\033[K") != NULL,
        "a bar on a terminal: [%s]", p.buf);
}

/* Ctrl-C on a running script: it cancels the job, says so, keeps what was written, exits 130. */
static void test_sigint_cancels_script(void) {
  char script[300], out[300], text[256];
  snprintf(script, sizeof script, "%s/long.lua", tmp);
  snprintf(out, sizeof out, "%s/partial.txt", tmp);
  char src[1024];
  snprintf(src, sizeof src,
           "local zoe = require 'zoe'\n"
           "local f = assert(io.open('%s', 'w'))\n"
           "f:write('written before\\n')\n"
           "f:close()\n"
           "local a = zoe.tensor.randn(1024, 1024)\n"
           "print('ready')\n"
           "for i = 1, 1000000 do a:matmul(a) end\n"
           "io.open('%s', 'a'):write('never\\n')\n",
           out, out);
  write_file(script, src);
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, script, NULL});
  CHECK(expect(&p, "ready", 30), "the script started");
  usleep(300000);
  double t0 = now();
  kill(p.pid, SIGINT);
  int st = finish(&p, 10);
  double took = now() - t0;
  CHECK(st == 130, "exit status %d after Ctrl-C [%s]", st, p.ebuf);
  CHECK(took < 5, "exited %.2f s after Ctrl-C", took);
  CHECK(strstr(p.ebuf, "Ctrl-C: canceling job 1 (") != NULL, "says what it cancels: [%s]", p.ebuf);
  CHECK(strstr(p.ebuf, "zoe: job 1 canceled") != NULL, "and that it was canceled, without a position: [%s]", p.ebuf);
  CHECK(strcmp(read_file(out, text, sizeof text), "written before\n") == 0, "partial output kept: [%s]", text);
}

/* the temporary files of 'name' in tmp ('.NAME.PID-N.tmp', as the video writer names them) */
static int temporaries(const char *name) {
  DIR *d = opendir(tmp);
  int n = 0;
  size_t k = strlen(name);
  for (struct dirent *de; d && (de = readdir(d));)
    n += de->d_name[0] == '.' && !strncmp(de->d_name + 1, name, k) && strstr(de->d_name, ".tmp") != NULL;
  if (d) closedir(d);
  return n;
}

/* SIGTERM while a video is being written: the process dies of it, and its temporary file goes too. */
static void test_sigterm_leaves_no_temporary(void) {
  char script[300], video[300], src[1024];
  snprintf(script, sizeof script, "%s/term.lua", tmp);
  snprintf(video, sizeof video, "%s/term.mp4", tmp);
  snprintf(src, sizeof src,
           "local zoe = require 'zoe'\n"
           "local w = zoe.video.writer('%s')\n"
           "w:write(zoe.tensor.zeros(3, 4, 64, 64))\n"
           "io.stdout:write('writing\\n'); io.stdout:flush()\n"
           "zoe.sleep(60000)\n",
           video);
  write_file(script, src);
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, script, NULL});
  CHECK(expect(&p, "writing", 30), "the writer is open [%s]", p.ebuf);
  CHECK(temporaries("term.mp4.") == 1, "its temporary file is there: %d", temporaries("term.mp4."));
  kill(p.pid, SIGTERM);
  int st = finish(&p, 10);
  CHECK(st == 128 + SIGTERM, "dies of SIGTERM: status %d [%s]", st, p.ebuf);
  CHECK(temporaries("term.mp4.") == 0, "no temporary file left: %d", temporaries("term.mp4."));
  CHECK(access(video, F_OK) != 0, "and no video");
}

/* A script that swallows the cancel: the second Ctrl-C within 2 s exits. */
static void test_second_sigint_exits(void) {
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, "-e",
                             "local zoe = require 'zoe'\n"
                             "local a = zoe.tensor.randn(512, 512)\n"
                             "print('ready')\n"
                             "while true do pcall(a.matmul, a, a) end",
                             NULL});
  CHECK(expect(&p, "ready", 30), "started");
  usleep(200000);
  kill(p.pid, SIGINT);
  usleep(300000);
  kill(p.pid, SIGINT);
  int st = finish(&p, 10);
  CHECK(st == 130, "exit status %d", st);
  CHECK(strstr(p.ebuf, "interrupted again: exiting") != NULL, "stderr [%s]", p.ebuf);
}

/* ---- the REPL ---- */

static void test_repl_pty(void) {
  char hist[300], text[4096];
  snprintf(hist, sizeof hist, "%s/history", tmp);
  unlink(hist);
  proc p;
  start_pty(&p, (char *[]){(char *)zoe, NULL});
  CHECK(expect(&p, "zoe is loaded", 30) && expect(&p, "> ", 10), "banner and prompt");
  send(&p, "j = zoe.spawn(function() for i = 1, 100000 do "
           "zoe.progress{stage = 'gen', step = i, steps = 100000}; zoe.sleep(5) end end)\r");
  CHECK(expect(&p, "> ", 10), "prompt after spawn");
  send(&p, "1+1\r");
  CHECK(expect(&p, "1+1\r\n2\r\n", 10), "answers 1+1 while the job runs");
  send(&p, ":jobs\r");
  CHECK(expect(&p, "stdin:1", 10) && expect(&p, "gen ", 5), "lists the job with its stage");
  send(&p, "j:status()\r");
  CHECK(expect(&p, "\r\nrunning\r\n", 10), "still running");
  send(&p, "for i = 1, 2 do\r");
  CHECK(expect(&p, ">> ", 10), "continuation prompt");
  send(&p, "print(i * 10)\r");
  CHECK(expect(&p, ">> ", 10), "still continuing");
  send(&p, "end\r");
  CHECK(expect(&p, "10\r\n20\r\n", 10), "the chunk ran");
  send(&p, "error('oops')\r");
  CHECK(expect(&p, "stdin:1: oops", 10) && expect(&p, "stack traceback", 5), "error with traceback");
  send(&p, "zoe.tensor.ones(2, 3)\r");
  CHECK(expect(&p, "[zoe.Tensor f32 2x3]", 10), "a tensor prints its summary");
  send(&p, "type(zoe.spa\t"); /* completes to zoe.spawn (libedit redraws it with cursor moves) */
  usleep(200000);
  send(&p, ")\r");
  CHECK(expect(&p, "\r\nfunction\r\n", 10), "tab completed zoe.spa to a function");
  send(&p, "abc\x03"); /* Ctrl-C clears the line and tells about the running job */
  CHECK(expect(&p, "Ctrl-C again within 2 s cancels them", 10), "first Ctrl-C");
  send(&p, "\x03");
  CHECK(expect(&p, "canceling job 2 (stdin:1)", 10), "second Ctrl-C cancels the job");
  send(&p, "j:status()\r");
  CHECK(expect(&p, "\r\ncanceled\r\n", 10), "the job was canceled");
  send(&p, "while true do end\r"); /* a busy line: Ctrl-C cancels it, never the REPL */
  usleep(300000);
  send(&p, "\x03");
  CHECK(expect(&p, "canceling job", 10) && expect(&p, "canceled", 10), "Ctrl-C cancels a busy line");
  send(&p, "2+2\r");
  CHECK(expect(&p, "\r\n4\r\n", 10), "the REPL goes on");
  send(&p, "\x04"); /* Ctrl-D */
  int st = finish(&p, 10);
  CHECK(st == 0, "Ctrl-D exits with 0, got %d", st);
  CHECK(strstr(read_file(hist, text, sizeof text), "1+1") != NULL, "history saved: [%s]", text);
}

/*
** A render in the background (zoe-tiny, its denoising in the sampler's coroutine): the REPL
** answers while it denoises, and :cancel stops it before its last step. Properties, not
** times: the job is still denoising when 1+1 comes back, and canceled short of its end.
*/
static void test_repl_render(void) {
  proc p;
  start_pty(&p, (char *[]){(char *)zoe, NULL});
  CHECK(expect(&p, "zoe is loaded", 30) && expect(&p, "> ", 10), "banner and prompt");
  send(&p, "j = zoe.spawn(function() return zoe.pipeline.text2video{model = 'zoe-tiny', seed = 1, "
           "prompt = 'a red circle moving right on a white background', width = 128, height = 128, "
           "steps = 1000} end)\r");
  CHECK(expect(&p, "> ", 10), "prompt after spawn");
  send(&p, "repeat zoe.sleep(10) until (j:info().step or 0) >= 3\r");
  CHECK(expect(&p, "> ", 60), "the render reached its denoising");
  send(&p, "1+1\r");
  CHECK(expect(&p, "1+1\r\n2\r\n", 30), "answers 1+1");
  send(&p, "print(j:status(), j:info().stage, j:info().step < 1000)\r");
  CHECK(expect(&p, "running\tdenoise\ttrue", 30), "while the render denoises");
  send(&p, ":cancel 2\r");
  CHECK(expect(&p, "canceling job 2", 10), ":cancel says what it cancels");
  send(&p, "repeat zoe.sleep(10) until j:status() ~= 'running'; print(j:status(), j:info().step < 1000)\r");
  CHECK(expect(&p, "canceled\ttrue", 30), "the render was canceled before its last step");
  send(&p, "\x04");
  int st = finish(&p, 10);
  CHECK(st == 0, "Ctrl-D exits with 0, got %d", st);
}

static void test_repl_pipe(void) {
  proc p;
  start_pipes(&p, (char *[]){(char *)zoe, NULL});
  send(&p, "1+1\nprint('x')\nerror('bad')\nfor i = 1, 2 do\nprint(i)\nend\nzoe.sleep(10); return 3*3\n");
  close(p.in);
  p.in = -1;
  int st = finish(&p, 30);
  CHECK(st == 0, "exit %d", st);
  CHECK(strcmp(p.buf, "2\nx\n1\n2\n9\n") == 0, "stdout [%s]", p.buf);
  CHECK(strstr(p.ebuf, "stdin:1: bad") != NULL, "stderr [%s]", p.ebuf);
}

int main(void) {
  zoe = getenv("ZOE_TEST_ZOE");
  if (!zoe) zoe = "bin/zoe";
  if (access(zoe, X_OK) != 0) {
    printf("not ok - %s is not executable\n# passed 0 failed 1 skipped 0\n", zoe);
    return 1;
  }
  snprintf(tmp, sizeof tmp, "/tmp/zoe-cli-XXXXXX");
  if (!mkdtemp(tmp)) return 1;
  signal(SIGPIPE, SIG_IGN);
  RUN(test_exit_status);
  RUN(test_json_events);
  RUN(test_settings_error_one_line);
  RUN(test_progress_display);
  RUN(test_sigint_cancels_script);
  RUN(test_second_sigint_exits);
  RUN(test_sigterm_leaves_no_temporary);
  RUN(test_repl_pty);
  RUN(test_repl_render);
  RUN(test_repl_pipe);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
  return test_summary();
}
