/* faultinject.h: test-only fault injection: chosen file-system calls fail (or crash the process) at a chosen call. */
#ifndef VIPMTA_T_FAULTINJECT_H
#define VIPMTA_T_FAULTINJECT_H

/* The shim (faultinject.c) defines open, openat, read, write, pwrite,
 * writev, fsync, fdatasync, syncfs, sync_file_range, rename, renameat,
 * renameat2, unlink, unlinkat, ftruncate, fstat, mkdir, pread (and their 64-bit
 * aliases); each passes the call on to the C library unless a rule says
 * otherwise. It is either linked into a Check suite (which then calls the
 * functions below) or preloaded into the daemon (LD_PRELOAD of
 * t/lib/.libs/faultinject.so, configured by environment variables):
 *
 *   VT_FAULTS       rules, in force from the start
 *   VT_FAULTS_FILE  a file of rules, read again whenever it changes (replace
 *                   it atomically: write a new file, then rename it over);
 *                   while it exists its rules replace VT_FAULTS'
 *   VT_FAULTS_LOG   a file to which every injected fault appends one line:
 *                   "FUNC PATH ERRNO-NAME" (or "FUNC PATH crash")
 *
 * Rules are separated by ';' or newlines; one rule is
 *
 *   FUNC[,FUNC...] [path=GLOB] [nth=N] [count=M] [errno=NAME|NUMBER] [crash]
 *
 *   FUNC    a function above (the 64-bit aliases count as their base name)
 *   path    fnmatch() glob on the absolute path the call works on (for
 *           calls on a descriptor, the file it refers to; for *at calls,
 *           the directory's path joined with the name); '*' matches '/'
 *           too, so "*.env" is any envelope. Default: every path.
 *   nth     the first matching call that fails, counting from 1 (default 1)
 *   count   how many matching calls fail from there (default 1; 0: all)
 *   errno   the error the failing call returns (default EIO)
 *   crash   instead of failing, the process is killed with SIGKILL just
 *           before the call runs (a crash at exactly that point)
 *
 * Counting is per rule, under a lock (calls come from several threads).
 * Example: "fdatasync path=*.env errno=EIO; write path=*.st nth=2 errno=ENOSPC". */

/* Replaces every rule (NULL or "": none); counters restart. 0, or -1 with a
 * message on stderr when a rule does not parse (then no rule is in force). */
int faultinject_set(const char *rules);
/* Faults injected since the last faultinject_set. */
unsigned long faultinject_fired(void);
/* Calls of `func` that matched a rule (failed or not) since the last set. */
unsigned long faultinject_matched(const char *func);

#endif
