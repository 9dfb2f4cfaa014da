/*
** lrepl.c: the REPL's terminal side. Lines come in on the loop, so jobs,
** timers and progress go on while the user types: on a terminal through
** libedit's readline-compatible callback interface (a uv_poll on stdin calls
** rl_callback_read_char), otherwise as plain lines read from stdin.
**
** What a line means (commands, multi-line chunks, running it as a job,
** printing values, completion candidates) is lua/zoe/repl.lua; this file
** gives it an 'io' table: prompt(on, continuation), history(text),
** print(text) (above the prompt), and reads its callbacks from the table that
** repl.lua's start() returns: line(text), complete(word), interrupt(presses), eof().
*/
#include <editline/readline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lloop.h"

#define HISTORY_MAX 1000
#define MAX_MATCHES 256

static struct {
  lua_State *L;
  int ref;           /* the table returned by repl.lua's start(io) */
  bool tty;
  bool prompt_on;    /* the prompt is on screen and input is read */
  bool more;         /* the prompt shows a continuation (">> ") */
  bool editing;      /* libedit's callback handler is installed */
  bool eof;
  bool want_on;      /* what repl.lua asked for; applied after libedit returns */
  bool in_readchar;  /* inside rl_callback_read_char */
  bool feeding;      /* inside feed_pending */
  bool polling;
  bool poll_ok;      /* stdin can be polled (a regular file cannot) */
  uv_poll_t poll;
  uv_idle_t file_reader; /* stdin is a regular file: read a line per turn */
  char history[4096];
  char *pending;     /* plain input: bytes read and not yet a whole line */
  size_t npending;
  char *matches[MAX_MATCHES];
  int nmatches;
} rp;

/* ---- calling repl.lua ---- */

static int traceback(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* Call R[name](args...) with 'nargs' values on the stack; leaves 'nres' results (nil on error). */
static void call_repl(const char *name, int nargs, int nres) {
  lua_State *L = rp.L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rp.ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_rotate(L, base + 1, 2); /* handler and function below the arguments */
  if (lua_pcall(L, nargs, nres, base + 1) != LUA_OK) {
    fprintf(stderr, "zoe: the REPL failed in %s: %s\n", name, lua_tostring(L, -1));
    lua_pop(L, 1);
    for (int i = 0; i < nres; i++) lua_pushnil(L);
  }
  lua_remove(L, base + 1);
}

/* ---- output above the prompt ---- */

static void write_out(FILE *f, const char *s, size_t n) {
  /* erase the prompt line, write, draw it again (inside a line handler the prompt is not drawn) */
  if (rp.editing && rp.prompt_on && !rp.in_readchar) {
    fputs("\r\033[K", stdout);
    fflush(stdout);
    fwrite(s, 1, n, f);
    if (n && s[n - 1] != '\n') fputc('\n', f);
    fflush(f);
    rl_forced_update_display();
    return;
  }
  fwrite(s, 1, n, f);
  if (n && s[n - 1] != '\n') fputc('\n', f);
  fflush(f);
}

static void print_async(const char *text) { write_out(stdout, text, strlen(text)); }

/* Progress from background jobs would tear the prompt: it shows only while a line runs. */
static void display_write(void *ud, const char *s, size_t n) {
  (void)ud;
  if (rp.prompt_on) return;
  fwrite(s, 1, n, stderr);
  fflush(stderr);
}

/* print(...) in the REPL: as Lua's, but above the prompt */
static int r_print(lua_State *L) {
  luaL_Buffer b;
  int n = lua_gettop(L);
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  write_out(stdout, s, len);
  return 0;
}

/* ---- input ---- */

static void feed_line(const char *line) {
  lua_pushstring(rp.L, line);
  call_repl("line", 1, 0);
}

static void on_line(char *line) { /* libedit: a whole line, or NULL at end of input */
  rp.editing = false; /* libedit has left editing mode: apply_prompt installs the handler again */
  if (!line) {
    rp.eof = true;
    call_repl("eof", 0, 0);
    return;
  }
  feed_line(line);
  free(line);
}

/* Plain input: hand over whole lines while the prompt is on (a running line holds the rest). */
static void feed_pending(void) {
  if (rp.feeding) return; /* a line fed from here turned the prompt back on: the loop below goes on */
  rp.feeding = true;
  while (rp.prompt_on && rp.npending) {
    char *nl = memchr(rp.pending, '\n', rp.npending);
    if (!nl && !rp.eof) break;
    size_t len = nl ? (size_t)(nl - rp.pending) : rp.npending;
    char *line = malloc(len + 1);
    if (!line) break;
    memcpy(line, rp.pending, len);
    line[len] = '\0';
    size_t used = nl ? len + 1 : len;
    memmove(rp.pending, rp.pending + used, rp.npending - used);
    rp.npending -= used;
    feed_line(line);
    free(line);
  }
  rp.feeding = false;
  if (rp.prompt_on && rp.eof && !rp.npending) call_repl("eof", 0, 0);
}

static void apply_prompt(void);

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (rp.editing) {
    rp.in_readchar = true;
    rl_callback_read_char();
    rp.in_readchar = false;
    apply_prompt();
    return;
  }
  char buf[4096];
  ssize_t n = status < 0 ? 0 : read(STDIN_FILENO, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    rp.eof = true;
    uv_poll_stop(&rp.poll);
    rp.polling = false;
  } else {
    char *p = realloc(rp.pending, rp.npending + (size_t)n);
    if (!p) return;
    rp.pending = p;
    memcpy(rp.pending + rp.npending, buf, (size_t)n);
    rp.npending += (size_t)n;
  }
  feed_pending();
}

/* stdin is a regular file (zoe < script): it never blocks, so read it a line at a time. */
static void read_file_line(uv_idle_t *h) {
  (void)h;
  if (!rp.prompt_on) return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    uv_idle_stop(&rp.file_reader);
    rp.eof = true;
    call_repl("eof", 0, 0);
    return;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  feed_line(line);
  free(line);
}

/* ---- io for repl.lua ---- */

/*
** Show the prompt and read input, or stop reading while a line runs.
** libedit leaves editing mode before it calls the line handler, and the
** handler runs inside rl_callback_read_char: the handler is installed again
** (which draws the prompt) only after that returns.
*/
static void apply_prompt(void) {
  bool on = rp.want_on;
  const char *prompt = rp.more ? ">> " : "> ";
  if (rp.tty && !rp.eof) {
    if (on && !rp.editing) {
      rl_callback_handler_install(prompt, on_line);
      rp.editing = true;
    } else if (!on && rp.editing) {
      rl_callback_handler_remove(); /* gives the terminal back: Ctrl-C works as usual */
      rp.editing = false;
    }
  }
  rp.prompt_on = on;
  if (rp.eof) {
    if (on) feed_pending();
    return;
  }
  if (rp.poll_ok) {
    if (on && !rp.polling) uv_poll_start(&rp.poll, UV_READABLE, on_readable);
    else if (!on && rp.polling) uv_poll_stop(&rp.poll);
    rp.polling = on;
    if (on && !rp.tty) feed_pending();
  } else if (on) {
    uv_idle_start(&rp.file_reader, read_file_line);
  }
}

/* io.prompt(on, more) */
static int io_prompt(lua_State *L) {
  rp.want_on = lua_toboolean(L, 1);
  rp.more = lua_toboolean(L, 2);
  if (!rp.in_readchar) apply_prompt();
  return 0;
}

static int io_history(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  if (!rp.tty || !*s) return 0;
  add_history(s);
  if (rp.history[0]) write_history(rp.history);
  return 0;
}

static int io_print(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  write_out(lua_toboolean(L, 2) ? stderr : stdout, s, n);
  return 0;
}

/* io.clear_line(): Ctrl-C at the prompt forgets what was typed (libedit starts a fresh line). */
static int io_clear_line(lua_State *L) {
  (void)L;
  if (!rp.editing) return 0;
  rl_callback_handler_remove();
  fputs("^C\n", stdout);
  fflush(stdout);
  rp.more = false;
  rl_callback_handler_install("> ", on_line);
  return 0;
}

static int io_stop(lua_State *L) {
  (void)L;
  rp.prompt_on = rp.want_on = false;
  if (rp.editing) rl_callback_handler_remove();
  rp.editing = false;
  if (rp.polling) uv_poll_stop(&rp.poll);
  rp.polling = false;
  uv_idle_stop(&rp.file_reader);
  rp.eof = true;
  return 0;
}

/* io.focus(id): the display shows only job id's progress (-1: none) */
static int io_focus(lua_State *L) {
  lz_loop_display()->focus = (int)luaL_checkinteger(L, 1);
  return 0;
}

static const luaL_Reg io_funcs[] = {
  {"focus", io_focus},
  {"prompt", io_prompt}, {"history", io_history}, {"print", io_print},
  {"clear_line", io_clear_line}, {"stop", io_stop}, {NULL, NULL},
};

/* ---- completion ---- */

static char *next_match(const char *text, int state) {
  (void)text;
  return state < rp.nmatches ? strdup(rp.matches[state]) : NULL;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  for (int i = 0; i < rp.nmatches; i++) free(rp.matches[i]);
  rp.nmatches = 0;
  lua_pushstring(rp.L, text);
  call_repl("complete", 1, 1);
  if (lua_istable(rp.L, -1)) {
    for (lua_Integer i = 1, n = luaL_len(rp.L, -1); i <= n && rp.nmatches < MAX_MATCHES; i++) {
      lua_rawgeti(rp.L, -1, i);
      const char *s = lua_tostring(rp.L, -1);
      if (s && (rp.matches[rp.nmatches] = strdup(s))) rp.nmatches++;
      lua_pop(rp.L, 1);
    }
  }
  lua_pop(rp.L, 1);
  if (rp.nmatches == 0) return NULL;
  return rl_completion_matches(text, next_match);
}

/* ---- Ctrl-C ---- */

static void on_interrupt(int presses) {
  lua_pushinteger(rp.L, presses);
  call_repl("interrupt", 1, 0);
}

/* ---- the REPL ---- */

static void setup_history(void) {
  const char *file = getenv("ZOE_HISTORY");
  const char *home = getenv("HOME");
  if (file && *file) snprintf(rp.history, sizeof rp.history, "%s", file);
  else if (home && *home) snprintf(rp.history, sizeof rp.history, "%s/.zoe_history", home);
  using_history();
  stifle_history(HISTORY_MAX);
  if (rp.history[0]) read_history(rp.history);
}

int lz_repl(lua_State *L) {
  memset(&rp, 0, sizeof rp);
  rp.L = L;
  rp.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  lz_loop_init(L);
  uv_loop_t *loop = lz_loop_uv();
  /* zoe is a global here; repl.lua does the rest */
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "zoe.repl");
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
    fprintf(stderr, "zoe: cannot load the REPL: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 1;
  }
  lua_getfield(L, -1, "start");
  luaL_newlib(L, io_funcs);
  lua_pushboolean(L, rp.tty);
  lua_setfield(L, -2, "tty");
  if (lua_pcall(L, 1, 1, -4) != LUA_OK || !lua_istable(L, -1)) {
    fprintf(stderr, "zoe: cannot start the REPL: %s\n", luaL_tolstring(L, -1, NULL));
    lua_settop(L, 0);
    return 1;
  }
  rp.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  lua_pushcfunction(L, r_print);
  lua_setglobal(L, "print");

  zoe_display *d = lz_loop_display();
  if (d->mode != ZOE_DISPLAY_JSON) d->write = display_write;
  lz_loop_set_printer(print_async);
  lz_loop_on_sigint(on_interrupt);
  if (rp.tty) {
    rl_catch_signals = 0; /* libuv owns SIGINT */
    rl_readline_name = "zoe";
    rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(,+-*/%^#[]~";
    rl_completer_word_break_characters = (char *)rl_basic_word_break_characters;
    rl_attempted_completion_function = complete;
    rl_completion_append_character = '\0';
    setup_history();
  }
  rp.poll_ok = uv_poll_init(loop, &rp.poll, STDIN_FILENO) == 0;
  if (!rp.poll_ok) uv_idle_init(loop, &rp.file_reader);
  call_repl("ready", 0, 0); /* the banner and the first prompt */
  lz_loop_run();
  if (rp.editing) rl_callback_handler_remove();
  if (rp.tty && rp.history[0]) write_history(rp.history);
  if (rp.poll_ok) uv_close((uv_handle_t *)&rp.poll, NULL);
  else uv_close((uv_handle_t *)&rp.file_reader, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  for (int i = 0; i < rp.nmatches; i++) free(rp.matches[i]);
  free(rp.pending);
  lz_loop_on_sigint(NULL);
  lz_loop_set_printer(NULL);
  d->write = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rp.ref);
  lua_getfield(L, -1, "status");
  int rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, rp.ref);
  return rc;
}
