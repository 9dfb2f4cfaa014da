/*
** tmpfiles.h: the temporary files this process is writing, so that a signal that ends it
** (SIGTERM, SIGHUP) can remove them, and so that those a killed process left behind
** (SIGKILL, a crash) are removed by the next writer of the same file.
** A writer names its temporary file when it creates it and forgets it once renamed or
** removed. zoe_tmpfiles_remove_all is async-signal-safe: it only reads fixed slots and
** calls unlink.
*/
#ifndef ZOE_TMPFILES_H
#define ZOE_TMPFILES_H

/* Remember 'path' (a temporary file just created). When every slot is taken or the path is
   too long it is not remembered: a signal then leaves it, and the sweep removes it later. */
void zoe_tmpfiles_add(const char *path);
/* Forget 'path' once it is renamed or removed. */
void zoe_tmpfiles_forget(const char *path);
/* Remove every remembered file. Async-signal-safe. */
void zoe_tmpfiles_remove_all(void);
/* Remove the temporary files '.BASE.PID-N.tmp' beside 'path' whose process PID is gone. */
void zoe_tmpfiles_sweep(const char *path);
/* Install handlers for SIGTERM and SIGHUP that remove the remembered files, then die of the
   signal as before (the command calls it; a program embedding the library decides itself). */
void zoe_tmpfiles_on_signals(void);

#endif
